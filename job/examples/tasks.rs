//! Tasks: every line inside shows where it is, `[2/3] table orders >> copied 17 rows`.

use sisyphus_job::{execute_with_args, Context, Error, Job, Options};

struct Copy;

impl Job for Copy {
    fn options(&self) -> Options {
        Options::new("ACME.Examples", "Tasks")
    }

    fn execute(&mut self, ctx: &Context) -> Result<Option<String>, Error> {
        let mut rows = 0;
        for db in ctx.tasks(["shop", "crm"], "database", |d| d.to_string()) {
            for (i, table) in ctx.tasks(
                ["customers", "orders", "invoices"].iter().enumerate(),
                "table",
                |(_, t)| t.to_string(),
            ) {
                let n = (i + 1) * db.len();
                ctx.log(format!("copied {n} rows of {db}.{table}"));
                rows += n;
            }
        }
        Ok(Some(format!("copied {rows} rows from 2 databases")))
    }
}

fn main() {
    execute_with_args(Copy)
}
