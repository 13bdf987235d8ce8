//! What the seller's dashboard reads beyond the admin API: the overview, the one
//! search box, the email queue, recent Stripe events and API tokens.

use chrono::{Duration, NaiveDate, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::accounts::{hash_token, new_token};
use super::admin::MAX_PAGE;
use super::key::LicenseKey;
use super::views::LicenseView;
use crate::db::licenses::{self, ListFilter, SearchTerm, StatusCounts};
use crate::db::models::OutboxEmail;
use crate::db::stripe_events::{self, EventSummary};
use crate::db::{api_keys, outbox, products};
use crate::error::AppError;

/// Reads the search box: a UUID is a license id; `cs_`, `pi_`, `sub_`, `cus_` are
/// Stripe ids; anything with `@` is the start of an email; the rest is part of a key
/// (any case, at least 3 characters, so an index can serve it).
pub fn search_term(q: &str) -> Result<Option<SearchTerm>, AppError> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(None);
    }
    if q.len() > 320 {
        return Err(AppError::invalid("q", "must be at most 320 characters"));
    }
    if let Ok(id) = Uuid::parse_str(q) {
        return Ok(Some(SearchTerm::Id(id)));
    }
    let stripe = [
        (
            "cs_",
            SearchTerm::CheckoutSession as fn(String) -> SearchTerm,
        ),
        ("pi_", SearchTerm::PaymentIntent),
        ("sub_", SearchTerm::Subscription),
        ("cus_", SearchTerm::Customer),
    ];
    for (prefix, term) in stripe {
        if q.starts_with(prefix) {
            return Ok(Some(term(q.to_owned())));
        }
    }
    if q.contains('@') {
        return Ok(Some(SearchTerm::EmailPrefix(q.to_lowercase())));
    }
    if let Some(key) = LicenseKey::parse(q) {
        return Ok(Some(SearchTerm::Key(key.into_string())));
    }
    let part: String = q.chars().filter(|c| !c.is_whitespace()).collect();
    if part.chars().count() < 3 {
        return Err(AppError::invalid(
            "q",
            "give at least 3 characters of a key, an email, or a Stripe id (cs_, pi_, sub_, cus_)",
        ));
    }
    Ok(Some(SearchTerm::KeyPart(part.to_uppercase())))
}

#[derive(Debug, Clone, Default)]
pub struct Search {
    pub q: String,
    pub status: String,
    pub product: String,
    pub page: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    pub licenses: Vec<LicenseView>,
    pub page: i64,
    pub has_more: bool,
}

pub const PER_PAGE: i64 = 50;

pub fn search(conn: &mut PgConnection, s: &Search) -> Result<SearchPage, AppError> {
    let term = search_term(&s.q)?;
    let page = s.page.clamp(1, MAX_PAGE);
    let status = match s.status.as_str() {
        "" => None,
        st @ ("active" | "expired" | "suspended" | "revoked") => Some(st.to_owned()),
        _ => {
            return Err(AppError::invalid(
                "status",
                "must be active, expired, suspended or revoked",
            ))
        }
    };
    let product_id = match s.product.trim() {
        "" => None,
        p => Some(
            products::find(conn, p)?
                .ok_or_else(|| AppError::invalid("product", "does not name a product"))?
                .id,
        ),
    };
    let now = Utc::now();
    let filter = ListFilter {
        product_id,
        email: None,
        status,
        now: Some(now),
    };
    let (rows, has_more) = licenses::search(conn, &filter, term.as_ref(), page, PER_PAGE)?;
    Ok(SearchPage {
        licenses: rows
            .into_iter()
            .map(|(l, p)| LicenseView::admin(l, &p, now))
            .collect(),
        page,
        has_more,
    })
}

