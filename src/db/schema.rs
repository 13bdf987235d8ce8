// @generated automatically by Diesel CLI.

diesel::table! {
    activations (id) {
        id -> Uuid,
        license_id -> Uuid,
        fingerprint -> Text,
        name -> Nullable<Text>,
        ip -> Nullable<Text>,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        name -> Text,
        token_sha256 -> Bytea,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    email_outbox (id) {
        id -> Uuid,
        kind -> Text,
        recipient -> Text,
        license_ids -> Array<Nullable<Uuid>>,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        link_url -> Nullable<Text>,
    }
}

diesel::table! {
    license_history (id) {
        id -> Int8,
        license_id -> Uuid,
        actor_kind -> Text,
        actor -> Text,
        action -> Text,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        at -> Timestamptz,
    }
}

diesel::table! {
    licenses (id) {
        id -> Uuid,
        key -> Text,
        product_id -> Uuid,
        status -> Text,
        email -> Text,
        customer_name -> Nullable<Text>,
        max_activations -> Nullable<Int4>,
        activations_count -> Int4,
        expires_at -> Nullable<Timestamptz>,
        source -> Text,
        stripe_checkout_session_id -> Nullable<Text>,
        stripe_line_item_id -> Nullable<Text>,
        stripe_line_item_seq -> Nullable<Int4>,
        stripe_payment_intent_id -> Nullable<Text>,
        stripe_customer_id -> Nullable<Text>,
        stripe_subscription_id -> Nullable<Text>,
        metadata -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        heartbeat_seconds -> Nullable<Int4>,
        entitlements -> Nullable<Array<Nullable<Text>>>,
        subscription_status -> Nullable<Text>,
        subscription_state_at -> Nullable<Timestamptz>,
        cancel_at_period_end -> Bool,
        past_due_until -> Nullable<Timestamptz>,
        import_source -> Nullable<Text>,
        import_id -> Nullable<Text>,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> Int8,
        key -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    portal_links (id) {
        id -> Uuid,
        token_sha256 -> Bytea,
        email -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    product_prices (stripe_price_id) {
        stripe_price_id -> Text,
        product_id -> Uuid,
    }
}

diesel::table! {
    products (id) {
        id -> Uuid,
        slug -> Text,
        name -> Text,
        max_activations -> Nullable<Int4>,
        duration_days -> Nullable<Int4>,
        key_prefix -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        heartbeat_seconds -> Nullable<Int4>,
        entitlements -> Array<Nullable<Text>>,
        expiry_behavior -> Text,
        offline_allowed -> Bool,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> Int4,
        seed -> Bytea,
        created_at -> Timestamptz,
        status -> Text,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    stripe_events (id) {
        id -> Text,
        event_type -> Text,
        received_at -> Timestamptz,
        outcome -> Text,
        payload -> Jsonb,
    }
}

diesel::table! {
    stripe_reversals (source_id) {
        source_id -> Text,
        payment_intent_id -> Nullable<Text>,
        subscription_id -> Nullable<Text>,
        action -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    web_sessions (id) {
        id -> Uuid,
        token_sha256 -> Bytea,
        user_id -> Nullable<Uuid>,
        buyer_email -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        seq -> Int8,
        endpoint_id -> Uuid,
        event_id -> Uuid,
        event_type -> Text,
        license_id -> Nullable<Uuid>,
        payload -> Jsonb,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Uuid,
        url -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        event_types -> Array<Nullable<Text>>,
        created_at -> Timestamptz,
        disabled_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(activations -> licenses (license_id));
diesel::joinable!(license_history -> licenses (license_id));
diesel::joinable!(licenses -> products (product_id));
diesel::joinable!(product_prices -> products (product_id));
diesel::joinable!(web_sessions -> users (user_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));

diesel::allow_tables_to_appear_in_same_query!(
    activations,
    api_keys,
    email_outbox,
    license_history,
    licenses,
    login_attempts,
    portal_links,
    product_prices,
    products,
    signing_keys,
    stripe_events,
    stripe_reversals,
    users,
    web_sessions,
    webhook_deliveries,
    webhook_endpoints,
);
