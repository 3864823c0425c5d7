ALTER TABLE failed_events DROP COLUMN routing_key;
