ALTER TABLE failed_events DROP COLUMN user_id;
ALTER TABLE failed_events DROP COLUMN routing_key;
