//! Data-protection expert: PII and secret detection with validators,
//! document classification and redaction.
//!
//! The library is pure (no I/O besides optional rule-file loading) so the
//! orchestrator can use it as a guard before data goes to an external
//! expert:
//!
//! ```
//! use synod_expert_data_protection::{Redaction, RedactionKey, Scanner};
//! use serde_json::json;
//!
//! let scanner = Scanner::builtin();
//! let findings = scanner.scan("mail jane@example.org, key AKIADEADBEEFDEADBEEF");
//! assert_eq!(findings.len(), 2);
//!
//! let key = RedactionKey::new(&[42u8; 32]).unwrap();
//! let out = scanner.redact_json(&json!({ "note": "SSN 460-89-9847" }), &Redaction::token(key.clone()));
//! assert_eq!(out.findings_count_by_type["US_SSN"], 1);
//! let back = synod_expert_data_protection::unredact_json(&out.value, &key).unwrap();
//! assert_eq!(back, json!({ "note": "SSN 460-89-9847" }));
//! ```
//!
//! Layout:
//! - [`rule`]: rule files (YAML, a superset of Nosey Parker's format) and
//!   their translation to Rust `regex`; the embedded files are in `rules/`.
//! - [`validate`]: Luhn, IBAN, IP, SSN, Chinese resident id, email, phone.
//! - [`scanner`]: the [`Scanner`] (keyword prefilter, regex, validators,
//!   overlap resolution) and [`Finding`].
//! - [`mod@classify`]: the document classification policy.
//! - [`redact`]: mask / hash / token redaction, offset mapping, unredaction.
//! - [`mod@expert`]: the `data-protection` expert (skills `scan` and `redact`).
//! - [`evaluation`]: scoring on the Nosey Parker and Presidio datasets.

pub mod classify;
pub mod evaluation;
pub mod expert;
mod literals;
pub mod redact;
pub mod rule;
pub mod scanner;
pub mod validate;

pub use classify::{Classification, Level, classify};
pub use expert::{Config, ExpertError, expert};
pub use redact::{
    JsonFinding, KeyError, RedactedText, RedactedValue, Redaction, RedactionKey, RedactionMode,
    SpanMapping, UnredactError, unredact, unredact_json,
};
pub use rule::{Category, Rule, RuleError, RuleErrors};
pub use scanner::{Finding, Scanner};
pub use validate::Validator;
