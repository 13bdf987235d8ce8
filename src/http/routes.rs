//! Every route of the server, declared once. A handler's `#[utoipa::path]` names its
//! path, methods and documented answers; `route!(Door, handler)` turns that one
//! declaration into both the actix registration and the OpenAPI entry, so the two
//! cannot drift apart. Each module lists its routes in a `routes(&mut Table)` fn.

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{RefOr, ResponseBuilder};

use super::extract::require_admin;
use super::front::license_route;

/// How a request reaches the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// As it is: operations, the admin API, the webhook.
    Plain,
    /// Through the license front door's middleware: per-IP limits and a signed answer
    /// (see `http::front`). Its 413 and 429 are documented by the table itself.
    License,
}

type MakeRoute = Arc<dyn Fn(Method) -> actix_web::Route + Send + Sync>;

/// One route: where, how, and what it answers.
pub struct Route {
    path: String,
    methods: Vec<HttpMethod>,
    operation: Operation,
    schemas: Vec<(String, RefOr<Schema>)>,
    door: Door,
    body_limit: Option<usize>,
    make: MakeRoute,
}

impl Route {
    /// The route `P` (utoipa's `__path_<handler>`) documents, served by `make`. Use
    /// [`route!`](crate::route) rather than calling this.
    pub fn of<P: utoipa::Path + utoipa::__dev::SchemaReferences>(
        door: Door,
        make: MakeRoute,
    ) -> Route {
        let mut schemas = Vec::new();
        P::schemas(&mut schemas);
        Route {
            path: P::path(),
            methods: P::methods(),
            operation: P::operation(),
            schemas,
            door,
            body_limit: None,
            make,
        }
    }

    /// Whether its documentation requires the admin token: then the token is checked
    /// before the handler's extractors run (see `extract::require_admin`).
    fn needs_admin_token(&self) -> bool {
        self.operation.security.as_ref().is_some_and(|s| {
            serde_json::to_value(s).is_ok_and(|v| v.to_string().contains("\"admin_token\""))
        })
    }

    /// A body limit of its own (the webhook's is larger than the API's).
    pub fn body_limit(mut self, bytes: usize) -> Route {
        self.body_limit = Some(bytes);
        self
    }
}

/// `route!(License, validate)`: the route declared by `validate`'s `#[utoipa::path]`.
#[macro_export]
macro_rules! route {
    ($door:ident, $handler:ident) => {
        paste::paste! {
            $crate::http::routes::Route::of::<[<__path_ $handler>]>(
                $crate::http::routes::Door::$door,
                std::sync::Arc::new(|m| actix_web::web::method(m).to($handler)),
            )
        }
    };
}

/// All routes, in registration order (a literal path before a `{param}` one that
/// would match it: the public `/v1/licenses/validate` before the admin
/// `/v1/licenses/{license}`).
#[derive(Default)]
pub struct Table {
    routes: Vec<Route>,
}

fn actix_method(m: &HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

impl Table {
    pub fn add(&mut self, route: Route) -> &mut Self {
        self.routes.push(route);
        self
    }

    /// Registers every route: one actix resource per path, with a route per method.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let mut seen: Vec<&str> = Vec::new();
        for first in &self.routes {
            if seen.contains(&first.path.as_str()) {
                continue;
            }
            seen.push(&first.path);
            let same: Vec<&Route> = self
                .routes
                .iter()
                .filter(|r| r.path == first.path)
                .collect();
            let routes: Vec<actix_web::Route> = same
                .iter()
                .flat_map(|r| {
                    r.methods.iter().map(|m| {
                        let route = (r.make)(actix_method(m));
                        if r.needs_admin_token() {
                            route.wrap(from_fn(require_admin))
                        } else {
                            route
                        }
                    })
                })
                .collect();
            // actix paths are the OpenAPI templates: `{name}` segments in both.
            if same.iter().any(|r| r.door == Door::License) {
                cfg.service(license_route(&first.path, routes));
                continue;
            }
            let mut resource = web::resource(first.path.as_str());
            if let Some(limit) = same.iter().find_map(|r| r.body_limit) {
                resource = resource.app_data(web::PayloadConfig::new(limit));
            }
            cfg.service(
                routes
                    .into_iter()
                    .fold(resource, |res, route| res.route(route)),
            );
        }
    }

    /// The routes' part of the OpenAPI document: their operations and the schemas they
    /// name. A license route also documents the answers its door adds.
    pub fn paths(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for r in &self.routes {
            for (name, schema) in &r.schemas {
                components.schemas.insert(name.clone(), schema.clone());
            }
        }
        for r in &self.routes {
            let mut operation = r.operation.clone();
            if r.door == Door::License {
                door_answers(&mut operation);
            }
            doc.paths
                .add_path_operation(&r.path, r.methods.clone(), operation);
        }
    }

    /// Every (method, path) served, as in the OpenAPI document.
    pub fn list(&self) -> Vec<(String, String)> {
        self.routes
            .iter()
            .flat_map(|r| {
                r.methods
                    .iter()
                    .map(|m| (actix_method(m).to_string(), r.path.clone()))
            })
            .collect()
    }
}

/// What the license door itself can answer, whatever the dialect: 413 (body over the
/// limit), 422 (a bad `nonce`) and 429 (rate limited), in licensd's error body.
fn door_answers(operation: &mut Operation) {
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    let responses = &mut operation.responses.responses;
    for (status, description) in [
        ("413", "The body is over the size limit"),
        (
            "422",
            "`nonce` is not 1 to 128 visible characters (or another field is invalid)",
        ),
        (
            "429",
            "Rate limited (per client IP; activations also per key); see `Retry-After`",
        ),
    ] {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| error(description).into());
    }
}
