DROP TRIGGER accounts_key_fixed ON accounts;
DROP TRIGGER tasks_key_fixed ON tasks;
DROP FUNCTION referenced_key_fixed();
