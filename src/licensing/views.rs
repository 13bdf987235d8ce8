//! The JSON shapes of products, licenses and activations, shared by the HTTP API and the CLI.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{check, lease, Status};
use crate::db::models::{Activation, License, OutboxEmail, Product};

#[derive(Debug, Clone, Serialize)]
pub struct ProductView {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub stripe_price_ids: Vec<String>,
    pub max_activations: Option<i32>,
    pub duration_days: Option<i32>,
    pub key_prefix: Option<String>,
    /// Seconds a device keeps its seat after it last checked in; null: no lease.
    pub heartbeat_seconds: Option<i32>,
    pub entitlements: Vec<String>,
    /// `revoke_access` or `maintain_access`.
    pub expiry_behavior: String,
    pub offline_allowed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProductView {
    pub fn new(p: Product, stripe_price_ids: Vec<String>) -> Self {
        ProductView {
            id: p.id,
            slug: p.slug,
            name: p.name,
            stripe_price_ids,
            max_activations: p.max_activations,
            duration_days: p.duration_days,
            key_prefix: p.key_prefix,
            heartbeat_seconds: p.heartbeat_seconds,
            entitlements: p.entitlements.into_iter().flatten().collect(),
            expiry_behavior: p.expiry_behavior,
            offline_allowed: p.offline_allowed,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// How a license names its product.
#[derive(Debug, Clone, Serialize)]
pub struct ProductRef {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

impl From<&Product> for ProductRef {
    fn from(p: &Product) -> Self {
        ProductRef {
            id: p.id,
            slug: p.slug.clone(),
            name: p.name.clone(),
        }
    }
}

/// The Stripe objects a license came from.
#[derive(Debug, Clone, Serialize)]
pub struct StripeRefs {
    pub checkout_session: Option<String>,
    pub line_item: Option<String>,
    pub payment_intent: Option<String>,
    pub customer: Option<String>,
    pub subscription: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LicenseView {
    pub id: Uuid,
    pub key: String,
    pub product: ProductRef,
    /// The effective status: `expired` whenever `expires_at` has passed.
    pub status: Status,
    pub email: String,
    pub customer_name: Option<String>,
    pub max_activations: Option<i32>,
    /// Devices holding a seat (a device whose lease ran out holds it until the next
    /// activation reclaims it).
    pub activations_count: i32,
    /// More devices than seats (the seats were lowered): no new device is accepted
    /// until the buyer or seller deactivates enough of them.
    pub over_limit: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// With `maintain_access`, once expired: versions released up to this time keep working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintain_access_until: Option<DateTime<Utc>>,
    /// Seconds a device keeps its seat after it last checked in; null: no lease.
    pub heartbeat_seconds: Option<i64>,
    /// Feature codes this license unlocks.
    pub entitlements: Vec<String>,
    /// Set when the license follows a Stripe subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionView>,
    /// Admin views only: the public license endpoints leave out where a license came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe: Option<StripeRefs>,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The Stripe subscription a license follows, as Stripe last reported it.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionView {
    /// `active`, `trialing`, `past_due`, `unpaid`, `paused`, `canceled`, ... (null until
    /// a subscription event arrives).
    pub status: Option<String>,
    /// The subscription ends at the period end (`expires_at`) and will not renew.
    pub cancel_at_period_end: bool,
    /// While past due: when the payment grace ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub past_due_until: Option<DateTime<Utc>>,
}

impl LicenseView {
    /// The full view, for the seller.
    pub fn admin(l: License, p: &Product, now: DateTime<Utc>) -> Self {
        let stripe = StripeRefs {
            checkout_session: l.stripe_checkout_session_id.clone(),
            line_item: l.stripe_line_item_id.clone(),
            payment_intent: l.stripe_payment_intent_id.clone(),
            customer: l.stripe_customer_id.clone(),
            subscription: l.stripe_subscription_id.clone(),
        };
        let source = l.source.clone();
        LicenseView {
            source: Some(source),
            stripe: Some(stripe),
            ..Self::public(l, p, now)
        }
    }

    /// The view the key holder's software gets.
    pub fn public(l: License, p: &Product, now: DateTime<Utc>) -> Self {
        let status = Status::of(&l, now);
        let subscription = l.stripe_subscription_id.as_ref().map(|_| SubscriptionView {
            status: l.subscription_status.clone(),
            cancel_at_period_end: l.cancel_at_period_end,
            past_due_until: l.past_due_until,
        });
        LicenseView {
            over_limit: l
                .max_activations
                .is_some_and(|max| l.activations_count > max),
            maintain_access_until: l
                .expires_at
                .filter(|_| status == Status::Expired && check::maintains_access(p)),
            heartbeat_seconds: lease::lease(&l, p).map(|d| d.num_seconds()),
            entitlements: lease::entitlements(&l, p),
            subscription,
            status,
            id: l.id,
            key: l.key,
            product: ProductRef::from(p),
            email: l.email,
            customer_name: l.customer_name,
            max_activations: l.max_activations,
            activations_count: l.activations_count,
            expires_at: l.expires_at,
            source: None,
            stripe: None,
            metadata: l.metadata,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ActivationView {
    pub id: Uuid,
    pub fingerprint: String,
    pub name: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// When the device loses its seat unless it checks in (licenses with a lease only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<DateTime<Utc>>,
}

impl ActivationView {
    /// The view with the time its lease runs out, for a license with a lease.
    pub fn leased(a: Activation, l: &License, p: &Product) -> Self {
        let lease_expires_at = lease::lease_ends(l, p, a.last_seen_at);
        ActivationView {
            lease_expires_at,
            ..Self::from(a)
        }
    }
}

impl From<Activation> for ActivationView {
    fn from(a: Activation) -> Self {
        ActivationView {
            lease_expires_at: None,
            id: a.id,
            fingerprint: a.fingerprint,
            name: a.name,
            ip: a.ip,
            created_at: a.created_at,
            last_seen_at: a.last_seen_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub email: String,
    pub name: Option<String>,
}

/// `GET /v1/licenses/{id|key}`: the license with its devices and buyer.
#[derive(Debug, Clone, Serialize)]
pub struct LicenseDetail {
    #[serde(flatten)]
    pub license: LicenseView,
    pub activations: Vec<ActivationView>,
    pub customer: Customer,
    /// The latest email listing this license, if one was ever queued.
    pub email_status: Option<EmailStatus>,
}

/// Delivery of a license email: `pending` (queued or waiting to retry), `sending`,
/// `sent`, or `failed` (gave up; resend-email queues it again).
#[derive(Debug, Clone, Serialize)]
pub struct EmailStatus {
    pub id: Uuid,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<OutboxEmail> for EmailStatus {
    fn from(e: OutboxEmail) -> Self {
        EmailStatus {
            id: e.id,
            next_attempt_at: (e.status == "pending").then_some(e.next_attempt_at),
            status: e.status,
            attempts: e.attempts,
            last_error: e.last_error,
            sent_at: e.sent_at,
            created_at: e.created_at,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}
