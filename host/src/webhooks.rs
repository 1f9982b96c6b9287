//! Webhooks as the API manages them: every write is validated by the engine
//! (in wasmtime) before it is stored, and stored in the engine's own shape.
//!
//! The host decides nothing about rules: it takes out the keys the server
//! owns (`id`, `createdAt`, …, which a client may send back as it read
//! them) and the client certificate, hands the rest to the engine (which
//! reports a key a webhook does not have, such as a typo, at its path), and
//! stores what the engine accepted, re-serialised through the engine's
//! model so that stored definitions have one canonical form. With it goes
//! the weight of its `matches` patterns, as the engine's crate reckons it
//! from that model (`inbox_rules::weight`), for the store to hold a
//! tenant's webhooks to `max_pattern_weight_per_tenant` together.
//!
//! Transport is the host's, not the engine's: the client certificate a
//! webhook presents (`tls`) is taken out of the body, checked here, and
//! stored beside the definition with its key sealed, like signing secrets.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::delivery::tls;
use crate::keys;
use crate::matcher::Matcher;
use crate::rules;
use crate::rules::{Op, Pool};
use crate::store::{ClientTls, Millis, Quota, Store, StoreError, WebhookRecord, now};
use crate::vault::Vault;

/// The key of a webhook's client certificate, which the host keeps apart
/// from the definition the engine reads.
pub const TLS: &str = "tls";

/// Keys the server owns. A body may carry them, as `GET` returns them, so a
/// client can send back what it read; their values are ignored.
pub const READ_ONLY: [&str; 5] = ["id", "createdAt", "updatedAt", "disabledReason", "breaker"];

/// How many times a write is retried when another write to the same webhook
/// lands between its read and its write.
const WRITE_ATTEMPTS: usize = 8;

/// Why the webhook service refused or failed a request; `api/` alone
/// turns it into an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The tenant has no webhook with this id (another tenant's included).
    #[error("no such webhook")]
    NotFound,
    /// The webhook is invalid: the engine's diagnostics (each with its
    /// `path`) and warnings, as every surface reports them, or the client
    /// certificate's problem in the same shape.
    #[error("{}", .0.summary)]
    Invalid(Box<Diagnosed>),
    /// Other writes to the webhook kept landing between this one's read
    /// and its write.
    #[error("the webhook kept changing while this request tried to write it; retry")]
    Conflict,
    /// A rotation's overlap past the configured one.
    #[error("previousExpiresIn may be at most the server's secret overlap, {0}")]
    OverlapTooLong(String),
    /// The engine gave no answer.
    #[error(transparent)]
    Engine(#[from] rules::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What the engine accepted could not be read back: a bug.
    #[error("{0}")]
    Internal(String),
}

/// What makes a webhook invalid.
#[derive(Debug)]
pub struct Diagnosed {
    /// The first problem, and how many more.
    pub summary: String,
    /// The errors (a JSON list of diagnostics).
    pub errors: Value,
    /// The warnings (a JSON list of diagnostics).
    pub warnings: Value,
}

impl WebhookError {
    /// Invalid, for these reasons.
    fn invalid(summary: String, errors: Value, warnings: Value) -> Self {
        Self::Invalid(Box::new(Diagnosed {
            summary,
            errors,
            warnings,
        }))
    }

    /// One problem at `path`, in the shape of the engine's diagnostics.
    fn one(code: &str, message: &str, path: &str) -> Self {
        Self::invalid(
            format!("the webhook is invalid: {message}"),
            serde_json::json!([{"code": code, "message": message, "path": path}]),
            Value::Array(vec![]),
        )
    }

    fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }
}

/// A webhook accepted by the engine, ready to store.
#[derive(Debug)]
pub struct Canonical {
    /// The canonical definition, JSON text.
    pub definition: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// What its `matches` patterns weigh together.
    pub pattern_weight: u32,
    /// The engine's warnings (valid, but worth a look).
    pub warnings: Value,
}

/// A webhook written, as the API answers it.
#[derive(Debug)]
pub struct Written {
    /// The stored webhook.
    pub record: WebhookRecord,
    /// The engine's warnings about it.
    pub warnings: Value,
}

/// The webhook service.
#[derive(Debug)]
pub struct Webhooks {
    store: Arc<dyn Store>,
    engine: Arc<Pool>,
    /// Kept in step with every write, after it commits.
    matcher: Arc<Matcher>,
    /// Seals signing secrets and client keys before they are stored.
    vault: Arc<Vault>,
    /// How long a rotated-out secret keeps signing.
    overlap: Duration,
    /// What one tenant's webhooks may add up to.
    quota: Quota,
}

