-- Roles are ordered by the account's version from its events, not by the
-- producer's clock (two changes close together on skewed clocks could
-- otherwise leave the older role in place).
ALTER TABLE accounts DROP COLUMN role_at;
ALTER TABLE accounts ADD COLUMN role_version BIGINT;
