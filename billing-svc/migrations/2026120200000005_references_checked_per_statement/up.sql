-- The ledger's references, checked once per statement instead of once per
-- row. A foreign key runs a query per inserted row and locks the row it
-- finds (FOR KEY SHARE, a write to that row); a batch of bookings inserts
-- a transaction and two legs per event, so its three keys were three
-- queries and three row locks per event, about half of the booking
-- statement's time. The same rules now hold through statement-level
-- triggers over the statement's new rows, one set-based query each:
--   every posting belongs to a transaction of the books;
--   a popug leg names a popug billing knows;
--   a transaction's task is a task billing knows.
-- The rows they refer to are never deleted: transactions and postings are
-- immutable (their own triggers), and so, from now on, are the existence of
-- billing's tasks and accounts, which nothing ever deleted.
ALTER TABLE postings DROP CONSTRAINT postings_tx_id_fkey;
ALTER TABLE postings DROP CONSTRAINT postings_popug_id_fkey;
ALTER TABLE transactions DROP CONSTRAINT transactions_task_id_fkey;

-- Every transaction in the statement's postings balances and exists, and
-- every popug leg names a known popug.
CREATE OR REPLACE FUNCTION postings_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wrong UUID;
BEGIN
    SELECT tx_id INTO wrong FROM new_postings GROUP BY tx_id HAVING sum(amount_cents) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transaction % does not balance: its postings must sum to zero', wrong
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT p.tx_id INTO wrong FROM new_postings p
        WHERE NOT EXISTS (SELECT FROM transactions t WHERE t.tx_id = p.tx_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'postings of transaction %, which is not in the books', wrong
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT p.popug_id INTO wrong FROM new_postings p
        WHERE p.popug_id IS NOT NULL
          AND NOT EXISTS (SELECT FROM accounts a WHERE a.account_id = p.popug_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'a posting to popug %, who has no account', wrong
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

-- Every task a statement's transactions name is a task billing knows.
CREATE FUNCTION transactions_tasks_known() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unknown UUID;
BEGIN
    SELECT t.task_id INTO unknown FROM new_transactions t
        WHERE t.task_id IS NOT NULL
          AND NOT EXISTS (SELECT FROM tasks k WHERE k.task_id = t.task_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'a transaction for task %, which billing does not know', unknown
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER transactions_tasks_known AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS new_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION transactions_tasks_known();

-- What the books refer to stays: billing's tasks and accounts are updated,
-- never deleted.
CREATE FUNCTION referenced_by_the_books() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the books refer to %; its rows are never deleted', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER tasks_stay BEFORE DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION referenced_by_the_books();
CREATE TRIGGER tasks_no_truncate BEFORE TRUNCATE ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_by_the_books();
CREATE TRIGGER accounts_stay BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION referenced_by_the_books();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_by_the_books();
