//! Timestamps in the CACAO form: RFC 3339, UTC, `Z`, milliseconds.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Normalises an event or step time to `YYYY-MM-DDThh:mm:ss.sssZ`: RFC 3339
/// with any offset, or a zone-less `YYYY-MM-DD hh:mm:ss[.f]` (Sysmon
/// `UtcTime`) or `YYYY-MM-DDThh:mm:ss[.f]` read as UTC. `None` when the text
/// is none of these.
pub fn normalise_timestamp(text: &str) -> Option<String> {
    let text = text.trim();
    let utc = match DateTime::parse_from_rfc3339(text) {
        Ok(time) => time.with_timezone(&Utc),
        Err(_) => ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())?
            .and_utc(),
    };
    Some(format_timestamp(utc))
}

/// Formats a time in the CACAO form.
pub fn format_timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_event_times() {
        assert_eq!(
            normalise_timestamp("2019-03-19T23:34:25.6864021Z").as_deref(),
            Some("2019-03-19T23:34:25.686Z")
        );
        assert_eq!(
            normalise_timestamp("2026-11-23T12:05:00+02:00").as_deref(),
            Some("2026-11-23T10:05:00.000Z")
        );
        assert_eq!(
            normalise_timestamp("2019-03-19 23:34:25.686").as_deref(),
            Some("2019-03-19T23:34:25.686Z")
        );
        assert_eq!(normalise_timestamp("yesterday"), None);
    }
}
