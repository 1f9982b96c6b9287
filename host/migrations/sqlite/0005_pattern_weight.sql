-- What a webhook's `matches` patterns weigh together, as the rule engine
-- reckons their matching cost (`inbox_rules::weight`): a tenant's webhooks
-- may weigh `max_pattern_weight_per_tenant` together, checked in the write
-- that creates or changes one.
--
-- NULL for a webhook stored by an earlier version: the server weighs those
-- when it starts (the weight comes from the engine, which SQL does not
-- have).
ALTER TABLE webhooks ADD COLUMN pattern_weight INTEGER CHECK (pattern_weight >= 0);
