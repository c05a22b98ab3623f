//! Building the stored line of an event: canonical JSON with `prev_hash`, `seq` and
//! `entry_hash` added, byte-compatible with the Python writer.
//!
//! The parts that do not depend on the chain head are serialised (and their SHA-256 state
//! computed) before the writer takes its locks; under the locks only the short suffix from
//! `prev_hash` on is hashed.

use agent_safe_core::{AuditEvent, hex};
use ring::digest;
use serde_json::{Map, Value};

use crate::canonical::{write, write_str};
use crate::entry::{Digest, finish};

/// An event serialised up to the chain fields.
///
/// The hashed text is `p1 + p2 + <prev_hash literal> + p3 + [", \"seq\": " + seq] + p4`; the
/// stored line inserts `"entry_hash": "<hex>", ` between `p1` and `p2`.
pub(crate) struct PreparedLine {
    /// `{` and the members that sort before `entry_hash`, followed by `, `.
    p1: String,
    /// Members from `event_id` to `policy_matched`, then `, "prev_hash": `.
    p2: String,
    /// `, ` and the members between `prev_hash` and `seq`.
    p3: String,
    /// `, `, the members after `seq`, and `}`.
    p4: String,
    /// SHA-256 state after `p1 + p2`.
    ctx: digest::Context,
}

fn member(out: &mut String, key: &str) {
    write_str(key, out);
    out.push_str(": ");
}

fn opt_str(out: &mut String, v: Option<&str>) {
    match v {
        Some(s) => write_str(s, out),
        None => out.push_str("null"),
    }
}

fn write_map(out: &mut String, map: &Map<String, Value>) {
    // Same output as `canonical::write(&Value::Object(..))`, without cloning the map.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(k, out);
        out.push_str(": ");
        write(v, out);
    }
    out.push('}');
}

impl PreparedLine {
    /// Serialises `event`. Keys in sorted order: action, caller, context, correlation_id,
    /// decision, effective_risk, [entry_hash], event_id, event_type, params, policy_matched,
    /// prev_hash, reason, risk_class, [seq], target, ticket_id, timestamp.
    pub(crate) fn new(event: &AuditEvent) -> Self {
        let mut p1 = String::with_capacity(256);
        p1.push('{');
        member(&mut p1, "action");
        write_str(&event.action, &mut p1);
        p1.push_str(", ");
        member(&mut p1, "caller");
        write_str(&event.caller, &mut p1);
        p1.push_str(", ");
        member(&mut p1, "context");
        match &event.context {
            Some(v) => write(v, &mut p1),
            None => p1.push_str("null"),
        }
        p1.push_str(", ");
        member(&mut p1, "correlation_id");
        opt_str(&mut p1, event.correlation_id.as_deref());
        p1.push_str(", ");
        member(&mut p1, "decision");
        write_str(event.decision.as_str(), &mut p1);
        p1.push_str(", ");
        member(&mut p1, "effective_risk");
        write_str(event.effective_risk.as_str(), &mut p1);
        p1.push_str(", ");

        let mut p2 = String::with_capacity(256);
        member(&mut p2, "event_id");
        write_str(event.event_id.as_str(), &mut p2);
        p2.push_str(", ");
        member(&mut p2, "event_type");
        write_str(event.event_type.as_str(), &mut p2);
        p2.push_str(", ");
        member(&mut p2, "params");
        write_map(&mut p2, &event.params);
        p2.push_str(", ");
        member(&mut p2, "policy_matched");
        opt_str(&mut p2, event.policy_matched.as_deref());
        p2.push_str(", ");
        member(&mut p2, "prev_hash");

        let mut p3 = String::with_capacity(128);
        p3.push_str(", ");
        member(&mut p3, "reason");
        write_str(&event.reason, &mut p3);
        p3.push_str(", ");
        member(&mut p3, "risk_class");
        write_str(event.risk_class.as_str(), &mut p3);

        let mut p4 = String::with_capacity(128);
        p4.push_str(", ");
        member(&mut p4, "target");
        write_str(&event.target, &mut p4);
        p4.push_str(", ");
        member(&mut p4, "ticket_id");
        opt_str(&mut p4, event.ticket_id.as_deref());
        p4.push_str(", ");
        member(&mut p4, "timestamp");
        write_str(&agent_safe_core::timefmt::format_utc(event.timestamp), &mut p4);
        p4.push('}');

        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(p1.as_bytes());
        ctx.update(p2.as_bytes());
        Self { p1, p2, p3, p4, ctx }
    }

