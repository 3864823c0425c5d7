ALTER TABLE accounts DROP COLUMN role, DROP COLUMN role_version, DROP COLUMN active;
