//! Rows as stored. Domain meaning (effective status, JSON views) lives in `licensing`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{
    activations, api_keys, email_outbox, licenses, product_prices, products, stripe_events,
};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = products, check_for_backend(diesel::pg::Pg))]
pub struct Product {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub max_activations: Option<i32>,
    pub duration_days: Option<i32>,
    pub key_prefix: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Seconds a device stays alive after it was last seen; `None`: until deactivated.
    pub heartbeat_seconds: Option<i32>,
    pub entitlements: Vec<Option<String>>,
    /// `revoke_access` or `maintain_access`.
    pub expiry_behavior: String,
    /// Offline license files may outlive the heartbeat lease.
    pub offline_allowed: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = products)]
pub struct NewProduct<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub max_activations: Option<i32>,
    pub duration_days: Option<i32>,
    pub key_prefix: Option<&'a str>,
    pub heartbeat_seconds: Option<i32>,
    pub entitlements: Vec<String>,
    pub expiry_behavior: &'a str,
    pub offline_allowed: bool,
}

/// A product change; `None` leaves a column as it is, `Some(None)` sets it to NULL.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = products)]
pub struct ProductChanges {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub max_activations: Option<Option<i32>>,
    pub duration_days: Option<Option<i32>>,
    pub key_prefix: Option<Option<String>>,
    pub heartbeat_seconds: Option<Option<i32>>,
    pub entitlements: Option<Vec<String>>,
    pub expiry_behavior: Option<String>,
    pub offline_allowed: Option<bool>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = product_prices, check_for_backend(diesel::pg::Pg))]
pub struct ProductPrice {
    pub stripe_price_id: String,
    pub product_id: Uuid,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = licenses, check_for_backend(diesel::pg::Pg))]
pub struct License {
    pub id: Uuid,
    pub key: String,
    pub product_id: Uuid,
    pub status: String,
    pub email: String,
    pub customer_name: Option<String>,
    pub max_activations: Option<i32>,
    pub activations_count: i32,
    pub expires_at: Option<DateTime<Utc>>,
    pub source: String,
    pub stripe_checkout_session_id: Option<String>,
    pub stripe_line_item_id: Option<String>,
    pub stripe_line_item_seq: Option<i32>,
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Overrides the product's lease: `Some(0)` no lease, `None` the product's.
    pub heartbeat_seconds: Option<i32>,
    /// Overrides the product's entitlements when set.
    pub entitlements: Option<Vec<Option<String>>>,
    /// The Stripe subscription's status as last reported (`active`, `past_due`, ...).
    pub subscription_status: Option<String>,
    /// When that state was current (the event's `created`, or the API read).
    pub subscription_state_at: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// While past due: the end of the payment grace.
    pub past_due_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Insertable)]
#[diesel(table_name = licenses)]
pub struct NewLicense {
    pub key: String,
    pub product_id: Uuid,
    pub email: String,
    pub customer_name: Option<String>,
    pub max_activations: Option<i32>,
    pub expires_at: Option<DateTime<Utc>>,
    pub source: String,
    pub stripe_checkout_session_id: Option<String>,
    pub stripe_line_item_id: Option<String>,
    pub stripe_line_item_seq: Option<i32>,
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub metadata: serde_json::Value,
    pub heartbeat_seconds: Option<i32>,
    pub entitlements: Option<Vec<String>>,
}

/// A license change; `None` leaves a column as it is, `Some(None)` sets it to NULL.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = licenses)]
pub struct LicenseChanges {
    pub status: Option<String>,
    pub max_activations: Option<Option<i32>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub metadata: Option<serde_json::Value>,
    pub heartbeat_seconds: Option<Option<i32>>,
    pub entitlements: Option<Option<Vec<String>>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = activations, check_for_backend(diesel::pg::Pg))]
pub struct Activation {
    pub id: Uuid,
    pub license_id: Uuid,
    pub fingerprint: String,
    pub name: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = activations)]
pub struct NewActivation<'a> {
    pub license_id: Uuid,
    pub fingerprint: &'a str,
    pub name: Option<&'a str>,
    pub ip: Option<&'a str>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = stripe_events, check_for_backend(diesel::pg::Pg))]
pub struct StripeEvent {
    pub id: String,
    pub event_type: String,
    pub received_at: DateTime<Utc>,
    pub outcome: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_outbox, check_for_backend(diesel::pg::Pg))]
pub struct OutboxEmail {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub license_ids: Vec<Option<Uuid>>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// A portal sign-in link, carried only until the email is sent or given up.
    pub link_url: Option<String>,
}
