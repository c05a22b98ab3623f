//! One log entry as shippers see it: the stored line and the fields they key on.

use serde::Deserialize;
use time::OffsetDateTime;

/// One entry to ship: the stored line (canonical JSON, as both writers write it; shipped
/// byte for byte) with the fields shippers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipEntry {
    json: String,
    event_id: String,
    timestamp: OffsetDateTime,
    entry_hash: String,
    seq: Option<u64>,
    line: usize,
    /// Where the log goes on after the entry (see [`ShipEntry::end`]).
    end: u64,
}

#[derive(Deserialize)]
struct Fields {
    event_id: String,
    timestamp: String,
    entry_hash: String,
    #[serde(default)]
    seq: Option<serde_json::Value>,
}

impl ShipEntry {
    /// Reads the fields of a stored line (`json`, without its newline) that is line `line`
    /// of its log (counting non-blank lines). Fails when it is not an entry: not a JSON
    /// object, or without a string `event_id`, `entry_hash` or an RFC 3339 `timestamp`.
    pub fn parse(json: &str, line: usize) -> Result<ShipEntry, String> {
        let fields: Fields =
            serde_json::from_str(json).map_err(|e| format!("not an audit entry: {e}"))?;
        let timestamp = agent_safe_core::timefmt::parse_rfc3339(&fields.timestamp)
            .map_err(|e| format!("not an audit entry: invalid `timestamp`: {e}"))?;
        let seq = match fields.seq {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => {
                Some(v.as_u64().ok_or_else(|| format!("not an audit entry: invalid `seq` {v}"))?)
            }
        };
        Ok(ShipEntry {
            json: json.to_owned(),
            event_id: fields.event_id,
            timestamp,
            entry_hash: fields.entry_hash,
            seq,
            line,
            end: 0,
        })
    }

    /// The stored line (no newline).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// `event_id`: the idempotency key of at-least-once shippers.
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// `timestamp`, in UTC.
    pub fn timestamp(&self) -> OffsetDateTime {
        self.timestamp
    }

    /// `entry_hash`.
    pub fn entry_hash(&self) -> &str {
        &self.entry_hash
    }

    /// `seq` (absent in lines written by the Python version).
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// Line number in the log, counting non-blank lines (as `verify` does); in a database
    /// log, the row number.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Where the log goes on after this entry: in a file log the byte offset just after its
    /// line's terminator; in a database log its row number. Set by the [`crate::ShipChannel`]
    /// that read it.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The entry with [`ShipEntry::end`] set.
    #[must_use]
    pub fn with_end(mut self, end: u64) -> Self {
        self.end = end;
        self
    }
}

/// The `entry_hash` of a stored line, when it has one.
pub(crate) fn entry_hash_of(text: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Hash {
        entry_hash: String,
    }
    serde_json::from_slice::<Hash>(text).ok().map(|h| h.entry_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(json: &str, expected: Result<(&str, Option<u64>, &str), &str>) {
        let got = ShipEntry::parse(json, 7);
        match (got, expected) {
            (Ok(e), Ok((id, seq, date))) => {
                assert_eq!(e.event_id(), id);
                assert_eq!(e.seq(), seq);
                assert_eq!(e.timestamp().date().to_string(), date);
                assert_eq!(e.line(), 7);
                assert_eq!(e.json(), json);
                assert_eq!(e.entry_hash(), "h");
            }
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{e}"),
            (got, expected) => panic!("got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn reads_the_fields_shippers_need() {
        let ok = r#"{"entry_hash": "h", "event_id": "evt-1", "seq": 3, "timestamp": "2026-02-24T23:59:59.5Z"}"#;
        check(ok, Ok(("evt-1", Some(3), "2026-02-24")));
        // Python-written lines have no seq; offsets are converted to UTC.
        check(
            r#"{"entry_hash": "h", "event_id": "e", "timestamp": "2026-02-24T23:30:00-01:00"}"#,
            Ok(("e", None, "2026-02-25")),
        );
        check(
            r#"{"entry_hash": "h", "event_id": "e", "seq": null, "timestamp": "2026-02-24T00:00:00Z"}"#,
            Ok(("e", None, "2026-02-24")),
        );
        check(r#"{"entry_hash": "h", "timestamp": "2026-02-24T00:00:00Z"}"#, Err("`event_id`"));
        check(r#"{"event_id": "e", "timestamp": "2026-02-24T00:00:00Z"}"#, Err("`entry_hash`"));
        check(
            r#"{"entry_hash": "h", "event_id": "e", "timestamp": "yesterday"}"#,
            Err("timestamp"),
        );
        check(
            r#"{"entry_hash": "h", "event_id": "e", "seq": -1, "timestamp": "2026-02-24T00:00:00Z"}"#,
            Err("invalid `seq` -1"),
        );
        check("[1, 2]", Err("not an audit entry"));
        check("{\"event_id\": ", Err("not an audit entry"));
    }

    #[test]
    fn finds_the_entry_hash() {
        assert_eq!(entry_hash_of(br#"{"a": 1, "entry_hash": "abc"}"#).as_deref(), Some("abc"));
        assert_eq!(entry_hash_of(br#"{"a": 1}"#), None);
        assert_eq!(entry_hash_of(b"{\"entry_hash\": \"ab"), None);
    }
}
