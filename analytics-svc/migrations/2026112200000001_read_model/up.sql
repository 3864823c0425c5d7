-- analytics' read model, built only from events. Every write is an upsert or
-- an insert keyed by the event's own id, so order and duplicates do not matter.

-- Tasks: described by TaskCreated, priced by TaskPriced, completed by
-- TaskCompleted, in whatever order those arrive.
CREATE TABLE tasks (
    task_id UUID PRIMARY KEY,
    key TEXT,
    title TEXT,
    fee_cents BIGINT,
    reward_cents BIGINT,
    assignee_id UUID,
    completed_at TIMESTAMPTZ,
    -- The completion's day in the company's time zone.
    completed_day DATE
);
CREATE INDEX tasks_completed ON tasks (completed_day, reward_cents DESC) WHERE completed_day IS NOT NULL;

-- Billing's ledger entries, from TransactionApplied: the money figures are
-- sums over these, so they agree with billing to the cent.
CREATE TABLE transactions (
    entry_id UUID PRIMARY KEY,
    account_id UUID NOT NULL,
    kind TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    task_id UUID,
    day DATE NOT NULL
);
CREATE INDEX transactions_day ON transactions (day, kind);
CREATE INDEX transactions_account ON transactions (account_id, day);

-- Closed days and payments, from BillingCycleClosed and PaymentSent.
CREATE TABLE day_closes (
    day DATE PRIMARY KEY,
    accounts_paid INTEGER NOT NULL,
    payouts_cents BIGINT NOT NULL
);
CREATE TABLE payments (
    payout_id UUID PRIMARY KEY,
    account_id UUID NOT NULL,
    amount_cents BIGINT NOT NULL,
    day DATE NOT NULL
);

-- Who is who, from the account events (for display).
CREATE TABLE accounts (
    account_id UUID PRIMARY KEY,
    login TEXT
);
