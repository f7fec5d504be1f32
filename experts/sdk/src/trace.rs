//! W3C Trace Context (`traceparent` / `tracestate`) extraction and
//! propagation, without an OpenTelemetry dependency.
//!
//! See <https://www.w3.org/TR/trace-context/>. Invalid headers are not
//! errors for the call: per the specification the receiver then starts a new
//! trace, so [`TraceContext::from_metadata`] returns `None` for them.

use std::fmt;

use tonic::metadata::{MetadataMap, MetadataValue};

pub use synod_types::telemetry::{TRACEPARENT, TRACESTATE};

/// Most list members a `tracestate` may carry.
const MAX_TRACESTATE_MEMBERS: usize = 32;

/// A parsed, validated W3C trace context.
///
/// ```
/// use synod_expert_sdk::TraceContext;
///
/// let trace = TraceContext::parse(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
///     Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
/// )
/// .unwrap();
/// assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(trace.sampled());
/// assert_eq!(trace.tracestate()[0], ("congo".to_owned(), "t61rcWkgMzE".to_owned()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    version: u8,
    trace_id: String,
    parent_id: String,
    flags: u8,
    tracestate: Vec<(String, String)>,
}

/// Why a `traceparent` header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceContextError {
    /// The header does not have the `version-traceid-parentid-flags` shape.
    #[error(
        "`traceparent` `{value}` is malformed: expected `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`"
    )]
    Malformed {
        /// The header value.
        value: String,
    },
    /// Version `ff` is forbidden by the specification.
    #[error("`traceparent` version `ff` is invalid")]
    InvalidVersion,
    /// An all-zero trace or parent id.
    #[error("`traceparent` {field} is all zeros, which the specification forbids")]
    ZeroId {
        /// `trace id` or `parent id`.
        field: &'static str,
    },
}

impl TraceContext {
    /// Parses a `traceparent` value and an optional `tracestate` value.
    ///
    /// An invalid `tracestate` is dropped (as the specification allows);
    /// only an invalid `traceparent` is an error.
    ///
    /// # Errors
    ///
    /// When `traceparent` is malformed, has version `ff`, or an all-zero id.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<Self, TraceContextError> {
        let malformed = || TraceContextError::Malformed {
            value: traceparent.to_owned(),
        };
        let value = traceparent.trim();
        let parts: Vec<&str> = value.split('-').collect();
        if parts.len() < 4 {
            return Err(malformed());
        }
        let version = parse_hex_byte(parts[0]).ok_or_else(malformed)?;
        if version == 0xff {
            return Err(TraceContextError::InvalidVersion);
        }
        // Version 00 has exactly four fields; later versions may append more.
        if version == 0 && parts.len() != 4 {
            return Err(malformed());
        }
        let (trace_id, parent_id) = (parts[1], parts[2]);
        if !is_lower_hex(trace_id, 32) || !is_lower_hex(parent_id, 16) {
            return Err(malformed());
        }
        if trace_id.bytes().all(|b| b == b'0') {
            return Err(TraceContextError::ZeroId { field: "trace id" });
        }
        if parent_id.bytes().all(|b| b == b'0') {
            return Err(TraceContextError::ZeroId { field: "parent id" });
        }
        let flags = parse_hex_byte(parts[3]).ok_or_else(malformed)?;
        Ok(TraceContext {
            version,
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            flags,
            tracestate: tracestate.and_then(parse_tracestate).unwrap_or_default(),
        })
    }

    /// Extracts the trace context from gRPC request metadata.
    ///
    /// Returns `None` when there is no `traceparent`, or when it is invalid
    /// (logged at debug level), as the specification says to start a new
    /// trace in that case.
    pub fn from_metadata(metadata: &MetadataMap) -> Option<Self> {
        let traceparent = metadata.get(TRACEPARENT)?;
        let Ok(traceparent) = traceparent.to_str() else {
            tracing::debug!("ignoring a non-ASCII `traceparent`");
            return None;
        };
        let tracestate = metadata.get(TRACESTATE).and_then(|v| v.to_str().ok());
        match TraceContext::parse(traceparent, tracestate) {
            Ok(trace) => Some(trace),
            Err(error) => {
                tracing::debug!(error = %error, "ignoring an invalid `traceparent`");
                None
            }
        }
    }

    /// Writes `traceparent` (and `tracestate`, if any) into outgoing
    /// metadata, so calls this skill makes join the same trace.
    pub fn inject(&self, metadata: &mut MetadataMap) {
        // Both values are ASCII by construction, so parsing cannot fail.
        if let Ok(value) = MetadataValue::try_from(self.traceparent()) {
            metadata.insert(TRACEPARENT, value);
        }
        if !self.tracestate.is_empty()
            && let Ok(value) = MetadataValue::try_from(self.tracestate_header())
        {
            metadata.insert(TRACESTATE, value);
        }
    }

    /// The 32 lowercase hex digit trace id.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The 16 lowercase hex digit id of the caller's span.
    pub fn parent_id(&self) -> &str {
        &self.parent_id
    }

    /// The trace flags byte.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller sampled this trace (flag bit 0).
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// The `tracestate` list members, in order (empty when absent or invalid).
    pub fn tracestate(&self) -> &[(String, String)] {
        &self.tracestate
    }

    /// The same trace with a different parent (span) id, for propagating
    /// from a span this expert created.
    ///
    /// # Errors
    ///
    /// When `parent_id` is not 16 lowercase hex digits or is all zeros.
    pub fn with_parent_id(&self, parent_id: &str) -> Result<Self, TraceContextError> {
        let traceparent = format!(
            "{:02x}-{}-{}-{:02x}",
            self.version, self.trace_id, parent_id, self.flags
        );
        let mut trace = TraceContext::parse(&traceparent, None)?;
        trace.tracestate = self.tracestate.clone();
        Ok(trace)
    }

    /// The `traceparent` header value. Version 00 is written, as the
    /// specification asks of a propagating participant.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.parent_id, self.flags)
    }

    /// The `tracestate` header value (empty when there are no members).
    pub fn tracestate_header(&self) -> String {
        let mut out = String::new();
        for (index, (key, value)) in self.tracestate.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
        out
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

fn parse_hex_byte(text: &str) -> Option<u8> {
    if !is_lower_hex(text, 2) {
        return None;
    }
    u8::from_str_radix(text, 16).ok()
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses `tracestate`; `None` when any member is invalid or there are too
/// many (the specification says to discard the whole header then).
fn parse_tracestate(header: &str) -> Option<Vec<(String, String)>> {
    let mut members = Vec::new();
    for member in header.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !valid_tracestate_key(key) || !valid_tracestate_value(value) {
            return None;
        }
        if members
            .iter()
            .any(|(existing, _): &(String, String)| existing == key)
        {
            return None;
        }
        members.push((key.to_owned(), value.to_owned()));
    }
    if members.len() > MAX_TRACESTATE_MEMBERS {
        return None;
    }
    Some(members)
}

fn valid_tracestate_key(key: &str) -> bool {
    let simple = |part: &str, max: usize, first_digit_ok: bool| {
        let mut bytes = part.bytes();
        let Some(first) = bytes.next() else {
            return false;
        };
        let first_ok = first.is_ascii_lowercase() || (first_digit_ok && first.is_ascii_digit());
        first_ok
            && part.len() <= max
            && bytes.all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'-' | b'*' | b'/')
            })
    };
    match key.split_once('@') {
        None => simple(key, 256, false),
        Some((tenant, system)) => simple(tenant, 241, true) && simple(system, 14, false),
    }
}