/// One day of the overview's chart.
#[derive(Debug, Clone, Serialize)]
pub struct Day {
    pub day: NaiveDate,
    pub sold: i64,
    pub activations: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub counts: StatusCounts,
    pub emails_pending: i64,
    pub emails_failed: i64,
    pub days: Vec<Day>,
    pub events: Vec<EventView>,
    pub events_needing_attention: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    #[serde(flatten)]
    pub event: EventSummary,
    /// Ignored or skipped: something the seller may need to look at (an unmapped
    /// price, a session without an email, an event type licensd does not handle).
    pub needs_attention: bool,
}

impl From<EventSummary> for EventView {
    fn from(event: EventSummary) -> Self {
        let o = event.outcome.as_str();
        let needs_attention =
            o.starts_with("ignored") || o.starts_with("skipped") || o.contains("unmapped");
        EventView {
            event,
            needs_attention,
        }
    }
}

pub const CHART_DAYS: i64 = 90;

pub fn overview(conn: &mut PgConnection) -> Result<Overview, AppError> {
    let today = Utc::now().date_naive();
    let first = today - Duration::days(CHART_DAYS - 1);
    let since = first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let (sold, activated) = licenses::per_day(conn, since)?;
    let days = first
        .iter_days()
        .take(CHART_DAYS as usize)
        .map(|day| Day {
            day,
            sold: sold.iter().find(|d| d.day == day).map_or(0, |d| d.n),
            activations: activated.iter().find(|d| d.day == day).map_or(0, |d| d.n),
        })
        .collect();
    let (emails_pending, emails_failed) = outbox::counts(conn)?;
    let events: Vec<EventView> = recent_events(conn, Duration::hours(24), 200)?;
    Ok(Overview {
        counts: licenses::status_counts(conn)?,
        emails_pending,
        emails_failed,
        days,
        events_needing_attention: events.iter().filter(|e| e.needs_attention).count(),
        events,
    })
}

pub fn recent_events(
    conn: &mut PgConnection,
    within: Duration,
    limit: i64,
) -> Result<Vec<EventView>, AppError> {
    Ok(stripe_events::recent(conn, Utc::now() - within, limit)?
        .into_iter()
        .map(EventView::from)
        .collect())
}

/// Pending and failed emails, newest first.
pub fn email_queue(
    conn: &mut PgConnection,
) -> Result<(Vec<OutboxEmail>, Vec<OutboxEmail>), AppError> {
    Ok((
        outbox::in_status(conn, "pending", 200)?,
        outbox::in_status(conn, "failed", 200)?,
    ))
}

/// Queues a failed email again.
pub fn retry_email(conn: &mut PgConnection, id: Uuid) -> Result<(), AppError> {
    outbox::retry(conn, id)?
        .map(|_| ())
        .ok_or_else(|| AppError::not_found("failed email"))
}

/// Creates an admin API token; the token is returned once and only its hash stored.
pub fn create_api_token(conn: &mut PgConnection, name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::invalid("name", "must be 1 to 200 characters"));
    }
    let token = format!("lsd_{}", new_token());
    api_keys::insert(conn, name, &hash_token(&token))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_box_tells_what_it_was_given() {
        let id = Uuid::new_v4();
        assert_eq!(
            search_term(&id.to_string()).unwrap(),
            Some(SearchTerm::Id(id))
        );
        assert_eq!(
            search_term(" cs_test_123 ").unwrap(),
            Some(SearchTerm::CheckoutSession("cs_test_123".into()))
        );
        assert_eq!(
            search_term("cus_9").unwrap(),
            Some(SearchTerm::Customer("cus_9".into()))
        );
        assert_eq!(
            search_term("Ada@Example").unwrap(),
            Some(SearchTerm::EmailPrefix("ada@example".into()))
        );
        assert_eq!(
            search_term("x7k2q").unwrap(),
            Some(SearchTerm::KeyPart("X7K2Q".into()))
        );
        assert!(search_term("ab").is_err());
        assert_eq!(search_term("  ").unwrap(), None);
        let key = LicenseKey::generate(None).into_string();
        assert_eq!(
            search_term(&key.to_lowercase()).unwrap(),
            Some(SearchTerm::Key(key))
        );
    }
}
