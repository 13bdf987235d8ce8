//! The seller's operations on products and licenses, shared by the admin API and the CLI.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use super::history::{self, Actor};
use super::input::{activation_limit, optional_name, Email};
use super::key::{is_valid_prefix, LicenseKey, LicenseRef};
use super::views::{
    ActivationView, Customer, EmailStatus, LicenseDetail, LicenseView, Page, ProductView,
};
use crate::db::models::{License, LicenseChanges, NewLicense, NewProduct, Product, ProductChanges};
use crate::db::{activations, licenses, outbox, products};
use crate::error::AppError;

/// Reads a field that may be absent (`None`), null (`Some(None)`) or set (`Some(Some(v))`).
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    pub name: String,
    pub slug: Option<String>,
    #[serde(default)]
    pub stripe_price_ids: Vec<String>,
    pub max_activations: Option<i64>,
    pub duration_days: Option<i64>,
    pub key_prefix: Option<String>,
    /// Seconds a device stays alive after it last checked in; absent or null: no lease.
    pub heartbeat_seconds: Option<i64>,
    #[serde(default)]
    pub entitlements: Vec<String>,
    /// `revoke_access` (default) or `maintain_access`.
    pub expiry_behavior: Option<String>,
    /// Offline license files may outlive the heartbeat lease.
    pub offline_allowed: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub stripe_price_ids: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_activations: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub duration_days: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub key_prefix: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub heartbeat_seconds: Option<Option<i64>>,
    pub entitlements: Option<Vec<String>>,
    pub expiry_behavior: Option<String>,
    pub offline_allowed: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLicense {
    /// Product id or slug.
    pub product: String,
    pub email: String,
    pub name: Option<String>,
    /// Absent: the product's limit. Null: unlimited.
    #[serde(default, deserialize_with = "nullable")]
    pub max_activations: Option<Option<i64>>,
    /// Absent: now plus the product's duration. Null: perpetual.
    #[serde(default, deserialize_with = "nullable")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub metadata: Option<serde_json::Value>,
    pub send_email: Option<bool>,
    /// Overrides the product's lease (0: no lease). Absent or null: the product's.
    pub heartbeat_seconds: Option<i64>,
    /// Overrides the product's entitlements. Absent or null: the product's.
    pub entitlements: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateLicense {
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_activations: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub metadata: Option<serde_json::Value>,
    /// Null: back to the product's lease; 0: no lease for this license.
    #[serde(default, deserialize_with = "nullable")]
    pub heartbeat_seconds: Option<Option<i64>>,
    /// Null: back to the product's entitlements.
    #[serde(default, deserialize_with = "nullable")]
    pub entitlements: Option<Option<Vec<String>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListLicenses {
    pub product: Option<String>,
    pub email: Option<String>,
    pub status: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
    /// The admin token's query form (`?api_key=`), read by the `Admin` extractor;
    /// accepted here so the query is not refused as unknown, never used.
    #[serde(default, rename = "api_key")]
    pub _api_key: Option<serde::de::IgnoredAny>,
}

pub const MAX_PER_PAGE: i64 = 200;

/// Turns unique violations of known constraints into the 409 a seller can act on.
fn conflict_or(e: DbError) -> AppError {
    if let DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &e {
        match info.constraint_name() {
            Some("products_slug_key") => {
                return AppError::conflict("slug_taken", "a product with this slug already exists")
            }
            Some("product_prices_pkey") => {
                return AppError::conflict(
                    "price_already_mapped",
                    "one of the stripe_price_ids is already mapped to a product",
                )
            }
            _ => {}
        }
    }
    AppError::from(e)
}

fn product_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::invalid("name", "must be 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

fn slug(input: &str) -> Result<String, AppError> {
    let s = input.trim().to_ascii_lowercase();
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && s.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(s)
    } else {
        Err(AppError::invalid(
            "slug",
            "must be 1 to 64 of a-z, 0-9, '-' or '_', starting with a letter or digit",
        ))
    }
}

/// A slug made from a product name: "My App 2" → "my-app-2".
fn slug_from_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(64).collect();
    if out.is_empty() {
        "product".to_owned()
    } else {
        out.trim_end_matches('-').to_owned()
    }
}

fn price_ids(ids: &[String]) -> Result<Vec<String>, AppError> {
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let id = id.trim();
        if id.is_empty() || id.len() > 255 || id.chars().any(char::is_whitespace) {
            return Err(AppError::invalid(
                "stripe_price_ids",
                "must hold Stripe price ids such as price_123",
            ));
        }
        if !out.iter().any(|o| o == id) {
            out.push(id.to_owned());
        }
    }
    Ok(out)
}

