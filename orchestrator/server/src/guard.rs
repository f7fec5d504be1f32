//! The data-protection guard: inputs sent to experts marked `external` pass
//! through the data-protection expert's scanner and are masked (secrets and
//! PII replaced by `*`, keys and offsets kept). The registry's invoker
//! refuses external experts without it; what was masked is recorded per
//! step as `synod.step.input_redacted` (counts per type, never values).
//!
//! [`EventSecrets`] masks secrets (credentials, keys, tokens: the rules of
//! category `secret`) found by content in every run event payload. Personal
//! data and indicators (IPs, domains) stay in events: investigations need
//! them, and a run resumed after a restart reads its outputs back from its
//! events.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use synod_executor::ContentRedactor;
use synod_expert_data_protection::{Category, Redaction, Scanner};
use synod_registry::InputGuard;

/// The embedded data-protection rules, compiled once per process (every
/// orchestrator's guard and the event masking share them).
fn builtin_scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(Scanner::builtin)
}

/// Masks every finding of the built-in data-protection rules.
#[derive(Debug)]
pub struct DataProtectionGuard {
    scanner: &'static Scanner,
    redaction: Redaction,
}

impl DataProtectionGuard {
    /// The guard with the embedded rules, masking every finding.
    pub fn builtin() -> Self {
        DataProtectionGuard {
            scanner: builtin_scanner(),
            redaction: Redaction::mask(),
        }
    }
}

impl InputGuard for DataProtectionGuard {
    fn protect(&self, input: &Value) -> (Value, BTreeMap<String, u64>) {
        let redacted = self.scanner.redact_json(input, &self.redaction);
        let counts = redacted
            .findings_count_by_type
            .into_iter()
            .map(|(kind, count)| (kind, count as u64))
            .collect();
        (redacted.value, counts)
    }
}

/// The process-wide [`EventSecrets`] (built once).
pub fn event_secrets() -> Arc<EventSecrets> {
    static SHARED: OnceLock<Arc<EventSecrets>> = OnceLock::new();
    SHARED
        .get_or_init(|| Arc::new(EventSecrets::builtin()))
        .clone()
}

/// Masks secrets found by content in run event payloads.
#[derive(Debug)]
pub struct EventSecrets {
    scanner: Scanner,
    redaction: Redaction,
}

impl EventSecrets {
    /// The built-in rules of category `secret`, masking.
    pub fn builtin() -> Self {
        let secrets = builtin_scanner()
            .rules()
            .iter()
            .filter(|rule| rule.category == Category::Secret)
            .cloned()
            .collect();
        EventSecrets {
            scanner: Scanner::new(secrets),
            redaction: Redaction::mask(),
        }
    }
}

impl ContentRedactor for EventSecrets {
    fn redact(&self, value: &Value) -> Value {
        self.scanner.redact_json(value, &self.redaction).value
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_and_pii_are_masked_and_counted_but_keys_and_plain_text_kept() {
        let guard = DataProtectionGuard::builtin();
        let input = json!({
            "note": "contact jane.doe@example.org about host 10.1.2.3",
            "key": "AKIADEADBEEFDEADBEEF",
            "count": 3
        });
        let (value, counts) = guard.protect(&input);
        let text = value.to_string();
        assert!(!text.contains("jane.doe@example.org"), "{text}");
        assert!(!text.contains("AKIADEADBEEFDEADBEEF"), "{text}");
        assert!(text.contains("contact"), "{text}");
        assert_eq!(value["count"], 3);
        assert!(counts.values().sum::<u64>() >= 2, "{counts:?}");
    }

    #[test]
    fn event_payloads_lose_secrets_but_keep_indicators() {
        let events = EventSecrets::builtin();
        let value = events.redact(&json!({
            "ip": "10.1.2.3",
            "line": "GITHUB_KEY=ghp_XIxB7KMNdAr3zqWtQqhE94qglHqOzn1D1stg from 10.1.2.3"
        }));
        let text = value.to_string();
        assert!(
            !text.contains("ghp_XIxB7KMNdAr3zqWtQqhE94qglHqOzn1D1stg"),
            "{text}"
        );
        assert!(text.contains("from 10.1.2.3"), "{text}");
        assert_eq!(value["ip"], "10.1.2.3");
    }
}
