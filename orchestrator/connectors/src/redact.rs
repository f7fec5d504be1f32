//! Masking of resolved secret values in anything synod records (events, logs, errors,
//! response bodies).

use std::fmt;

use serde_json::Value;

use crate::secrets::SecretValue;

/// What replaces a secret value.
pub const MASK: &str = "***";

/// Replaces every known secret value in text with [`MASK`].
///
/// Besides the raw value it also masks the value's percent-encoded form (as it appears in
/// URLs inside client errors) and its JSON-escaped form (as it appears in serialized bodies).
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor that masks nothing yet.
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Adds a secret value (and its encoded forms) to mask.
    pub fn add(&mut self, secret: &SecretValue) {
        let raw = secret.expose();
        if raw.is_empty() {
            return;
        }
        let json = serde_json::to_string(raw).unwrap_or_default();
        let json_inner = json
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or(raw)
            .to_owned();
        for form in [raw.to_owned(), percent_encode(raw), json_inner] {
            if !self.needles.contains(&form) {
                self.needles.push(form);
            }
        }
        self.needles
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// True when no secret is known.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Length in bytes of the longest masked pattern (0 when empty).
    #[cfg(feature = "http")]
    pub(crate) fn longest_pattern(&self) -> usize {
        self.needles.first().map_or(0, String::len)
    }

    /// `text` with every known secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
        out
    }

    /// A copy of `value` with every string (keys included) redacted.
    pub fn redact_json(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.redact(text)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, field)| (self.redact(key), self.redact_json(field)))
                    .collect(),
            ),
            Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
        }
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("patterns", &self.needles.len())
            .finish()
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_raw_encoded_and_escaped_forms() {
        let mut redactor = Redactor::new();
        redactor.add(&SecretValue::new("p@ss w\"rd"));
        redactor.add(&SecretValue::new("tok"));
        assert_eq!(redactor.redact("a p@ss w\"rd b"), "a *** b");
        assert_eq!(redactor.redact("url?k=p%40ss%20w%22rd"), "url?k=***");
        assert_eq!(redactor.redact(r#"{"k":"p@ss w\"rd"}"#), r#"{"k":"***"}"#);
        assert_eq!(redactor.redact("tok tok"), "*** ***");
        assert_eq!(
            redactor.redact_json(&json!({"tok": ["x tok", 1, null]})),
            json!({"***": ["x ***", 1, null]})
        );
        assert!(!format!("{redactor:?}").contains("tok"));
    }

    #[test]
    fn longer_secret_wins_over_contained_one() {
        let mut redactor = Redactor::new();
        redactor.add(&SecretValue::new("abc"));
        redactor.add(&SecretValue::new("xxabcxx"));
        assert_eq!(redactor.redact("[xxabcxx]"), "[***]");
    }
}
