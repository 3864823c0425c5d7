-- Why each assignment fee was charged. Every assignment costs its fee, a
-- shuffle's included, and a shuffle may leave a task with its assignee: a
-- popug's statement then shows two fees of one task, alike but for their
-- reason. The reason comes with the fee's TaskAssigned and is recorded with
-- the transaction, once, like the rest of it:
--   created           the task was assigned when it was created;
--   shuffled          a shuffle gave the task to this popug;
--   shuffled_to_same  a shuffle drew the task's own assignee again.
-- Rewards and payouts have none. Fees booked before this migration did not
-- record their reason and keep none (NULL): the ledger is immutable, and
-- guessing one from the order of a task's fees would write down something
-- no event said. Every fee booked from now on must carry one (checked for
-- new rows only: NOT VALID).
ALTER TABLE transactions
    ADD COLUMN reason TEXT CHECK (reason IN ('created', 'shuffled', 'shuffled_to_same')),
    ADD CONSTRAINT transactions_reason_only_for_fees CHECK (reason IS NULL OR kind = 'assignment_fee');
ALTER TABLE transactions
    ADD CONSTRAINT transactions_fees_have_a_reason CHECK (kind <> 'assignment_fee' OR reason IS NOT NULL) NOT VALID;

-- The popug side of the books, now with the fee's reason.
CREATE OR REPLACE VIEW entries AS
    SELECT t.tx_id AS entry_id, p.popug_id AS account_id, t.kind, p.amount_cents, t.task_id,
           t.source_event_id, t.day, t.occurred_at, p.balance_after_cents, p.seq, t.reason
    FROM transactions t JOIN postings p ON p.tx_id = t.tx_id AND p.account = 'popug';
