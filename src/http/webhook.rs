//! `POST /webhooks/stripe`: verifies the signature over the raw body, then hands the
//! event to `stripe`, which decides what it does.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;

use super::State;
use crate::error::AppError;
use crate::stripe::{self, signature};

/// Stripe events can be larger than API bodies (expanded objects, many line items).
const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks/stripe")
            .app_data(web::PayloadConfig::new(WEBHOOK_BODY_LIMIT))
            .route(web::post().to(receive_stripe_event)),
    );
}

async fn receive_stripe_event(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let secrets = &state.settings.stripe_webhook_secrets;
    if secrets.is_empty() {
        return Err(AppError::StripeNotConfigured);
    }
    let header = req
        .headers()
        .get("stripe-signature")
        .map(|v| v.to_str().unwrap_or(""));
    signature::verify(header, &body, secrets, Utc::now().timestamp())
        .map_err(|e| AppError::InvalidSignature(e.message()))?;
    let (event, raw) = stripe::parse(&body)?;
    let event_id = event.id.clone();
    let handled = stripe::process(
        &state.pool,
        &state.stripe_api,
        state.settings.subscription_grace_days,
        event,
        raw,
    )
    .await?;
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
