-- The rows written for every event, delivery and attempt check no foreign
-- key. Each check is a query of its own, per row, inside the writing
-- transaction (a lookup and a share lock on the parent row): four per
-- delivered event, and the share locks on one tenant's row from every
-- concurrent writer made Postgres build multixacts. The store keeps what
-- the keys guaranteed by how it writes: a tenant id comes from the key
-- that authenticated the request (api_keys keeps its foreign key);
-- deliveries are inserted in the transaction that inserts their event; an
-- attempt is recorded only by the holder of its delivery's lease, in the
-- transaction that updates that delivery; and pruning deletes attempts,
-- then finished deliveries, then events no delivery refers to, children
-- before parents, without cascades.
ALTER TABLE events DROP CONSTRAINT events_tenant_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_tenant_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_delivery_id_fkey;
