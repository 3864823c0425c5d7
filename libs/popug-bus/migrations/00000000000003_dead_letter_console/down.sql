DROP INDEX inbox_applied_at;
DROP INDEX failed_events_closed;
DROP TABLE dead_letter_discards;
ALTER TABLE failed_events DROP COLUMN discarded_at;
