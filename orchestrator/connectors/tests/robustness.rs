//! Property tests: the parsers and verifiers never panic on arbitrary input, and
//! redaction keeps its invariants. (Cron properties: synod-workflow's tests/cron.rs.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use synod_connectors::webhook::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use synod_connectors::{Allowlist, Redactor, SecretValue, parse_retry_after};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn allowlist_never_panics(rules in proptest::collection::vec("\\PC{0,30}", 0..4), url in "\\PC{0,60}") {
        if let Ok(list) = Allowlist::parse(&rules)
            && let Ok(parsed) = url::Url::parse(&url)
        {
            let _ = list.check(&parsed);
        }
    }

    #[test]
    fn retry_after_never_panics(text in "\\PC{0,40}") {
        let _ = parse_retry_after(&text, SystemTime::now());
    }

    #[test]
    fn webhook_verify_never_panics(timestamp in "[ -~]{0,20}", signature in "[ -~]{0,80}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&timestamp) {
            headers.insert(TIMESTAMP_HEADER, value);
        }
        if let Ok(value) = HeaderValue::from_str(&signature) {
            headers.insert(SIGNATURE_HEADER, value);
        }
        let now = UNIX_EPOCH + Duration::from_secs(1_763_900_000);
        let result = webhook::verify(&headers, &body, &SecretValue::new("s"), now, webhook::DEFAULT_WINDOW);
        prop_assert!(result.is_err());
    }

    #[test]
    fn redaction_removes_every_occurrence(secret in "[^*]{4,16}", parts in proptest::collection::vec("\\PC{0,10}", 1..5)) {
        let mut redactor = Redactor::new();
        redactor.add(&SecretValue::new(secret.clone()));
        let text = parts.join(&secret);
        prop_assert!(!redactor.redact(&text).contains(&secret));
    }
}
