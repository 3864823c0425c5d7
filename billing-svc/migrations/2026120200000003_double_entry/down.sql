-- Back to single-entry: the popug legs become the entries again.
DROP VIEW entries;
CREATE TABLE entries (
    entry_id UUID PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts (account_id) DEFERRABLE INITIALLY DEFERRED,
    kind TEXT NOT NULL CHECK (kind IN ('assignment_fee', 'completion_reward', 'payout')),
    amount_cents BIGINT NOT NULL CHECK (
        (kind = 'completion_reward' AND amount_cents > 0) OR (kind <> 'completion_reward' AND amount_cents < 0)
    ),
    task_id UUID REFERENCES tasks (task_id),
    source_event_id UUID NOT NULL,
    day DATE NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (source_event_id, kind),
    CHECK ((kind = 'payout') = (task_id IS NULL))
);
CREATE INDEX entries_account_day ON entries (account_id, day, occurred_at);
CREATE INDEX entries_day_kind ON entries (day, kind);
INSERT INTO entries (entry_id, account_id, kind, amount_cents, task_id, source_event_id, day, occurred_at)
    SELECT t.tx_id, p.popug_id, t.kind, p.amount_cents, t.task_id, t.source_event_id, t.day, t.occurred_at
    FROM transactions t JOIN postings p ON p.tx_id = t.tx_id AND p.account = 'popug';
CREATE FUNCTION entries_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable; record a correction as a new entry';
END
$$;
CREATE TRIGGER entries_are_immutable BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_are_immutable();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION entries_are_immutable();
ALTER TABLE payouts DROP CONSTRAINT payouts_entry_id_fkey;
ALTER TABLE payouts ADD CONSTRAINT payouts_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES entries (entry_id);
DROP TABLE postings;
DROP TABLE transactions;
DROP FUNCTION postings_balance();
DROP FUNCTION ledger_is_immutable();
DROP TABLE ledger_accounts;