    /// Completes the entry: returns its `entry_hash` and appends the full line (with `\n`) to
    /// `out`. `seq: None` gives exactly the Python version's line.
    pub(crate) fn finish(&self, prev_hash: &str, seq: Option<u64>, out: &mut Vec<u8>) -> Digest {
        let mut prev = String::with_capacity(prev_hash.len() + 2);
        write_str(prev_hash, &mut prev);
        let seq_text = seq.map(|s| format!(", \"seq\": {s}"));
        let mut ctx = self.ctx.clone();
        ctx.update(prev.as_bytes());
        ctx.update(self.p3.as_bytes());
        if let Some(s) = &seq_text {
            ctx.update(s.as_bytes());
        }
        ctx.update(self.p4.as_bytes());
        let hash = finish(ctx);
        out.reserve(self.len() + prev.len() + 100);
        out.extend_from_slice(self.p1.as_bytes());
        out.extend_from_slice(b"\"entry_hash\": \"");
        out.extend_from_slice(&hex::encode_32(&hash));
        out.extend_from_slice(b"\", ");
        out.extend_from_slice(self.p2.as_bytes());
        out.extend_from_slice(prev.as_bytes());
        out.extend_from_slice(self.p3.as_bytes());
        if let Some(s) = &seq_text {
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(self.p4.as_bytes());
        out.push(b'\n');
        hash
    }

    /// `p1` to `p4` (see [`crate::PreparedEntry::parts`]).
    pub(crate) fn parts(&self) -> [&str; 4] {
        [&self.p1, &self.p2, &self.p3, &self.p4]
    }

    fn len(&self) -> usize {
        self.p1.len() + self.p2.len() + self.p3.len() + self.p4.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Analysis, HashVal, analyze};
    use agent_safe_core::{AuditId, DecisionResult, EventType, RiskClass};
    use serde_json::json;
    use time::macros::datetime;

    fn event() -> AuditEvent {
        let Value::Object(params) =
            json!({"z": 1, "a": "é😀\u{1}", "m": {"y": [1.5, 1e-5, null], "x": true}})
        else {
            unreachable!()
        };
        AuditEvent {
            event_id: AuditId::new("evt-0123456789ab"),
            timestamp: datetime!(2026-11-26 09:27:07.420959 UTC),
            event_type: EventType::Execution,
            action: "restart-deployment".into(),
            target: "dev/test-app".into(),
            caller: "deploy-bot".into(),
            params,
            decision: DecisionResult::RequireApproval,
            reason: "why \"not\"".into(),
            policy_matched: None,
            risk_class: RiskClass::Medium,
            effective_risk: RiskClass::Critical,
            correlation_id: Some("evt-x".into()),
            ticket_id: None,
            context: Some(json!({"k": [1e16, 0.1]})),
        }
    }

    /// The generic path: serde's view of the event plus the chain fields, canonicalised.
    /// Guards against a field added to `AuditEvent` but not to `PreparedLine::new`.
    fn generic(event: &AuditEvent, prev: &str, seq: Option<u64>) -> (String, String) {
        let Value::Object(mut obj) = serde_json::to_value(event).unwrap() else { unreachable!() };
        obj.insert("prev_hash".into(), json!(prev));
        if let Some(s) = seq {
            obj.insert("seq".into(), json!(s));
        }
        let hashed = crate::canonical::to_string(&Value::Object(obj.clone()));
        let hash = hex::encode(&crate::entry::sha256(&[hashed.as_bytes()]));
        obj.insert("entry_hash".into(), json!(hash));
        (crate::canonical::to_string(&Value::Object(obj)), hash)
    }

    #[track_caller]
    fn check(prev: &str, seq: Option<u64>) {
        let ev = event();
        let mut out = Vec::new();
        let hash = PreparedLine::new(&ev).finish(prev, seq, &mut out);
        let (line, expected_hash) = generic(&ev, prev, seq);
        assert_eq!(String::from_utf8(out.clone()).unwrap(), format!("{line}\n"));
        assert_eq!(hex::encode(&hash), expected_hash);
        // And the verifier's view of the written line agrees.
        let Analysis::Entry(e) = analyze(&out[..out.len() - 1]) else { panic!("line parses") };
        assert!(e.canonical);
        assert_eq!(e.stored, HashVal::digest(&hash));
        assert_eq!(e.computed, hash);
    }

    /// The typed path reproduces the Python writer's lines byte for byte: read each line of
    /// the Python fixture as an event and write it again (without `seq`).
    #[test]
    fn reproduces_python_lines_from_typed_events() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/audit/python-fixture.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let stored = crate::read_events(&path).unwrap();
        assert_eq!(stored.len(), 6);
        for (line, s) in text.lines().zip(&stored) {
            let mut out = Vec::new();
            let hash = PreparedLine::new(&s.event).finish(&s.prev_hash, None, &mut out);
            assert_eq!(std::str::from_utf8(&out).unwrap(), format!("{line}\n"));
            assert_eq!(hex::encode(&hash), s.entry_hash);
        }
    }

    #[test]
    fn matches_the_generic_serialisation() {
        check(&"0".repeat(64), Some(1));
        check(&"ab".repeat(32), Some(u64::MAX));
        check(&"0".repeat(64), None);
        check("not hex \u{e9}", Some(7));
    }
}
