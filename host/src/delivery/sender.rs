//! One attempt: POST the payload, signed, to the webhook's URL, and say
//! what happened. Never follows redirects; reads at most 1 KiB of the
//! answer; refuses internal targets (see [`super::guard`]); speaks HTTPS
//! with the system's and `extra_ca_file`'s certificate authorities, and
//! HTTP/2 where the receiver offers it (ALPN).
//!
//! Proxy variables of the environment (`HTTP_PROXY`, `ALL_PROXY`, …) are
//! ignored: a proxy would resolve the target itself, out of the guard's
//! sight. `delivery_proxy` names one explicitly; the guard then resolves
//! and checks the target before each request leaves.

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use sha2::{Digest as _, Sha256};

use super::guard::{Blocked, Guard};
use super::signing::signature;
use crate::store::{Attempt, now};

/// How much of an answer is kept.
pub const RESPONSE_BYTES: usize = 1024;

/// What a receiver is told about the sender.
pub const USER_AGENT: &str = concat!("inbox-webhooks/", env!("CARGO_PKG_VERSION"));

/// Clients kept for webhooks' client certificates at most; past it the
/// cache starts over (a client is a connection pool, cheap to rebuild).
const IDENTITIES: usize = 1024;

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// The record kept of it.
    pub attempt: Attempt,
    /// How long the receiver asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl AttemptResult {
    /// A 2xx answer.
    pub fn succeeded(&self) -> bool {
        self.attempt.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// `410 Gone`: the receiver wants no more.
    pub fn gone(&self) -> bool {
        self.attempt.status == Some(410)
    }
}

/// How attempts reach receivers.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// How long a receiver has per attempt.
    pub timeout: Duration,
    /// Which addresses may be reached.
    pub guard: Guard,
    /// Certificate authorities trusted besides the system's.
    pub extra_roots: Vec<reqwest::Certificate>,
    /// `delivery_proxy`: every attempt goes through it.
    pub proxy: Option<reqwest::Url>,
}

/// A webhook's client certificate and key (PEM, the key opened), presented
/// to receivers that ask for one.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The certificate chain, leaf first.
    pub certificate: String,
    /// The private key.
    pub key: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

/// Sends attempts.
#[derive(Debug, Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The client of webhooks without a client certificate.
    client: reqwest::Client,
    /// A client per client certificate, by a digest of certificate and key.
    identities: Mutex<HashMap<[u8; 32], reqwest::Client>>,
    network: Network,
    guard: Arc<Guard>,
}

impl Sender {
    /// A sender over `network`.
    pub fn new(network: Network) -> reqwest::Result<Self> {
        let guard = Arc::new(network.guard.clone());
        let client = client(&network, &guard, None)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                identities: Mutex::default(),
                network,
                guard,
            }),
        })
    }

    /// The client that presents `identity`, built on first use.
    fn client_for(&self, identity: &Identity) -> reqwest::Result<reqwest::Client> {
        let digest: [u8; 32] = Sha256::new()
            .chain_update(identity.certificate.as_bytes())
            .chain_update([0])
            .chain_update(identity.key.as_bytes())
            .finalize()
            .into();
        let mut identities = self
            .inner
            .identities
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = identities.get(&digest) {
            return Ok(client.clone());
        }
        let pem = format!("{}\n{}", identity.key, identity.certificate);
        let identity = reqwest::Identity::from_pem(pem.as_bytes())?;
        let client = client(&self.inner.network, &self.inner.guard, Some(identity))?;
        if identities.len() >= IDENTITIES {
            identities.clear();
        }
        identities.insert(digest, client.clone());
        Ok(client)
    }

    /// POSTs `payload` to `url` as message `message_id`, signed with
    /// `secrets`, presenting `identity` when the webhook has one.
    pub async fn send(
        &self,
        url: &str,
        message_id: &str,
        payload: &str,
        secrets: &[String],
        identity: Option<&Identity>,
    ) -> AttemptResult {
        let started_at = now();
        let clock = Instant::now();
        let failed = |kind: &str, error: String| AttemptResult {
            attempt: Attempt {
                started_at,
                duration_ms: elapsed(clock),
                status: None,
                response: None,
                error_kind: Some(kind.to_owned()),
                error: Some(error),
            },
            retry_after: None,
        };
        let target = match reqwest::Url::parse(url) {
            Ok(target) if matches!(target.scheme(), "http" | "https") => target,
            _ => {
                return failed(
                    "invalid_url",
                    "the URL is not an absolute http(s) URL".to_owned(),
                );
            }
        };
        if let Err(refused) = self.check_target(&target).await {
            return failed("refused_target", refused.to_string());
        }
        let client = match identity {
            None => self.inner.client.clone(),
            Some(identity) => match self.client_for(identity) {
                Ok(client) => client,
                Err(_) => {
                    return failed(
                        "tls",
                        "the webhook's client certificate could not be loaded".to_owned(),
                    );
                }
            },
        };
        let signed = signature(secrets, message_id, started_at.div_euclid(1000), payload);
        let mut request = client.post(target);
        for (name, value) in headers(message_id, started_at, &signed) {
            request = request.header(name, value);
        }
        let request = request.body(payload.to_owned());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let (kind, text) = classify(&error);
                return failed(kind, text);
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        // The status decides; a body that breaks off only shortens the log.
        let mut head = Vec::new();
        while head.len() < RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        head.truncate(RESPONSE_BYTES);
        let (error_kind, error) = match (status.as_u16(), location) {
            (200..=299, _) => (None, None),
            (300..=399, location) => (
                Some("redirect"),
                Some(format!(
                    "the receiver answered {status} (to {}); redirects are not followed",
                    location.unwrap_or_else(|| "nowhere".to_owned())
                )),
            ),
            _ => (
                Some("status"),
                Some(format!("the receiver answered {status}")),
            ),
        };
        AttemptResult {
            attempt: Attempt {
                started_at,
                duration_ms: elapsed(clock),
                status: Some(status.as_u16()),
                response: Some(String::from_utf8_lossy(&head).into_owned()),
                error_kind: error_kind.map(str::to_owned),
                error,
            },
            retry_after,
        }
    }
}

