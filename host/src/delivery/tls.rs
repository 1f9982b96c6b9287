//! TLS for deliveries: which certificate authorities a receiver's
//! certificate may chain to, what a failed handshake is called in an
//! attempt's log, and the client certificates webhooks present (mutual
//! TLS).
//!
//! Receivers are checked against the operating system's trust store
//! (loaded by reqwest's rustls backend) plus the PEM bundle of
//! `extra_ca_file`, for receivers behind a private CA.

use std::error::Error as StdError;
use std::path::Path;

use anyhow::{Context as _, bail};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CertificateError, Error as TlsError};
use serde::Serialize;

/// The certificates of `extra_ca_file`, added to the system's trust store.
/// A file that is missing, unreadable or holds no certificate stops
/// start-up, naming the setting.
pub fn extra_roots(file: Option<&Path>) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let Some(file) = file else {
        return Ok(Vec::new());
    };
    let setting = "extra_ca_file (INBOX_EXTRA_CA_FILE)";
    let pem =
        std::fs::read(file).with_context(|| format!("{setting}: reading {}", file.display()))?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{setting}: {} is not a PEM bundle", file.display()))?
        .len();
    if count == 0 {
        bail!(
            "{setting}: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            file.display()
        );
    }
    reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{setting}: reading the certificates of {}", file.display()))
}

/// What went wrong in a TLS handshake, in words for the attempt's log, if
/// `error` was a TLS failure: unknown issuer, expired certificate, name
/// mismatch or another handshake failure. Never carries a secret or the
/// URL.
pub fn failure(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(tls) = as_tls(error) {
            return Some(describe(tls));
        }
        if let Some(alert) = alert_after_handshake(error) {
            return Some(alert);
        }
        cause = error.source();
    }
    None
}

/// An alert the receiver sent after the handshake seemed done: with TLS
/// 1.3 a server that wants a client certificate and got none says so only
/// then, and rustls reports it on the first read as an I/O error carrying
/// its text, not its type.
fn alert_after_handshake(error: &(dyn StdError + 'static)) -> Option<String> {
    let io = error.downcast_ref::<std::io::Error>()?;
    let text = io.get_ref()?.to_string();
    let alert = text.strip_prefix("received fatal alert: ")?;
    Some(format!(
        "handshake failure: the receiver refused the handshake ({alert})"
    ))
}

/// The rustls error `error` is, or wraps in I/O errors (reqwest's
/// connector wraps tokio-rustls's), whose `source` skips the error they
/// wrap, so each is opened with `get_ref`.
fn as_tls<'e>(error: &'e (dyn StdError + 'static)) -> Option<&'e TlsError> {
    let mut error = error;
    loop {
        if let Some(tls) = error.downcast_ref::<TlsError>() {
            return Some(tls);
        }
        let inner: &(dyn StdError + 'static) = error.downcast_ref::<std::io::Error>()?.get_ref()?;
        error = inner;
    }
}

fn describe(error: &TlsError) -> String {
    match error {
        TlsError::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => "unknown issuer: the receiver's certificate does not chain to a trusted certificate authority".to_owned(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "expired: the receiver's certificate has expired".to_owned()
            }
            CertificateError::NotValidForName
            | CertificateError::NotValidForNameContext { .. } => {
                "name mismatch: the receiver's certificate is not valid for the URL's host"
                    .to_owned()
            }
            other => format!("invalid certificate: {other:?}"),
        },
        TlsError::AlertReceived(alert) => {
            format!("handshake failure: the receiver refused the handshake ({alert:?})")
        }
        other => format!("handshake failure: {other}"),
    }
}

/// What the API shows of a webhook's client certificate (never its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSummary {
    /// The certificate's subject, e.g. `CN=inbox-webhooks,O=Acme`.
    pub subject: String,
    /// When it expires, RFC 3339.
    pub not_after: String,
}

/// Why a client certificate and key were refused, with the body key that
/// holds the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidIdentity {
    /// A stable code, e.g. `invalid_client_key`.
    pub code: &'static str,
    /// A sentence for the admin.
    pub message: String,
    /// Where in the body: `tls.clientCertificate` or `tls.clientKey`.
    pub path: &'static str,
}

const CERTIFICATE: &str = "tls.clientCertificate";
const KEY: &str = "tls.clientKey";

fn invalid(code: &'static str, path: &'static str, message: impl Into<String>) -> InvalidIdentity {
    InvalidIdentity {
        code,
        message: message.into(),
        path,
    }
}

