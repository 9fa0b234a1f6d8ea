//! Integration tests: real PostgreSQL, real processes. One binary, one cluster, a database per
//! test (see `harness`).

mod harness;

mod access;
mod access_cli;
mod apply;
mod backfill;
mod browser;
mod calendars;
mod claims;
mod cli;
mod dst;
mod failover;
mod guardian;
mod health;
mod isolation;
mod ll_sisyphus;
mod metrics;
mod notifications;
mod once;
mod operations;
mod overlap;
mod peers;
mod plan;
mod poison;
mod resilience;
mod resources;
mod retention;
mod scheduler;
mod schema;
mod sdk;
mod secrets;
mod sql_api;
mod tls;
mod validation;
mod web;
