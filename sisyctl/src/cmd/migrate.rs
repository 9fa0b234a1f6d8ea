//! `sisyctl migrate`: create or upgrade the schema.

use crate::{output, Failure};

pub async fn run(url: &str, json: bool) -> Result<(), Failure> {
    let (before, after) = sisyphus_client::db::migrate(url).await?;
    if json {
        output::json(&serde_json::json!({ "from_version": before, "to_version": after }))?;
    } else if before == after {
        println!("schema is up to date (version {after})");
    } else {
        println!("schema migrated from version {before} to {after}");
    }
    Ok(())
}
