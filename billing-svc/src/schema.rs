// @generated automatically by Diesel CLI.

diesel::table! {
    accounts (account_id) {
        account_id -> Uuid,
        login -> Nullable<Text>,
        email -> Nullable<Text>,
        role -> Nullable<Text>,
        role_version -> Nullable<Int8>,
        profile_version -> Nullable<Int8>,
        active -> Bool,
        balance_cents -> Int8,
    }
}

diesel::table! {
    day_closes (day) {
        day -> Date,
        closed_at -> Timestamptz,
        accounts_paid -> Int4,
        payouts_cents -> Int8,
    }
}

diesel::table! {
    emails (payout_id) {
        payout_id -> Uuid,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        attempts -> Int4,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    ledger_accounts (code) {
        code -> Text,
        description -> Text,
    }
}

diesel::table! {
    payouts (payout_id) {
        payout_id -> Uuid,
        account_id -> Uuid,
        day -> Date,
        amount_cents -> Int8,
        entry_id -> Uuid,
    }
}

diesel::table! {
    postings (seq) {
        seq -> Int8,
        tx_id -> Uuid,
        account -> Text,
        popug_id -> Nullable<Uuid>,
        amount_cents -> Int8,
        balance_after_cents -> Nullable<Int8>,
    }
}

diesel::table! {
    tasks (task_id) {
        task_id -> Uuid,
        fee_cents -> Int8,
        reward_cents -> Int8,
        key -> Nullable<Text>,
        title -> Nullable<Text>,
        jira_id -> Nullable<Text>,
        priced_at -> Timestamptz,
    }
}

diesel::table! {
    transactions (tx_id) {
        tx_id -> Uuid,
        kind -> Text,
        task_id -> Nullable<Uuid>,
        source_event_id -> Uuid,
        day -> Date,
        occurred_at -> Timestamptz,
        reason -> Nullable<Text>,
    }
}

diesel::joinable!(emails -> payouts (payout_id));
diesel::joinable!(payouts -> accounts (account_id));
diesel::joinable!(payouts -> transactions (entry_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    day_closes,
    emails,
    ledger_accounts,
    payouts,
    postings,
    tasks,
    transactions,
);
