//! licensd: a self-hosted license key server for software sold through Stripe Checkout.
//!
//! Layers, imports running down only:
//! - [`http`]: where requests enter (routes, extractors, error mapping);
//! - [`licensing`]: where a license is decided (keys, validate/activate, admin operations);
//! - [`stripe`]: what a Stripe event does (signatures, events, minting, lifecycle);
//! - [`email`]: license emails (templates, the outbox worker);
//! - [`db`]: where it is stored (schema, models, queries).
//!
//! [`cli`] is the binary's front door; [`config`] and [`telemetry`] are set up once at start;
//! [`metrics`] is the process-wide Prometheus registry every layer records into.

pub mod cli;
pub mod config;
pub mod db;
pub mod email;
pub mod error;
pub mod http;
pub mod licensing;
pub mod metrics;
pub mod stripe;
pub mod telemetry;
pub mod webhooks;

pub use config::Settings;
pub use http::Application;
