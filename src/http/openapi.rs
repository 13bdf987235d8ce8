//! `GET /openapi.json`: the OpenAPI 3 document. Its paths come from the route table
//! (`http::routes`), where each route is declared once by its handler's
//! `#[utoipa::path]`; this module adds what is global: info, servers, security schemes
//! and the error body every route shares.

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::ServerBuilder;
use utoipa::OpenApi;

use super::error::{ErrorBody, ErrorDetail};
use super::routes::Table;
use super::State;
use crate::route;

pub fn routes(t: &mut Table) {
    t.add(route!(Plain, openapi_json));
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "licensd",
        description = "Self-hosted license key server. Public license endpoints need no token \
            (the key is the credential) and answer with a `Licensd-Signature` header \
            (see docs/verifying.md); admin endpoints need an admin token.",
    ),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct Base;

/// The whole document of the routes in `table`, with `public_url` as its server.
pub fn document(table: &Table, public_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    table.paths(&mut doc);
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
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}
