//! The integration tests: one binary, each test against the real server and a
//! Postgres database of its own.

mod helpers;

mod activation;
mod admin;
mod errors;
mod license_file;
mod openapi;
mod rate_limit;
mod signing;
mod validate;
