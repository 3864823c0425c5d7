// @generated automatically by Diesel CLI.

diesel::table! {
    accounts (account_id) {
        account_id -> Uuid,
        login -> Text,
        name -> Text,
        email -> Text,
        role -> Text,
        active -> Bool,
        password_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        account_id -> Uuid,
        issued_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        private_key_pem -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(refresh_tokens -> accounts (account_id));

diesel::allow_tables_to_appear_in_same_query!(accounts, refresh_tokens, signing_keys,);
