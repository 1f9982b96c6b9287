-- A ticket's queue to a webhook has one head: the pending delivery that
-- goes next (`head = 1`). Claims read heads only, one seek per webhook
-- and no more rows than they take, where they used to pass over every
-- delivery waiting behind another of its ticket (a busy ticket's backlog,
-- on every claim). Ingest stores a delivery as head when its ticket has
-- nothing pending for the webhook; when a head leaves the pending state,
-- the same write makes the ticket's oldest pending delivery the head.
ALTER TABLE deliveries ADD COLUMN head INTEGER NOT NULL DEFAULT 0;

UPDATE deliveries SET head = 1
WHERE state = 'pending' AND NOT EXISTS (
    SELECT 1 FROM deliveries e
    WHERE e.state = 'pending' AND e.webhook_id = deliveries.webhook_id
      AND e.ticket_id = deliveries.ticket_id AND e.seq < deliveries.seq);

DROP INDEX deliveries_pending;
CREATE INDEX deliveries_heads ON deliveries (webhook_id, next_attempt_at, seq)
    WHERE state = 'pending' AND head = 1;
