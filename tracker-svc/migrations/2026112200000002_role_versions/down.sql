ALTER TABLE accounts DROP COLUMN role_version;
ALTER TABLE accounts ADD COLUMN role_at TIMESTAMPTZ;
