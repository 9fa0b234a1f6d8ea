//! Defines a job, runs it once now, and reads its runs back.
//!
//! ```sh
//! cargo run --bin sisyphus -- dev          # in one shell: prints SISYPHUS_DATABASE_URL
//! SISYPHUS_DATABASE_URL=… cargo run -p sisyphus-client --example define_and_read
//! ```

use sisyphus_client::{Client, JobDefinition, JobRef, RunFilter};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("SISYPHUS_DATABASE_URL")
        .map_err(|_| "set SISYPHUS_DATABASE_URL (see `sisyphus dev`)")?;
    let client = Client::connect(&url).await?;

    // A definition is plain data; `apply` validates it and writes it, or writes nothing.
    let report = JobDefinition::new("Examples.Client", "report", ["echo", "report done"])
        .cron("0 7 * * mon-fri")
        .timezone("Europe/Amsterdam");
    for applied in client.apply(&[report], false).await? {
        println!("{}: {:?}", applied.job, applied.change);
    }

    let job = JobRef::new("Examples.Client", "report");
    println!("next: {:?}", client.next_fire_times(&job, 3).await?);
    let ids = client.run_now(&job).await?;
    println!("asked for run(s) {ids:?}");
    for run in client.runs(&RunFilter::for_job(&job)).await? {
        println!(
            "run {} {} scheduled for {}",
            run.id, run.status, run.scheduled_for
        );
    }
    Ok(())
}
