//! The Kubernetes vault against a loopback stand-in for the API server that records every
//! request: which ServiceAccount, which namespace, the TokenRequest body, the vault's own
//! authentication; the refusals (scope, TTL, API errors, an unreachable server) never carry
//! the token.

use std::path::Path;

use agent_safe_testkit::{Reply, Request, TestServer};
use serde_json::{Value, json};

use super::*;
use crate::config::build_vault;
use crate::test_support::{SECRET, T0, clock, scope, ticket};

/// The vault's own identity in the kubeconfig (allowed to create tokens).
const VAULT_IDENTITY: &str = "vault-identity-token-7c1e";

fn k8s_scope(fields: Value) -> CredentialScope {
    let mut s = scope("kubernetes", 300);
    s.fields = fields.as_object().unwrap().clone();
    s
}

/// An API server that answers every TokenRequest with [`SECRET`] (or `reply` for others).
fn api(reply: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static) -> TestServer {
    TestServer::start(move |_, request| {
        reply(request).unwrap_or_else(|| {
            let mut answer = request.json().unwrap_or(json!({}));
            answer["status"] =
                json!({"token": SECRET, "expirationTimestamp": "2026-02-24T12:10:00Z"});
            Reply::Json(201, answer)
        })
    })
    .unwrap()
}

fn kubeconfig(dir: &Path, url: &str) -> String {
    let path = dir.join("kubeconfig.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: vault\nclusters:\n\
             - name: c\n  cluster: {{server: \"{url}\"}}\nusers:\n\
             - name: v\n  user: {{token: {VAULT_IDENTITY}}}\ncontexts:\n\
             - name: vault\n  context: {{cluster: c, user: v}}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// A vault built from `extra` config keys plus a kubeconfig pointing at `server`.
fn vault(dir: &Path, server: &TestServer, extra: Value) -> Arc<dyn CredentialVault> {
    let mut config =
        json!({"type": "kubernetes", "kubeconfig": kubeconfig(dir, &server.base_url())});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    build_vault(config.as_object().unwrap(), clock()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn get(
    vault: &dyn CredentialVault,
    scope: &CredentialScope,
    ttl: u64,
) -> Result<Credential, VaultError> {
    runtime().block_on(vault.get_credential(scope, &ticket("nonce-1"), ttl))
}

#[test]
fn a_token_for_the_actions_service_account_in_the_scopes_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let server = api(|_| None);
    let vault = vault(dir.path(), &server, json!({"audiences": ["agent-safe-executor"]}));
    assert_eq!(vault.kind(), "kubernetes");
    assert!(vault.enforces_scope());
    let scope = k8s_scope(json!({"verbs": ["get"], "namespaces": ["dev"]}));
    let credential = get(vault.as_ref(), &scope, 300).unwrap();

    assert_eq!(credential.payload.expose()["token"], SECRET);
    assert_eq!(credential.payload.expose().len(), 1, "the payload is the token only");
    assert_eq!(credential.kind, "kubernetes");
    assert_eq!(credential.ticket_nonce, "nonce-1");
    // The scope asked for 300 s; the API server's minimum is 600 s.
    assert_eq!(credential.expires_at, T0 + time::Duration::seconds(600));
    assert!(!format!("{credential:?}{vault:?}").contains(SECRET));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    // `test` is the ticket's action: the default ServiceAccount is `agent-safe-{action}`.
    assert_eq!(r.path_only(), "/api/v1/namespaces/dev/serviceaccounts/agent-safe-test/token");
    assert_eq!(r.header("authorization"), Some(format!("Bearer {VAULT_IDENTITY}").as_str()));
    assert_eq!(
        r.json().unwrap(),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "metadata": {},
               "spec": {"audiences": ["agent-safe-executor"], "expirationSeconds": 600}})
    );
    assert_eq!(server.problems(), Vec::<String>::new());
}

#[test]
fn the_scope_or_the_config_names_the_service_account_and_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let server = api(|_| None);
    // The scope's own `service_account`; a TTL longer than the minimum is kept. No
    // audiences (`[]`): the API server's own.
    let plain = vault(dir.path(), &server, json!({}));
    let scope = k8s_scope(json!({"namespaces": ["prod"], "service_account": "deployer"}));
    let credential = get(plain.as_ref(), &scope, 1800).unwrap();
    assert_eq!(credential.expires_at, T0 + time::Duration::seconds(1800));
    // A fixed namespace and a template of the config; a namespace of the scope is ignored.
    let fixed = vault(
        dir.path(),
        &server,
        json!({"namespace": "agent-safe", "service_account": "runner-{action}"}),
    );
    get(fixed.as_ref(), &k8s_scope(json!({"namespaces": ["prod"]})), 300).unwrap();
    // A cluster-scoped action (no `namespaces`) works with a fixed namespace.
    get(fixed.as_ref(), &k8s_scope(json!({"resources": ["nodes"]})), 300).unwrap();

    let seen: Vec<(String, Value)> = server
        .requests()
        .iter()
        .map(|r| (r.path_only().to_owned(), r.json().unwrap()["spec"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "/api/v1/namespaces/prod/serviceaccounts/deployer/token".to_owned(),
                json!({"audiences": [], "expirationSeconds": 1800}),
            ),
            (
                "/api/v1/namespaces/agent-safe/serviceaccounts/runner-test/token".to_owned(),
                json!({"audiences": [], "expirationSeconds": 600}),
            ),
            (
                "/api/v1/namespaces/agent-safe/serviceaccounts/runner-test/token".to_owned(),
                json!({"audiences": [], "expirationSeconds": 600}),
            ),
        ]
    );
}

