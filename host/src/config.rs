//! The server's configuration: compiled-in defaults, then an optional TOML
//! file, then `INBOX_*` environment variables, then command-line flags; each
//! later source overrides the earlier ones, setting by setting.
//!
//! The setting names are stable (other tools use them): `bind` is the TOML key
//! `bind`, the variable `INBOX_BIND` and the flag `--bind`, and so on for every
//! field of [`Config`]. A value that does not parse, or parses but makes no
//! sense, stops start-up with an error that names the setting and where the
//! value came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything the server reads at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP server listens. Loopback by default: exposing the
    /// server is a decision, not an accident.
    pub bind: SocketAddr,
    /// Where the server keeps its files: the SQLite database by default.
    pub data_dir: PathBuf,
    /// The built control panel (`web/dist`, made by `npm run build` in
    /// `web/`), served at `/`. Relative to the working directory.
    pub panel_dir: PathBuf,
    /// The database. Empty means `sqlite://<data_dir>/inbox.db`, created on
    /// first start.
    pub database_url: String,
    /// How long a rotated-out webhook secret keeps signing alongside the new
    /// one, so receivers can switch without dropping a message. `24h`.
    #[serde(with = "duration")]
    pub secret_overlap: Duration,
    /// HTTP connections open at once at most; past it, new ones wait until
    /// one closes. Keep it under the process's file limit (`ulimit -n`).
    pub max_connections: u32,
    /// How long a client has to send a request's whole header; a
    /// connection that takes longer (or idles that long between requests)
    /// is closed.
    #[serde(with = "duration")]
    pub header_timeout: Duration,
    /// How long a client has to send a request's body; past it the request
    /// is answered 408.
    #[serde(with = "duration")]
    pub body_timeout: Duration,
    /// Failed authentications one client address may make per minute;
    /// past it, its requests are refused (429) until the minute ends,
    /// whatever key they carry.
    pub auth_failures_per_minute: u32,
    /// The longest one call into the rule engine may run (a batch of
    /// events, a validation); past it the call is cut off: an ingest
    /// request is then answered 503 with `Retry-After`.
    #[serde(with = "duration")]
    pub engine_deadline: Duration,
    /// The share of one core's time each tenant's validations,
    /// explanations and test deliveries may keep the rule engine busy on
    /// average (0.1 = a tenth)…
    pub tenant_engine_share: f64,
    /// …and the engine time it may spend at once, from an idle start. A
    /// tenant past it gets 429 `engine_busy` with `Retry-After`; its calls
    /// also run one at a time. Ingest is bounded by `engine_deadline` and
    /// the ingest rate limit instead.
    #[serde(with = "duration")]
    pub tenant_engine_burst: Duration,
    /// Webhooks one tenant may have; creating one more is refused (422
    /// `too_many_webhooks`).
    pub max_webhooks_per_tenant: u32,
    /// What the `matches` patterns of one tenant's webhooks may weigh
    /// together (each webhook's may weigh 200; README, "Limits"): a write
    /// that takes the tenant past it is refused (422 `too_costly`). Bounds
    /// the time matching one event takes against the tenant's rules.
    pub max_pattern_weight_per_tenant: u32,
    /// Deliveries one ingest request may create (its events times the
    /// webhooks each fires); a request over it is refused whole (422
    /// `too_many_deliveries`) and should be sent as smaller batches. At
    /// least `max_webhooks_per_tenant`, so that one event always fits.
    pub max_deliveries_per_request: u32,
    /// Requests per second one admin API key may make on average…
    pub rate_limit_per_second: u32,
    /// …and in a burst. A client past it gets 429 with `Retry-After`.
    pub rate_limit_burst: u32,
    /// Requests per second one ingest key may make on average…
    pub ingest_rate_limit_per_second: u32,
    /// …and in a burst.
    pub ingest_rate_limit_burst: u32,
    /// The waits between delivery attempts: after the first failure the
    /// first step, and so on; past the last step the delivery has failed.
    /// `5s,5m,30m,2h,5h,10h,10h` (SPEC §6); each wait gets ±`retry_jitter`.
    #[serde(with = "durations")]
    pub retry_schedule: Vec<Duration>,
    /// The share of each wait added or taken at random (0.2 = ±20 %), so
    /// that failures together do not retry together.
    pub retry_jitter: f64,
    /// How long a receiver has to answer an attempt.
    #[serde(with = "duration")]
    pub delivery_timeout: Duration,
    /// A webhook whose every attempt failed for this long is disabled.
    #[serde(with = "duration")]
    pub disable_after: Duration,
    /// Deliver to loopback, private, link-local and other internal
    /// addresses too. Off: a webhook URL must not reach inside the network.
    pub allow_private_targets: bool,
    /// Internal networks deliveries may reach anyway (CIDR, e.g.
    /// `10.1.0.0/16`), when `allow_private_targets` is off.
    #[serde(with = "networks")]
    pub allowed_targets: Vec<ipnet::IpNet>,
    /// A PEM bundle of certificate authorities trusted for HTTPS receivers
    /// besides the operating system's store, for receivers behind a
    /// private CA. Unset: the system's store only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_ca_file: Option<PathBuf>,
    /// An HTTP proxy every delivery goes through (`http://host:port`).
    /// Unset: deliveries connect directly, and proxy variables of the
    /// environment (`HTTP_PROXY`, `ALL_PROXY`, …) are ignored. Through a
    /// proxy the guard resolves each target itself first and refuses it
    /// if any of its addresses is internal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_proxy: Option<String>,
    /// The key that encrypts webhook signing secrets and client keys in
    /// the database (32 random bytes, base64). Unset:
    /// `<data_dir>/secret.key`, created on first start. Keep it out of
    /// database backups, and back it up on its own: without it the
    /// secrets cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_file: Option<PathBuf>,
    /// Attempts in flight to one webhook at most.
    pub webhook_concurrency: u32,
    /// Attempts in flight over every webhook at most.
    pub delivery_concurrency: u32,
    /// Attempts in flight over one tenant's webhooks at most, so that one
    /// tenant's slow receivers never hold every slot. Unset: a quarter of
    /// `delivery_concurrency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_concurrency: Option<u32>,
    /// How long attempts, finished deliveries and events are kept.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// The `tracing` filter for the logs, as `RUST_LOG` takes it.
    pub log: String,
    /// Log lines as JSON objects (for collectors) instead of text.
    pub log_json: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            panel_dir: PathBuf::from("web/dist"),
            database_url: String::new(),
            secret_overlap: Duration::from_secs(24 * 60 * 60),
            max_connections: 1_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            auth_failures_per_minute: 20,
            engine_deadline: Duration::from_secs(2),
            // A save or an explanation takes a few ms; a person at the
            // panel never comes near this, a script in a loop does. A
            // tenth of a core keeps another tenant's ingest p99 within
            // twice its unloaded value through one tenant's storm of
            // explanations (host/tests/storm.rs); a quarter did not.
            tenant_engine_share: 0.1,
            tenant_engine_burst: Duration::from_secs(1),
            max_webhooks_per_tenant: 1_000,
            // Five webhooks at their own limit, or a hundred with a
            // pattern like `refund`: at most about 40 ms of matching per
            // event natively with the densest patterns, a tenth with plain ones.
            max_pattern_weight_per_tenant: 1_000,
            max_deliveries_per_request: 10_000,
            // Generous for a control panel and scripts; a runaway loop
            // still cannot monopolise the store.
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            // The helpdesk's event stream, not people: far higher.
            ingest_rate_limit_per_second: 10_000,
            ingest_rate_limit_burst: 20_000,
            retry_schedule: [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
                .map(Duration::from_secs)
                .to_vec(),
            retry_jitter: 0.2,
            delivery_timeout: Duration::from_secs(15),
            disable_after: Duration::from_secs(5 * 24 * 60 * 60),
            allow_private_targets: false,
            allowed_targets: Vec::new(),
            extra_ca_file: None,
            delivery_proxy: None,
            secret_key_file: None,
            // A receiver that answers in 2 ms takes 8,000 deliveries/s at
            // 16; a dead one holds 16 of the 256 slots at most.
            webhook_concurrency: 16,
            delivery_concurrency: 256,
            tenant_concurrency: None,
            retention: Duration::from_secs(30 * 24 * 60 * 60),
            log: "info".to_owned(),
            log_json: false,
        }
    }
}

