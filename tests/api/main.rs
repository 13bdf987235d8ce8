//! The integration tests: one binary, each test against the real server and a
//! Postgres database of its own.

mod helpers;

mod activation;
mod admin;
mod email;
mod errors;
mod metrics;
mod smtp_server;
mod stripe;
mod validate;
