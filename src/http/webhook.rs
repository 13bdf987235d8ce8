//! `POST /webhooks/stripe`: verifies the signature over the raw body, then hands the
//! event to `stripe`, which decides what it does.

use super::routes::Table;
use crate::metrics;
use crate::route;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;

use super::State;
use crate::error::AppError;
use crate::stripe::{self, signature};

/// Stripe events can be larger than API bodies (expanded objects, many line items).
const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

pub fn routes(t: &mut Table) {
    t.add(route!(Plain, receive_stripe_event).body_limit(WEBHOOK_BODY_LIMIT));
}

#[utoipa::path(post, path = "/webhooks/stripe", tag = "stripe",
    description = "Stripe events (raw body, `Stripe-Signature` header); see Connecting Stripe in README.md.",
    responses(
        (status = 200, description = "Received: `{received, event, duplicate, outcome}`", body = Object),
        (status = 400, description = "`invalid_signature` or a body that is not an event; nothing stored", body = super::error::ErrorBody),
        (status = 408, description = "The body did not arrive within the deadline", body = super::error::ErrorBody),
        (status = 413, description = "The body is over the webhook's size limit", body = super::error::ErrorBody),
        (status = 503, description = "`stripe_not_configured`, `stripe_unavailable` or `database_unavailable`; Stripe retries", body = super::error::ErrorBody),
    ))]
async fn receive_stripe_event(
    state: web::Data<State>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AppError> {
    // A body over the limit is 413, one that stalls past the deadline 408, as on every route.
    let body = body.map_err(|e| super::extract::body_error(&req, &e))?;
    let secrets = &state.settings.stripe_webhook_secrets;
    if secrets.is_empty() {
        return Err(AppError::StripeNotConfigured);
    }
    let header = req
        .headers()
        .get("stripe-signature")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let settings = state.settings.clone();
    // Hashing and parsing up to a megabyte is CPU work: it runs on the blocking pool,
    // so a flood of large bodies cannot stall the HTTP workers (and /healthz).
    let (event, raw) = web::block(move || {
        let secrets = &settings.stripe_webhook_secrets;
        signature::verify(header.as_deref(), &body, secrets, Utc::now().timestamp()).map_err(
            |e| {
                metrics::record_webhook("unknown", "invalid_signature");
                AppError::InvalidSignature(e.message())
            },
        )?;
        stripe::parse(&body)
    })
    .await
    .map_err(AppError::internal)??;
    let event_id = event.id.clone();
    let event_type = event.event_type.clone();
    let handled = stripe::process(
        &state.pool,
        &state.stripe_api,
        stripe::Grace {
            subscription_days: state.settings.subscription_grace_days,
            past_due_days: state.settings.past_due_grace_days,
        },
        event,
        raw,
    )
    .await
    .inspect_err(|_| metrics::record_webhook(&event_type, "error"))?;
    // The label is the kind of outcome, never its free text (bounded series).
    let outcome = if handled.duplicate {
        "duplicate"
    } else {
        "processed"
    };
    metrics::record_webhook(&event_type, outcome);
    // Refunds, disputes and subscription changes alter licenses this process may have
    // cached: its next validate sees them at once (other instances by NOTIFY). A
    // completed checkout only mints new licenses, which are never cached before.
    if !handled.duplicate && event_type != "checkout.session.completed" {
        state.cache.clear();
    }
    if handled.email_queued {
        state.wake_mailer();
    }
    Ok(HttpResponse::Ok().json(json!({
        "received": true,
        "event": event_id,
        "duplicate": handled.duplicate,
        "outcome": handled.outcome,
    })))
}