impl Webhooks {
    /// The service over a store, the engine and the rule sets.
    pub fn new(
        store: Arc<dyn Store>,
        engine: Arc<Pool>,
        matcher: Arc<Matcher>,
        vault: Arc<Vault>,
        overlap: Duration,
        quota: Quota,
    ) -> Self {
        Self {
            store,
            engine,
            matcher,
            vault,
            overlap,
            quota,
        }
    }

    /// Weighs the webhooks an earlier version stored without a pattern
    /// weight, so that the tenant quota counts them; how many.
    pub async fn weigh_stored(&self) -> Result<usize, StoreError> {
        let weights: Vec<(String, u32)> = self
            .store
            .all_webhooks()
            .await?
            .into_iter()
            .filter(|record| record.pattern_weight.is_none())
            .map(|record| {
                // A stored definition the engine's model cannot read never
                // fires (the matcher leaves it out); it weighs nothing.
                let weight = serde_json::from_str(&record.definition)
                    .map_or(0, |webhook| inbox_rules::weight::webhook_weight(&webhook));
                (record.id, weight)
            })
            .collect();
        let count = weights.len();
        if count > 0 {
            self.store.set_pattern_weights(weights).await?;
            tracing::info!(
                count,
                "weighed the patterns of webhooks stored by an earlier version"
            );
        }
        Ok(count)
    }

    /// What `input` makes of a client certificate that is `current`.
    fn client_tls(&self, input: TlsInput, current: Option<ClientTls>) -> Option<ClientTls> {
        match input {
            TlsInput::Keep => current,
            TlsInput::Remove => None,
            TlsInput::Set { certificate, key } => Some(ClientTls {
                certificate,
                key: self.vault.seal(&key),
            }),
        }
    }

    /// Validates a definition (a body without the server's keys, plus
    /// `id`) with the engine; the canonical form when it is valid, else a 422 carrying the
    /// engine's diagnostics.
    pub async fn accept(
        &self,
        tenant: &str,
        definition: Map<String, Value>,
    ) -> Result<Canonical, WebhookError> {
        let text = Value::Object(definition).to_string();
        let report = {
            let text = text.clone();
            let validate = move |s: &mut rules::Session| s.call(Op::Validate, &text);
            self.engine.run_for(tenant, validate).await
        };
        let report: Value = match report {
            Ok(report) => serde_json::from_str(&report).map_err(WebhookError::internal)?,
            Err(rules::Error::Input(message)) => {
                let none = || Value::Array(vec![]);
                return Err(WebhookError::invalid(message, none(), none()));
            }
            Err(other) => return Err(other.into()),
        };
        let errors = report.get("errors").cloned().unwrap_or_default();
        let warnings = report.get("warnings").cloned().unwrap_or_default();
        if report.get("valid") != Some(&Value::Bool(true)) {
            return Err(WebhookError::invalid(summary(&errors), errors, warnings));
        }
        // The engine read this text; reading it into the engine's model
        // again only fixes key order and fills defaults.
        let webhook: inbox_rules::Webhook =
            serde_json::from_str(&text).map_err(WebhookError::internal)?;
        Ok(Canonical {
            definition: serde_json::to_string(&webhook).map_err(WebhookError::internal)?,
            enabled: webhook.enabled,
            pattern_weight: inbox_rules::weight::webhook_weight(&webhook),
            warnings,
        })
    }

    /// Creates a webhook from a body; the stored record and its first
    /// secret (the only time the secret is shown).
    pub async fn create(
        &self,
        tenant: &str,
        mut body: Map<String, Value>,
    ) -> Result<(Written, String), WebhookError> {
        let id = format!("wh_{}", ulid::Ulid::new());
        let tls = take_tls(&mut body)?;
        let accepted = self
            .accept(tenant, definition(&id, without_read_only(body)))
            .await?;
        let at = now();
        let record = WebhookRecord {
            id,
            tenant_id: tenant.to_owned(),
            definition: accepted.definition,
            enabled: accepted.enabled,
            revision: 1,
            created_at: at,
            updated_at: at,
            disabled_reason: None,
            client_tls: self.client_tls(tls, None),
            pattern_weight: Some(accepted.pattern_weight),
            paused_until: None,
        };
        let secret = keys::webhook_secret();
        self.store
            .create_webhook(&record, &self.vault.seal(&secret), self.quota)
            .await?;
        self.matcher.upsert(&record).await;
        Ok((
            Written {
                record,
                warnings: accepted.warnings,
            },
            secret,
        ))
    }

