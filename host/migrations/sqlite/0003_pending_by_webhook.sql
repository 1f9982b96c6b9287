-- Claims go webhook by webhook (see `writes::claim` in the host): find the
-- webhooks with pending deliveries one seek each, then each one's oldest
-- due deliveries. This index serves both; the global due-time index it
-- replaces made a claim scan the backlog of every webhook it had to skip.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_pending ON deliveries (webhook_id, next_attempt_at) WHERE state = 'pending';
