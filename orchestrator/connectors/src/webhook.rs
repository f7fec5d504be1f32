//! Verification of signed webhook triggers (`POST /hooks/<name>`). Pure: the caller passes
//! the headers, the raw body, the workflow's secret and the current time.
//!
//! The sender computes
//! `hex(HMAC-SHA256(secret, timestamp + "." + body))` over the exact bytes of the
//! timestamp header and of the body, and sends:
//!
//! ```text
//! X-Synod-Timestamp: 1763900000            (Unix seconds)
//! X-Synod-Signature: sha256=5d1c…          (64 lower- or upper-case hex digits)
//! ```
//!
//! A request is accepted when both headers are present and well-formed, the timestamp is
//! within the window (default 5 minutes, either direction) of the receiver's clock, and the
//! signature matches (constant-time comparison). Rejections say which check failed and
//! never contain the secret or the expected signature; the HTTP answer is 401 for all of them.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use ring::hmac;

use crate::secrets::SecretValue;

/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-synod-signature";
/// Header carrying the Unix time (seconds) the sender signed at.
pub const TIMESTAMP_HEADER: &str = "x-synod-timestamp";
/// How far a timestamp may be from the receiver's clock by default.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);

const SIGNATURE_PREFIX: &str = "sha256=";

/// A request that passed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedWebhook {
    /// The signed timestamp (Unix seconds).
    pub timestamp: i64,
}

/// Why a webhook request was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// A required header is absent.
    #[error("missing header `{header}`; sign the request as described for synod webhooks")]
    MissingHeader {
        /// The header's name.
        header: &'static str,
    },
    /// The timestamp header is not decimal Unix seconds.
    #[error("header `{TIMESTAMP_HEADER}` must be Unix time in seconds, e.g. `1763900000`")]
    MalformedTimestamp,
    /// The signature header is not `sha256=<64 hex digits>`.
    #[error(
        "header `{SIGNATURE_HEADER}` is malformed ({reason}); expected `sha256=<64 hex digits>`"
    )]
    MalformedSignature {
        /// What is wrong.
        reason: &'static str,
    },
    /// The timestamp is outside the replay window.
    #[error("timestamp is {} by {}s, outside the {}s window; re-sign the request with the current time (check the sender's clock)", if *.ahead { "in the future" } else { "too old" }, .skew_secs, .window_secs)]
    Stale {
        /// Distance from the receiver's clock, in seconds.
        skew_secs: u64,
        /// The window, in seconds.
        window_secs: u64,
        /// True when the timestamp is ahead of the receiver's clock.
        ahead: bool,
    },
    /// The signature does not match the body, timestamp and secret.
    #[error("signature does not match; sign `timestamp + \".\" + body` with the webhook's secret")]
    Mismatch,
}

impl WebhookRejection {
    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        401
    }
}

/// The `X-Synod-Signature` value for `timestamp` and `body`, for senders and tests.
pub fn sign(secret: &SecretValue, timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let tag = hmac::sign(&key, &signed_message(timestamp, body));
    let mut out = String::from(SIGNATURE_PREFIX);
    for byte in tag.as_ref() {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The two headers a sender adds for `body` signed at `timestamp` (Unix seconds).
pub fn signed_headers(secret: &SecretValue, timestamp: u64, body: &[u8]) -> HeaderMap {
    let timestamp = timestamp.to_string();
    let signature = sign(secret, &timestamp, body);
    let mut headers = HeaderMap::new();
    // Both values are ASCII digits / `sha256=` + hex, always valid header values.
    if let (Ok(timestamp_value), Ok(signature_value)) = (
        HeaderValue::from_str(&timestamp),
        HeaderValue::from_str(&signature),
    ) {
        headers.insert(TIMESTAMP_HEADER, timestamp_value);
        headers.insert(SIGNATURE_HEADER, signature_value);
    }
    headers
}

/// Verifies a webhook request. `window` bounds the timestamp's distance from `now`.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &SecretValue,
    now: SystemTime,
    window: Duration,
) -> Result<VerifiedWebhook, WebhookRejection> {
    verify_any(headers, body, std::slice::from_ref(secret), now, window)
}

/// Like [`verify`], accepting a signature made with any of `secrets` (for rotating a
/// webhook's secret without downtime: configure the new and the old one).
pub fn verify_any(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretValue],
    now: SystemTime,
    window: Duration,
) -> Result<VerifiedWebhook, WebhookRejection> {
    let timestamp_text = header_text(headers, TIMESTAMP_HEADER)?;
    let signature_text = header_text(headers, SIGNATURE_HEADER)?;

    let timestamp = parse_timestamp(timestamp_text)?;
    let signature = parse_signature(signature_text)?;

    let now_secs = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => i128::from(since.as_secs()),
        Err(before) => -i128::from(before.duration().as_secs()),
    };
    let skew = i128::from(timestamp) - now_secs;
    let skew_secs = u64::try_from(skew.unsigned_abs()).unwrap_or(u64::MAX);
    if skew_secs > window.as_secs() {
        return Err(WebhookRejection::Stale {
            skew_secs,
            window_secs: window.as_secs(),
            ahead: skew > 0,
        });
    }

    let message = signed_message(timestamp_text, body);
    let mut matched = false;
    for secret in secrets {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
        // every secret is checked, so timing does not reveal which one matched
        matched |= hmac::verify(&key, &message, &signature).is_ok();
    }
    if matched {
        Ok(VerifiedWebhook { timestamp })
    } else {
        Err(WebhookRejection::Mismatch)
    }
}

fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    message
}

fn header_text<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<&'a str, WebhookRejection> {
    let value = headers
        .get(name)
        .ok_or(WebhookRejection::MissingHeader { header: name })?;
    match value.to_str() {
        Ok(text) => Ok(text),
        Err(_) if name == TIMESTAMP_HEADER => Err(WebhookRejection::MalformedTimestamp),
        Err(_) => Err(WebhookRejection::MalformedSignature {
            reason: "not ASCII",
        }),
    }
}

fn parse_timestamp(text: &str) -> Result<i64, WebhookRejection> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WebhookRejection::MalformedTimestamp);
    }
    text.parse()
        .map_err(|_| WebhookRejection::MalformedTimestamp)
}

fn parse_signature(text: &str) -> Result<[u8; 32], WebhookRejection> {
    let malformed = |reason| WebhookRejection::MalformedSignature { reason };
    let hex = text
        .trim()
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(malformed("it does not start with `sha256=`"))?;
    if hex.len() != 64 {
        return Err(malformed("the digest is not 64 hex digits"));
    }
    let mut out = [0u8; 32];
    for (index, pair) in hex.as_bytes().chunks(2).enumerate() {
        let high = hex_value(pair[0]).ok_or(malformed("the digest has a non-hex character"))?;
        let low = hex_value(pair[1]).ok_or(malformed("the digest has a non-hex character"))?;
        out[index] = high << 4 | low;
    }
    Ok(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"alert":"mimikatz on host-7"}"#;
    const NOW: u64 = 1_763_900_000;

    fn secret() -> SecretValue {
        SecretValue::new("whsec-0123456789")
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn signed(timestamp: u64, body: &[u8]) -> HeaderMap {
        signed_headers(&secret(), timestamp, body)
    }

    fn check(headers: &HeaderMap, body: &[u8]) -> Result<VerifiedWebhook, WebhookRejection> {
        verify(headers, body, &secret(), now(), DEFAULT_WINDOW)
    }

    #[test]
    fn known_vector() {
        // the widely published HMAC-SHA256 example (key "key", the quick brown fox)
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"key");
        let tag = hmac::sign(&key, b"The quick brown fox jumps over the lazy dog");
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        // and the framing: sign() covers exactly `timestamp.body`
        let framed = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, b"whsec-0123456789"),
            b"1.x",
        );
        let framed_hex: String = framed.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sign(&secret(), "1", b"x"), format!("sha256={framed_hex}"));
    }

    #[test]
    fn valid_signature_is_accepted_within_window() {
        assert_eq!(
            check(&signed(NOW, BODY), BODY),
            Ok(VerifiedWebhook {
                timestamp: NOW as i64
            })
        );
        assert!(check(&signed(NOW - 299, BODY), BODY).is_ok());
        assert!(check(&signed(NOW + 299, BODY), BODY).is_ok());
        let mut upper = signed(NOW, BODY);
        let sig = upper[SIGNATURE_HEADER].to_str().unwrap().to_owned();
        let upper_sig = format!("sha256={}", sig["sha256=".len()..].to_ascii_uppercase());
        upper.insert(SIGNATURE_HEADER, HeaderValue::from_str(&upper_sig).unwrap());
        assert!(check(&upper, BODY).is_ok());
    }

    #[test]
    fn wrong_signature_tampered_body_or_secret_is_mismatch() {
        assert_eq!(
            check(&signed(NOW, BODY), b"{}"),
            Err(WebhookRejection::Mismatch)
        );
        let other = verify(
            &signed(NOW, BODY),
            BODY,
            &SecretValue::new("other"),
            now(),
            DEFAULT_WINDOW,
        );
        assert_eq!(other, Err(WebhookRejection::Mismatch));
        // the timestamp is covered by the signature
        let mut moved = signed(NOW, BODY);
        moved.insert(TIMESTAMP_HEADER, HeaderValue::from_static("1763900001"));
        assert_eq!(check(&moved, BODY), Err(WebhookRejection::Mismatch));
    }

    #[test]
    fn rotation_accepts_old_and_new_secret() {
        let rotated = [SecretValue::new("new-secret"), secret()];
        let headers = signed(NOW, BODY);
        assert!(verify_any(&headers, BODY, &rotated, now(), DEFAULT_WINDOW).is_ok());
        let others = [SecretValue::new("a"), SecretValue::new("b")];
        assert_eq!(
            verify_any(&headers, BODY, &others, now(), DEFAULT_WINDOW),
            Err(WebhookRejection::Mismatch)
        );
        assert_eq!(
            verify_any(&headers, BODY, &[], now(), DEFAULT_WINDOW),
            Err(WebhookRejection::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_rejected() {
        let stale = check(&signed(NOW - 301, BODY), BODY).unwrap_err();
        assert_eq!(
            stale,
            WebhookRejection::Stale {
                skew_secs: 301,
                window_secs: 300,
                ahead: false
            }
        );
        assert!(stale.to_string().contains("too old by 301s"), "{stale}");
        let future = check(&signed(NOW + 3600, BODY), BODY).unwrap_err();
        assert!(matches!(
            future,
            WebhookRejection::Stale { ahead: true, .. }
        ));
    }

    #[test]
    fn missing_and_malformed_headers() {
        let mut headers = signed(NOW, BODY);
        headers.remove(SIGNATURE_HEADER);
        assert_eq!(
            check(&headers, BODY),
            Err(WebhookRejection::MissingHeader {
                header: SIGNATURE_HEADER
            })
        );
        let mut headers = signed(NOW, BODY);
        headers.remove(TIMESTAMP_HEADER);
        assert_eq!(
            check(&headers, BODY),
            Err(WebhookRejection::MissingHeader {
                header: TIMESTAMP_HEADER
            })
        );
        for bad_ts in ["", "-5", "12.5", "soon", "99999999999999"] {
            let mut headers = signed(NOW, BODY);
            headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(bad_ts).unwrap());
            assert_eq!(
                check(&headers, BODY),
                Err(WebhookRejection::MalformedTimestamp),
                "{bad_ts}"
            );
        }
        for bad_sig in [
            "abc",
            "sha1=00",
            "sha256=zz",
            &format!("sha256={}", "g".repeat(64)),
        ] {
            let mut headers = signed(NOW, BODY);
            headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(bad_sig).unwrap());
            let rejection = check(&headers, BODY).unwrap_err();
            assert!(
                matches!(rejection, WebhookRejection::MalformedSignature { .. }),
                "{bad_sig}"
            );
        }
    }

    #[test]
    fn rejections_never_echo_the_secret_or_expected_signature() {
        let expected = sign(&secret(), &NOW.to_string(), b"{}");
        let rejections = [
            check(&signed(NOW, BODY), b"{}").unwrap_err(),
            check(&signed(NOW - 1000, BODY), BODY).unwrap_err(),
            check(&HeaderMap::new(), BODY).unwrap_err(),
        ];
        for rejection in rejections {
            let text = format!("{rejection} {rejection:?}");
            assert!(
                !text.contains("whsec-0123456789") && !text.contains(&expected[7..]),
                "{text}"
            );
            assert_eq!(rejection.http_status(), 401);
        }
    }
}