/// The settings given on the command line; each overrides every other
/// source. Flags not given are `None` and leave the setting alone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    /// `--bind`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// `--data-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--database-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    /// Reads the configuration from every source. `file` is the `--config`
    /// flag; without it, `INBOX_CONFIG` names the file, and without that
    /// there is none.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("INBOX_CONFIG").map(PathBuf::from));
        if let Some(file) = &file {
            if !file.is_file() {
                bail!("configuration file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Self = figment
            .merge(Env::prefixed("INBOX_").only(&Self::SETTINGS))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|error| anyhow::anyhow!(describe(error)))?;
        config.check()?;
        Ok(config)
    }

    /// Every setting, as a TOML key; `INBOX_` + upper case is its variable.
    pub const SETTINGS: [&'static str; 34] = [
        "bind",
        "data_dir",
        "panel_dir",
        "database_url",
        "secret_overlap",
        "max_connections",
        "header_timeout",
        "body_timeout",
        "auth_failures_per_minute",
        "engine_deadline",
        "tenant_engine_share",
        "tenant_engine_burst",
        "max_webhooks_per_tenant",
        "max_pattern_weight_per_tenant",
        "max_deliveries_per_request",
        "rate_limit_per_second",
        "rate_limit_burst",
        "ingest_rate_limit_per_second",
        "ingest_rate_limit_burst",
        "retry_schedule",
        "retry_jitter",
        "delivery_timeout",
        "disable_after",
        "allow_private_targets",
        "allowed_targets",
        "extra_ca_file",
        "delivery_proxy",
        "secret_key_file",
        "webhook_concurrency",
        "delivery_concurrency",
        "tenant_concurrency",
        "retention",
        "log",
        "log_json",
    ];

    /// The database URL, with the default filled in.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("inbox.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The file of the key that encrypts secrets at rest.
    pub fn secret_key_file(&self) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// Attempts in flight per tenant at most.
    pub fn tenant_concurrency(&self) -> u32 {
        self.tenant_concurrency
            .unwrap_or(self.delivery_concurrency / 4)
            .max(1)
    }

    /// The delivery proxy's URL, checked.
    pub fn delivery_proxy(&self) -> anyhow::Result<Option<url::Url>> {
        let Some(proxy) = self.delivery_proxy.as_deref().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        match url::Url::parse(proxy) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Ok(Some(url))
            }
            _ => bail!(
                "invalid delivery_proxy (INBOX_DELIVERY_PROXY): must be an http:// or https:// URL such as http://proxy.internal:3128"
            ),
        }
    }

    /// Checks what parsing cannot.
    fn check(&self) -> anyhow::Result<()> {
        if self.rate_limit_per_second == 0 {
            bail!(
                "invalid rate_limit_per_second (INBOX_RATE_LIMIT_PER_SECOND): must be at least 1"
            );
        }
        if self.rate_limit_burst == 0 {
            bail!("invalid rate_limit_burst (INBOX_RATE_LIMIT_BURST): must be at least 1");
        }
        if self.auth_failures_per_minute == 0 {
            bail!(
                "invalid auth_failures_per_minute (INBOX_AUTH_FAILURES_PER_MINUTE): must be at least 1"
            );
        }
        if self.max_webhooks_per_tenant == 0 {
            bail!(
                "invalid max_webhooks_per_tenant (INBOX_MAX_WEBHOOKS_PER_TENANT): must be at least 1"
            );
        }
        if self.max_pattern_weight_per_tenant < inbox_rules::MAX_PATTERN_WEIGHT {
            bail!(
                "invalid max_pattern_weight_per_tenant (INBOX_MAX_PATTERN_WEIGHT_PER_TENANT): must be at least {}, what one webhook's patterns may weigh",
                inbox_rules::MAX_PATTERN_WEIGHT
            );
        }
        if self.max_deliveries_per_request < self.max_webhooks_per_tenant {
            bail!(
                "invalid max_deliveries_per_request (INBOX_MAX_DELIVERIES_PER_REQUEST): must be at least max_webhooks_per_tenant ({}), so that one event always fits",
                self.max_webhooks_per_tenant
            );
        }
        if self.max_connections == 0 {
            bail!("invalid max_connections (INBOX_MAX_CONNECTIONS): must be at least 1");
        }
        for (setting, timeout) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("engine_deadline", self.engine_deadline),
            ("tenant_engine_burst", self.tenant_engine_burst),
        ] {
            if timeout.is_zero() {
                bail!(
                    "invalid {setting} (INBOX_{}): must be longer than 0s",
                    setting.to_uppercase()
                );
            }
        }
        if !(self.tenant_engine_share.is_finite() && self.tenant_engine_share > 0.0) {
            bail!(
                "invalid tenant_engine_share (INBOX_TENANT_ENGINE_SHARE): must be a number above 0, such as 0.1"
            );
        }
        if self.tenant_concurrency == Some(0) {
            bail!("invalid tenant_concurrency (INBOX_TENANT_CONCURRENCY): must be at least 1");
        }
        self.delivery_proxy()?;
        let url = self.database_url();
        if crate::store::Backend::of(&url).is_none() {
            bail!(
                "invalid database_url (INBOX_DATABASE_URL): it must start with sqlite: (a file) or postgres: (a server)"
            );
        }
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .with_context(|| format!("invalid log (INBOX_LOG): {:?}", self.log))?;
        Ok(())
    }
}

