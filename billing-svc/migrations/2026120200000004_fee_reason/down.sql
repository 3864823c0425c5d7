-- Forgets why fees were charged.
DROP VIEW entries;
CREATE VIEW entries AS
    SELECT t.tx_id AS entry_id, p.popug_id AS account_id, t.kind, p.amount_cents, t.task_id,
           t.source_event_id, t.day, t.occurred_at, p.balance_after_cents, p.seq
    FROM transactions t JOIN postings p ON p.tx_id = t.tx_id AND p.account = 'popug';
ALTER TABLE transactions DROP COLUMN reason;
