//! The seller's dashboard at `/admin`: every page needs a session, every form a CSRF
//! token; the pages call the same `licensing` functions as the admin API.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, TimeZone, Utc};
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    chart, check_csrf, page, redirect, redirect_setting, set_cookie, Csrf, Layout, PageResult,
    Seller, SELLER_COOKIE,
};
use crate::db::{self, activations::Selector};
use crate::error::AppError;
use crate::http::State;
use crate::licensing::accounts::{self, SignInRefused};
use crate::licensing::admin::{self, UpdateLicense, UpdateProduct};
use crate::licensing::api_keys;
use crate::licensing::check::{self, Code, Deactivated};
use crate::licensing::dashboard::{self, Search};
use crate::licensing::history::{self, Actor};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(overview))
        .route("/", web::get().to(overview))
        .route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/licenses", web::get().to(licenses))
        .route("/licenses/{id}", web::get().to(license))
        .route("/licenses/{id}/status", web::post().to(set_status))
        .route("/licenses/{id}/limits", web::post().to(set_limits))
        .route("/licenses/{id}/resend", web::post().to(resend))
        .route(
            "/licenses/{id}/devices/{device}/free",
            web::post().to(free_device),
        )
        .route("/products", web::get().to(products))
        .route("/products", web::post().to(create_product))
        .route("/products/{id}", web::get().to(product))
        .route("/products/{id}", web::post().to(update_product))
        .route("/emails", web::get().to(emails))
        .route("/emails/{id}/retry", web::post().to(retry_email))
        .route("/stripe-events", web::get().to(stripe_events))
        .route("/tokens", web::get().to(tokens))
        .route("/tokens", web::post().to(create_token))
        .route("/tokens/{id}/revoke", web::post().to(revoke_token));
}

fn layout<'a>(csrf: &'a Csrf, seller: Option<&'a Seller>, section: &'a str) -> Layout<'a> {
    Layout {
        csrf: &csrf.token,
        user: seller.map(|s| s.user.email.as_str()),
        buyer: None,
        section,
    }
}

fn actor(seller: &Seller) -> Actor {
    Actor::User(seller.user.email.clone())
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
struct Plain {
    csrf: String,
}

async fn login_page(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    let csrf = Csrf::of(&req);
    let res = page(
        StatusCode::OK,
        "login.html",
        context! { layout => layout(&csrf, None, "login") },
    );
    csrf.attach(&state, res)
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    email: String,
    password: String,
}

async fn login(
    state: web::Data<State>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let form = form.into_inner();
    let client = state
        .limits
        .client_ip(&req)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let max = state.settings.login_max_attempts;
    let ttl = chrono::Duration::hours(state.settings.session_ttl_hours.into());
    let outcome = db::run(&state.pool, move |conn| {
        accounts::sign_in(conn, &form.email, &form.password, &client, max, ttl)
    })
    .await?;
    match outcome {
        Ok((_, token)) => {
            let max_age = i64::from(state.settings.session_ttl_hours) * 3600;
            let cookie = set_cookie(&state, SELLER_COOKIE, &token, "/admin", max_age);
            Ok(redirect_setting("/admin", &cookie))
        }
        Err(refused) => {
            let csrf = Csrf::of(&req);
            let (status, message) = match refused {
                SignInRefused::BadCredentials => (
                    StatusCode::UNAUTHORIZED,
                    "The email or the password is wrong.",
                ),
                SignInRefused::Throttled => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed sign-ins. Wait 15 minutes and try again.",
                ),
            };
            Ok(page(
                status,
                "login.html",
                context! { layout => layout(&csrf, None, "login"), message },
            ))
        }
    }
}

async fn logout(state: web::Data<State>, req: HttpRequest, form: web::Form<Plain>) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    if let Some(token) = super::cookie(&req, SELLER_COOKIE) {
        db::run(&state.pool, move |conn| accounts::sign_out(conn, &token)).await?;
    }
    let cookie = set_cookie(&state, SELLER_COOKIE, "", "/admin", 0);
    Ok(redirect_setting("/admin/login", &cookie))
}

async fn overview(state: web::Data<State>, req: HttpRequest, seller: Seller) -> PageResult {
    let csrf = Csrf::of(&req);
    let o = db::run(&state.pool, dashboard::overview).await?;
    let svg = minijinja::Value::from_safe_string(chart::svg(&o.days));
    let res = page(
        StatusCode::OK,
        "overview.html",
        context! { layout => layout(&csrf, Some(&seller), "overview"), o, chart => svg },
    );
    Ok(csrf.attach(&state, res))
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    product: String,
    page: Option<i64>,
}