#[test]
fn scopes_the_vault_cannot_place_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = api(|_| None);
    let vault = vault(dir.path(), &server, json!({}));
    let refused = |fields: Value, ttl: u64| {
        get(vault.as_ref(), &k8s_scope(fields), ttl).unwrap_err().to_string()
    };
    assert_eq!(
        refused(json!({"resources": ["nodes"]}), 300),
        "invalid `kubernetes` credential scope: no namespace for the ServiceAccount: the scope \
         has no `namespaces` (a cluster-scoped action); set `namespace` in the kubernetes vault config"
    );
    assert_eq!(
        refused(json!({"namespaces": ["dev", "prod"]}), 300),
        "invalid `kubernetes` credential scope: `namespaces` lists 2 namespaces; a ServiceAccount \
         lives in one: set `namespace` in the kubernetes vault config"
    );
    assert_eq!(
        refused(json!({"namespaces": ["Dev_1"]}), 300),
        "invalid `kubernetes` credential scope: `Dev_1` is not a namespace name"
    );
    assert_eq!(
        refused(json!({"namespaces": ["dev"], "service_account": "../../secrets"}), 300),
        "invalid `kubernetes` credential scope: `../../secrets` is not a ServiceAccount name \
         (lowercase letters, digits, `-` and `.`, at most 253 characters)"
    );
    assert_eq!(
        refused(json!({"namespaces": ["dev"], "service_account": 7}), 300),
        "invalid `kubernetes` credential scope: `service_account` must be a string"
    );
    assert_eq!(
        refused(json!({"namespaces": ["dev"]}), 0),
        "invalid credential ttl 0: expected 1 to 86400 seconds"
    );
    assert_eq!(
        refused(json!({"namespaces": ["dev"]}), 86_401),
        "invalid credential ttl 86401: expected 1 to 86400 seconds"
    );
    let aws = scope("aws", 300);
    assert_eq!(
        get(vault.as_ref(), &aws, 300).unwrap_err().to_string(),
        "the `kubernetes` vault issues `kubernetes` credentials only, not `aws`"
    );
    assert_eq!(server.requests().len(), 0);
}

