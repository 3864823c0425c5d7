-- What the books refer to keeps its key: the foreign keys that the previous
-- migration replaced with statement-level checks also refused a change of
-- a referenced task's or account's id, which would have left the books
-- naming a task or popug that no longer exists. Nothing changes these ids;
-- now nothing can.
CREATE FUNCTION referenced_key_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the books refer to % by its id; the id is fixed', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER tasks_key_fixed BEFORE UPDATE OF task_id ON tasks
    FOR EACH ROW WHEN (OLD.task_id IS DISTINCT FROM NEW.task_id)
    EXECUTE FUNCTION referenced_key_fixed();
CREATE TRIGGER accounts_key_fixed BEFORE UPDATE OF account_id ON accounts
    FOR EACH ROW WHEN (OLD.account_id IS DISTINCT FROM NEW.account_id)
    EXECUTE FUNCTION referenced_key_fixed();
