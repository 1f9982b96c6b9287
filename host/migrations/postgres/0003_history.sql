-- A tenant's history, the delivery log and a webhook's health chart: see
-- the SQLite migration 0009.
ALTER TABLE events ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN test BOOLEAN NOT NULL DEFAULT FALSE;

UPDATE events SET event_type = COALESCE(body::jsonb ->> 'event', '');
UPDATE events SET test = TRUE
WHERE id IN (SELECT event_id FROM deliveries WHERE explanation = '{"test":true}');

CREATE INDEX events_history ON events (tenant_id, event_type, received_at, id) WHERE NOT test;

CREATE UNIQUE INDEX deliveries_by_event_webhook ON deliveries (event_id, webhook_id);
DROP INDEX deliveries_by_event;

CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, seq);
CREATE INDEX deliveries_by_tenant_ticket ON deliveries (tenant_id, ticket_id, seq);

-- A webhook's deliveries that failed for good, for a recover to send
-- again; a delivery is in it only while it stays failed.
CREATE INDEX deliveries_failed ON deliveries (webhook_id, seq) WHERE state = 'failed';

ALTER TABLE attempts ADD COLUMN webhook_id TEXT;
ALTER TABLE attempts ADD COLUMN outcome TEXT
    CHECK (outcome IN ('succeeded', 'retrying', 'failed', 'cancelled'));

UPDATE attempts a SET webhook_id = d.webhook_id FROM deliveries d WHERE d.id = a.delivery_id;

CREATE INDEX attempts_by_webhook ON attempts (webhook_id, started_at);

-- A webhook's rate limit and its pace: see the SQLite migration 0009.
ALTER TABLE webhooks ADD COLUMN rate_limit BIGINT
    GENERATED ALWAYS AS ((definition::jsonb ->> 'rateLimit')::BIGINT) STORED;
ALTER TABLE webhooks ADD COLUMN next_send_at BIGINT;