async fn licenses(
    state: web::Data<State>,
    req: HttpRequest,
    seller: Seller,
    query: web::Query<SearchQuery>,
) -> PageResult {
    let csrf = Csrf::of(&req);
    let q = query.into_inner();
    let search = Search {
        q: q.q.clone(),
        status: q.status.clone(),
        product: q.product.clone(),
        page: q.page.unwrap_or(1),
    };
    let (found, products) = db::run(&state.pool, move |conn| {
        Ok((
            dashboard::search(conn, &search)?,
            admin::list_products(conn)?,
        ))
    })
    .await?;
    let res = page(
        StatusCode::OK,
        "licenses.html",
        context! {
            layout => layout(&csrf, Some(&seller), "licenses"),
            found, products, q => q.q, status => q.status, product => q.product,
        },
    );
    Ok(csrf.attach(&state, res))
}

async fn license(
    state: web::Data<State>,
    req: HttpRequest,
    seller: Seller,
    path: web::Path<String>,
) -> PageResult {
    let csrf = Csrf::of(&req);
    let id = path.into_inner();
    let (detail, history) = db::run(&state.pool, move |conn| {
        let detail = admin::get_license(conn, &id)?;
        let history = history::of(conn, detail.license.id)?;
        Ok((detail, history))
    })
    .await?;
    // Alive or dead under the license's heartbeat lease (none: no lease column).
    let now = chrono::Utc::now();
    let leases: Vec<Option<&str>> = detail
        .activations
        .iter()
        .map(|a| crate::licensing::lease::state(a.lease_expires_at, now))
        .collect();
    let leased = leases.iter().any(Option::is_some);
    let stripe_base = if state
        .settings
        .stripe_api_key
        .as_ref()
        .is_some_and(|k| secrecy::ExposeSecret::expose_secret(k).starts_with("sk_live"))
    {
        "https://dashboard.stripe.com"
    } else {
        "https://dashboard.stripe.com/test"
    };
    let res = page(
        StatusCode::OK,
        "license.html",
        context! {
            layout => layout(&csrf, Some(&seller), "licenses"),
            l => detail, history, stripe_base, leases, leased,
        },
    );
    Ok(csrf.attach(&state, res))
}

#[derive(Deserialize)]
struct StatusForm {
    csrf: String,
    status: String,
}

async fn set_status(
    state: web::Data<State>,
    req: HttpRequest,
    seller: Seller,
    path: web::Path<Uuid>,
    form: web::Form<StatusForm>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let (id, actor) = (path.into_inner(), actor(&seller));
    let change = UpdateLicense {
        status: Some(form.into_inner().status),
        ..Default::default()
    };
    db::run(&state.pool, move |conn| {
        admin::update_license(conn, &actor, &id.to_string(), &change)
    })
    .await?;
    Ok(redirect(&format!("/admin/licenses/{id}")))
}

#[derive(Deserialize)]
struct LimitsForm {
    csrf: String,
    /// Empty: unlimited.
    max_activations: String,
    /// `YYYY-MM-DD` (end of that day, UTC); empty: never expires.
    expires_on: String,
}

fn limits_change(form: &LimitsForm) -> Result<UpdateLicense, AppError> {
    let max = match form.max_activations.trim() {
        "" => None,
        n => Some(n.parse::<i64>().map_err(|_| {
            AppError::invalid(
                "max_activations",
                "must be a whole number (empty: unlimited)",
            )
        })?),
    };
    let expires = match form.expires_on.trim() {
        "" => None,
        d => {
            let day = NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                AppError::invalid("expires_on", "must be a date such as 2027-01-31")
            })?;
            let end = day.and_hms_opt(23, 59, 59).unwrap_or_default();
            Some(Utc.from_utc_datetime(&end))
        }
    };
    Ok(UpdateLicense {
        max_activations: Some(max),
        expires_at: Some(expires),
        ..Default::default()
    })
}

async fn set_limits(
    state: web::Data<State>,
    req: HttpRequest,
    seller: Seller,
    path: web::Path<Uuid>,
    form: web::Form<LimitsForm>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let change = limits_change(&form)?;
    let (id, actor) = (path.into_inner(), actor(&seller));
    db::run(&state.pool, move |conn| {
        admin::update_license(conn, &actor, &id.to_string(), &change)
    })
    .await?;
    Ok(redirect(&format!("/admin/licenses/{id}")))
}