fn prefix(input: &str) -> Result<String, AppError> {
    let p = input.trim().to_ascii_uppercase();
    if is_valid_prefix(&p) {
        Ok(p)
    } else {
        Err(AppError::invalid(
            "key_prefix",
            "must be 1 to 16 letters or digits",
        ))
    }
}

fn duration_days(n: i64) -> Result<i32, AppError> {
    i32::try_from(n)
        .ok()
        .filter(|d| (1..=36_600).contains(d))
        .ok_or_else(|| {
            AppError::invalid(
                "duration_days",
                "must be a whole number of days from 1 to 36600 (or null for perpetual)",
            )
        })
}

/// Longest lease: a year.
const MAX_HEARTBEAT_SECONDS: i64 = 31_536_000;

/// A lease in seconds, from 10 s to a year; `allow_zero` for a license's "no lease".
fn heartbeat_seconds(n: i64, allow_zero: bool) -> Result<i32, AppError> {
    if (allow_zero && n == 0) || (10..=MAX_HEARTBEAT_SECONDS).contains(&n) {
        // Bounded above, so it fits.
        return Ok(n as i32);
    }
    let zero = if allow_zero { " (0: no lease)" } else { "" };
    Err(AppError::invalid(
        "heartbeat_seconds",
        format!("must be from 10 to {MAX_HEARTBEAT_SECONDS} seconds{zero}, or null"),
    ))
}

/// Feature codes: 1 to 64 of letters, digits, `_ . : -`; at most 100, duplicates dropped.
pub fn entitlements(codes: &[String]) -> Result<Vec<String>, AppError> {
    let mut out: Vec<String> = Vec::with_capacity(codes.len());
    for code in codes {
        let code = code.trim();
        let ok = (1..=64).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
        if !ok {
            return Err(AppError::invalid(
                "entitlements",
                "must be a list of feature codes of 1 to 64 letters, digits, '_', '.', ':' or '-'",
            ));
        }
        if !out.iter().any(|o| o == code) {
            out.push(code.to_owned());
        }
    }
    if out.len() > 100 {
        return Err(AppError::invalid(
            "entitlements",
            "must hold at most 100 codes",
        ));
    }
    Ok(out)
}

fn expiry_behavior(v: &str) -> Result<String, AppError> {
    match v.trim() {
        s @ ("revoke_access" | "maintain_access") => Ok(s.to_owned()),
        _ => Err(AppError::invalid(
            "expiry_behavior",
            "must be revoke_access or maintain_access",
        )),
    }
}

/// A `max_activations` that may be absent, null (unlimited) or a limit.
fn nullable_limit(v: Option<Option<i64>>) -> Result<Option<Option<i32>>, AppError> {
    v.map(|v| {
        v.map(|n| activation_limit("max_activations", n))
            .transpose()
    })
    .transpose()
}

fn product_view(conn: &mut PgConnection, p: Product) -> Result<ProductView, AppError> {
    let mut prices = products::prices_of(conn, &[p.id])?;
    let ids = prices.remove(&p.id).unwrap_or_default();
    Ok(ProductView::new(p, ids))
}

pub fn create_product(
    conn: &mut PgConnection,
    req: &CreateProduct,
) -> Result<ProductView, AppError> {
    let name = product_name(&req.name)?;
    let slug = match &req.slug {
        Some(s) => slug(s)?,
        None => slug_from_name(&name),
    };
    let max_activations = req
        .max_activations
        .map(|n| activation_limit("max_activations", n))
        .transpose()?;
    let duration = req.duration_days.map(duration_days).transpose()?;
    let key_prefix = req.key_prefix.as_deref().map(prefix).transpose()?;
    let prices = price_ids(&req.stripe_price_ids)?;
    let heartbeat = req
        .heartbeat_seconds
        .map(|n| heartbeat_seconds(n, false))
        .transpose()?;
    let behavior = req
        .expiry_behavior
        .as_deref()
        .map(expiry_behavior)
        .transpose()?
        .unwrap_or_else(|| "revoke_access".to_owned());
    let codes = entitlements(&req.entitlements)?;
    conn.transaction(|conn| {
        let new = NewProduct {
            slug: &slug,
            name: &name,
            max_activations,
            duration_days: duration,
            key_prefix: key_prefix.as_deref(),
            heartbeat_seconds: heartbeat,
            entitlements: codes,
            expiry_behavior: &behavior,
            offline_allowed: req.offline_allowed.unwrap_or(false),
        };
        let product = products::insert(conn, &new).map_err(conflict_or)?;
        products::set_prices(conn, product.id, &prices).map_err(conflict_or)?;
        Ok(ProductView::new(product, prices))
    })
}