/// Checks a client certificate (PEM, the leaf first, then any
/// intermediates) and its private key (PEM: PKCS#8, PKCS#1 or SEC1): both
/// parse, the key is the certificate's, and the certificate is valid now.
/// What the API shows of it.
pub fn check_client(certificate: &str, key: &str) -> Result<CertificateSummary, InvalidIdentity> {
    let chain = chain(certificate)?;
    let summary = summarize(&chain[0], Some(now_seconds()))?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| {
        invalid(
            "invalid_client_key",
            KEY,
            "the client key is not a PEM private key (PKCS#8, PKCS#1 or SEC1)",
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|error| match error {
        TlsError::InconsistentKeys(_) => invalid(
            "client_key_mismatch",
            KEY,
            "the client key does not belong to the client certificate",
        ),
        _ => invalid(
            "invalid_client_key",
            KEY,
            "the client key cannot be used to sign (unsupported key type)",
        ),
    })?;
    Ok(summary)
}

/// What the API shows of a stored client certificate.
pub fn summary(certificate: &str) -> Option<CertificateSummary> {
    let chain = chain(certificate).ok()?;
    // Shown as stored, expired or not: an admin needs to see that it
    // expired, not lose sight of it.
    summarize(&chain[0], None).ok()
}

fn chain(certificate: &str) -> Result<Vec<CertificateDer<'static>>, InvalidIdentity> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(certificate.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                invalid(
                    "invalid_client_certificate",
                    CERTIFICATE,
                    "the client certificate is not PEM",
                )
            })?;
    if chain.is_empty() {
        return Err(invalid(
            "invalid_client_certificate",
            CERTIFICATE,
            "the client certificate holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(chain)
}

/// The leaf's subject and expiry; with `valid_at` (Unix seconds), refused
/// unless it is valid then.
fn summarize(
    leaf: &CertificateDer<'_>,
    valid_at: Option<i64>,
) -> Result<CertificateSummary, InvalidIdentity> {
    let path = CERTIFICATE;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|_| {
        invalid(
            "invalid_client_certificate",
            path,
            "the client certificate cannot be read as X.509",
        )
    })?;
    let validity = parsed.validity();
    let now = valid_at.unwrap_or(validity.not_before.timestamp());
    if validity.not_before.timestamp() > now {
        return Err(invalid(
            "expired_client_certificate",
            path,
            "the client certificate is not valid yet",
        ));
    }
    if valid_at.is_some() && validity.not_after.timestamp() < now {
        return Err(invalid(
            "expired_client_certificate",
            path,
            "the client certificate has expired",
        ));
    }
    let not_after = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(
            u64::try_from(validity.not_after.timestamp()).unwrap_or(0),
        );
    Ok(CertificateSummary {
        subject: parsed.subject().to_string(),
        not_after: humantime::format_rfc3339_seconds(not_after).to_string(),
    })
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate valid from 2020 to the start of `until`.
    fn certified(until: i32) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("parameters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "inbox-webhooks");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        let certificate = params.self_signed(&key).expect("certificate");
        (certificate.pem(), key.serialize_pem())
    }

    #[test]
    fn a_client_certificate_with_its_key_is_summarised() {
        let (certificate, key) = certified(2100);
        let summary = check_client(&certificate, &key).expect("valid");
        assert_eq!(summary.subject, "CN=inbox-webhooks");
        assert_eq!(summary.not_after, "2100-01-01T00:00:00Z");
        assert_eq!(super::summary(&certificate), Some(summary));
        let (expired, _) = certified(2021);
        let shown = super::summary(&expired).expect("an expired one is still shown");
        assert_eq!(shown.not_after, "2021-01-01T00:00:00Z");
    }

    #[test]
    fn bad_client_certificates_and_keys_are_refused_with_their_path() {
        let (certificate, key) = certified(2100);
        let (_, other_key) = certified(2100);
        let (expired, expired_key) = certified(2021);
        let cases = [
            (
                "not pem",
                key.as_str(),
                "invalid_client_certificate",
                CERTIFICATE,
            ),
            (certificate.as_str(), "not a key", "invalid_client_key", KEY),
            (
                certificate.as_str(),
                other_key.as_str(),
                "client_key_mismatch",
                KEY,
            ),
            (
                expired.as_str(),
                expired_key.as_str(),
                "expired_client_certificate",
                CERTIFICATE,
            ),
        ];
        for (certificate, key, code, path) in cases {
            let error = check_client(certificate, key).expect_err(code);
            assert_eq!((error.code, error.path), (code, path), "{error}");
            assert!(!error.message.contains("PRIVATE KEY"), "{error}");
        }
    }

    #[test]
    fn tls_failures_are_named() {
        let unknown = TlsError::InvalidCertificate(CertificateError::UnknownIssuer);
        // As reqwest's connector hands it over: an I/O error in an I/O error.
        let wrapped = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            unknown,
        ));
        let text = failure(&wrapped).expect("a TLS failure");
        assert!(text.starts_with("unknown issuer"), "{text}");
        let expired = TlsError::InvalidCertificate(CertificateError::Expired);
        assert!(failure(&expired).expect("tls").starts_with("expired"));
        let name = TlsError::InvalidCertificate(CertificateError::NotValidForName);
        assert!(failure(&name).expect("tls").starts_with("name mismatch"));
        let refused = TlsError::AlertReceived(rustls::AlertDescription::CertificateRequired);
        assert!(
            failure(&refused)
                .expect("tls")
                .starts_with("handshake failure")
        );
        let late = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "received fatal alert: CertificateRequired",
        );
        let text = failure(&late).expect("an alert after the handshake");
        assert!(text.contains("CertificateRequired"), "{text}");
        let plain = std::io::Error::other("connection reset");
        assert_eq!(failure(&plain), None);
    }

    #[test]
    fn a_missing_or_empty_extra_ca_file_names_the_setting() {
        let missing = extra_roots(Some(Path::new("/nonexistent/ca.pem"))).expect_err("missing");
        assert!(
            format!("{missing:#}").contains("INBOX_EXTRA_CA_FILE"),
            "{missing:#}"
        );
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").expect("write");
        let error = extra_roots(Some(&empty)).expect_err("empty");
        assert!(format!("{error:#}").contains("extra_ca_file"), "{error:#}");
        let (certificate, _) = certified(2100);
        let bundle = dir.path().join("ca.pem");
        std::fs::write(&bundle, certificate).expect("write");
        assert_eq!(extra_roots(Some(&bundle)).expect("bundle").len(), 1);
        assert!(extra_roots(None).expect("none").is_empty());
    }
}
