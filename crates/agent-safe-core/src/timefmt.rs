//! Timestamps in the Python version's JSON form: `2026-02-24T12:00:00Z` or
//! `2026-02-24T12:00:00.123456Z` (microseconds, shown only when non-zero).

use std::fmt::Write as _;

use time::{OffsetDateTime, UtcOffset};

/// Formats `t` (converted to UTC, truncated to microseconds) the way pydantic's JSON mode does.
///
/// ```
/// use agent_safe_core::timefmt::format_utc;
/// use time::macros::datetime;
/// assert_eq!(format_utc(datetime!(2026-02-24 12:00 UTC)), "2026-02-24T12:00:00Z");
/// assert_eq!(format_utc(datetime!(2026-02-24 12:00:00.5 UTC)), "2026-02-24T12:00:00.500000Z");
/// ```
pub fn format_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let mut out = String::with_capacity(27);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let micros = t.microsecond();
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    out.push('Z');
    out
}

/// `t` in UTC and truncated to microseconds: the time as [`format_utc`] writes it, so a value
/// compared or stored before it is written equals the value read back.
///
/// ```
/// use agent_safe_core::timefmt::{format_utc, parse_rfc3339, stored_precision};
/// use time::macros::datetime;
/// let t = datetime!(2026-02-24 12:00:00.123456789 UTC);
/// assert_eq!(stored_precision(t), datetime!(2026-02-24 12:00:00.123456 UTC));
/// assert_eq!(parse_rfc3339(&format_utc(t)).unwrap(), stored_precision(t));
/// ```
pub fn stored_precision(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}

/// Parses an RFC 3339 timestamp (`Z` or an offset, optional fraction) into UTC.
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.to_offset(UtcOffset::UTC))
}

/// Serde helpers that read and write [`OffsetDateTime`] in the Python JSON form.
pub mod serde_utc {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    /// Serializes in the Python JSON form.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_utc(*t))
    }

    /// Deserializes any RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<OffsetDateTime>`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        /// Serializes in the Python JSON form, `null` for `None`.
        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::format_utc(*t)),
                None => s.serialize_none(),
            }
        }

        /// Deserializes an optional RFC 3339 timestamp.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| super::super::parse_rfc3339(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_like_pydantic() {
        assert_eq!(
            format_utc(datetime!(2026-11-26 09:27:07.420959 UTC)),
            "2026-11-26T09:27:07.420959Z"
        );
        assert_eq!(
            format_utc(datetime!(2026-11-26 11:27:07.420959 +2)),
            "2026-11-26T09:27:07.420959Z"
        );
        // Nanoseconds are truncated, not rounded.
        assert_eq!(
            format_utc(datetime!(2026-11-26 09:27:07.000000999 UTC)),
            "2026-11-26T09:27:07Z"
        );
    }

    #[test]
    fn round_trips() {
        let t = parse_rfc3339("2026-11-26T09:27:07.420959Z").unwrap();
        assert_eq!(format_utc(t), "2026-11-26T09:27:07.420959Z");
        let t = parse_rfc3339("2026-11-26T10:27:07+01:00").unwrap();
        assert_eq!(format_utc(t), "2026-11-26T09:27:07Z");
    }
}
