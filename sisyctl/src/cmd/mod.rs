//! One module per command group.

pub mod apply;
pub mod cron;
pub mod job;
pub mod migrate;
pub mod runs;