/// Turns figment's error into one line per problem that names the setting
/// (as its TOML key and its variable) and the source of the bad value.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|error| {
            let key = error.path.join(".");
            let from = error
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(figment::Source::File(path)) => {
                        format!(" from {} {}", m.name, path.display())
                    }
                    _ => format!(" from {}", m.name),
                })
                .unwrap_or_default();
            if key.is_empty() {
                format!("invalid configuration{from}: {}", error.kind)
            } else {
                format!(
                    "invalid {key} (INBOX_{}){from}: {}",
                    key.to_uppercase(),
                    error.kind
                )
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The items of a list setting: `"a,b"` (as an environment variable takes
/// it) or a TOML array `["a", "b"]`.
fn items<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Text(String),
        List(Vec<String>),
    }
    let items: Vec<String> = match Form::deserialize(deserializer)? {
        Form::Text(text) => text.split(',').map(|s| s.trim().to_owned()).collect(),
        Form::List(list) => list,
    };
    Ok(items.into_iter().filter(|item| !item.is_empty()).collect())
}

/// A list of durations: `"1s,2s,5s"` or `["1s", "2s", "5s"]`.
pub mod durations {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Writes the list as `"1s,2s,5s"`.
    pub fn serialize<S: Serializer>(list: &[Duration], serializer: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = list
            .iter()
            .map(|d| humantime::format_duration(*d).to_string())
            .collect();
        serializer.collect_str(&text.join(","))
    }