async fn resend(
    state: web::Data<State>,
    req: HttpRequest,
    seller: Seller,
    path: web::Path<Uuid>,
    form: web::Form<Plain>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let (id, actor) = (path.into_inner(), actor(&seller));
    db::run(&state.pool, move |conn| {
        admin::resend_email(conn, &actor, &id.to_string())
    })
    .await?;
    state.wake_mailer();
    Ok(redirect(&format!("/admin/licenses/{id}")))
}

async fn free_device(
    state: web::Data<State>,
    req: HttpRequest,
    seller: Seller,
    path: web::Path<(Uuid, Uuid)>,
    form: web::Form<Plain>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let ((id, device), actor) = (path.into_inner(), actor(&seller));
    let outcome = db::run(&state.pool, move |conn| {
        Ok(check::deactivate_by(
            conn,
            &actor,
            &id.to_string(),
            &Selector::Id(device),
        )?)
    })
    .await?;
    match outcome {
        Deactivated::Done(_) => Ok(redirect(&format!("/admin/licenses/{id}"))),
        Deactivated::Refused(Code::NotFound) => Err(AppError::not_found("license").into()),
        Deactivated::Refused(_) => Err(AppError::not_found("device").into()),
    }
}

async fn products(state: web::Data<State>, req: HttpRequest, seller: Seller) -> PageResult {
    let csrf = Csrf::of(&req);
    let products = db::run(&state.pool, admin::list_products).await?;
    let res = page(
        StatusCode::OK,
        "products.html",
        context! { layout => layout(&csrf, Some(&seller), "products"), products },
    );
    Ok(csrf.attach(&state, res))
}

#[derive(Deserialize)]
struct ProductForm {
    csrf: String,
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    max_activations: String,
    #[serde(default)]
    duration_days: String,
    #[serde(default)]
    key_prefix: String,
    /// Stripe price ids, separated by spaces, commas or new lines.
    #[serde(default)]
    prices: String,
    /// Seconds of a device's lease (empty: devices keep their seat until deactivated).
    #[serde(default)]
    heartbeat_seconds: String,
    /// Feature codes, separated like the prices.
    #[serde(default)]
    entitlements: String,
    /// `revoke_access` or `maintain_access` (empty: the default, revoke).
    #[serde(default)]
    expiry_behavior: String,
    /// A checkbox: present ("on") when ticked, absent when not.
    #[serde(default)]
    offline_allowed: Option<String>,
}

/// A list typed into a text area: items separated by spaces, commas or new lines.
fn list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn optional_number(field: &'static str, v: &str) -> Result<Option<i64>, AppError> {
    match v.trim() {
        "" => Ok(None),
        n => n
            .parse()
            .map(Some)
            .map_err(|_| AppError::invalid(field, "must be a whole number (empty: none)")),
    }
}

fn product_change(f: &ProductForm) -> Result<UpdateProduct, AppError> {
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    Ok(UpdateProduct {
        name: Some(f.name.clone()),
        slug: text(&f.slug),
        stripe_price_ids: Some(list(&f.prices)),
        max_activations: Some(optional_number("max_activations", &f.max_activations)?),
        duration_days: Some(optional_number("duration_days", &f.duration_days)?),
        key_prefix: Some(text(&f.key_prefix)),
        heartbeat_seconds: Some(optional_number("heartbeat_seconds", &f.heartbeat_seconds)?),
        entitlements: Some(list(&f.entitlements)),
        expiry_behavior: text(&f.expiry_behavior),
        offline_allowed: Some(f.offline_allowed.is_some()),
    })
}

async fn create_product(
    state: web::Data<State>,
    req: HttpRequest,
    _: Seller,
    form: web::Form<ProductForm>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let c = product_change(&form)?;
    let create = admin::CreateProduct {
        name: c.name.unwrap_or_default(),
        slug: c.slug,
        stripe_price_ids: c.stripe_price_ids.unwrap_or_default(),
        max_activations: c.max_activations.flatten(),
        duration_days: c.duration_days.flatten(),
        key_prefix: c.key_prefix.flatten(),
        heartbeat_seconds: c.heartbeat_seconds.flatten(),
        entitlements: c.entitlements.unwrap_or_default(),
        expiry_behavior: c.expiry_behavior,
        offline_allowed: c.offline_allowed,
    };
    let p = db::run(&state.pool, move |conn| {
        admin::create_product(conn, &create)
    })
    .await?;
    Ok(redirect(&format!("/admin/products/{}", p.id)))
}

