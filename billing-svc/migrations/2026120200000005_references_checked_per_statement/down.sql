DROP TRIGGER accounts_no_truncate ON accounts;
DROP TRIGGER accounts_stay ON accounts;
DROP TRIGGER tasks_no_truncate ON tasks;
DROP TRIGGER tasks_stay ON tasks;
DROP FUNCTION referenced_by_the_books();
DROP TRIGGER transactions_tasks_known ON transactions;
DROP FUNCTION transactions_tasks_known();
CREATE OR REPLACE FUNCTION postings_balance() RETURNS trigger LANGUAGE plpgsql AS $$
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
ALTER TABLE transactions ADD CONSTRAINT transactions_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasks (task_id);
ALTER TABLE postings ADD CONSTRAINT postings_popug_id_fkey FOREIGN KEY (popug_id) REFERENCES accounts (account_id);
ALTER TABLE postings ADD CONSTRAINT postings_tx_id_fkey FOREIGN KEY (tx_id) REFERENCES transactions (tx_id);
