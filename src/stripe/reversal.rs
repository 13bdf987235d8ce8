//! Refunds and disputes: which licenses they reach and what they do to them.
//!
//! A payment reaches the licenses minted with its payment intent, and, when it paid a
//! subscription's invoice, that subscription's licenses (charge → invoice →
//! subscription, looked up in [`payment_of`] before any transaction). Each reversal is
//! also remembered (`db::reversals`), because Stripe does not order events: a refund
//! that arrives before its checkout is applied when [`at_mint`] runs, in the minting
//! transaction.

use diesel::PgConnection;
use uuid::Uuid;

use super::api::{ApiError, StripeApi};
use super::event::{self, Charge, CheckoutSession, Dispute, Event};
use crate::db::reversals::{self, Action, Payment};
use crate::error::AppError;
use crate::licensing::history::{self, Actor};

/// The payment a refund or dispute event is about, with the subscription it paid for
/// if any. `None` for other events and for partial refunds.
pub async fn payment_of(event: &Event, api: &StripeApi) -> Result<Option<Payment>, ApiError> {
    let (payment_intent, invoice) = match event.event_type.as_str() {
        "charge.refunded" => match event::object::<Charge>(event) {
            Some(c) if c.refunded == Some(true) => (c.payment_intent, c.invoice),
            _ => return Ok(None),
        },
        "charge.dispute.created" | "charge.dispute.closed" => {
            let Some(d) = event::object::<Dispute>(event) else {
                return Ok(None);
            };
            match (d.payment_intent, d.charge) {
                (Some(pi), _) => (Some(pi), None),
                // Older disputes name only the charge: read it for the rest.
                (None, Some(charge)) => {
                    let c = or_missing(api.charge(&charge).await)?.unwrap_or_default();
                    (c.payment_intent, c.invoice)
                }
                (None, None) => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    let subscription = subscription_paid_by(api, payment_intent.as_deref(), invoice).await?;
    Ok(Some(Payment {
        payment_intent,
        subscription,
    }))
}

/// The subscription whose invoice this payment paid: the invoice is named on the
/// charge (older API versions) or found through `invoice_payments` (current ones).
async fn subscription_paid_by(
    api: &StripeApi,
    payment_intent: Option<&str>,
    invoice: Option<String>,
) -> Result<Option<String>, ApiError> {
    let invoice = match (invoice, payment_intent) {
        (Some(invoice), _) => Some(invoice),
        (None, Some(pi)) => or_missing(api.invoice_of_payment(pi).await)?.flatten(),
        (None, None) => None,
    };
    let Some(invoice) = invoice else {
        return Ok(None);
    };
    let invoice = or_missing(api.invoice(&invoice).await)?;
    Ok(invoice.and_then(|i| i.subscription_id().map(str::to_owned)))
}

/// "No such object" (and no API key, where nothing can be looked up) is an answer:
/// nothing; every other error is passed on, so the event is retried.
fn or_missing<T>(result: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(ApiError::Missing { .. }) => Ok(None),
        Err(ApiError::NoApiKey) => {
            tracing::warn!("LICENSD_STRIPE_API_KEY is not set: a refund or dispute cannot be traced to a subscription");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The charge, dispute or payment intent that identifies a reversal.
fn source_id(event: &Event, payment: &Payment) -> String {
    event
        .data
        .object
        .get("id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or_else(|| payment.payment_intent.clone())
        .or_else(|| payment.subscription.clone())
        .unwrap_or_default()
}

/// Records the reversal and applies it to the licenses that exist.
fn reverse(
    conn: &mut PgConnection,
    event: &Event,
    payment: &Payment,
    action: Action,
) -> Result<Vec<Uuid>, AppError> {
    reversals::record(conn, &source_id(event, payment), payment, action)?;
    let changed = reversals::apply(conn, payment, action)?;
    record_history(conn, &event.id, &changed, action)?;
    Ok(changed.into_iter().map(|(id, _)| id).collect())
}

/// Names the event in the history of each license it changed.
fn record_history(
    conn: &mut PgConnection,
    event_id: &str,
    changed: &[(Uuid, String)],
    action: Action,
) -> Result<(), AppError> {
    let actor = Actor::Stripe(event_id.to_owned());
    for (id, was) in changed {
        let before = serde_json::json!({ "status": was });
        let after = serde_json::json!({ "status": action.status() });
        history::record(conn, &actor, *id, "updated", Some(before), Some(after))?;
    }
    Ok(())
}

/// `charge.refunded`: a full refund revokes.
pub fn refunded(
    conn: &mut PgConnection,
    event: &Event,
    payment: Option<&Payment>,
) -> Result<String, AppError> {
    let Some(charge) = event::object::<Charge>(event) else {
        return Ok("ignored: data.object is not a charge".into());
    };
    if charge.refunded != Some(true) {
        return Ok("ignored: partial refund".into());
    }
    let Some(payment) = payment.filter(|p| p.is_known()) else {
        return Ok("ignored: the charge has no payment intent".into());
    };
    let n = reverse(conn, event, payment, Action::Revoke)?.len();
    Ok(format!("revoked {n} license(s): fully refunded"))
}

/// `charge.dispute.created`: suspends while the dispute is open.
pub fn dispute_created(
    conn: &mut PgConnection,
    event: &Event,
    payment: Option<&Payment>,
) -> Result<String, AppError> {
    let Some(payment) = payment.filter(|p| p.is_known()) else {
        return Ok("ignored: the dispute has no payment intent".into());
    };
    let n = reverse(conn, event, payment, Action::Suspend)?.len();
    Ok(format!("suspended {n} license(s): disputed"))
}

/// `charge.dispute.closed`: won (or a closed warning) reinstates, lost revokes.
pub fn dispute_closed(
    conn: &mut PgConnection,
    event: &Event,
    payment: Option<&Payment>,
) -> Result<String, AppError> {
    let Some(dispute) = event::object::<Dispute>(event) else {
        return Ok("ignored: data.object is not a dispute".into());
    };
    let Some(payment) = payment.filter(|p| p.is_known()) else {
        return Ok("ignored: the dispute has no payment intent".into());
    };
    Ok(match dispute.status.as_deref() {
        Some(status @ ("won" | "warning_closed")) => {
            let n = reverse(conn, event, payment, Action::Reinstate)?.len();
            format!("reinstated {n} license(s): dispute {status}")
        }
        Some("lost") => {
            let n = reverse(conn, event, payment, Action::Revoke)?.len();
            format!("revoked {n} license(s): dispute lost")
        }
        other => format!(
            "ignored: dispute closed with status {}",
            other.unwrap_or("unknown")
        ),
    })
}

/// Applies a refund or dispute that arrived before the licenses of this checkout were
/// minted (in the minting transaction): found by the session's payment intent or
/// subscription. Returns what it did; `event` (the checkout's) is named in the history.
pub fn at_mint(
    conn: &mut PgConnection,
    event: &Event,
    session: &CheckoutSession,
) -> Result<Option<Action>, AppError> {
    let payment = Payment {
        payment_intent: session.payment_intent.clone(),
        subscription: session.subscription.clone(),
    };
    let Some(action) = reversals::pending_for(conn, &payment)? else {
        return Ok(None);
    };
    let changed = reversals::apply(conn, &payment, action)?;
    record_history(conn, &event.id, &changed, action)?;
    Ok(Some(action))
}

/// What [`at_mint`] did, for the event's outcome.
pub fn at_mint_note(action: Action) -> &'static str {
    match action {
        Action::Revoke => {
            ", revoked at once: refunded or lost a dispute before the checkout arrived"
        }
        Action::Suspend => ", suspended at once: disputed before the checkout arrived",
        Action::Reinstate => "",
    }
}
