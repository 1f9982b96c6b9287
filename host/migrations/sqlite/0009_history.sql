-- A tenant's history, and what the delivery log and a webhook's health
-- chart read.
--
-- Every ingested event is kept until `retention`, matched or not: a draft
-- rule is tried on it (backtest) and a webhook replays it. Both read the
-- events of the webhook's types in time order, one index range per type.
-- A test delivery's event is not history.
ALTER TABLE events ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN test INTEGER NOT NULL DEFAULT 0 CHECK (test IN (0, 1));

UPDATE events SET event_type = COALESCE(json_extract(body, '$.event'), '')
WHERE json_valid(body);
UPDATE events SET test = 1
WHERE id IN (SELECT event_id FROM deliveries WHERE explanation = '{"test":true}');

CREATE INDEX events_history ON events (tenant_id, event_type, received_at, id) WHERE test = 0;

-- One delivery per (event, webhook): a replay creates only the missing
-- ones, however often it runs. Led by the event, it also serves what the
-- index by event served (counts per event, pruning), which it replaces.
CREATE UNIQUE INDEX deliveries_by_event_webhook ON deliveries (event_id, webhook_id);
DROP INDEX deliveries_by_event;

-- The delivery log: a tenant's deliveries newest first, and one ticket's.
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, seq);
CREATE INDEX deliveries_by_tenant_ticket ON deliveries (tenant_id, ticket_id, seq);

-- A webhook's deliveries that failed for good, for a recover to send
-- again; a delivery is in it only while it stays failed.
CREATE INDEX deliveries_failed ON deliveries (webhook_id, seq) WHERE state = 'failed';

-- A webhook's attempts by time, with what became of the delivery after
-- each (`succeeded`, `retrying`, `failed`, `cancelled`): the health
-- chart's buckets. Attempts recorded by earlier versions have no outcome;
-- the chart reads them by their status.
ALTER TABLE attempts ADD COLUMN webhook_id TEXT;
ALTER TABLE attempts ADD COLUMN outcome TEXT
    CHECK (outcome IN ('succeeded', 'retrying', 'failed', 'cancelled'));

UPDATE attempts SET webhook_id = (SELECT webhook_id FROM deliveries d WHERE d.id = attempts.delivery_id);

CREATE INDEX attempts_by_webhook ON attempts (webhook_id, started_at);

-- A webhook's rate limit (`rateLimit` in its definition), read where
-- claims pace its attempts, and when its next paced attempt may start
-- (microseconds; NULL: at once). A paced webhook's deliveries are leased
-- by claims alone: ingest and a finished attempt hand none of them on.
ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER
    GENERATED ALWAYS AS (json_extract(definition, '$.rateLimit')) VIRTUAL;
ALTER TABLE webhooks ADD COLUMN next_send_at INTEGER;
