//! Operations endpoints: liveness and readiness.

use super::routes::Table;
use crate::route;
use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde_json::json;

use super::State;
use crate::db;
use crate::error::AppError;

pub fn routes(t: &mut Table) {
    t.add(route!(Plain, healthz)).add(route!(Plain, readyz));
}

/// The process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{status: \"ok\"}`", body = Object)))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "`{status: \"ready\"}`", body = Object),
        (status = 503, description = "The database is unavailable", body = super::error::ErrorBody)))]
async fn readyz(state: web::Data<State>) -> Result<HttpResponse, AppError> {
    db::run(&state.pool, |conn| {
        conn.batch_execute("SELECT 1")
            .map_err(|e| AppError::DatabaseUnavailable(Box::new(e)))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}