    /// Validates a draft (a create's body, never stored) as a create
    /// would; its canonical definition, with the id `draft`. A client
    /// certificate in it is ignored: a draft sends nothing.
    pub async fn draft(
        &self,
        tenant: &str,
        mut body: Map<String, Value>,
    ) -> Result<String, WebhookError> {
        take_tls(&mut body)?;
        let accepted = self
            .accept(tenant, definition("draft", without_read_only(body)))
            .await?;
        Ok(accepted.definition)
    }

    /// One of the tenant's webhooks, or 404.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<WebhookRecord, WebhookError> {
        self.store
            .webhook(tenant, id)
            .await?
            .ok_or(WebhookError::NotFound)
    }

    /// Replaces a webhook's definition with `body` (keys it leaves out take
    /// their defaults).
    pub async fn replace(
        &self,
        tenant: &str,
        id: &str,
        mut body: Map<String, Value>,
    ) -> Result<Written, WebhookError> {
        let tls = take_tls(&mut body)?;
        let body = without_read_only(body);
        self.write(tenant, id, &tls, |_| Ok(body.clone())).await
    }

    /// Applies a JSON merge patch (RFC 7396) to a webhook's definition.
    pub async fn patch(
        &self,
        tenant: &str,
        id: &str,
        mut patch: Map<String, Value>,
    ) -> Result<Written, WebhookError> {
        let tls = take_tls(&mut patch)?;
        let patch = without_read_only(patch);
        self.write(tenant, id, &tls, |current| {
            let mut merged = Value::Object(current);
            merge(&mut merged, &Value::Object(patch.clone()));
            match merged {
                Value::Object(map) => Ok(map),
                _ => Err(WebhookError::internal(
                    "merge patch of an object gave a non-object",
                )),
            }
        })
        .await
    }

    /// Reads, changes and writes a webhook, retrying when another write
    /// came in between.
    async fn write(
        &self,
        tenant: &str,
        id: &str,
        tls: &TlsInput,
        change: impl Fn(Map<String, Value>) -> Result<Map<String, Value>, WebhookError>,
    ) -> Result<Written, WebhookError> {
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.get(tenant, id).await?;
            let stored: Map<String, Value> =
                serde_json::from_str(&current.definition).map_err(WebhookError::internal)?;
            let changed = change(without_read_only(stored))?;
            let accepted = self.accept(tenant, definition(id, changed)).await?;
            let record = WebhookRecord {
                definition: accepted.definition,
                enabled: accepted.enabled,
                revision: current.revision + 1,
                updated_at: now().max(current.updated_at),
                // Why the server disabled it stops being true once enabled.
                disabled_reason: current.disabled_reason.filter(|_| !accepted.enabled),
                client_tls: self.client_tls(tls.clone(), current.client_tls),
                pattern_weight: Some(accepted.pattern_weight),
                ..current
            };
            if self.store.update_webhook(&record, self.quota).await? {
                self.matcher.upsert(&record).await;
                return Ok(Written {
                    record,
                    warnings: accepted.warnings,
                });
            }
        }
        Err(WebhookError::Conflict)
    }

    /// Deletes a webhook, or 404.
    pub async fn delete(&self, tenant: &str, id: &str) -> Result<(), WebhookError> {
        match self.store.delete_webhook(tenant, id).await? {
            true => {
                self.matcher.remove(tenant, id).await;
                Ok(())
            }
            false => Err(WebhookError::NotFound),
        }
    }

    /// Gives a webhook a new secret; the new secret and until when the old
    /// one keeps signing: `previous_expires_in` from now (at most the
    /// configured overlap, which is the default; zero cuts it off at once,
    /// for a secret that leaked).
    pub async fn rotate_secret(
        &self,
        tenant: &str,
        id: &str,
        previous_expires_in: Option<Duration>,
    ) -> Result<(String, Millis), WebhookError> {
        let expires_in = previous_expires_in.unwrap_or(self.overlap);
        if expires_in > self.overlap {
            let overlap = humantime::format_duration(self.overlap).to_string();
            return Err(WebhookError::OverlapTooLong(overlap));
        }
        let secret = keys::webhook_secret();
        let expires_in = i64::try_from(expires_in.as_millis()).unwrap_or(i64::MAX);
        let until = now().saturating_add(expires_in);
        let sealed = self.vault.seal(&secret);
        match self.store.rotate_secret(tenant, id, &sealed, until).await? {
            true => Ok((secret, until)),
            false => Err(WebhookError::NotFound),
        }
    }
}