fn valid_tracestate_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_a_valid_traceparent() {
        let trace = TraceContext::parse(VALID, None).unwrap();
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.parent_id(), "00f067aa0ba902b7");
        assert_eq!(trace.flags(), 1);
        assert!(trace.sampled());
        assert_eq!(trace.traceparent(), VALID);
        assert!(trace.tracestate().is_empty());
    }

    #[test]
    fn rejects_malformed_traceparents() {
        let cases = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ];
        for case in cases {
            assert!(
                matches!(
                    TraceContext::parse(case, None),
                    Err(TraceContextError::Malformed { .. })
                ),
                "{case:?} should be malformed"
            );
        }
        assert_eq!(
            TraceContext::parse(
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                None
            ),
            Err(TraceContextError::InvalidVersion)
        );
        assert_eq!(
            TraceContext::parse(
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                None
            ),
            Err(TraceContextError::ZeroId { field: "trace id" })
        );
        assert_eq!(
            TraceContext::parse(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                None
            ),
            Err(TraceContextError::ZeroId { field: "parent id" })
        );
    }

    #[test]
    fn accepts_future_versions_with_extra_fields() {
        let trace = TraceContext::parse(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-the-future-holds",
            None,
        )
        .unwrap();
        assert!(!trace.sampled());
        assert_eq!(
            trace.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
    }

    #[test]
    fn parses_tracestate_and_drops_invalid_ones() {
        let trace =
            TraceContext::parse(VALID, Some("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,,")).unwrap();
        assert_eq!(
            trace.tracestate(),
            &[
                ("rojo".to_owned(), "00f067aa0ba902b7".to_owned()),
                ("congo".to_owned(), "t61rcWkgMzE".to_owned())
            ]
        );
        assert_eq!(
            trace.tracestate_header(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        );
        let tenant = TraceContext::parse(VALID, Some("1tenant@vendor=x")).unwrap();
        assert_eq!(tenant.tracestate().len(), 1);
        for invalid in ["UPPER=1", "novalue", "dup=1,dup=2", "k=a,b=="] {
            let trace = TraceContext::parse(VALID, Some(invalid)).unwrap();
            assert!(
                trace.tracestate().is_empty(),
                "{invalid:?} should be dropped"
            );
        }
        let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        let trace = TraceContext::parse(VALID, Some(&too_many.join(","))).unwrap();
        assert!(trace.tracestate().is_empty());
    }

    #[test]
    fn extracts_from_and_injects_into_metadata() {
        let mut metadata = MetadataMap::new();
        assert_eq!(TraceContext::from_metadata(&metadata), None);
        metadata.insert(TRACEPARENT, "garbage".parse().unwrap());
        assert_eq!(TraceContext::from_metadata(&metadata), None);

        let trace = TraceContext::parse(VALID, Some("rojo=1")).unwrap();
        let mut outgoing = MetadataMap::new();
        trace.inject(&mut outgoing);
        assert_eq!(outgoing.get(TRACEPARENT).unwrap(), VALID);
        assert_eq!(outgoing.get(TRACESTATE).unwrap(), "rojo=1");
        assert_eq!(TraceContext::from_metadata(&outgoing), Some(trace));
    }

    #[test]
    fn replaces_the_parent_id_for_propagation() {
        let trace = TraceContext::parse(VALID, Some("rojo=1")).unwrap();
        let child = trace.with_parent_id("b7ad6b7169203331").unwrap();
        assert_eq!(child.trace_id(), trace.trace_id());
        assert_eq!(child.parent_id(), "b7ad6b7169203331");
        assert_eq!(child.tracestate(), trace.tracestate());
        assert!(trace.with_parent_id("nothex").is_err());
    }
}
