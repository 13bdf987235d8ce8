//! The licenses of a Stripe subscription, locked and changed as its state moves.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::models::{License, Product};
use super::schema::{licenses, products};

/// Subscription states that set a license's expiry exactly (not "at least"): an
/// older payment must not move it out again.
pub const EXACT_EXPIRY_STATES: &[&str] = &["trialing", "canceled", "incomplete_expired"];

/// The subscription's licenses with their products, locked for this transaction, in
/// one order so concurrent deliveries queue instead of deadlocking.
pub fn lock_licenses(
    conn: &mut PgConnection,
    subscription: &str,
) -> QueryResult<Vec<(License, Product)>> {
    let ids: Vec<Uuid> = licenses::table
        .filter(licenses::stripe_subscription_id.eq(subscription))
        .order(licenses::id)
        .select(licenses::id)
        .for_update()
        .load(conn)?;
    licenses::table
        .inner_join(products::table)
        .filter(licenses::id.eq_any(&ids))
        .order(licenses::id)
        .select((License::as_select(), Product::as_select()))
        .load(conn)
}

/// What a subscription state changes on one license; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = licenses)]
pub struct StateChanges {
    pub subscription_status: Option<Option<String>>,
    pub subscription_state_at: Option<Option<DateTime<Utc>>>,
    pub cancel_at_period_end: Option<bool>,
    pub past_due_until: Option<Option<DateTime<Utc>>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub product_id: Option<Uuid>,
    pub max_activations: Option<Option<i32>>,
    pub updated_at: Option<DateTime<Utc>>,
}

pub fn update(conn: &mut PgConnection, id: Uuid, changes: &StateChanges) -> QueryResult<License> {
    diesel::update(licenses::table.find(id))
        .set(changes)
        .returning(License::as_returning())
        .get_result(conn)
}

/// `invoice.paid`: moves the expiry (returns each changed license before and after) of the subscription's licenses out to `until`,
/// never in (perpetual licenses stay perpetual), unless a newer state of the subscription (newer than the invoice's event,
/// `paid_at`) set the expiry exactly: a late delivery of an older payment must not
/// bring a cancelled subscription back, nor stretch a trial.
pub fn extend_paid(
    conn: &mut PgConnection,
    subscription: &str,
    until: DateTime<Utc>,
    paid_at: DateTime<Utc>,
) -> QueryResult<Vec<(License, License)>> {
    let before: Vec<License> = licenses::table
        .filter(licenses::stripe_subscription_id.eq(subscription))
        .filter(licenses::expires_at.lt(until))
        .filter(
            licenses::subscription_state_at
                .is_null()
                .or(licenses::subscription_state_at.le(paid_at))
                .or(licenses::subscription_status.is_null())
                .or(licenses::subscription_status.ne_all(EXACT_EXPIRY_STATES)),
        )
        .order(licenses::id)
        .select(License::as_select())
        .for_update()
        .load(conn)?;
    let mut changed = Vec::with_capacity(before.len());
    for old in before {
        let new = diesel::update(licenses::table.find(old.id))
            .set((
                licenses::expires_at.eq(until),
                licenses::updated_at.eq(Utc::now()),
            ))
            .returning(License::as_returning())
            .get_result(conn)?;
        changed.push((old, new));
    }
    Ok(changed)
}
