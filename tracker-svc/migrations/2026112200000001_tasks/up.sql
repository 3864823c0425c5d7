-- The accounts replica, fed by auth's account events. Events may arrive out
-- of order: a row can start as a placeholder (an unknown login or role) and
-- is completed later; `role_at` keeps an older event from undoing a newer role.
CREATE TABLE accounts (
    account_id UUID PRIMARY KEY,
    login TEXT,
    role TEXT CHECK (role IN ('worker', 'manager', 'accountant', 'admin')),
    role_at TIMESTAMPTZ,
    -- Deactivation is final: no event reactivates an account.
    active BOOLEAN NOT NULL DEFAULT TRUE
);
-- Assignment draws from here.
CREATE INDEX accounts_assignable ON accounts (account_id) WHERE role = 'worker' AND active;

-- Task numbers for the human keys POPUG-<n>.
CREATE SEQUENCE task_number START 1;

CREATE TABLE tasks (
    task_id UUID PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE DEFAULT nextval('task_number'),
    title TEXT NOT NULL,
    jira_id TEXT,
    description TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'done')),
    assignee_id UUID NOT NULL,
    created_by UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    CHECK ((status = 'done') = (completed_at IS NOT NULL))
);
CREATE INDEX tasks_open ON tasks (number) WHERE status = 'open';
CREATE INDEX tasks_assignee ON tasks (assignee_id, number);