async fn product(
    state: web::Data<State>,
    req: HttpRequest,
    seller: Seller,
    path: web::Path<String>,
) -> PageResult {
    let csrf = Csrf::of(&req);
    let id = path.into_inner();
    let p = db::run(&state.pool, move |conn| admin::get_product(conn, &id)).await?;
    let res = page(
        StatusCode::OK,
        "product.html",
        context! { layout => layout(&csrf, Some(&seller), "products"), p },
    );
    Ok(csrf.attach(&state, res))
}

async fn update_product(
    state: web::Data<State>,
    req: HttpRequest,
    _: Seller,
    path: web::Path<Uuid>,
    form: web::Form<ProductForm>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let change = product_change(&form)?;
    let id = path.into_inner();
    db::run(&state.pool, move |conn| {
        admin::update_product(conn, &id.to_string(), &change)
    })
    .await?;
    Ok(redirect(&format!("/admin/products/{id}")))
}

async fn emails(state: web::Data<State>, req: HttpRequest, seller: Seller) -> PageResult {
    let csrf = Csrf::of(&req);
    let (pending, failed) = db::run(&state.pool, dashboard::email_queue).await?;
    let res = page(
        StatusCode::OK,
        "emails.html",
        context! { layout => layout(&csrf, Some(&seller), "emails"), pending => views(pending), failed => views(failed) },
    );
    Ok(csrf.attach(&state, res))
}

/// Emails as the page lists them (the portal's sign-in links are never shown).
fn views(rows: Vec<crate::db::models::OutboxEmail>) -> Vec<minijinja::Value> {
    rows.into_iter()
        .map(|e| {
            let licenses: Vec<Uuid> = e.license_ids.iter().flatten().copied().collect();
            minijinja::context! {
                id => e.id, kind => e.kind, recipient => e.recipient, status => e.status,
                attempts => e.attempts, last_error => e.last_error, created_at => e.created_at,
                next_attempt_at => e.next_attempt_at, licenses,
            }
        })
        .collect()
}

async fn retry_email(
    state: web::Data<State>,
    req: HttpRequest,
    _: Seller,
    path: web::Path<Uuid>,
    form: web::Form<Plain>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let id = path.into_inner();
    db::run(&state.pool, move |conn| dashboard::retry_email(conn, id)).await?;
    state.wake_mailer();
    Ok(redirect("/admin/emails"))
}

async fn stripe_events(state: web::Data<State>, req: HttpRequest, seller: Seller) -> PageResult {
    let csrf = Csrf::of(&req);
    let events = db::run(&state.pool, |conn| {
        dashboard::recent_events(conn, chrono::Duration::days(30), 500)
    })
    .await?;
    let res = page(
        StatusCode::OK,
        "events.html",
        context! { layout => layout(&csrf, Some(&seller), "events"), events },
    );
    Ok(csrf.attach(&state, res))
}

async fn tokens_page(
    state: &State,
    csrf: &Csrf,
    seller: &Seller,
    created: Option<String>,
) -> PageResult {
    let mut tokens = db::run(&state.pool, api_keys::list).await?;
    tokens.reverse();
    Ok(page(
        StatusCode::OK,
        "tokens.html",
        context! { layout => layout(csrf, Some(seller), "tokens"), tokens, created },
    ))
}

async fn tokens(state: web::Data<State>, req: HttpRequest, seller: Seller) -> PageResult {
    let csrf = Csrf::of(&req);
    let res = tokens_page(&state, &csrf, &seller, None).await?;
    Ok(csrf.attach(&state, res))
}

#[derive(Deserialize)]
struct TokenForm {
    csrf: String,
    name: String,
}

async fn create_token(
    state: web::Data<State>,
    req: HttpRequest,
    seller: Seller,
    form: web::Form<TokenForm>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let name = form.into_inner().name;
    let token = db::run(&state.pool, move |conn| {
        dashboard::create_api_token(conn, &name)
    })
    .await?;
    // Shown once, on this response only.
    tokens_page(&state, &Csrf::of(&req), &seller, Some(token)).await
}

async fn revoke_token(
    state: web::Data<State>,
    req: HttpRequest,
    _: Seller,
    path: web::Path<Uuid>,
    form: web::Form<Plain>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let id = path.into_inner();
    db::run(&state.pool, move |conn| {
        api_keys::revoke(conn, &id.to_string())
    })
    .await?;
    Ok(redirect("/admin/tokens"))
}