pub fn find_product(conn: &mut PgConnection, id_or_slug: &str) -> Result<Product, AppError> {
    products::find(conn, id_or_slug.trim())?.ok_or_else(|| AppError::not_found("product"))
}

pub fn get_product(conn: &mut PgConnection, id_or_slug: &str) -> Result<ProductView, AppError> {
    let p = find_product(conn, id_or_slug)?;
    product_view(conn, p)
}

pub fn list_products(conn: &mut PgConnection) -> Result<Vec<ProductView>, AppError> {
    let all = products::list(conn)?;
    let ids: Vec<Uuid> = all.iter().map(|p| p.id).collect();
    let mut prices = products::prices_of(conn, &ids)?;
    Ok(all
        .into_iter()
        .map(|p| {
            let ids = prices.remove(&p.id).unwrap_or_default();
            ProductView::new(p, ids)
        })
        .collect())
}

pub fn update_product(
    conn: &mut PgConnection,
    id_or_slug: &str,
    req: &UpdateProduct,
) -> Result<ProductView, AppError> {
    let changes = ProductChanges {
        name: req.name.as_deref().map(product_name).transpose()?,
        slug: req.slug.as_deref().map(slug).transpose()?,
        max_activations: nullable_limit(req.max_activations)?,
        duration_days: req
            .duration_days
            .map(|v| v.map(duration_days).transpose())
            .transpose()?,
        key_prefix: req
            .key_prefix
            .as_ref()
            .map(|v| v.as_deref().map(prefix).transpose())
            .transpose()?,
        heartbeat_seconds: req
            .heartbeat_seconds
            .map(|v| v.map(|n| heartbeat_seconds(n, false)).transpose())
            .transpose()?,
        entitlements: req.entitlements.as_deref().map(entitlements).transpose()?,
        expiry_behavior: req
            .expiry_behavior
            .as_deref()
            .map(expiry_behavior)
            .transpose()?,
        offline_allowed: req.offline_allowed,
        updated_at: Some(Utc::now()),
    };
    let prices = req.stripe_price_ids.as_deref().map(price_ids).transpose()?;
    conn.transaction(|conn| {
        let product = find_product(conn, id_or_slug)?;
        let product = products::update(conn, product.id, &changes).map_err(conflict_or)?;
        if let Some(prices) = &prices {
            products::set_prices(conn, product.id, prices).map_err(conflict_or)?;
        }
        product_view(conn, product)
    })
}

/// Resolves `{id|key}` from a path: a UUID is an id, anything else is read as a key.
pub fn find_license(
    conn: &mut PgConnection,
    id_or_key: &str,
) -> Result<(License, Product), AppError> {
    let lookup = LicenseRef::parse(id_or_key).ok_or_else(|| AppError::not_found("license"))?;
    licenses::find(conn, &lookup.as_str())?.ok_or_else(|| AppError::not_found("license"))
}

fn metadata(value: serde_json::Value) -> Result<serde_json::Value, AppError> {
    if value.is_object() {
        Ok(value)
    } else {
        Err(AppError::invalid("metadata", "must be a JSON object"))
    }
}

/// Creates a license by hand and, unless `send_email` is false, queues its email in
/// the same transaction.
pub fn create_license(
    conn: &mut PgConnection,
    actor: &Actor,
    req: &CreateLicense,
) -> Result<LicenseView, AppError> {
    let email = Email::parse("email", &req.email)?;
    let customer_name = optional_name("name", req.name.as_deref(), 200)?;
    let metadata = req
        .metadata
        .clone()
        .map(metadata)
        .transpose()?
        .unwrap_or_else(|| serde_json::json!({}));
    let max_override = nullable_limit(req.max_activations)?;
    let heartbeat = req
        .heartbeat_seconds
        .map(|n| heartbeat_seconds(n, true))
        .transpose()?;
    let codes = req.entitlements.as_deref().map(entitlements).transpose()?;
    conn.transaction(|conn| {
        let product = products::find(conn, req.product.trim())?.ok_or_else(|| {
            AppError::invalid(
                "product",
                "does not name an existing product (give its id or slug)",
            )
        })?;
        let now = Utc::now();
        let new = NewLicense {
            key: LicenseKey::generate(product.key_prefix.as_deref()).into_string(),
            product_id: product.id,
            email: email.as_str().to_owned(),
            customer_name,
            max_activations: max_override.unwrap_or(product.max_activations),
            expires_at: req.expires_at.unwrap_or_else(|| {
                product
                    .duration_days
                    .map(|d| now + Duration::days(d.into()))
            }),
            source: "manual".to_owned(),
            metadata,
            heartbeat_seconds: heartbeat,
            entitlements: codes,
            ..Default::default()
        };
        let license = licenses::insert(conn, &new)?;
        history::record(
            conn,
            actor,
            license.id,
            "created",
            None,
            Some(history::snapshot(&license)),
        )?;
        if req.send_email.unwrap_or(true) {
            queue_email(conn, actor, &license)?;
        }
        Ok(LicenseView::admin(license, &product, now))
    })
}

