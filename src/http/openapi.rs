//! `GET /openapi.json`: the OpenAPI 3 document, generated from the `#[utoipa::path]`
//! annotations on the handlers. Each route module contributes its `Api`; a new module
//! adds one `merge` line in [`document`] and its `ROUTES` to `http::routes`.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::ServerBuilder;
use utoipa::{OpenApi, ToSchema};

use super::State;

/// The routes of this module, for the OpenAPI check (see `http::routes`).
pub const ROUTES: &[(&str, &str)] = &[("GET", "/openapi.json")];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json));
}

/// `{"error": {"code", "message"}}`: every error of the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// snake_case, e.g. `invalid_field`, `rate_limited`.
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "licensd",
        description = "Self-hosted license key server. Public license endpoints need no token \
            (the key is the credential) and answer with a `Licensd-Signature` header \
            (see docs/verifying.md); admin endpoints need an admin token.",
    ),
    paths(openapi_json),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct Base;

/// The whole document, with `public_url` as its server.
pub fn document(public_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.merge(super::ops::Api::openapi());
    doc.merge(super::public::Api::openapi());
    doc.merge(super::admin::Api::openapi());
    doc.merge(super::webhook::Api::openapi());
    doc.merge(super::metrics::Api::openapi());
    doc.merge(super::compat::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.servers = Some(vec![ServerBuilder::new().url(public_url).build()]);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "admin_token",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components.add_security_scheme(
        "admin_token_header",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
    );
    doc
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", body = Object)))]
async fn openapi_json(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(document(&state.settings.public_url))
}
