-- The whole schema, as the SQLite migrations 0001 to 0005 leave it, in
-- Postgres's types. Times are Unix milliseconds (UTC).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,      -- a slug, e.g. "acme": the ingest event's tenantId
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,      -- key_<ulid>
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    kind        TEXT NOT NULL CHECK (kind IN ('admin', 'ingest')),
    digest      BYTEA NOT NULL UNIQUE, -- SHA-256 of the key; the key itself is never stored
    hint        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

CREATE TABLE webhooks (
    id                  TEXT PRIMARY KEY,  -- wh_<ulid>
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    definition          TEXT NOT NULL,     -- the webhook as the engine reads it (JSON)
    enabled             BOOLEAN NOT NULL,  -- mirrors definition.enabled
    revision            BIGINT NOT NULL,   -- bumped by every write: optimistic concurrency
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    failing_since       BIGINT,            -- start of the current run of failures
    disabled_reason     TEXT,              -- why the server disabled it, if it did
    client_certificate  TEXT,              -- PEM chain for mutual TLS
    client_key          TEXT,              -- its private key, sealed
    pattern_weight      INTEGER CHECK (pattern_weight >= 0),
    paused_until        BIGINT             -- an open circuit breaker holds deliveries back until then
);

CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, id);

CREATE TABLE webhook_secrets (
    id          BIGSERIAL PRIMARY KEY,
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,         -- sealed
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT                 -- NULL for the current secret
);

CREATE INDEX webhook_secrets_by_webhook ON webhook_secrets (webhook_id);

CREATE TABLE events (
    id               TEXT PRIMARY KEY,  -- evt_<ulid>
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    idempotency_key  TEXT,
    body             TEXT NOT NULL,
    received_at      BIGINT NOT NULL
);

CREATE UNIQUE INDEX events_by_idempotency_key ON events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_by_age ON events (received_at);

-- `seq` is taken at insert, not at commit: an ingest write holds a lock per
-- (webhook, ticket) it adds deliveries to until it commits (see the store),
-- so that within one webhook and ticket `seq` is commit order, which
-- per-ticket delivery order follows.
CREATE TABLE deliveries (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,  -- msg_<ulid>: the webhook-id header
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    webhook_id       TEXT NOT NULL,         -- no foreign key: the log outlives a deleted webhook
    event_id         TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    event_type       TEXT NOT NULL,
    ticket_id        TEXT NOT NULL,
    payload          TEXT NOT NULL,
    explanation      TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    leased_until     BIGINT,
    lease            TEXT,                  -- the lease holder's token (see the SQLite migration 0006)
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE INDEX deliveries_pending ON deliveries (webhook_id, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq);
CREATE INDEX deliveries_by_ticket ON deliveries (webhook_id, ticket_id, seq) WHERE state = 'pending';
CREATE INDEX deliveries_by_event ON deliveries (event_id);

CREATE TABLE attempts (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    started_at   BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    status       INTEGER,
    response     TEXT,
    error_kind   TEXT,
    error        TEXT
);

CREATE INDEX attempts_by_delivery ON attempts (delivery_id, id);
CREATE INDEX attempts_by_age ON attempts (started_at);
