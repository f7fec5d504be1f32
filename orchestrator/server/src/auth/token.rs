//! The token format, its hashing and its check (pure apart from the random
//! source passed in).
//!
//! A token reads `synod_<id>_<secret>`: `id` is 16 lowercase hex characters
//! (public: it names the token in listings and audit entries), `secret` is
//! 32 random bytes in unpadded base64url. Only the SHA-256 of the secret is
//! stored; a presented token is looked up by id and its secret's hash
//! compared in constant time.

use base64::Engine as _;
use ring::digest;
use ring::rand::SecureRandom;

/// What every token starts with (so secret scanners can find leaked ones).
pub const TOKEN_PREFIX: &str = "synod_";
/// Length of a token id, in hex characters.
const ID_HEX_LEN: usize = 16;
/// Random bytes in a token's secret.
const SECRET_BYTES: usize = 32;

/// A freshly generated token: show [`NewToken::text`] once, store
/// [`NewToken::secret_hash`].
#[derive(Clone, PartialEq, Eq)]
pub struct NewToken {
    /// The public id.
    pub token_id: String,
    /// The whole token, `synod_<id>_<secret>`.
    pub text: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

/// A presented token split into its parts (borrowed from the text).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PresentedToken<'a> {
    /// The public id.
    pub token_id: &'a str,
    /// The secret part.
    pub secret: &'a str,
}

impl std::fmt::Debug for PresentedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedToken")
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

/// Generates a token from `random`.
pub fn generate(random: &dyn SecureRandom) -> Result<NewToken, ring::error::Unspecified> {
    let mut id = [0u8; ID_HEX_LEN / 2];
    random.fill(&mut id)?;
    let mut secret = [0u8; SECRET_BYTES];
    random.fill(&mut secret)?;
    let token_id = hex(&id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    Ok(NewToken {
        text: format!("{TOKEN_PREFIX}{token_id}_{secret}"),
        secret_hash: hash_secret(&secret),
        token_id,
    })
}

/// Splits `text` into id and secret; `None` when it is not a synod token.
pub fn parse(text: &str) -> Option<PresentedToken<'_>> {
    let rest = text.trim().strip_prefix(TOKEN_PREFIX)?;
    if rest.len() <= ID_HEX_LEN + 1 || !rest.is_char_boundary(ID_HEX_LEN) {
        return None;
    }
    let (token_id, secret) = rest.split_at(ID_HEX_LEN);
    let secret = secret.strip_prefix('_')?;
    let id_ok = token_id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(PresentedToken { token_id, secret })
}

/// Lowercase hex SHA-256 of a token's secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref())
}

/// True when `secret` hashes to `stored_hash`, compared in constant time
/// (no early exit on the first differing byte).
pub fn verify_secret(secret: &str, stored_hash: &str) -> bool {
    let presented = hash_secret(secret);
    let (presented, stored) = (presented.as_bytes(), stored_hash.as_bytes());
    if presented.len() != stored.len() {
        return false;
    }
    let mut difference = 0u8;
    for (a, b) in presented.iter().zip(stored) {
        difference |= a ^ b;
    }
    std::hint::black_box(difference) == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_verifies() {
        let random = ring::rand::SystemRandom::new();
        let token = generate(&random).unwrap();
        assert!(token.text.starts_with("synod_"));
        let presented = parse(&token.text).unwrap();
        assert_eq!(presented.token_id, token.token_id);
        assert!(verify_secret(presented.secret, &token.secret_hash));
        assert!(!verify_secret("other", &token.secret_hash));
        assert_eq!(token.secret_hash.len(), 64);
        let other = generate(&random).unwrap();
        assert_ne!(token.text, other.text);
        // Debug output never shows the secret.
        assert!(!format!("{token:?}").contains(presented.secret));
        assert!(!format!("{presented:?}").contains(presented.secret));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for text in [
            "",
            "synod_",
            "Bearer synod_0123456789abcdef_x",
            "synod_0123456789ABCDEF_secret",
            "synod_0123456789abcdef",
            "synod_0123456789abcdef_",
            "synod_0123456789abcdefXsecret",
            "synod_0123456789abcdef_sec ret",
            "synod_0123456789abcdé_secret",
        ] {
            assert!(parse(text).is_none(), "{text:?}");
        }
        let ok = parse("synod_0123456789abcdef_s-e_c").unwrap();
        assert_eq!((ok.token_id, ok.secret), ("0123456789abcdef", "s-e_c"));
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!verify_secret("abc", "short"));
    }
}
