-- The dead-letter console: discarding, its audit trail, and retention.

-- A dead letter an admin decided never to apply. A discarded row is closed
-- like a resolved one (`resolved_at` is set too), so it leaves the
-- unresolved count and frees its event id; `discarded_at` tells the two apart.
ALTER TABLE failed_events ADD COLUMN discarded_at TIMESTAMPTZ;

-- Who discarded which dead letter and why. Kept when the failed_events row
-- itself is pruned: the message is described (event id, type, routing key,
-- error, the body's SHA-256 and size), not copied.
CREATE TABLE dead_letter_discards (
    id BIGSERIAL PRIMARY KEY,
    failed_event_id BIGINT NOT NULL,
    consumer TEXT NOT NULL,
    event_id UUID,
    event_type TEXT,
    routing_key TEXT,
    error TEXT NOT NULL,
    body_sha256 BYTEA NOT NULL,
    body_size BIGINT NOT NULL,
    -- The admin's account id, from the access token.
    discarded_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    discarded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- One discard per dead letter, however many admins try at once.
CREATE UNIQUE INDEX dead_letter_discards_row ON dead_letter_discards (failed_event_id);

-- Retention deletes by age: closed dead letters and old inbox rows.
CREATE INDEX failed_events_closed ON failed_events (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX inbox_applied_at ON inbox (applied_at);
