//! Checks for a caller the embedding program has already verified (the `agent-safe serve`
//! sidecar verifies the bearer token once, for its 401, and hands the identity over instead
//! of having the SDK verify the same token a second time).

use agent_safe_core::Decision;
use agent_safe_tickets::VerifiedIdentity;

use crate::{AgentSafe, CheckError, CheckRequest, ResolvedCaller};

impl AgentSafe {
    /// [`check`](Self::check) as `caller`, ignoring `req.caller`.
    ///
    /// `caller` is a [`VerifiedIdentity`], which only the token verifier produces: typically
    /// `identity = self.delegations()?.verify(token)?` just before (the same verification
    /// [`check`](Self::check) does for a token caller). Its roles, groups and delegation chain
    /// decide the policy rules, and it counts as verified for `identity: required`. Verify with
    /// this facade's own key, issuer and clock: the identity is not checked again.
    pub fn check_verified(
        &self,
        req: &CheckRequest,
        caller: VerifiedIdentity,
    ) -> Result<Decision, CheckError> {
        self.check_resolved(req, ResolvedCaller::Verified(Box::new(caller)))
    }

    /// [`check_plan`](Self::check_plan) with every step as `caller` (see
    /// [`check_verified`](Self::check_verified): the caller must already be verified).
    pub fn check_plan_verified(
        &self,
        steps: &[CheckRequest],
        caller: &VerifiedIdentity,
    ) -> Result<Vec<Decision>, CheckError> {
        steps.iter().map(|s| self.check_verified(s, caller.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use agent_safe_core::{DecisionResult, ManualClock};
    use agent_safe_tickets::{IdentityManager, SigningKey};
    use time::macros::datetime;

    use crate::{AgentSafe, CheckRequest, DurabilityMode, IdentityMode};

    const KEY: &str = "sdk-verified-test-key-0123456789abcdef0123";

    #[track_caller]
    fn check(roles: &[&str], target: &str, expected: DecisionResult) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog");
        let clock = Arc::new(ManualClock::new(datetime!(2026-02-24 12:00 UTC)));
        let key = SigningKey::hs256_from_str(KEY).unwrap();
        let safe = AgentSafe::builder()
            .registry(catalog.join("actions"))
            .policies(catalog.join("policies"))
            .inventory(catalog.join("inventory.yaml"))
            .audit_log(dir.path().join("audit.jsonl"))
            .signing_key(key.clone())
            .identity(IdentityMode::Required)
            .durability(DurabilityMode::Buffered)
            .clock(clock.clone())
            .build()
            .unwrap();
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let token = IdentityManager::new(key, "agent-safe", clock)
            .create_token("deploy-bot", "Deploy Bot", &roles, &[], time::Duration::hours(1))
            .unwrap();
        let (ns, name) = target.split_once('/').unwrap();
        let req = CheckRequest::new("restart-deployment")
            .target(target)
            .param("namespace", ns)
            .param("deployment", name);
        // The token through `check` (verified by the SDK) and the identity through
        // `check_verified` (verified once, before) decide and record alike.
        let by_token = safe.check(&req.clone().caller_token(token.clone())).unwrap();
        let identity = safe.delegations().unwrap().verify(&token).unwrap();
        // `req.caller` is ignored: the identity decides.
        let by_identity =
            safe.check_verified(&req.clone().caller("someone-else"), identity.clone()).unwrap();
        assert_eq!(by_identity.result, expected, "{}", by_identity.reason);
        assert_eq!(by_identity.caller.as_str(), "deploy-bot");
        assert_eq!(
            (by_identity.result, &by_identity.policy_matched, &by_identity.reason),
            (by_token.result, &by_token.policy_matched, &by_token.reason)
        );
        // The same identity as the request's caller.
        let in_request = safe.check(&req.clone().caller_verified(identity.clone())).unwrap();
        assert_eq!((in_request.result, &in_request.reason), (expected, &by_identity.reason));
        let plan = safe.check_plan_verified(&[req.clone(), req], &identity).unwrap();
        assert!(plan.iter().all(|d| d.result == expected), "{plan:?}");
        let events = agent_safe_audit::read_events(&dir.path().join("audit.jsonl")).unwrap();
        assert_eq!(events.len(), 5);
        assert!(events.iter().all(|e| e.event.caller == "deploy-bot"));
    }

    #[test]
    fn a_verified_identity_decides_like_its_token() {
        check(&[], "dev/test-app", DecisionResult::Allow);
        check(&[], "prod/api-server", DecisionResult::RequireApproval);
    }
}
