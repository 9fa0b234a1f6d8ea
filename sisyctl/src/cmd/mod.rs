//! One module per command group.

pub mod access;
pub mod apply;
pub mod backfill;
pub mod calendar;
pub mod control;
pub mod cron;
pub mod health;
pub mod job;
pub mod logs;
pub mod migrate;
pub mod notifications;
pub mod resources;
pub mod runs;
pub mod token;
