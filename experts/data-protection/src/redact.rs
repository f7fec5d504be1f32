//! Redaction of findings in text and JSON, with an offset mapping, and the
//! reversal of token redaction.
//!
//! Modes ([`RedactionMode`]):
//! - `Mask`: each character becomes `*` (same character count).
//! - `Hash`: `[[TYPE#<16 hex>]]`, the first 8 bytes of HMAC-SHA256 keyed
//!   with the redaction key over type and value: equal values give equal
//!   hashes (joins still work), the value cannot be recovered.
//! - `Token`: `[[TOKEN:TYPE:<base64url>]]`, the value encrypted with
//!   AES-256-GCM (nonce derived from HMAC of type and value, so equal values
//!   give equal tokens; the type is authenticated). [`unredact`] with the
//!   same key restores the original text.
//!
//! Sub-keys for HMAC, nonce and AEAD are derived from the one
//! [`RedactionKey`] with HMAC-SHA256 and fixed labels.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use serde::Serialize;
use serde_json::Value;

use crate::classify::{Level, classify};
use crate::scanner::{Finding, Scanner};

/// Start of a token written by `Token` mode.
const TOKEN_OPEN: &str = "[[TOKEN:";
/// End of hash and token placeholders.
const CLOSE: &str = "]]";
/// Shortest accepted key material.
const MIN_KEY_LEN: usize = 16;

/// Secret key material for `Hash` and `Token` redaction. Its `Debug` output
/// does not show the key.
#[derive(Clone)]
pub struct RedactionKey {
    hash: hmac::Key,
    nonce: hmac::Key,
    aead: [u8; 32],
}

impl fmt::Debug for RedactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedactionKey(..)")
    }
}

/// Why key material was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Fewer than 16 bytes.
    #[error("redaction key has {0} bytes; use at least 16 random bytes (32 recommended)")]
    TooShort(usize),
    /// Not base64.
    #[error("redaction key is not valid base64 ({0}); generate one with `openssl rand -base64 32`")]
    NotBase64(String),
}

impl RedactionKey {
    /// A key from raw bytes (at least 16, 32 random bytes recommended).
    ///
    /// # Errors
    ///
    /// [`KeyError::TooShort`] for fewer than 16 bytes.
    pub fn new(material: &[u8]) -> Result<RedactionKey, KeyError> {
        if material.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort(material.len()));
        }
        let master = hmac::Key::new(hmac::HMAC_SHA256, material);
        let derive = |label: &[u8]| hmac::sign(&master, label);
        let mut aead = [0u8; 32];
        aead.copy_from_slice(derive(b"synod-data-protection/aead/v1").as_ref());
        Ok(RedactionKey {
            hash: hmac::Key::new(
                hmac::HMAC_SHA256,
                derive(b"synod-data-protection/hash/v1").as_ref(),
            ),
            nonce: hmac::Key::new(
                hmac::HMAC_SHA256,
                derive(b"synod-data-protection/nonce/v1").as_ref(),
            ),
            aead,
        })
    }

    /// A key from standard base64 (e.g. `openssl rand -base64 32`).
    ///
    /// # Errors
    ///
    /// When the text is not base64 or decodes to fewer than 16 bytes.
    pub fn from_base64(text: &str) -> Result<RedactionKey, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| KeyError::NotBase64(e.to_string()))?;
        RedactionKey::new(&bytes)
    }

    fn aead_key(&self) -> LessSafeKey {
        // AES-256 takes exactly 32 bytes: constructing cannot fail.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.aead).expect("32-byte AES-256 key"))
    }
}

/// How findings are replaced.
#[derive(Debug, Clone)]
pub enum RedactionMode {
    /// `*` per character.
    Mask,
    /// `[[TYPE#hex]]`, keyed HMAC-SHA256 prefix (irreversible).
    Hash(RedactionKey),
    /// `[[TOKEN:TYPE:..]]`, AES-256-GCM (reversible with [`unredact`]).
    Token(RedactionKey),
}

/// What to redact and how.
#[derive(Debug, Clone)]
pub struct Redaction {
    /// Replacement mode.
    pub mode: RedactionMode,
    /// Findings below this confidence are left in place (0 = redact all).
    pub min_confidence: f64,
}

impl Redaction {
    /// Masks every finding.
    pub fn mask() -> Redaction {
        Redaction {
            mode: RedactionMode::Mask,
            min_confidence: 0.0,
        }
    }

    /// Replaces every finding with a keyed hash.
    pub fn hash(key: RedactionKey) -> Redaction {
        Redaction {
            mode: RedactionMode::Hash(key),
            min_confidence: 0.0,
        }
    }

