-- The event bus's tables, present in every service's database.

-- Events committed with the state change that caused them, waiting for the
-- broker's confirm. The relay deletes a row once the broker has confirmed it.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    event_id UUID NOT NULL UNIQUE,
    routing_key TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- The encoded popug.events.v1.Envelope, exactly as it will be published.
    envelope BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Wakes the relay when events are committed (delivered at commit, once per
-- transaction however many rows it inserted).
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('popug_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Events a consumer has applied. The primary key is what makes applying an
-- event twice impossible: the insert and the handler's effects commit together.
CREATE TABLE inbox (
    consumer TEXT NOT NULL,
    event_id UUID NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Messages a consumer could not handle and sent to its dead-letter queue.
CREATE TABLE failed_events (
    id BIGSERIAL PRIMARY KEY,
    consumer TEXT NOT NULL,
    queue TEXT NOT NULL,
    -- NULL when the message could not be decoded.
    event_id UUID,
    event_type TEXT,
    error TEXT NOT NULL,
    body BYTEA NOT NULL,
    failures INTEGER NOT NULL DEFAULT 1,
    failed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set when a replay applied the event.
    resolved_at TIMESTAMPTZ
);
-- One open failure per event: failing again after a replay updates the row.
CREATE UNIQUE INDEX failed_events_open ON failed_events (consumer, event_id)
    WHERE resolved_at IS NULL;
