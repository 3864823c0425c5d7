// @generated automatically by Diesel CLI.

diesel::table! {
    dead_letter_discards (id) {
        id -> Int8,
        failed_event_id -> Int8,
        consumer -> Text,
        event_id -> Nullable<Uuid>,
        event_type -> Nullable<Text>,
        routing_key -> Nullable<Text>,
        error -> Text,
        body_sha256 -> Bytea,
        body_size -> Int8,
        discarded_by -> Text,
        reason -> Text,
        discarded_at -> Timestamptz,
    }
}

diesel::table! {
    failed_events (id) {
        id -> Int8,
        consumer -> Text,
        queue -> Text,
        event_id -> Nullable<Uuid>,
        event_type -> Nullable<Text>,
        error -> Text,
        body -> Bytea,
        failures -> Int4,
        failed_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        routing_key -> Nullable<Text>,
        user_id -> Nullable<Text>,
        discarded_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    history_replays (consumer) {
        consumer -> Text,
        completed_at -> Timestamptz,
        applied -> Int8,
        first_offset -> Nullable<Int8>,
    }
}

diesel::table! {
    inbox (consumer, event_id) {
        consumer -> Text,
        event_id -> Uuid,
        applied_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        event_id -> Uuid,
        routing_key -> Text,
        event_type -> Text,
        envelope -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    dead_letter_discards,
    failed_events,
    history_replays,
    inbox,
    outbox,
);