    /// Replaces every finding with a reversible encrypted token.
    pub fn token(key: RedactionKey) -> Redaction {
        Redaction {
            mode: RedactionMode::Token(key),
            min_confidence: 0.0,
        }
    }

    /// Leaves findings below `confidence` in place.
    pub fn with_min_confidence(mut self, confidence: f64) -> Redaction {
        self.min_confidence = confidence;
        self
    }

    /// The mode's name (`mask`, `hash`, `token`).
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            RedactionMode::Mask => "mask",
            RedactionMode::Hash(_) => "hash",
            RedactionMode::Token(_) => "token",
        }
    }

    /// The replacement text for `value` of `entity_type`.
    fn replacement(&self, entity_type: &str, value: &str) -> String {
        match &self.mode {
            RedactionMode::Mask => "*".repeat(value.chars().count()),
            RedactionMode::Hash(key) => {
                let tag = hmac::sign(&key.hash, &labelled(entity_type, value));
                format!("[[{entity_type}#{}{CLOSE}", hex(&tag.as_ref()[..8]))
            }
            RedactionMode::Token(key) => {
                let digest = hmac::sign(&key.nonce, &labelled(entity_type, value));
                let mut nonce = [0u8; NONCE_LEN];
                nonce.copy_from_slice(&digest.as_ref()[..NONCE_LEN]);
                let mut sealed = value.as_bytes().to_vec();
                key.aead_key()
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(entity_type.as_bytes()),
                        &mut sealed,
                    )
                    .expect("AES-GCM sealing of a short value cannot fail");
                let mut payload = nonce.to_vec();
                payload.extend(sealed);
                format!(
                    "{TOKEN_OPEN}{entity_type}:{}{CLOSE}",
                    URL_SAFE_NO_PAD.encode(payload)
                )
            }
        }
    }
}