pub fn get_license(conn: &mut PgConnection, id_or_key: &str) -> Result<LicenseDetail, AppError> {
    let (license, product) = find_license(conn, id_or_key)?;
    let activations = activations::list_for(conn, license.id)?;
    let email_status = outbox::latest_for_license(conn, license.id)?.map(EmailStatus::from);
    let customer = Customer {
        email: license.email.clone(),
        name: license.customer_name.clone(),
    };
    let activations = activations
        .into_iter()
        .map(|a| ActivationView::leased(a, &license, &product))
        .collect();
    Ok(LicenseDetail {
        license: LicenseView::admin(license, &product, Utc::now()),
        activations,
        customer,
        email_status,
    })
}

/// Highest page number accepted by the license list.
pub const MAX_PAGE: i64 = 1_000_000;

pub fn list_licenses(
    conn: &mut PgConnection,
    req: &ListLicenses,
) -> Result<Page<LicenseView>, AppError> {
    let page = req.page.unwrap_or(1);
    // Bounded so that the row offset cannot overflow (found by schemathesis).
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(AppError::invalid(
            "page",
            format!("must be from 1 to {MAX_PAGE}"),
        ));
    }
    let per_page = req.per_page.unwrap_or(50);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(AppError::invalid(
            "per_page",
            format!("must be from 1 to {MAX_PER_PAGE}"),
        ));
    }
    if let Some(s) = &req.status {
        if !["active", "suspended", "revoked", "expired"].contains(&s.as_str()) {
            return Err(AppError::invalid(
                "status",
                "must be one of active, suspended, revoked, expired",
            ));
        }
    }
    let product_id = match req
        .product
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(p) => Some(
            products::find(conn, p)?
                .ok_or_else(|| {
                    AppError::invalid(
                        "product",
                        "does not name an existing product (give its id or slug)",
                    )
                })?
                .id,
        ),
        None => None,
    };
    let now = Utc::now();
    let filter = licenses::ListFilter {
        product_id,
        email: req
            .email
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        status: req.status.clone(),
        now: Some(now),
    };
    let (rows, total) = licenses::list(conn, &filter, page, per_page)?;
    Ok(Page {
        data: rows
            .into_iter()
            .map(|(l, p)| LicenseView::admin(l, &p, now))
            .collect(),
        page,
        per_page,
        total,
    })
}

pub fn update_license(
    conn: &mut PgConnection,
    actor: &Actor,
    id_or_key: &str,
    req: &UpdateLicense,
) -> Result<LicenseView, AppError> {
    let status = match req.status.as_deref() {
        None => None,
        Some(s @ ("active" | "suspended" | "revoked")) => Some(s.to_owned()),
        Some(_) => {
            return Err(AppError::invalid(
                "status",
                "must be one of active, suspended, revoked",
            ))
        }
    };
    let changes = LicenseChanges {
        status,
        max_activations: nullable_limit(req.max_activations)?,
        expires_at: req.expires_at,
        metadata: req.metadata.clone().map(metadata).transpose()?,
        heartbeat_seconds: req
            .heartbeat_seconds
            .map(|v| v.map(|n| heartbeat_seconds(n, true)).transpose())
            .transpose()?,
        entitlements: req
            .entitlements
            .as_ref()
            .map(|v| v.as_deref().map(entitlements).transpose())
            .transpose()?,
        updated_at: Some(Utc::now()),
    };
    conn.transaction(|conn| {
        let (before, product) = find_license(conn, id_or_key)?;
        let license = licenses::update(conn, before.id, &changes)?;
        history::record_update(conn, actor, &before, &license, "updated")?;
        Ok(LicenseView::admin(license, &product, Utc::now()))
    })
}

