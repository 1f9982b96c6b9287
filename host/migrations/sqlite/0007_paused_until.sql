-- Until when a webhook's circuit breaker holds its deliveries back: set
-- when a process's breaker opens, cleared when it closes. Claims leave a
-- paused webhook's deliveries, so every process (and the next start)
-- honours an open breaker. NULL when closed.
ALTER TABLE webhooks ADD COLUMN paused_until INTEGER;
