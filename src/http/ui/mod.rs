//! The two faces in the binary: the seller's dashboard at `/admin` and the buyer's
//! portal at `/portal`. Server-rendered HTML (minijinja, auto-escaped, templates and
//! CSS compiled in), no script at all, and a Content-Security-Policy that forbids
//! inline script on every page. Handlers call the same `licensing` functions as the
//! JSON API.

mod admin;
mod chart;
mod portal;

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use super::State;
use crate::db::{self, web::SessionOwner, web::User};
use crate::error::AppError;
use crate::licensing::accounts;

/// Every page: scripts from nowhere, styles and images from here only, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = include_str!("templates/style.css");

pub const SELLER_COOKIE: &str = "licensd_session";
pub const BUYER_COOKIE: &str = "licensd_portal";
pub const CSRF_COOKIE: &str = "licensd_csrf";

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("licenses.html", include_str!("templates/licenses.html")),
    ("license.html", include_str!("templates/license.html")),
    ("products.html", include_str!("templates/products.html")),
    ("product.html", include_str!("templates/product.html")),
    (
        "product_form.html",
        include_str!("templates/product_form.html"),
    ),
    ("emails.html", include_str!("templates/emails.html")),
    ("events.html", include_str!("templates/events.html")),
    ("tokens.html", include_str!("templates/tokens.html")),
    (
        "portal_start.html",
        include_str!("templates/portal_start.html"),
    ),
    (
        "portal_signin.html",
        include_str!("templates/portal_signin.html"),
    ),
    (
        "portal_licenses.html",
        include_str!("templates/portal_licenses.html"),
    ),
];

fn templates() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        // `.html` templates escape every value unless it is marked safe (only the chart is).
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_filter("dt", datetime);
        env.add_filter("compact", compact);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        env
    })
}

/// `2026-11-25T13:33:36.94Z` → `2026-11-25 13:33`.
fn datetime(v: String) -> String {
    let s: String = v.chars().take(16).collect();
    s.replace('T', " ")
}

/// A JSON value on one line (history before/after); empty for none.
fn compact(v: minijinja::Value) -> String {
    if v.is_none() || v.is_undefined() {
        return String::new();
    }
    serde_json::to_string(&v).unwrap_or_default()
}

/// Renders a page with `status`.
pub fn page(status: StatusCode, name: &str, ctx: minijinja::Value) -> HttpResponse {
    match templates().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(template = name, error = %e, "page did not render");
            HttpResponse::InternalServerError()
                .content_type("text/html; charset=utf-8")
                .body("<!doctype html><title>Error</title><p>Internal error.</p>")
        }
    }
}

/// What a dashboard or portal handler fails with: a trip to a sign-in page, or an
/// error page saying what went wrong.
#[derive(Debug)]
pub enum WebError {
    SignIn(&'static str),
    App(AppError),
}

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        WebError::App(e)
    }
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebError::SignIn(to) => write!(f, "sign in at {to}"),
            WebError::App(e) => e.fmt(f),
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignIn(_) => StatusCode::SEE_OTHER,
            WebError::App(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebError::SignIn(to) => redirect(to),
            WebError::App(e) => {
                if e.status_code().is_server_error() {
                    // Logs the cause chain the way the JSON API does.
                    let _ = e.error_response();
                }
                let message = match e {
                    AppError::Internal(_) => "Something went wrong on our side.".to_owned(),
                    other => other.to_string(),
                };
                page(
                    e.status_code(),
                    "error.html",
                    minijinja::context! { message, status => e.status_code().as_u16() },
                )
            }
        }
    }
}

pub type PageResult = Result<HttpResponse, WebError>;

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// A redirect that also sets a cookie.
pub fn redirect_setting(to: &str, cookie: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .append_header((header::SET_COOKIE, cookie))
        .finish()
}

