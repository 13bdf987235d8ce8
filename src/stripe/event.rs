//! Stripe events, read leniently: only the fields licensd uses are declared, every one
//! optional, enum-like values kept as strings, and an id that Stripe may send either
//! as a string or as an expanded object is accepted in both forms. Unknown fields,
//! event types and enum values never fail.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The envelope of every event.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// When Stripe created the event (unix seconds): orders a subscription's states.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub created: Option<i64>,
    #[serde(default)]
    pub data: EventData,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventData {
    #[serde(default)]
    pub object: Value,
}

/// `"cus_123"` or `{"id": "cus_123", ...}` (expanded), read as the id; anything else as none.
pub(crate) fn id_ref<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Object(o) => o
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        _ => None,
    })
}

/// A string, or none for null or any other JSON type.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(Value::deserialize(d)?.as_bool())
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Value::deserialize(d)?.as_i64())
}

/// `checkout.session.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CheckoutSession {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// `payment`, `subscription`, `setup`.
    #[serde(deserialize_with = "lenient_string")]
    pub mode: Option<String>,
    /// `paid`, `unpaid`, `no_payment_required`.
    #[serde(deserialize_with = "lenient_string")]
    pub payment_status: Option<String>,
    pub customer_details: Option<CustomerDetails>,
    #[serde(deserialize_with = "lenient_string")]
    pub customer_email: Option<String>,
    #[serde(deserialize_with = "id_ref")]
    pub customer: Option<String>,
    #[serde(deserialize_with = "id_ref")]
    pub payment_intent: Option<String>,
    #[serde(deserialize_with = "id_ref")]
    pub subscription: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CustomerDetails {
    #[serde(deserialize_with = "lenient_string")]
    pub email: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub name: Option<String>,
}

impl CheckoutSession {
    /// Where the keys go: the email the buyer typed at checkout.
    pub fn buyer_email(&self) -> Option<&str> {
        self.customer_details
            .as_ref()
            .and_then(|c| c.email.as_deref())
            .or(self.customer_email.as_deref())
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }

    pub fn buyer_name(&self) -> Option<&str> {
        self.customer_details
            .as_ref()
            .and_then(|c| c.name.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty())
    }

    pub fn is_paid(&self) -> bool {
        matches!(
            self.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        )
    }

    pub fn is_subscription(&self) -> bool {
        self.mode.as_deref() == Some("subscription") || self.subscription.is_some()
    }
}

/// `charge.refunded`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Charge {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// True only once the whole amount is refunded.
    #[serde(deserialize_with = "lenient_bool")]
    pub refunded: Option<bool>,
    #[serde(deserialize_with = "id_ref")]
    pub payment_intent: Option<String>,
    /// The invoice the charge paid: API versions before 2025-03-31 (basil) only.
    #[serde(deserialize_with = "id_ref")]
    pub invoice: Option<String>,
}

/// `charge.dispute.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Dispute {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// `won`, `lost`, `warning_closed`, `needs_response`, ...
    #[serde(deserialize_with = "lenient_string")]
    pub status: Option<String>,
    #[serde(deserialize_with = "id_ref")]
    pub payment_intent: Option<String>,
    #[serde(deserialize_with = "id_ref")]
    pub charge: Option<String>,
}