/// Switches a whole license on (`active`) or off (`suspended`), as the CheckoutKeys
/// API's activate/deactivate does. Switching off leaves a revoked license revoked:
/// it is already off, and a refund's revocation must not soften into a suspension.
pub fn set_license_enabled(
    conn: &mut PgConnection,
    actor: &Actor,
    id_or_key: &str,
    enabled: bool,
) -> Result<LicenseView, AppError> {
    conn.transaction(|conn| {
        let (license, product) = find_license(conn, id_or_key)?;
        if !enabled && license.status == "revoked" {
            return Ok(LicenseView::admin(license, &product, Utc::now()));
        }
        let status = if enabled { "active" } else { "suspended" };
        let changes = UpdateLicense {
            status: Some(status.to_owned()),
            ..Default::default()
        };
        update_license(conn, actor, &license.id.to_string(), &changes)
    })
}

/// Every change to a license, oldest first (`GET /v1/licenses/{id|key}/history`).
pub fn license_history(
    conn: &mut PgConnection,
    id_or_key: &str,
) -> Result<Vec<history::HistoryView>, AppError> {
    let (license, _) = find_license(conn, id_or_key)?;
    Ok(history::of(conn, license.id)?)
}

/// Most emails listing one license that may be queued in an hour (resends included).
pub const EMAILS_PER_LICENSE_PER_HOUR: i64 = 5;

/// What a resend did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resent {
    pub email_id: Uuid,
    /// An email of this license was still waiting to go out: the resend joined it.
    pub coalesced: bool,
}

/// Queues the license email again (`POST /v1/licenses/{id}/resend-email`). A resend
/// while the license's email is still pending joins that email; past
/// [`EMAILS_PER_LICENSE_PER_HOUR`] it is refused. Resends of one license are
/// serialised on its row, so twenty at once queue one email.
pub fn resend_email(
    conn: &mut PgConnection,
    actor: &Actor,
    id_or_key: &str,
) -> Result<Resent, AppError> {
    let (license, _) = find_license(conn, id_or_key)?;
    conn.transaction(|conn| {
        licenses::lock(conn, license.id)?;
        if let Some(email_id) = outbox::hurry_pending(conn, license.id, &license.email)? {
            return Ok(Resent {
                email_id,
                coalesced: true,
            });
        }
        let now = chrono::Utc::now();
        let hour = chrono::Duration::hours(1);
        let (queued, oldest) = outbox::queued_since(conn, license.id, now - hour)?;
        if queued >= EMAILS_PER_LICENSE_PER_HOUR {
            let retry_after = oldest.map_or(3600, |t| (t + hour - now).num_seconds().max(1));
            return Err(AppError::LimitReached {
                code: "email_limit",
                message: format!(
                    "this license's email was queued {queued} times in the last hour; the limit is {EMAILS_PER_LICENSE_PER_HOUR} emails per license per hour (retry after {retry_after} s)"
                ),
                retry_after_secs: retry_after as u64,
            });
        }
        let email_id = queue_email(conn, actor, &license)?;
        Ok(Resent {
            email_id,
            coalesced: false,
        })
    })
}

/// Queues the license email of one license and records it in its history.
fn queue_email(
    conn: &mut PgConnection,
    actor: &Actor,
    license: &License,
) -> Result<Uuid, AppError> {
    let id = outbox::enqueue_license_email(conn, &license.email, &[license.id])?;
    history::record(
        conn,
        actor,
        license.id,
        "email_queued",
        None,
        Some(serde_json::json!({ "email_id": id, "to": license.email })),
    )?;
    Ok(id)
}

/// The license a compatibility API's numeric id names (the first 48 bits of its UUID;
/// see `http::compat::numeric_id`).
pub fn find_license_by_number(
    conn: &mut PgConnection,
    number: u64,
) -> Result<(License, Product), AppError> {
    let id =
        licenses::id_with_prefix(conn, number)?.ok_or_else(|| AppError::not_found("license"))?;
    find_license(conn, &id.to_string())
}

/// One page of activations, of the license `id_or_key` names or of every license.
pub fn list_activations(
    conn: &mut PgConnection,
    license: Option<Uuid>,
    page: i64,
    per_page: i64,
) -> Result<(Vec<crate::db::models::Activation>, i64), AppError> {
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(AppError::invalid(
            "page",
            format!("must be from 1 to {MAX_PAGE}"),
        ));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(AppError::invalid(
            "per_page",
            format!("must be from 1 to {MAX_PER_PAGE}"),
        ));
    }
    Ok(activations::page(conn, license, page, per_page)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_names() {
        assert_eq!(slug_from_name("My App 2"), "my-app-2");
        assert_eq!(slug_from_name("  --Ünïcode!! "), "n-code");
        assert_eq!(slug_from_name("!!!"), "product");
    }
}