/// What a body says of the webhook's client certificate (`tls`).
#[derive(Clone)]
enum TlsInput {
    /// Not mentioned, or sent back as read: as it is.
    Keep,
    /// `"tls": null`: none.
    Remove,
    /// A new certificate and key, checked (the key still in clear).
    Set { certificate: String, key: String },
}

/// Takes `tls` out of a body: `{"clientCertificate": PEM, "clientKey":
/// PEM}` sets a client certificate (checked: both parse, the key is the
/// certificate's, the certificate is valid now), `null` removes it, and
/// the shape `GET` shows (`{"clientCertificate": {"subject", …}}`) keeps it.
fn take_tls(body: &mut Map<String, Value>) -> Result<TlsInput, WebhookError> {
    let Some(tls) = body.remove(TLS) else {
        return Ok(TlsInput::Keep);
    };
    let invalid = WebhookError::one;
    let shape =
        "`tls` takes {\"clientCertificate\": PEM, \"clientKey\": PEM}, or null to remove it";
    let tls = match tls {
        Value::Null => return Ok(TlsInput::Remove),
        Value::Object(tls) => tls,
        _ => return Err(invalid("invalid_tls", shape, TLS)),
    };
    if let Some(key) = tls
        .keys()
        .find(|k| *k != "clientCertificate" && *k != "clientKey")
    {
        let message = format!("`tls` has no key `{key}`; {shape}");
        return Err(invalid("invalid_tls", &message, TLS));
    }
    match (tls.get("clientCertificate"), tls.get("clientKey")) {
        (Some(Value::Object(_)) | None, None) => Ok(TlsInput::Keep),
        (Some(Value::String(certificate)), Some(Value::String(key))) => {
            tls::check_client(certificate, key)
                .map_err(|refused| invalid(refused.code, &refused.message, refused.path))?;
            Ok(TlsInput::Set {
                certificate: certificate.clone(),
                key: key.clone(),
            })
        }
        (Some(Value::String(_)), _) => Err(invalid(
            "invalid_tls",
            "a client certificate needs its key: set `tls.clientKey` (PEM) too",
            "tls.clientKey",
        )),
        (_, Some(Value::String(_))) => Err(invalid(
            "invalid_tls",
            "a client key needs its certificate: set `tls.clientCertificate` (PEM) too",
            "tls.clientCertificate",
        )),
        _ => Err(invalid("invalid_tls", shape, TLS)),
    }
}

/// A body without the keys the server owns (their values are ignored).
pub fn without_read_only(mut body: Map<String, Value>) -> Map<String, Value> {
    body.retain(|k, _| !READ_ONLY.contains(&k.as_str()));
    body
}

/// The definition the engine reads: `id` first, then the body's keys.
fn definition(id: &str, body: Map<String, Value>) -> Map<String, Value> {
    let mut definition = Map::with_capacity(body.len() + 1);
    definition.insert("id".to_owned(), Value::String(id.to_owned()));
    definition.extend(body);
    definition
}

/// RFC 7396: objects merge key by key, `null` removes, anything else
/// replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// One line for the whole report: the first problem, and how many more.
fn summary(errors: &Value) -> String {
    let list = errors.as_array().map(Vec::as_slice).unwrap_or_default();
    let first = list
        .first()
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("the webhook is invalid");
    match list.len() {
        0 | 1 => format!("the webhook is invalid: {first}"),
        n => format!("the webhook is invalid: {first} (and {} more)", n - 1),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396, appendix A, that apply to objects.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({"a": "foo"}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }

    #[test]
    fn the_server_keys_are_dropped_and_the_rest_kept_for_the_engine() {
        let body = json!({"id": "wh_x", "createdAt": "t", "name": "n", "channel": ["email"]});
        let Value::Object(body) = body else {
            unreachable!()
        };
        let kept = without_read_only(body);
        assert_eq!(
            Value::Object(kept),
            json!({"name": "n", "channel": ["email"]})
        );
    }

    #[test]
    fn the_summary_names_the_first_problem_and_counts_the_rest() {
        let errors = json!([{"message": "first"}, {"message": "second"}]);
        assert_eq!(
            summary(&errors),
            "the webhook is invalid: first (and 1 more)"
        );
        assert_eq!(
            summary(&json!([{"message": "only"}])),
            "the webhook is invalid: only"
        );
    }
}
