-- Which claim holds a delivery's lease: a token each claim (or ingest
-- that leases) draws. An attempt is recorded, and a lease given back, only
-- with the token, so that a worker whose lease ran out and was taken by
-- another records nothing over the other's work. NULL when unleased.
ALTER TABLE deliveries ADD COLUMN lease TEXT;
