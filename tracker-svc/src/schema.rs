// @generated automatically by Diesel CLI.

diesel::table! {
    accounts (account_id) {
        account_id -> Uuid,
        login -> Nullable<Text>,
        role -> Nullable<Text>,
        active -> Bool,
        role_version -> Nullable<Int8>,
    }
}

diesel::table! {
    task_history (event_id) {
        event_id -> Uuid,
        task_id -> Uuid,
        kind -> Text,
        account_id -> Uuid,
        occurred_at -> Timestamptz,
    }
}

diesel::table! {
    tasks (task_id) {
        task_id -> Uuid,
        number -> Int8,
        title -> Text,
        jira_id -> Nullable<Text>,
        description -> Text,
        status -> Text,
        assignee_id -> Uuid,
        created_by -> Uuid,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(task_history -> tasks (task_id));

diesel::allow_tables_to_appear_in_same_query!(accounts, task_history, tasks,);
