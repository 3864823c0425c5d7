-- Ledger v2: double-entry books.
--
-- Every money movement is a transaction (`transactions`) of postings
-- (`postings`) that sum to zero: one leg on a popug's account, the other on
-- a company account of the chart below. So the sum of every balance in the
-- books is zero at every commit, and management's earnings are read from the
-- company's own accounts. The popug side of each transaction stays readable
-- as `entries`, a view with the columns the old table had.

-- The chart of accounts.
CREATE TABLE ledger_accounts (
    code TEXT PRIMARY KEY,
    description TEXT NOT NULL
);
INSERT INTO ledger_accounts (code, description) VALUES
    ('popug', 'a popug''s own account; one per popug, its balance kept in accounts.balance_cents'),
    ('revenue', 'the company''s income from assignment fees (credited by every fee)'),
    ('expense', 'the company''s cost of completion rewards (debited by every reward)'),
    ('payouts', 'cash paid out to popugs at day close (credited by every payout)');

CREATE TABLE transactions (
    tx_id UUID PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('assignment_fee', 'completion_reward', 'payout')),
    task_id UUID REFERENCES tasks (task_id),
    -- The event that caused it (for a payout, a key derived from the account
    -- and the day): one effect per business fact.
    source_event_id UUID NOT NULL,
    -- The billing day it lands in, in the company's time zone.
    day DATE NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (source_event_id, kind),
    CHECK ((kind = 'payout') = (task_id IS NULL))
);
-- A task's reward is paid at most once, whatever arrives on the bus.
CREATE UNIQUE INDEX one_reward_per_task ON transactions (task_id) WHERE kind = 'completion_reward';
CREATE INDEX transactions_day ON transactions (day, kind);

CREATE TABLE postings (
    -- Taken at insert; a popug's postings are inserted under its account
    -- row's lock, so `seq` orders them as their balances moved.
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id UUID NOT NULL REFERENCES transactions (tx_id),
    -- A code of the chart above (a CHECK, not a foreign key: the chart is
    -- fixed, and a key check per posting costs on every booking).
    account TEXT NOT NULL CHECK (account IN ('popug', 'revenue', 'expense', 'payouts')),
    -- The popug, on the popug leg only.
    popug_id UUID REFERENCES accounts (account_id),
    amount_cents BIGINT NOT NULL CHECK (amount_cents <> 0),
    -- The popug's balance right after this posting (popug legs only).
    balance_after_cents BIGINT,
    CHECK ((account = 'popug') = (popug_id IS NOT NULL)),
    CHECK ((account = 'popug') = (balance_after_cents IS NOT NULL))
);
CREATE INDEX postings_tx ON postings (tx_id);
CREATE INDEX postings_popug ON postings (popug_id, seq) WHERE popug_id IS NOT NULL;

-- Each statement that inserts postings inserts whole transactions: every
-- transaction's postings in it sum to zero. Postings are immutable, so every
-- transaction balances and so do the books. Checked once per statement
-- over its new rows, not once per row.
CREATE FUNCTION postings_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced UUID;
BEGIN
    SELECT tx_id INTO unbalanced FROM new_postings GROUP BY tx_id HAVING sum(amount_cents) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transaction % does not balance: its postings must sum to zero', unbalanced
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER postings_balance AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION postings_balance();

CREATE FUNCTION ledger_is_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is immutable; record a correction as a new transaction';
END
$$;
CREATE TRIGGER transactions_are_immutable BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_is_immutable();
CREATE TRIGGER transactions_no_truncate BEFORE TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_immutable();
CREATE TRIGGER postings_are_immutable BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_is_immutable();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_immutable();
REVOKE UPDATE, DELETE, TRUNCATE ON transactions, postings FROM PUBLIC;

-- The upgrade: every single-entry row becomes a balanced transaction, its
-- popug leg carrying the running balance in the order the entries were
-- applied. Balances, days and earnings are unchanged.
INSERT INTO transactions (tx_id, kind, task_id, source_event_id, day, occurred_at)
    SELECT entry_id, kind, task_id, source_event_id, day, occurred_at FROM entries;
INSERT INTO postings (tx_id, account, popug_id, amount_cents, balance_after_cents)
SELECT tx_id, account, popug_id, amount_cents, balance_after_cents FROM (
    SELECT entry_id AS tx_id, 'popug' AS account, account_id AS popug_id, amount_cents,
           sum(amount_cents) OVER (PARTITION BY account_id ORDER BY occurred_at, entry_id) AS balance_after_cents,
           occurred_at, 0 AS leg
    FROM entries
    UNION ALL
    SELECT entry_id,
           CASE kind WHEN 'assignment_fee' THEN 'revenue' WHEN 'completion_reward' THEN 'expense' ELSE 'payouts' END,
           NULL, -amount_cents, NULL, occurred_at, 1
    FROM entries
) legs
ORDER BY leg, popug_id, occurred_at, tx_id;

ALTER TABLE payouts DROP CONSTRAINT payouts_entry_id_fkey;
ALTER TABLE payouts ADD CONSTRAINT payouts_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES transactions (tx_id);
DROP TABLE entries;
DROP FUNCTION entries_are_immutable();

-- The popug side of the books, as the single-entry table read.
CREATE VIEW entries AS
    SELECT t.tx_id AS entry_id, p.popug_id AS account_id, t.kind, p.amount_cents, t.task_id,
           t.source_event_id, t.day, t.occurred_at, p.balance_after_cents, p.seq
    FROM transactions t JOIN postings p ON p.tx_id = t.tx_id AND p.account = 'popug';
