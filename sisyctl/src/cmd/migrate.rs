//! `sisyctl migrate`: create or upgrade the schema.

use crate::{output, say, Failure};

pub async fn run(url: &str, timeout: std::time::Duration, json: bool) -> Result<(), Failure> {
    let (before, after) = sisyphus_client::db::migrate_with_timeout(url, timeout).await?;
    if json {
        output::json(&serde_json::json!({ "from_version": before, "to_version": after }))?;
    } else if before == after {
        say!("schema is up to date (version {after})")?;
    } else {
        say!("schema migrated from version {before} to {after}")?;
    }
    Ok(())
}