#[test]
fn api_refusals_and_an_unreachable_server_are_backend_errors_naming_the_service_account() {
    let dir = tempfile::tempdir().unwrap();
    let server = api(|request| {
        let status = |code: u16, reason: &str, message: &str| {
            Some(Reply::Json(
                code,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": message, "reason": reason, "code": code}),
            ))
        };
        match request.path_only() {
            p if p.contains("/serviceaccounts/missing/") => {
                status(404, "NotFound", "serviceaccounts \"missing\" not found")
            }
            p if p.contains("/serviceaccounts/forbidden/") => status(
                403,
                "Forbidden",
                "serviceaccounts \"forbidden\" is forbidden: User \"vault\" cannot create resource \"serviceaccounts/token\"",
            ),
            // An answer without a token.
            p if p.contains("/serviceaccounts/empty/") => Some(Reply::Json(
                201,
                json!({"apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest", "spec": {}, "status": {"token": "",
                    "expirationTimestamp": "2026-02-24T12:10:00Z"}}),
            )),
            _ => None,
        }
    });
    let vault = vault(dir.path(), &server, json!({"namespace": "agent-safe"}));
    let refused = |sa: &str| {
        let scope = k8s_scope(json!({"service_account": sa}));
        get(vault.as_ref(), &scope, 300).unwrap_err().to_string()
    };
    assert_eq!(
        refused("missing"),
        "TokenRequest for ServiceAccount `agent-safe/missing` failed: 404 NotFound: \
         serviceaccounts \"missing\" not found"
    );
    assert_eq!(
        refused("forbidden"),
        "TokenRequest for ServiceAccount `agent-safe/forbidden` failed: 403 Forbidden: \
         serviceaccounts \"forbidden\" is forbidden: User \"vault\" cannot create resource \
         \"serviceaccounts/token\""
    );
    assert_eq!(
        refused("empty"),
        "TokenRequest for ServiceAccount `agent-safe/empty` failed: the API server answered \
         without a token"
    );
    assert_eq!(vault.as_ref().kind(), "kubernetes");

    // The API server goes away: an error naming the ServiceAccount, not a hang or a panic.
    let mut server = server;
    server.stop();
    let err = refused("deployer");
    assert!(
        err.starts_with("TokenRequest for ServiceAccount `agent-safe/deployer` failed: "),
        "{err}"
    );
    assert!(!err.contains(VAULT_IDENTITY), "{err}");
}

#[test]
fn a_vault_that_cannot_connect_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig.yaml");
    let config = json!({"type": "kubernetes", "kubeconfig": missing, "namespace": "agent-safe"});
    let vault = build_vault(config.as_object().unwrap(), clock()).unwrap();
    let err = get(vault.as_ref(), &k8s_scope(json!({})), 300).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("kubernetes vault: kubeconfig `{}`", missing.display())),
        "{err}"
    );
}

#[test]
fn configs_are_checked_key_by_key() {
    let refused = |config: Value| {
        build_vault(config.as_object().unwrap(), clock()).map(|_| ()).unwrap_err().to_string()
    };
    assert_eq!(
        refused(json!({"type": "kubernetes", "namespaces": "agent-safe"})),
        "unknown key `namespaces` in the `kubernetes` vault config; expected one of `type`, \
         `kubeconfig`, `context`, `in_cluster`, `namespace`, `service_account`, `audiences`; \
         did you mean `namespace`?"
    );
    assert_eq!(
        refused(json!({"type": "kubernetes", "namespace": "Agent Safe"})),
        "vault config key `namespace` must be a namespace name"
    );
    assert_eq!(
        refused(json!({"type": "kubernetes", "service_account": "Runner {action}"})),
        "vault config key `service_account` must be a ServiceAccount name, optionally with \
         `{action}` (e.g. `agent-safe-{action}`)"
    );
    assert_eq!(
        refused(json!({"type": "kubernetes", "audiences": [""]})),
        "vault config key `audiences` must be a list of non-empty audience names"
    );
    assert_eq!(
        refused(json!({"type": "kubernetes", "audiences": [1]})),
        "vault config key `audiences` must be a list of audience names"
    );
    assert_eq!(
        refused(json!({"type": "kubernetes", "in_cluster": "yes"})),
        "vault config key `in_cluster` must be true or false"
    );
    assert_eq!(
        refused(json!({"type": "kubernetes", "kubeconfig": 3})),
        "vault config key `kubeconfig` must be a string"
    );
    // A single audience may be a string; revocation forgets the id.
    let config = json!({"type": "kubernetes", "audiences": "api", "in_cluster": true});
    let vault = build_vault(config.as_object().unwrap(), clock()).unwrap();
    runtime().block_on(vault.revoke("cred-000000000000")).unwrap();
}