/// `invoice.paid`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Invoice {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// API versions before 2025-03-31 (basil).
    #[serde(deserialize_with = "id_ref")]
    pub subscription: Option<String>,
    /// API versions from 2025-03-31 (basil) on.
    pub parent: Option<InvoiceParent>,
    pub lines: Option<InvoiceLines>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InvoiceParent {
    pub subscription_details: Option<SubscriptionDetails>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SubscriptionDetails {
    #[serde(deserialize_with = "id_ref")]
    pub subscription: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InvoiceLines {
    pub data: Vec<InvoiceLine>,
    #[serde(deserialize_with = "lenient_bool")]
    pub has_more: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InvoiceLine {
    pub period: Option<Period>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Period {
    #[serde(deserialize_with = "lenient_i64")]
    pub end: Option<i64>,
}

impl Invoice {
    pub fn subscription_id(&self) -> Option<&str> {
        self.parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .and_then(|d| d.subscription.as_deref())
            .or(self.subscription.as_deref())
    }

    /// The end of the period this invoice paid for: the latest line period end.
    pub fn period_end(&self) -> Option<i64> {
        self.lines
            .as_ref()?
            .data
            .iter()
            .filter_map(|l| l.period.as_ref()?.end)
            .max()
    }
}

/// `customer.subscription.*`, and the subscription fetched from the API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Subscription {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// API versions before 2025-03-31 (basil) carry the period on the subscription...
    #[serde(deserialize_with = "lenient_i64")]
    pub current_period_end: Option<i64>,
    /// ...later ones on each subscription item.
    pub items: Option<SubscriptionItems>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SubscriptionItems {
    pub data: Vec<SubscriptionItem>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SubscriptionItem {
    #[serde(deserialize_with = "lenient_i64")]
    pub current_period_end: Option<i64>,
}

impl Subscription {
    /// The end of the current paid period, wherever this API version puts it.
    pub fn period_end(&self) -> Option<i64> {
        let from_items = self
            .items
            .as_ref()
            .and_then(|i| i.data.iter().filter_map(|i| i.current_period_end).max());
        from_items.or(self.current_period_end)
    }
}

/// Reads `data.object` as `T`; `None` only when it is not a JSON object at all.
pub fn object<T: for<'de> Deserialize<'de>>(event: &Event) -> Option<T> {
    T::deserialize(&event.data.object).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(object: Value) -> Event {
        serde_json::from_value(json!({
            "id": "evt_1", "object": "event", "type": "x", "api_version": "2099-01-01.future",
            "data": { "object": object, "previous_attributes": {} }, "extra": [1, 2]
        }))
        .unwrap()
    }

    #[test]
    fn unknown_fields_odd_types_and_new_enum_values_are_fine() {
        let e = event(json!({
            "id": "cs_1", "object": "checkout.session", "mode": "brand_new_mode",
            "payment_status": 42, "customer": {"id": "cus_9", "object": "customer"},
            "payment_intent": null, "subscription": ["nonsense"],
            "customer_details": {"email": "a@b.c", "name": null, "phone": {"x": 1}}
        }));
        let s: CheckoutSession = object(&e).unwrap();
        assert_eq!(s.id.as_deref(), Some("cs_1"));
        assert_eq!(s.customer.as_deref(), Some("cus_9"));
        assert_eq!(s.payment_intent, None);
        assert_eq!(s.subscription, None);
        assert_eq!(s.payment_status, None);
        assert!(!s.is_paid());
        assert_eq!(s.buyer_email(), Some("a@b.c"));
        assert_eq!(s.buyer_name(), None);
    }

    #[test]
    fn invoices_name_their_subscription_in_either_place() {
        let new: Invoice = object(&event(json!({
            "parent": {"type": "subscription_details",
                       "subscription_details": {"subscription": "sub_new"}},
            "lines": {"data": [{"period": {"start": 1, "end": 100}}, {"period": {"end": 200}}]}
        })))
        .unwrap();
        assert_eq!(new.subscription_id(), Some("sub_new"));
        assert_eq!(new.period_end(), Some(200));
        let old: Invoice = object(&event(json!({"subscription": "sub_old"}))).unwrap();
        assert_eq!(old.subscription_id(), Some("sub_old"));
        assert_eq!(old.period_end(), None);
    }

    #[test]
    fn subscription_period_end_from_items_or_top_level() {
        let s: Subscription = serde_json::from_value(json!({
            "id": "sub_1", "items": {"data": [{"current_period_end": 5}, {"current_period_end": 9}]}
        }))
        .unwrap();
        assert_eq!(s.period_end(), Some(9));
        let old: Subscription =
            serde_json::from_value(json!({"id": "sub_1", "current_period_end": 7})).unwrap();
        assert_eq!(old.period_end(), Some(7));
    }

    #[test]
    fn non_object_data_reads_as_nothing_rather_than_failing() {
        let e = event(json!("a string"));
        assert!(object::<Charge>(&e).is_none());
        let e: Event = serde_json::from_value(json!({"id": "evt", "type": "t"})).unwrap();
        assert!(object::<Charge>(&e).is_none());
    }
}
