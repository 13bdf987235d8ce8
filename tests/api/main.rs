//! The integration tests: one binary, each test against the real server and a
//! Postgres database of its own.

mod helpers;
mod history;

mod activation;
mod admin;
mod cache;
mod cli;
mod compat_checkoutkeys;
mod compat_keymint;
mod compat_sellapp;
mod compat_wckm;
mod email;
mod errors;
mod front_door;
mod hostile;
mod import;
mod license_file;
mod metrics;
mod openapi;
mod rate_limit;
mod seats;
mod signing;
mod smtp_server;
mod stripe;
mod subscriptions;
mod validate;
mod web;
mod webhooks;
