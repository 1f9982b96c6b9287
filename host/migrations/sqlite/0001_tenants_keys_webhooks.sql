-- Tenants, their API keys, and their webhooks with signing secrets.
-- Times are Unix milliseconds (UTC).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,      -- a slug, e.g. "acme": the ingest event's tenantId
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,      -- key_<ulid>: how a key is named in lists and revoked
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    kind        TEXT NOT NULL CHECK (kind IN ('admin', 'ingest')),
    digest      BLOB NOT NULL UNIQUE,  -- SHA-256 of the key; the key itself is never stored
    hint        TEXT NOT NULL,         -- its first characters, to tell keys apart
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER                -- set once; a revoked key never authenticates again
) STRICT;

CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,      -- wh_<ulid>: unique across tenants, sorts by creation
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    definition  TEXT NOT NULL,         -- the webhook as the engine reads it (JSON)
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),  -- mirrors definition.enabled
    revision    INTEGER NOT NULL,      -- bumped by every write: optimistic concurrency
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, id);

CREATE TABLE webhook_secrets (
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,         -- whsec_…; needed in clear to sign
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER                -- NULL for the current secret; a rotated-out one signs until then
) STRICT;

CREATE INDEX webhook_secrets_by_webhook ON webhook_secrets (webhook_id);