impl Sender {
    /// Refuses an internal target before anything is sent: an IP literal
    /// (reqwest connects to those without resolving them), or, through a
    /// proxy, a host with any non-public address. Otherwise the guarded
    /// resolver checks each address as reqwest connects.
    async fn check_target(&self, target: &reqwest::Url) -> Result<(), Blocked> {
        let guard = &self.inner.guard;
        let port = target.port_or_known_default().unwrap_or(443);
        match target.host() {
            Some(url::Host::Ipv4(ip)) => permitted(guard, std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => permitted(guard, std::net::IpAddr::V6(ip)),
            Some(url::Host::Domain(host)) if self.inner.network.proxy.is_some() => {
                guard.check_all(host, port).await
            }
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(Blocked("the URL has no host".to_owned())),
        }
    }
}

fn permitted(guard: &Guard, ip: std::net::IpAddr) -> Result<(), Blocked> {
    match guard.permits(ip) {
        true => Ok(()),
        false => Err(Blocked::of(&ip.to_string(), &[ip])),
    }
}

/// A client over `network`, presenting `identity` if given.
fn client(
    network: &Network,
    guard: &Arc<Guard>,
    identity: Option<reqwest::Identity>,
) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(network.timeout)
        .connect_timeout(network.timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .pool_idle_timeout(Duration::from_secs(60))
        .no_proxy();
    for root in &network.extra_roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder = match &network.proxy {
        // The proxy connects to the target: the guard checks the target
        // before each request, and the resolver only finds the proxy.
        Some(proxy) => builder.proxy(reqwest::Proxy::all(proxy.clone())?),
        None => builder.dns_resolver(guard.resolver()),
    };
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    builder.build()
}

fn elapsed(clock: Instant) -> i64 {
    i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// The headers an attempt of message `message_id` that started at
/// `started_at` is sent with (Standard Webhooks): the delivery log shows
/// the same list, with the signature elided. Its timestamp is the
/// attempt's start, in seconds.
pub fn headers(
    message_id: &str,
    started_at: crate::store::Millis,
    signature: &str,
) -> [(&'static str, String); 5] {
    [
        ("content-type", "application/json".to_owned()),
        ("user-agent", USER_AGENT.to_owned()),
        ("webhook-id", message_id.to_owned()),
        ("webhook-timestamp", started_at.div_euclid(1000).to_string()),
        ("webhook-signature", signature.to_owned()),
    ]
}

/// The kind of a failed request, and its text (never with a secret: the
/// URL was given by the tenant, the error comes from the network).
fn classify(error: &reqwest::Error) -> (&'static str, String) {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Blocked>() {
            return ("refused_target", refused.to_string());
        }
        source = cause.source();
    }
    if let Some(tls) = super::tls::failure(error) {
        return ("tls", format!("TLS: {tls}"));
    }
    let (kind, mut text) = if error.is_timeout() {
        ("timeout", "the receiver did not answer in time".to_owned())
    } else if error.is_connect() {
        ("connect", "could not connect to the receiver".to_owned())
    } else if error.is_body() || error.is_decode() {
        ("response", "the answer could not be read".to_owned())
    } else {
        ("request", "the request failed".to_owned())
    };
    // The causes (I/O, DNS), not reqwest's own text, which carries the
    // URL: a URL may hold a token of the tenant's.
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    (kind, text)
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(600));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).expect("header"));
        let wait = retry_after(&headers).expect("date");
        assert!((590..=600).contains(&wait.as_secs()), "{wait:?}");
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[tokio::test]
    async fn internal_literals_and_bad_urls_are_refused_before_connecting() {
        let sender = Sender::new(Network {
            timeout: Duration::from_secs(1),
            ..Network::default()
        })
        .expect("sender");
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/",
            "http://169.254.169.254/latest",
        ] {
            let outcome = sender.send(url, "msg_1", "{}", &[], None).await;
            assert_eq!(
                outcome.attempt.error_kind.as_deref(),
                Some("refused_target"),
                "{url}"
            );
            assert!(!outcome.succeeded());
        }
        let outcome = sender
            .send("http://localhost:9/x", "msg_1", "{}", &[], None)
            .await;
        assert_eq!(
            outcome.attempt.error_kind.as_deref(),
            Some("refused_target")
        );
        let outcome = sender
            .send("ftp://example.com/", "msg_1", "{}", &[], None)
            .await;
        assert_eq!(outcome.attempt.error_kind.as_deref(), Some("invalid_url"));
    }
}
