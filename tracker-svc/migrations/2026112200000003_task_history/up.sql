-- Every money-relevant fact the tracker committed: each assignment (at
-- creation and at every shuffle) and each completion, keyed by the id of the
-- event that announced it. Billing books each of these events exactly once,
-- so `popug audit` holds billing's ledger against this table, one to one.
CREATE TABLE task_history (
    event_id UUID PRIMARY KEY,
    task_id UUID NOT NULL REFERENCES tasks (task_id),
    kind TEXT NOT NULL CHECK (kind IN ('assigned', 'completed')),
    -- The assignee: the one charged for an assignment, paid for a completion.
    account_id UUID NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX task_history_task ON task_history (task_id);

-- Facts are not edited.
CREATE FUNCTION task_history_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'task_history is append-only';
END $$;
CREATE TRIGGER task_history_append_only BEFORE UPDATE OR DELETE ON task_history
    FOR EACH ROW EXECUTE FUNCTION task_history_is_append_only();
