//! Operations endpoints: liveness and readiness.

use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde_json::json;

use super::State;
use crate::db;
use crate::error::AppError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// The process is up and serving.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The database answers.
async fn readyz(state: web::Data<State>) -> Result<HttpResponse, AppError> {
    db::run(&state.pool, |conn| {
        conn.batch_execute("SELECT 1")
            .map_err(|e| AppError::DatabaseUnavailable(Box::new(e)))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}
