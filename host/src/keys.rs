//! API keys and webhook secrets: how they are made, shown and stored.
//!
//! Keys carry 192 random bits from the operating system, written in base64url
//! after a prefix that says what they are (`ik_admin_…`, `ik_ingest_…`), so a
//! leaked key is recognisable in a scanner and in a support ticket. The store
//! keeps only a SHA-256 digest: with that much entropy a fast hash is as safe
//! as a slow one (nothing to brute-force), and it lets a request find its key
//! with one indexed lookup.
//!
//! Webhook secrets follow Standard Webhooks: `whsec_` and the base64 of 32
//! random bytes. Signing needs them whole, so they are stored encrypted
//! under the server's key ([`crate::vault`]), not digested.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// The admin API: webhooks, deliveries, logs.
    Admin,
    /// Only `POST /v1/events`.
    Ingest,
}

impl KeyKind {
    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Ingest => "ingest",
        }
    }

    /// The kind with this name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Admin, Self::Ingest]
            .into_iter()
            .find(|k| k.as_str() == name)
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Admin => "ik_admin_",
            Self::Ingest => "ik_ingest_",
        }
    }
}

/// A new key: the text shown once, and what is kept of it.
#[derive(Debug)]
pub struct NewKey {
    /// The whole key. Shown to the user once, then dropped.
    pub secret: String,
    /// SHA-256 of `secret`: what the store keeps and looks up.
    pub digest: Vec<u8>,
    /// The first characters, kept to tell keys apart in a list.
    pub hint: String,
}

impl NewKey {
    /// Makes a random key of `kind`.
    pub fn generate(kind: KeyKind) -> Self {
        let secret = format!(
            "{}{}",
            kind.prefix(),
            URL_SAFE_NO_PAD.encode(random::<24>())
        );
        let hint = format!("{}…", &secret[..kind.prefix().len() + 4]);
        Self {
            digest: digest(&secret),
            secret,
            hint,
        }
    }
}

/// The digest under which a presented key is looked up.
pub fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// A new webhook signing secret, `whsec_<base64 of 32 random bytes>`.
pub fn webhook_secret() -> String {
    format!("whsec_{}", STANDARD.encode(random::<32>()))
}

/// `N` bytes from the operating system's generator. Without one the server
/// cannot make keys at all, so failing here is not recoverable.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the operating system's random generator");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_prefixed_and_distinct() {
        let a = NewKey::generate(KeyKind::Admin);
        let b = NewKey::generate(KeyKind::Admin);
        assert!(a.secret.starts_with("ik_admin_"), "{}", a.secret);
        assert_eq!(
            a.secret.len(),
            "ik_admin_".len() + 32,
            "24 bytes in base64url"
        );
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.digest, digest(&a.secret));
        assert_eq!(a.digest.len(), 32);
        assert!(a.hint.starts_with("ik_admin_") && a.hint.len() < a.secret.len());
        assert!(
            NewKey::generate(KeyKind::Ingest)
                .secret
                .starts_with("ik_ingest_")
        );
    }

    #[test]
    fn secrets_follow_standard_webhooks() {
        let secret = webhook_secret();
        let raw = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("prefix"))
            .expect("base64");
        assert_eq!(raw.len(), 32);
        assert_ne!(secret, webhook_secret());
    }

    #[test]
    fn kinds_round_trip_by_name() {
        for kind in [KeyKind::Admin, KeyKind::Ingest] {
            assert_eq!(KeyKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(KeyKind::parse("root"), None);
    }
}
