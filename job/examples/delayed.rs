//! Delayed logs: details are logged with the tag `delay` and appear only if something
//! interesting happens later in the run; a run with nothing to do leaves no log at all.
//! Set `NEW_ORDERS` to a number to have something to do.

use sisyphus_job::{execute_with_args, Context, Error, Job, Options};

struct Poll;

impl Job for Poll {
    fn options(&self) -> Options {
        Options::new("ACME.Examples", "Delayed")
    }

    fn execute(&mut self, ctx: &Context) -> Result<Option<String>, Error> {
        ctx.tag("delay").log("connecting to the order queue");
        ctx.tag("delay").log("queue is reachable");
        let new: u32 = std::env::var("NEW_ORDERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if new == 0 {
            return Ok(None);
        }
        ctx.log(format!("{new} new orders"));
        Ok(Some(format!("imported {new} orders")))
    }
}

fn main() {
    execute_with_args(Poll)
}
