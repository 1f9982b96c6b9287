//! Secrets at rest: webhook signing secrets and client keys are stored
//! encrypted (XChaCha20-Poly1305, a random 192-bit nonce each) under a
//! server key that lives outside the database, in `secret_key_file`.
//!
//! A stored secret reads `sealed:v1:<key id>:<base64url of nonce and
//! ciphertext>`, where the key id is the first 8 bytes of the key's
//! SHA-256 in hex: it names the key without revealing it, so that a
//! database opened with another key stops start-up with a clear message
//! instead of signing with garbage. A copy of the database alone (a backup,
//! a stolen disk image) yields no secret.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead as _, KeyInit as _};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};

use crate::store::{Store, StoredSecret};

const PREFIX: &str = "sealed:v1:";
const NONCE: usize = 24;

/// The server key, ready to seal and open secrets.
pub struct Vault {
    cipher: XChaCha20Poly1305,
    id: String,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A stored secret could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Sealed under another server key.
    #[error("the secret was encrypted under server key {found}, not this server's {ours}")]
    OtherKey {
        /// The key id the secret names.
        found: String,
        /// This server's key id.
        ours: String,
    },
    /// Not a sealed secret, or altered.
    #[error("the stored secret is damaged or not encrypted")]
    Damaged,
}

impl Vault {
    /// The key in `file`, created (32 random bytes, base64, mode 0600) when
    /// the file does not exist. An unreadable or malformed file stops
    /// start-up, naming the setting.
    pub fn open_or_create(file: &Path) -> anyhow::Result<Self> {
        let setting = "secret_key_file (INBOX_SECRET_KEY_FILE)";
        if !file.exists() {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("{setting}: {e}"))?;
            let mut created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(file)
                .with_context(|| format!("{setting}: creating {}", file.display()))?;
            writeln!(created, "{}", STANDARD.encode(key))
                .and_then(|()| created.sync_all())
                .with_context(|| format!("{setting}: writing {}", file.display()))?;
            tracing::info!(file = %file.display(), "created the key that encrypts secrets at rest; back it up apart from the database");
        }
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("{setting}: reading {}", file.display()))?;
        let key = STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|key| <[u8; 32]>::try_from(key).ok());
        match key {
            Some(key) => Ok(Self::new(&key)),
            None => bail!(
                "{setting}: {} does not hold a key (the base64 of 32 bytes)",
                file.display()
            ),
        }
    }

    /// A vault over `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
            id: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// The key's id: names it without revealing it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `clear`, encrypted under this key.
    pub fn seal(&self, clear: &str) -> String {
        let mut nonce = [0u8; NONCE];
        // The operating system's generator failing is not something a
        // server can go on from: no nonce, no secret.
        getrandom::fill(&mut nonce)
            .unwrap_or_else(|e| panic!("the system's random generator failed: {e}"));
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), clear.as_bytes())
            .unwrap_or_else(|_| unreachable!("encrypting in memory does not fail"));
        let mut bytes = Vec::with_capacity(NONCE + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.id, URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The clear text of a sealed secret.
    pub fn open(&self, sealed: &str) -> Result<String, VaultError> {
        let Some((id, data)) = sealed.strip_prefix(PREFIX).and_then(|s| s.split_once(':')) else {
            return Err(VaultError::Damaged);
        };
        if id != self.id {
            return Err(VaultError::OtherKey {
                found: id.to_owned(),
                ours: self.id.clone(),
            });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| VaultError::Damaged)?;
        if bytes.len() < NONCE {
            return Err(VaultError::Damaged);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE);
        let clear = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| VaultError::Damaged)?;
        String::from_utf8(clear).map_err(|_| VaultError::Damaged)
    }

    /// Which key sealed `text`, or `None` when it is not sealed (a secret
    /// stored in clear by an earlier version).
    pub fn sealed_by(text: &str) -> Option<&str> {
        text.strip_prefix(PREFIX)
            .and_then(|s| s.split_once(':'))
            .map(|(id, _)| id)
    }
}

/// Brings every stored secret under `vault`'s key: clear ones (from an
/// earlier version) are sealed in one transaction. A secret sealed under
/// another key stops start-up: signing with a secret that cannot be read
/// would send garbage signatures. How many were sealed.
pub async fn seal_stored(store: &dyn Store, vault: &Vault, file: &Path) -> anyhow::Result<usize> {
    let stored = store
        .stored_secrets()
        .await
        .context("reading the stored secrets")?;
    let mut sealed = Vec::new();
    for secret in stored {
        match Vault::sealed_by(&secret.text) {
            Some(id) if id == vault.id() => {}
            Some(id) => bail!(
                "the database's secrets were encrypted under server key {id}, but \
                 secret_key_file (INBOX_SECRET_KEY_FILE) {} holds key {}: start with the key \
                 file this database was written with",
                file.display(),
                vault.id()
            ),
            None => sealed.push(StoredSecret {
                text: vault.seal(&secret.text),
                place: secret.place,
            }),
        }
    }
    let count = sealed.len();
    if count > 0 {
        store
            .rewrite_secrets(sealed)
            .await
            .context("encrypting the stored secrets")?;
        tracing::info!(
            count,
            "encrypted secrets stored in clear by an earlier version"
        );
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let vault = Vault::new(&[7; 32]);
        let sealed = vault.seal("whsec_abc");
        assert!(!sealed.contains("whsec_"), "{sealed}");
        assert_ne!(sealed, vault.seal("whsec_abc"), "a fresh nonce each time");
        assert_eq!(Vault::sealed_by(&sealed), Some(vault.id()));
        assert_eq!(vault.open(&sealed).expect("open"), "whsec_abc");
        let other = Vault::new(&[8; 32]);
        assert!(matches!(
            other.open(&sealed),
            Err(VaultError::OtherKey { .. })
        ));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(vault.open(&altered), Err(VaultError::Damaged)));
        assert!(matches!(vault.open("whsec_abc"), Err(VaultError::Damaged)));
        assert_eq!(Vault::sealed_by("whsec_abc"), None);
    }

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("secret.key");
        let first = Vault::open_or_create(&file).expect("created");
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Vault::open_or_create(&file).expect("read");
        assert_eq!(first.id(), again.id());
        let sealed = first.seal("x");
        assert_eq!(again.open(&sealed).expect("open"), "x");
        std::fs::write(&file, "not a key\n").expect("write");
        let error = Vault::open_or_create(&file).expect_err("malformed");
        assert!(
            format!("{error:#}").contains("INBOX_SECRET_KEY_FILE"),
            "{error:#}"
        );
    }
}
