-- Each account's current role and active flag, from auth's events, so that
-- every call is judged by the caller's standing now, not by its token.
ALTER TABLE accounts
    ADD COLUMN role TEXT CHECK (role IN ('worker', 'manager', 'accountant', 'admin')),
    ADD COLUMN role_version BIGINT,
    ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