    /// Reads `"1s,2s"` or `["1s", "2s"]`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Duration>, D::Error> {
        super::items(deserializer)?
            .iter()
            .map(|item| {
                humantime::parse_duration(item).map_err(|e| {
                    serde::de::Error::custom(format!("{item:?} is not a duration ({e})"))
                })
            })
            .collect()
    }
}

/// A list of networks: `"10.0.0.0/8,fd00::/8"` or a TOML array.
pub mod networks {
    use ipnet::IpNet;
    use serde::{Deserializer, Serializer};

    /// Writes the list as `"10.0.0.0/8,fd00::/8"`.
    pub fn serialize<S: Serializer>(list: &[IpNet], serializer: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = list.iter().map(IpNet::to_string).collect();
        serializer.collect_str(&text.join(","))
    }

    /// Reads `"10.0.0.0/8,fd00::/8"` or `["10.0.0.0/8"]`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
        super::items(deserializer)?
            .iter()
            .map(|item| {
                item.parse().map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{item:?} is not a network such as 10.0.0.0/8"
                    ))
                })
            })
            .collect()
    }
}

/// Durations as people write them: `24h`, `90s`, `1h 30m`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    /// Writes `d` as `humantime` does.
    pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*d))
    }

    /// Reads a duration such as `24h`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration ({e})")))
    }
}

#[cfg(test)]
mod tests;
