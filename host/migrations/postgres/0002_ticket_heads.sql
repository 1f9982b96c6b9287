-- A ticket's queue to a webhook has one head: the pending delivery that
-- goes next. Claims read heads only, where they used to pass over every
-- delivery waiting behind another of its ticket (a busy ticket's backlog,
-- on every claim). See the SQLite migration 0008. Writes that add to a
-- ticket's queue or take its head away hold the (webhook, ticket)
-- advisory lock, so that exactly one pending delivery is the head.
ALTER TABLE deliveries ADD COLUMN head BOOLEAN NOT NULL DEFAULT FALSE;

UPDATE deliveries d SET head = TRUE
WHERE d.state = 'pending' AND NOT EXISTS (
    SELECT 1 FROM deliveries e
    WHERE e.state = 'pending' AND e.webhook_id = d.webhook_id
      AND e.ticket_id = d.ticket_id AND e.seq < d.seq);

DROP INDEX deliveries_pending;
CREATE INDEX deliveries_heads ON deliveries (webhook_id, next_attempt_at, seq)
    WHERE state = 'pending' AND head;
