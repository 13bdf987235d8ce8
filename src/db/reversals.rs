//! Refunds and disputes as Stripe reported them (`stripe_reversals`), so that one
//! reported before its license exists is applied when the license is minted.

use chrono::Utc;
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{licenses, stripe_reversals};

/// What a refund or dispute does to the licenses it pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Revoke,
    Suspend,
    Reinstate,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Revoke => "revoke",
            Action::Suspend => "suspend",
            Action::Reinstate => "reinstate",
        }
    }
}

/// Which payment a reversal is about: its payment intent and/or the subscription
/// whose invoice it paid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payment {
    pub payment_intent: Option<String>,
    pub subscription: Option<String>,
}

impl Payment {
    pub fn is_known(&self) -> bool {
        self.payment_intent.is_some() || self.subscription.is_some()
    }
}

/// Records what `source_id` (a charge or dispute) did. An open dispute (`suspend`)
/// may be overwritten by its outcome; an outcome is never overwritten by a late
/// `suspend`, whatever order Stripe delivers them in.
pub fn record(
    conn: &mut PgConnection,
    source_id: &str,
    payment: &Payment,
    action: Action,
) -> QueryResult<()> {
    use diesel::sql_types::{Nullable, Text};
    diesel::sql_query(
        "INSERT INTO stripe_reversals (source_id, payment_intent_id, subscription_id, action) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (source_id) DO UPDATE \
         SET action = EXCLUDED.action, updated_at = now() \
         WHERE stripe_reversals.action = 'suspend'",
    )
    .bind::<Text, _>(source_id)
    .bind::<Nullable<Text>, _>(payment.payment_intent.as_deref())
    .bind::<Nullable<Text>, _>(payment.subscription.as_deref())
    .bind::<Text, _>(action.as_str())
    .execute(conn)?;
    Ok(())
}

impl Action {
    /// The status the licenses it applies to end in.
    pub fn status(self) -> &'static str {
        match self {
            Action::Revoke => "revoked",
            Action::Suspend => "suspended",
            Action::Reinstate => "active",
        }
    }
}

/// Applies `action` to the licenses of `payment`; returns each changed license's id
/// and its status before.
pub fn apply(
    conn: &mut PgConnection,
    payment: &Payment,
    action: Action,
) -> QueryResult<Vec<(Uuid, String)>> {
    let from: &[&str] = match action {
        Action::Revoke => &["active", "suspended"],
        Action::Suspend => &["active"],
        Action::Reinstate => &["suspended"],
    };
    let by_intent = licenses::stripe_payment_intent_id
        .eq(payment.payment_intent.as_deref())
        .assume_not_null();
    let by_subscription = licenses::stripe_subscription_id
        .eq(payment.subscription.as_deref())
        .assume_not_null();
    let before: Vec<(Uuid, String)> = licenses::table
        .filter(by_intent.or(by_subscription))
        .filter(licenses::status.eq_any(from))
        .select((licenses::id, licenses::status))
        .for_update()
        .load(conn)?;
    let ids: Vec<Uuid> = before.iter().map(|(id, _)| *id).collect();
    diesel::update(licenses::table.filter(licenses::id.eq_any(&ids)))
        .set((
            licenses::status.eq(action.status()),
            licenses::updated_at.eq(Utc::now()),
        ))
        .execute(conn)?;
    Ok(before)
}

/// The reversal that applies to a license just minted for `payment`, if any: a refund
/// or lost dispute revokes, an open dispute suspends.
pub fn pending_for(conn: &mut PgConnection, payment: &Payment) -> QueryResult<Option<Action>> {
    if !payment.is_known() {
        return Ok(None);
    }
    let by_intent = stripe_reversals::payment_intent_id
        .eq(payment.payment_intent.as_deref())
        .assume_not_null();
    let by_subscription = stripe_reversals::subscription_id
        .eq(payment.subscription.as_deref())
        .assume_not_null();
    let actions: Vec<String> = stripe_reversals::table
        .filter(by_intent.or(by_subscription))
        .select(stripe_reversals::action)
        .load(conn)?;
    Ok(if actions.iter().any(|a| a == "revoke") {
        Some(Action::Revoke)
    } else if actions.iter().any(|a| a == "suspend") {
        Some(Action::Suspend)
    } else {
        None
    })
}
