-- A consumer that rebuilt its read model from the history stream, and when:
-- it replays the history once, and again only if a replay did not finish.
CREATE TABLE history_replays (
    consumer TEXT PRIMARY KEY,
    completed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied BIGINT NOT NULL CHECK (applied >= 0),
    first_offset BIGINT
);