fn labelled(entity_type: &str, value: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(entity_type.len() + 1 + value.len());
    data.extend_from_slice(entity_type.as_bytes());
    data.push(0);
    data.extend_from_slice(value.as_bytes());
    data
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where one finding went: its byte span before and after redaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpanMapping {
    /// Entity type of the finding.
    pub entity_type: String,
    /// Byte span in the original text.
    pub original: Range<usize>,
    /// Byte span of the replacement in the redacted text.
    pub redacted: Range<usize>,
}

/// A redacted text.
#[derive(Debug, Clone)]
pub struct RedactedText {
    /// The text with findings replaced.
    pub text: String,
    /// Every finding (redacted or below the confidence threshold).
    pub findings: Vec<Finding>,
    /// One mapping per redacted finding, in text order.
    pub mappings: Vec<SpanMapping>,
}

impl RedactedText {
    /// The offset in the original text of `redacted_offset`: offsets inside
    /// a replacement map to the start of the original value.
    pub fn original_offset(&self, redacted_offset: usize) -> usize {
        let mut shift: isize = 0;
        for mapping in &self.mappings {
            if redacted_offset < mapping.redacted.start {
                break;
            }
            if redacted_offset < mapping.redacted.end {
                return mapping.original.start;
            }
            shift = mapping.original.end as isize - mapping.redacted.end as isize;
        }
        (redacted_offset as isize + shift) as usize
    }
}

/// Replaces `findings` (non-overlapping, sorted, from scanning `text`).
pub fn redact_findings(text: &str, findings: Vec<Finding>, redaction: &Redaction) -> RedactedText {
    let mut out = String::with_capacity(text.len());
    let mut mappings = Vec::new();
    let mut copied = 0usize;
    for finding in findings
        .iter()
        .filter(|f| f.confidence >= redaction.min_confidence)
    {
        if finding.span.start < copied {
            continue; // overlapping input: the earlier finding covers it
        }
        out.push_str(&text[copied..finding.span.start]);
        let start = out.len();
        out.push_str(&redaction.replacement(&finding.entity_type, finding.value(text)));
        mappings.push(SpanMapping {
            entity_type: finding.entity_type.clone(),
            original: finding.span.clone(),
            redacted: start..out.len(),
        });
        copied = finding.span.end;
    }
    out.push_str(&text[copied..]);
    RedactedText {
        text: out,
        findings,
        mappings,
    }
}

/// Why [`unredact`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnredactError {
    /// A `[[TOKEN:` without `]]`, a bad type or bad base64.
    #[error("malformed token at byte {offset}: {reason}")]
    Malformed {
        /// Byte offset of the token in the redacted text.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The token does not decrypt: another key, or the token was altered.
    #[error("token at byte {offset} does not decrypt with this key (wrong key or altered token)")]
    WrongKey {
        /// Byte offset of the token in the redacted text.
        offset: usize,
    },
}

/// Restores every `[[TOKEN:..]]` in `text` with `key`.
///
/// # Errors
///
/// A malformed token or one that does not decrypt with `key` (the first
/// such token is reported).
pub fn unredact(text: &str, key: &RedactionKey) -> Result<String, UnredactError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut consumed = 0usize;
    let aead = key.aead_key();
    while let Some(at) = rest.find(TOKEN_OPEN) {
        let offset = consumed + at;
        out.push_str(&rest[..at]);
        let body_start = at + TOKEN_OPEN.len();
        let malformed = |reason: &str| UnredactError::Malformed {
            offset,
            reason: reason.to_owned(),
        };
        let body_len = rest[body_start..]
            .find(CLOSE)
            .ok_or_else(|| malformed("no closing `]]`"))?;
        let body = &rest[body_start..body_start + body_len];
        let (entity_type, payload) = body
            .split_once(':')
            .ok_or_else(|| malformed("expected `TYPE:payload`"))?;
        let mut payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|e| malformed(&format!("payload is not base64url ({e})")))?;
        if payload.len() < NONCE_LEN {
            return Err(malformed("payload shorter than a nonce"));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&payload[..NONCE_LEN]);
        let plain = aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(entity_type.as_bytes()),
                &mut payload[NONCE_LEN..],
            )
            .map_err(|_| UnredactError::WrongKey { offset })?;
        let plain = std::str::from_utf8(plain).map_err(|_| malformed("value is not UTF-8"))?;
        out.push_str(plain);
        let end = body_start + body_len + CLOSE.len();
        consumed += end;
        rest = &rest[end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One finding inside a JSON value (no raw value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonFinding {
    /// JSON Pointer (RFC 6901) of the string holding it.
    pub pointer: String,
    /// The finding, offsets relative to that string.
    #[serde(flatten)]
    pub finding: Finding,
}

/// A JSON value with every string redacted.
#[derive(Debug, Clone)]
pub struct RedactedValue {
    /// The value with findings replaced; object keys are untouched.
    pub value: Value,
    /// Redacted findings per entity type.
    pub findings_count_by_type: BTreeMap<String, usize>,
    /// Every finding, with the pointer of its string.
    pub findings: Vec<JsonFinding>,
    /// Classification of the whole value.
    pub level: Level,
}

impl RedactedValue {
    /// Number of redacted findings.
    pub fn redacted_count(&self) -> usize {
        self.findings_count_by_type.values().sum()
    }
}

// === impl Scanner (redaction) ===

impl Scanner {
    /// Scans `text` and replaces the findings (see the module docs for the
    /// modes). The result maps each original span to its replacement.
    pub fn redact(&self, text: &str, redaction: &Redaction) -> RedactedText {
        redact_findings(text, self.scan(text), redaction)
    }

    /// Scans and redacts every string in `value` (object keys are left
    /// untouched), for use as a guard before data leaves for an external
    /// expert. Counts, pointers and the overall level come with it.
    pub fn redact_json(&self, value: &Value, redaction: &Redaction) -> RedactedValue {
        redact_json(self, value, redaction)
    }
}

fn redact_json(scanner: &Scanner, value: &Value, redaction: &Redaction) -> RedactedValue {
    let mut all = Vec::new();
    let mut counts = BTreeMap::new();
    let mut pointer = String::new();
    let value = walk(
        scanner,
        value,
        redaction,
        &mut pointer,
        &mut all,
        &mut counts,
    );
    let plain: Vec<Finding> = all.iter().map(|f| f.finding.clone()).collect();
    RedactedValue {
        value,
        findings_count_by_type: counts,
        findings: all,
        level: classify(&plain).level,
    }
}

fn walk(
    scanner: &Scanner,
    value: &Value,
    redaction: &Redaction,
    pointer: &mut String,
    all: &mut Vec<JsonFinding>,
    counts: &mut BTreeMap<String, usize>,
) -> Value {
    match value {
        Value::String(text) => {
            let redacted = redact_findings(text, scanner.scan(text), redaction);
            for mapping in &redacted.mappings {
                *counts.entry(mapping.entity_type.clone()).or_default() += 1;
            }
            for finding in redacted.findings {
                all.push(JsonFinding {
                    pointer: pointer.clone(),
                    finding,
                });
            }
            Value::String(redacted.text)
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&index.to_string());
                out.push(walk(scanner, item, redaction, pointer, all, counts));
                pointer.truncate(len);
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (key, item) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                out.insert(
                    key.clone(),
                    walk(scanner, item, redaction, pointer, all, counts),
                );
                pointer.truncate(len);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Restores every token in every string of `value` (see [`unredact`]).
///
/// # Errors
///
/// The first token that is malformed or does not decrypt.
pub fn unredact_json(value: &Value, key: &RedactionKey) -> Result<Value, UnredactError> {
    Ok(match value {
        Value::String(text) => Value::String(unredact(text, key)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| unredact_json(v, key))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                out.insert(k.clone(), unredact_json(v, key)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key() -> RedactionKey {
        RedactionKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    const TEXT: &str =
        "mail jane@example.org or call +1-984-182-0190; café key AKIADEADBEEFDEADBEEF.";

    #[test]
    fn mask_keeps_lengths_and_mappings_point_at_replacements() {
        let scanner = Scanner::builtin();
        let out = scanner.redact(TEXT, &Redaction::mask());
        assert_eq!(out.text.len(), TEXT.len());
        assert_eq!(out.mappings.len(), 3, "{:?}", out.mappings);
        for m in &out.mappings {
            assert_eq!(m.original, m.redacted);
            assert!(out.text[m.redacted.clone()].bytes().all(|b| b == b'*'));
        }
        assert!(out.text.starts_with("mail **************** or call"));
    }

    #[test]
    fn token_round_trip_and_offsets() {
        let scanner = Scanner::builtin();
        let out = scanner.redact(TEXT, &Redaction::token(key()));
        assert!(!out.text.contains("jane@example.org"));
        assert!(!out.text.contains("AKIADEADBEEFDEADBEEF"));
        for m in &out.mappings {
            let token = &out.text[m.redacted.clone()];
            assert!(
                token.starts_with("[[TOKEN:") && token.ends_with("]]"),
                "{token}"
            );
            assert_eq!(unredact(token, &key()).unwrap(), &TEXT[m.original.clone()]);
            assert_eq!(out.original_offset(m.redacted.start), m.original.start);
            // the byte after a replacement maps to the byte after the original
            assert_eq!(out.original_offset(m.redacted.end), m.original.end);
        }
        assert_eq!(unredact(&out.text, &key()).unwrap(), TEXT);
        let other = RedactionKey::new(b"another key of 32 bytes.........").unwrap();
        assert!(matches!(
            unredact(&out.text, &other),
            Err(UnredactError::WrongKey { offset: 5 })
        ));
        // deterministic: the same value gives the same token
        assert_eq!(
            out.text,
            scanner.redact(TEXT, &Redaction::token(key())).text
        );
    }

    #[test]
    fn hash_is_keyed_and_stable() {
        let scanner = Scanner::builtin();
        let a = scanner
            .redact("x jane@example.org", &Redaction::hash(key()))
            .text;
        let b = scanner
            .redact("y jane@example.org", &Redaction::hash(key()))
            .text;
        assert_eq!(a[2..], b[2..]);
        assert!(
            a[2..].starts_with("[[EMAIL_ADDRESS#") && a.len() == 2 + 16 + 18,
            "{a}"
        );
        let other = RedactionKey::new(&[7u8; 32]).unwrap();
        assert_ne!(
            a,
            scanner
                .redact("x jane@example.org", &Redaction::hash(other))
                .text
        );
    }

    #[test]
    fn json_strings_are_redacted_keys_are_not() {
        let scanner = Scanner::builtin();
        let input = json!({
            "jane@example.org": ["ok", {"ssn": "SSN 460-89-9847", "n": 5}],
            "a/b": "card 4111 1111 1111 1111"
        });
        let out = scanner.redact_json(&input, &Redaction::token(key()));
        assert!(out.value.get("jane@example.org").is_some());
        assert_eq!(out.findings_count_by_type["US_SSN"], 1);
        assert_eq!(out.findings_count_by_type["CREDIT_CARD"], 1);
        assert_eq!(out.level, Level::Restricted);
        // Object key order depends on serde_json's `preserve_order`, which
        // another crate of the workspace may enable.
        let mut pointers: Vec<&str> = out.findings.iter().map(|f| f.pointer.as_str()).collect();
        pointers.sort_unstable();
        assert_eq!(pointers, ["/a~1b", "/jane@example.org/1/ssn"]);
        assert_eq!(out.value["jane@example.org"][1]["n"], 5);
        assert_eq!(unredact_json(&out.value, &key()).unwrap(), input);
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(
            RedactionKey::new(b"short").unwrap_err(),
            KeyError::TooShort(5)
        );
        assert!(RedactionKey::from_base64("not base64!").is_err());
        assert!(RedactionKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").is_ok());
        assert_eq!(format!("{:?}", key()), "RedactionKey(..)");
    }
}
