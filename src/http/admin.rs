//! The seller's admin API: products and licenses. Every handler takes `Admin` first,
//! so a request without a valid token is refused before its body is read.

use actix_web::{web, HttpResponse};
use uuid::Uuid;

use super::extract::{Admin, Json};
use super::State;
use crate::db::{self, activations::Selector};
use crate::error::AppError;
use crate::licensing::admin::{
    self, CreateLicense, CreateProduct, ListLicenses, UpdateLicense, UpdateProduct,
};
use crate::licensing::check::{self, Deactivated};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/products")
            .route(web::get().to(list_products))
            .route(web::post().to(create_product)),
    )
    .service(
        web::resource("/v1/products/{product}")
            .route(web::get().to(get_product))
            .route(web::patch().to(update_product)),
    )
    .service(
        web::resource("/v1/licenses")
            .route(web::get().to(list_licenses))
            .route(web::post().to(create_license)),
    )
    .service(
        web::resource("/v1/licenses/{license}")
            .route(web::get().to(get_license))
            .route(web::patch().to(update_license)),
    )
    .service(
        web::resource("/v1/licenses/{license}/resend-email").route(web::post().to(resend_email)),
    )
    .service(
        web::resource("/v1/licenses/{license}/activations/{activation}")
            .route(web::delete().to(delete_activation)),
    );
}

async fn create_product(
    _: Admin,
    state: web::Data<State>,
    body: Json<CreateProduct>,
) -> Result<HttpResponse, AppError> {
    let product = db::run(&state.pool, move |conn| {
        admin::create_product(conn, &body.0)
    })
    .await?;
    Ok(HttpResponse::Created().json(product))
}

async fn list_products(_: Admin, state: web::Data<State>) -> Result<HttpResponse, AppError> {
    let products = db::run(&state.pool, admin::list_products).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": products })))
}

async fn get_product(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let product = db::run(&state.pool, move |conn| admin::get_product(conn, &path)).await?;
    Ok(HttpResponse::Ok().json(product))
}

async fn update_product(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
    body: Json<UpdateProduct>,
) -> Result<HttpResponse, AppError> {
    let product = db::run(&state.pool, move |conn| {
        admin::update_product(conn, &path, &body.0)
    })
    .await?;
    Ok(HttpResponse::Ok().json(product))
}

async fn create_license(
    _: Admin,
    state: web::Data<State>,
    body: Json<CreateLicense>,
) -> Result<HttpResponse, AppError> {
    let license = db::run(&state.pool, move |conn| {
        admin::create_license(conn, &body.0)
    })
    .await?;
    state.wake_mailer();
    Ok(HttpResponse::Created().json(license))
}

async fn list_licenses(
    _: Admin,
    state: web::Data<State>,
    query: web::Query<ListLicenses>,
) -> Result<HttpResponse, AppError> {
    let page = db::run(&state.pool, move |conn| admin::list_licenses(conn, &query)).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn get_license(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let license = db::run(&state.pool, move |conn| admin::get_license(conn, &path)).await?;
    Ok(HttpResponse::Ok().json(license))
}

async fn update_license(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
    body: Json<UpdateLicense>,
) -> Result<HttpResponse, AppError> {
    let license = db::run(&state.pool, move |conn| {
        admin::update_license(conn, &path, &body.0)
    })
    .await?;
    Ok(HttpResponse::Ok().json(license))
}

async fn resend_email(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let email_id = db::run(&state.pool, move |conn| admin::resend_email(conn, &path)).await?;
    state.wake_mailer();
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "queued": true, "email_id": email_id })))
}

async fn delete_activation(
    _: Admin,
    state: web::Data<State>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (license, activation) = path.into_inner();
    let activation = Uuid::parse_str(&activation).map_err(|_| AppError::not_found("activation"))?;
    let outcome = db::run(&state.pool, move |conn| {
        Ok(check::deactivate(
            conn,
            &license,
            &Selector::Id(activation),
        )?)
    })
    .await?;
    match outcome {
        Deactivated::Done(_) => Ok(HttpResponse::NoContent().finish()),
        Deactivated::Refused(check::Code::NotFound) => Err(AppError::not_found("license")),
        Deactivated::Refused(_) => Err(AppError::not_found("activation")),
    }
}
