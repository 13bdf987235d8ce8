//! Outbound calls to the Stripe API (async-stripe 1.0): a checkout session's line
//! items, all pages, and a subscription's current period end.

use std::fmt;
use std::time::Duration;

use futures_util::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use stripe_checkout::checkout_session::ListLineItemsCheckoutSession;
use stripe_client_core::{RequestBuilder, StripeMethod};

use super::event::{Charge, Invoice, Subscription};

/// Why the Stripe API could not answer; the webhook turns it into a 503 so Stripe retries.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("LICENSD_STRIPE_API_KEY is not set, so checkout line items cannot be fetched")]
    NoApiKey,
    /// Anything that may pass: a network error, a timeout, 429, 5xx, an auth or
    /// request error a seller can fix. Stripe retries the event.
    #[error("Stripe API request failed: {0}")]
    Request(String),
    /// Stripe says the object does not exist (`resource_missing`, 404): asking again
    /// will not make it appear.
    #[error("Stripe has no such object: {message}")]
    Missing { message: String },
}

fn api_error(e: ::stripe::StripeError) -> ApiError {
    use ::stripe::ApiErrorsCode;
    match e {
        ::stripe::StripeError::Stripe(ref err, status)
            if status == 404 || err.code == Some(ApiErrorsCode::ResourceMissing) =>
        {
            ApiError::Missing {
                message: err.message.clone().unwrap_or_default(),
            }
        }
        other => ApiError::Request(other.to_string()),
    }
}

/// One line of a checkout: which price, how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    pub id: String,
    pub price_id: Option<String>,
    pub quantity: u64,
}

/// A Stripe API client for the configured key and base URL. Its `Debug` shows
/// neither the key nor the client.
#[derive(Clone)]
pub struct StripeApi {
    client: Option<::stripe::Client>,
}

impl fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeApi")
            .field("configured", &self.client.is_some())
            .finish()
    }
}

/// How long one Stripe API call may take before the webhook gives up (Stripe waits ~20 s).
const TIMEOUT: Duration = Duration::from_secs(10);

impl StripeApi {
    /// A client for `base` (e.g. `https://api.stripe.com`); without a key every call
    /// fails with [`ApiError::NoApiKey`].
    pub fn new(api_key: Option<&SecretString>, base: &str) -> Result<Self, ApiError> {
        let Some(key) = api_key else {
            return Ok(StripeApi { client: None });
        };
        // async-stripe appends `v1/...` to the base as written, so it must end in '/'.
        let base = format!("{}/", base.trim_end_matches('/'));
        let client = ::stripe::ClientBuilder::new(key.expose_secret())
            .url(base)
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| ApiError::Request(e.to_string()))?;
        Ok(StripeApi {
            client: Some(client),
        })
    }

    fn client(&self) -> Result<&::stripe::Client, ApiError> {
        self.client.as_ref().ok_or(ApiError::NoApiKey)
    }

    /// Every line item of the session, following `has_more` through all pages.
    pub async fn line_items(&self, session_id: &str) -> Result<Vec<LineItem>, ApiError> {
        let client = self.client()?;
        let items: Vec<_> = ListLineItemsCheckoutSession::new(session_id)
            .limit(100)
            .paginate()
            .stream(client)
            .try_collect()
            .await
            .map_err(api_error)?;
        Ok(items
            .into_iter()
            .map(|item| LineItem {
                id: item.id.to_string(),
                price_id: item.price.map(|p| p.id.to_string()),
                quantity: item.quantity.unwrap_or(1),
            })
            .collect())
    }

    /// The end of the subscription's current paid period (unix seconds), read from its
    /// items (current API versions) or from the subscription itself (older ones).
    pub async fn subscription_period_end(
        &self,
        subscription_id: &str,
    ) -> Result<Option<i64>, ApiError> {
        let sub: Subscription = self
            .get(&format!("/subscriptions/{subscription_id}"), None)
            .await?;
        Ok(sub.period_end())
    }

    /// A charge (for its payment intent and, in API versions before 2025-03-31, its invoice).
    pub async fn charge(&self, charge_id: &str) -> Result<Charge, ApiError> {
        self.get(&format!("/charges/{charge_id}"), None).await
    }

    /// The invoice a payment intent paid, if any (`GET /v1/invoice_payments`).
    pub async fn invoice_of_payment(
        &self,
        payment_intent: &str,
    ) -> Result<Option<String>, ApiError> {
        let query = serde_json::json!({
            "payment": { "type": "payment_intent", "payment_intent": payment_intent },
            "limit": 1,
        });
        let list: InvoicePayments = self.get("/invoice_payments", Some(&query)).await?;
        Ok(list.data.into_iter().find_map(|p| p.invoice))
    }

    /// An invoice (for the subscription it bills).
    pub async fn invoice(&self, invoice_id: &str) -> Result<Invoice, ApiError> {
        self.get(&format!("/invoices/{invoice_id}"), None).await
    }

    /// `GET {path}` read leniently as `T`: as an untyped value first, since the typed
    /// crates for charges, invoices and subscriptions are heavy to build and only a
    /// few fields are needed.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: Option<&serde_json::Value>,
    ) -> Result<T, ApiError> {
        let client = self.client()?;
        let mut request = RequestBuilder::new(StripeMethod::Get, path);
        if let Some(query) = query {
            request = request.query(query);
        }
        let value: miniserde::json::Value =
            request.customize().send(client).await.map_err(api_error)?;
        let text = miniserde::json::to_string(&value);
        serde_json::from_str(&text).map_err(|e| ApiError::Request(e.to_string()))
    }
}

/// A page of `GET /v1/invoice_payments`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct InvoicePayments {
    data: Vec<InvoicePayment>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct InvoicePayment {
    #[serde(deserialize_with = "super::event::id_ref")]
    invoice: Option<String>,
}

impl StripeApi {
    /// The subscription object as the API shows it now (for states an event does not carry).
    pub async fn subscription_object(
        &self,
        subscription_id: &str,
    ) -> Result<serde_json::Value, ApiError> {
        let client = self.client()?;
        let value: miniserde::json::Value = RequestBuilder::new(
            StripeMethod::Get,
            format!("/subscriptions/{subscription_id}"),
        )
        .customize()
        .send(client)
        .await
        .map_err(api_error)?;
        serde_json::from_str(&miniserde::json::to_string(&value))
            .map_err(|e| ApiError::Request(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = SecretString::from("sk_live_do_not_print");
        let api = StripeApi::new(Some(&key), "http://127.0.0.1:1").unwrap();
        let shown = format!("{api:?}");
        assert!(!shown.contains("sk_live"), "{shown}");
        assert!(matches!(
            StripeApi::new(None, "http://x").unwrap().client(),
            Err(ApiError::NoApiKey)
        ));
    }
}
