//! The buyer portal at `/portal`: ask for a sign-in link by email (the answer is the
//! same whether or not the email bought anything), open it once, then see and manage
//! the licenses sold to that email, and nothing else.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    check_csrf, cookie, page, redirect, redirect_setting, set_cookie, Buyer, Csrf, Layout,
    PageResult, BUYER_COOKIE,
};
use crate::db;
use crate::error::AppError;
use crate::http::State;
use crate::licensing::accounts;
use crate::licensing::portal::{self, LinkRequest};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(start))
        .route("", web::post().to(request_link))
        .route("/", web::get().to(start))
        .route("/sign-in", web::get().to(sign_in_page))
        .route("/sign-in", web::post().to(sign_in))
        .route("/licenses", web::get().to(licenses))
        .route(
            "/licenses/{id}/devices/{device}/free",
            web::post().to(free_device),
        )
        .route("/resend", web::post().to(resend))
        .route("/logout", web::post().to(logout));
}

fn layout<'a>(csrf: &'a Csrf, buyer: Option<&'a Buyer>) -> Layout<'a> {
    Layout {
        csrf: &csrf.token,
        user: None,
        buyer: buyer.map(|b| b.email.as_str()),
        section: "portal",
    }
}

#[derive(Deserialize)]
struct Plain {
    csrf: String,
}

async fn start(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    let csrf = Csrf::of(&req);
    let res = page(
        StatusCode::OK,
        "portal_start.html",
        context! { layout => layout(&csrf, None) },
    );
    csrf.attach(&state, res)
}

#[derive(Deserialize)]
struct EmailForm {
    csrf: String,
    email: String,
}

/// Always the same page, whatever the email: who bought is never revealed here.
async fn request_link(
    state: web::Data<State>,
    req: HttpRequest,
    form: web::Form<EmailForm>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let client = state
        .limits
        .client_ip(&req)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let settings = state.settings.clone();
    let email = form.into_inner().email;
    let queued = db::run(&state.pool, move |conn| {
        portal::request_link(
            conn,
            &LinkRequest {
                email: &email,
                client: &client,
                public_url: &settings.public_url,
                ttl: Duration::minutes(settings.portal_link_ttl_minutes.into()),
                max_attempts: settings.login_max_attempts,
            },
        )
    })
    .await?;
    if queued {
        state.wake_mailer();
    }
    let csrf = Csrf::of(&req);
    Ok(page(
        StatusCode::OK,
        "portal_start.html",
        context! { layout => layout(&csrf, None), sent => true, minutes => state.settings.portal_link_ttl_minutes },
    ))
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The link in the email lands here; signing in takes a click (a POST), so a mail
/// scanner that fetches links cannot use up the single-use link.
async fn sign_in_page(
    state: web::Data<State>,
    req: HttpRequest,
    query: web::Query<TokenQuery>,
) -> HttpResponse {
    let csrf = Csrf::of(&req);
    let res = page(
        StatusCode::OK,
        "portal_signin.html",
        context! { layout => layout(&csrf, None), token => query.into_inner().token },
    );
    csrf.attach(&state, res)
}

#[derive(Deserialize)]
struct SignInForm {
    csrf: String,
    token: String,
}

async fn sign_in(
    state: web::Data<State>,
    req: HttpRequest,
    form: web::Form<SignInForm>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let token = form.into_inner().token;
    let hours = state.settings.portal_session_ttl_hours;
    let session = db::run(&state.pool, move |conn| {
        portal::use_link(conn, token.trim(), Duration::hours(hours.into()))
    })
    .await?;
    let Some(session) = session else {
        let csrf = Csrf::of(&req);
        return Ok(page(
            StatusCode::GONE,
            "portal_start.html",
            context! { layout => layout(&csrf, None), expired => true },
        ));
    };
    let cookie = set_cookie(
        &state,
        BUYER_COOKIE,
        &session,
        "/portal",
        i64::from(hours) * 3600,
    );
    Ok(redirect_setting("/portal/licenses", &cookie))
}

fn cooldown(state: &State) -> Duration {
    Duration::hours(state.settings.portal_device_cooldown_hours.into())
}

async fn licenses(state: web::Data<State>, req: HttpRequest, buyer: Buyer) -> PageResult {
    let csrf = Csrf::of(&req);
    let email = buyer.email.clone();
    let wait = cooldown(&state);
    let licenses = db::run(&state.pool, move |conn| {
        portal::licenses_of(conn, &email, wait)
    })
    .await?;
    let res = page(
        StatusCode::OK,
        "portal_licenses.html",
        context! { layout => layout(&csrf, Some(&buyer)), licenses, cooldown_hours => state.settings.portal_device_cooldown_hours },
    );
    Ok(csrf.attach(&state, res))
}

async fn free_device(
    state: web::Data<State>,
    req: HttpRequest,
    buyer: Buyer,
    path: web::Path<(Uuid, Uuid)>,
    form: web::Form<Plain>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let (license, device) = path.into_inner();
    let wait = cooldown(&state);
    db::run(&state.pool, move |conn| {
        portal::free_device(conn, &buyer.email, license, device, wait)
    })
    .await?;
    Ok(redirect("/portal/licenses"))
}

async fn resend(
    state: web::Data<State>,
    req: HttpRequest,
    buyer: Buyer,
    form: web::Form<Plain>,
) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    let sent = db::run(&state.pool, move |conn| {
        portal::resend_keys(conn, &buyer.email)
    })
    .await?;
    if !sent {
        return Err(AppError::not_found("license").into());
    }
    state.wake_mailer();
    Ok(redirect("/portal/licenses?resent=1"))
}

async fn logout(state: web::Data<State>, req: HttpRequest, form: web::Form<Plain>) -> PageResult {
    check_csrf(&req, &form.csrf)?;
    if let Some(token) = cookie(&req, BUYER_COOKIE) {
        db::run(&state.pool, move |conn| accounts::sign_out(conn, &token)).await?;
    }
    let cookie = set_cookie(&state, BUYER_COOKIE, "", "/portal", 0);
    Ok(redirect_setting("/portal", &cookie))
}
