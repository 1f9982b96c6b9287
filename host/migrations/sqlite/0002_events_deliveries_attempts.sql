-- Ingested events, one delivery per (event, matching webhook), and every
-- attempt to deliver. Times are Unix milliseconds (UTC).

CREATE TABLE events (
    id               TEXT PRIMARY KEY,  -- evt_<ulid>
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    idempotency_key  TEXT,              -- the request's Idempotency-Key and index, or the event's own id
    body             TEXT NOT NULL,     -- the ingest event as received
    received_at      INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX events_by_idempotency_key ON events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_by_age ON events (received_at);

CREATE TABLE deliveries (
    seq              INTEGER PRIMARY KEY,  -- commit order: per-ticket order follows it
    id               TEXT NOT NULL UNIQUE, -- msg_<ulid>: the webhook-id header, the same on every attempt
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    webhook_id       TEXT NOT NULL,        -- no foreign key: the log outlives a deleted webhook
    event_id         TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    event_type       TEXT NOT NULL,
    ticket_id        TEXT NOT NULL,
    payload          TEXT NOT NULL,        -- the exact bytes POSTed, fixed at ingest
    explanation      TEXT NOT NULL,        -- the engine's explanation when it matched (JSON)
    state            TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,              -- when a pending delivery is due
    leased_until     INTEGER,              -- a worker holds it until then; expired leases come back
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq);
CREATE INDEX deliveries_by_ticket ON deliveries (webhook_id, ticket_id, seq) WHERE state = 'pending';
CREATE INDEX deliveries_by_event ON deliveries (event_id);

CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    started_at   INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    status       INTEGER,   -- the receiver's HTTP status, when it answered
    response     TEXT,      -- the first 1 KiB of its answer
    error_kind   TEXT,      -- why it failed: timeout, connect, refused_target, redirect, status, …
    error        TEXT
) STRICT;

CREATE INDEX attempts_by_delivery ON attempts (delivery_id, id);
CREATE INDEX attempts_by_age ON attempts (started_at);

-- Delivery health of a webhook.
ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;  -- start of the current run of failures
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT;   -- why the server disabled it, if it did