/// A cookie's value from the request.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax (Strict would drop the cookie when a
/// buyer arrives from the link in their email), Secure when served over https.
pub fn set_cookie(state: &State, name: &str, value: &str, path: &str, max_age: i64) -> String {
    let secure = if state.settings.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// The CSRF token of this browser (double-submit: a random cookie every form echoes).
/// A new one is made and set on the response when the browser has none.
pub struct Csrf {
    pub token: String,
    fresh: bool,
}

impl Csrf {
    pub fn of(req: &HttpRequest) -> Csrf {
        match cookie(req, CSRF_COOKIE).filter(|t| t.len() == 64) {
            Some(token) => Csrf {
                token,
                fresh: false,
            },
            None => Csrf {
                token: accounts::new_token(),
                fresh: true,
            },
        }
    }

    /// Sets the cookie on `res` if it is new.
    pub fn attach(&self, state: &State, mut res: HttpResponse) -> HttpResponse {
        if self.fresh {
            let value = set_cookie(state, CSRF_COOKIE, &self.token, "/", 60 * 60 * 24 * 30);
            if let Ok(v) = header::HeaderValue::from_str(&value) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        res
    }
}

/// Refuses a form whose `csrf` field does not match the browser's CSRF cookie.
pub fn check_csrf(req: &HttpRequest, sent: &str) -> Result<(), WebError> {
    let ok = cookie(req, CSRF_COOKIE)
        .filter(|c| c.len() == 64)
        .is_some_and(|c| constant_time_eq(c.as_bytes(), sent.as_bytes()));
    if ok {
        Ok(())
    } else {
        Err(WebError::App(AppError::bad_request(
            "invalid_csrf",
            "this form has expired or did not come from this site; reload the page and try again",
        )))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A signed-in seller. Without a live session, the request is sent to the sign-in page.
pub struct Seller {
    pub user: User,
}

impl FromRequest for Seller {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, WebError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = cookie(req, SELLER_COOKIE);
        let state = req.app_data::<web::Data<State>>().cloned();
        Box::pin(async move {
            let (Some(token), Some(state)) = (token, state) else {
                return Err(WebError::SignIn("/admin/login"));
            };
            match db::run(&state.pool, move |conn| accounts::session(conn, &token)).await? {
                Some(SessionOwner::User(user)) => Ok(Seller { user }),
                _ => Err(WebError::SignIn("/admin/login")),
            }
        })
    }
}

/// A buyer signed in to the portal through a link: their email.
pub struct Buyer {
    pub email: String,
}

impl FromRequest for Buyer {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, WebError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = cookie(req, BUYER_COOKIE);
        let state = req.app_data::<web::Data<State>>().cloned();
        Box::pin(async move {
            let (Some(token), Some(state)) = (token, state) else {
                return Err(WebError::SignIn("/portal"));
            };
            match db::run(&state.pool, move |conn| accounts::session(conn, &token)).await? {
                Some(SessionOwner::Buyer(email)) => Ok(Buyer { email }),
                _ => Err(WebError::SignIn("/portal")),
            }
        })
    }
}

/// Sets the security headers on every dashboard and portal response.
async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLE)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .wrap(from_fn(security_headers))
            .configure(admin::routes),
    )
    .service(
        web::scope("/portal")
            .wrap(from_fn(security_headers))
            .configure(portal::routes),
    )
    .service(
        web::resource("/assets/style.css")
            .wrap(from_fn(security_headers))
            .route(web::get().to(stylesheet)),
    );
}

/// What every page's layout needs.
#[derive(Serialize)]
pub struct Layout<'a> {
    pub csrf: &'a str,
    /// The signed-in seller's email (dashboard pages).
    pub user: Option<&'a str>,
    /// The signed-in buyer's email (portal pages).
    pub buyer: Option<&'a str>,
    pub section: &'a str,
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        for (name, _) in super::TEMPLATES {
            super::templates().get_template(name).unwrap();
        }
    }
}
