-- The routing key a dead-lettered message was published with. A replayed
-- message travels to the live queue under the queue's own name, so replay
-- hands the consumer this one back to check the message against. NULL for
-- rows recorded before it was kept.
ALTER TABLE failed_events ADD COLUMN routing_key TEXT;
