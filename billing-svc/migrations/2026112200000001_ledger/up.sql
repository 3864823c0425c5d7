-- The accounts replica (from auth's events) and every popug's balance. A row
-- may start as a placeholder when a task event names an account billing has
-- not heard of yet; it is filled in when the account's events arrive.
CREATE TABLE accounts (
    account_id UUID PRIMARY KEY,
    login TEXT,
    email TEXT,
    role TEXT,
    role_version BIGINT,
    profile_version BIGINT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    -- Always the sum of the account's entries, updated in the same transaction.
    balance_cents BIGINT NOT NULL DEFAULT 0
);

-- A task's prices, set once when billing first hears of the task, whichever
-- event comes first; its display fields come with TaskCreated.
CREATE TABLE tasks (
    task_id UUID PRIMARY KEY,
    fee_cents BIGINT NOT NULL CHECK (fee_cents BETWEEN 1000 AND 2000),
    reward_cents BIGINT NOT NULL CHECK (reward_cents BETWEEN 2000 AND 4000),
    key TEXT,
    title TEXT,
    jira_id TEXT,
    priced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Prices never change.
CREATE FUNCTION tasks_prices_are_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.fee_cents <> OLD.fee_cents OR NEW.reward_cents <> OLD.reward_cents THEN
        RAISE EXCEPTION 'task % prices are fixed', OLD.task_id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER tasks_prices_are_fixed BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_prices_are_fixed();

-- The ledger. Entries are immutable: corrections are new entries.
CREATE TABLE entries (
    entry_id UUID PRIMARY KEY,
    -- Checked at commit: the balance upsert that creates a placeholder
    -- account follows the entry in the same transaction.
    account_id UUID NOT NULL REFERENCES accounts (account_id) DEFERRABLE INITIALLY DEFERRED,
    kind TEXT NOT NULL CHECK (kind IN ('assignment_fee', 'completion_reward', 'payout')),
    amount_cents BIGINT NOT NULL CHECK (
        (kind = 'completion_reward' AND amount_cents > 0) OR (kind <> 'completion_reward' AND amount_cents < 0)
    ),
    task_id UUID REFERENCES tasks (task_id),
    -- The event that caused the entry (or, for a payout, a key derived from
    -- the account and the day): applying it twice is impossible.
    source_event_id UUID NOT NULL,
    -- The billing day, in the company's time zone.
    day DATE NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (source_event_id, kind),
    CHECK ((kind = 'payout') = (task_id IS NULL))
);
CREATE INDEX entries_account_day ON entries (account_id, day, occurred_at);
CREATE INDEX entries_day_kind ON entries (day, kind);

CREATE FUNCTION entries_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable; record a correction as a new entry';
END
$$;
CREATE TRIGGER entries_are_immutable BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_are_immutable();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION entries_are_immutable();
REVOKE UPDATE, DELETE, TRUNCATE ON entries FROM PUBLIC;

-- Closed days: one row each; a day closes once.
CREATE TABLE day_closes (
    day DATE PRIMARY KEY,
    closed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    accounts_paid INTEGER NOT NULL,
    payouts_cents BIGINT NOT NULL
);

-- Payouts: at most one per account and day.
CREATE TABLE payouts (
    payout_id UUID PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts (account_id),
    day DATE NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    entry_id UUID NOT NULL UNIQUE REFERENCES entries (entry_id),
    UNIQUE (account_id, day)
);

-- Payout emails, written with the payout and sent after the commit; a row
-- is sent once (`sent_at`), retried until then.
CREATE TABLE emails (
    payout_id UUID PRIMARY KEY REFERENCES payouts (payout_id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
