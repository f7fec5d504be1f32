//! Removal of secrets from payloads before they go into events or logs.

use serde_json::Value;

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// Key fragments whose values are treated as secrets (case-insensitive).
const SECRET_KEY_FRAGMENTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "private_key",
    "credential",
    "cookie",
];

/// True when a field with this name holds a secret by convention.
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SECRET_KEY_FRAGMENTS
        .iter()
        .any(|fragment| lower.contains(fragment))
}

/// Replaces, in place, values under secret-looking keys and every occurrence
/// of a known secret value (e.g. resolved `${{ secrets.X }}`) inside strings.
pub fn redact_in_place(value: &mut Value, known_secrets: &[&str]) {
    match value {
        Value::String(text) => {
            for secret in known_secrets {
                if !secret.is_empty() && text.contains(secret) {
                    *text = text.replace(secret, REDACTED);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                redact_in_place(item, known_secrets);
            }
        }
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if is_secret_key(key) && !field.is_null() && !field.is_object() {
                    *field = Value::String(REDACTED.to_owned());
                } else {
                    redact_in_place(field, known_secrets);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A redacted copy of `value`.
pub fn redacted(value: &Value, known_secrets: &[&str]) -> Value {
    let mut copy = value.clone();
    redact_in_place(&mut copy, known_secrets);
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_secret_keys_and_known_values() {
        let value = json!({
            "user": "alice",
            "api_key": "k-123",
            "headers": {"Authorization": "Bearer abc"},
            "note": "the token is s3cr3t!",
            "nested": [{"password": 42}]
        });
        let clean = redacted(&value, &["s3cr3t!"]);
        assert_eq!(
            clean,
            json!({
                "user": "alice",
                "api_key": REDACTED,
                "headers": {"Authorization": REDACTED},
                "note": "the token is [REDACTED]",
                "nested": [{"password": REDACTED}]
            })
        );
    }
}
