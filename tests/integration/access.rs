//! Access control (issue 15, migrations/0011 and 0012): roles, per-project grants under row-level
//! security, the checking functions and the audit log — each asserted through plain SQL as the
//! login itself, so it holds for `sisyctl`, the client and psql alike.

use std::collections::BTreeMap;

use sisyphus_client::JobDefinition;
use sqlx::{Connection, PgConnection};

use crate::harness::{service_url, TestDb};

/// One login per role, named after the test database so parallel tests never share one (roles
/// are cluster-wide).
struct Logins {
    db: TestDb,
    names: BTreeMap<&'static str, String>,
}

const PEOPLE: [&str; 4] = ["viewer", "operator", "editor", "admin"];
const SERVICES: [&str; 3] = ["guardian", "scheduler", "dispatcher"];

impl Logins {
    /// Jobs ACME.FooBar/j and Other.X/k with a pending run each, a host `h1`, and a login per
    /// role: the people with a grant on `ACME.*` (the admin by kind), the guardian bound to h1.
    async fn new() -> Logins {
        let db = TestDb::new().await;
        let jobs = [
            JobDefinition::new("ACME.FooBar", "j", ["true"]),
            JobDefinition::new("ACME.FooBar", "spare", ["true"]),
            JobDefinition::new("ACME.FooBar", "busy", ["true"]),
            JobDefinition::new("Other.X", "k", ["true"]),
            JobDefinition::new("Other.X", "busy", ["true"]),
        ];
        db.client.apply(&jobs, false).await.expect("apply");
        for (p, n) in [("ACME.FooBar", "j"), ("Other.X", "k")] {
            sqlx::query("SELECT sisyphus.run_now($1, $2)")
                .bind(p)
                .bind(n)
                .execute(&db.pool)
                .await
                .expect("run now");
        }
        sqlx::query(
            "INSERT INTO sisyphus.hosts (name, last_heartbeat) VALUES ('h1', now()), ('h2', now())",
        )
        .execute(&db.pool)
        .await
        .expect("hosts");
        // A running run on each host: ACME.FooBar/busy on h1, Other.X/busy on h2.
        for (p, host) in [("ACME.FooBar", "h1"), ("Other.X", "h2")] {
            sqlx::query(
                "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, trigger, status, host,
                                            started_at, lease_expires_at)
                 SELECT id, now(), now(), 'manual', 'running', $2, now(), now() + interval '1h'
                   FROM sisyphus.jobs WHERE project = $1 AND name = 'busy'",
            )
            .bind(p)
            .bind(host)
            .execute(&db.pool)
            .await
            .expect("a running run");
        }
        let base = db.url.rsplit('/').next().unwrap_or("t").to_string();
        let mut names = BTreeMap::new();
        for role in PEOPLE.iter().chain(&SERVICES) {
            let login = format!("{base}_{role}");
            let (kind, hosts): (&str, Vec<String>) = match *role {
                "admin" => ("admin", vec![]),
                "guardian" => ("guardian", vec!["h1".into()]),
                "scheduler" | "dispatcher" => (role, vec![]),
                _ => ("user", vec![]),
            };
            sqlx::query("SELECT sisyphus.add_login($1, NULL, $2, $3)")
                .bind(&login)
                .bind(kind)
                .bind(&hosts)
                .execute(&db.pool)
                .await
                .expect("add login");
            if kind == "user" {
                sqlx::query("SELECT sisyphus.grant_access($1, $2, 'ACME.*')")
                    .bind(&login)
                    .bind(role)
                    .execute(&db.pool)
                    .await
                    .expect("grant");
            }
            names.insert(*role, login);
        }
        Logins { db, names }
    }

    /// A connection as `role`'s login.
    async fn connect(&self, role: &str) -> PgConnection {
        let login = &self.names[role];
        let url = self
            .db
            .url
            .replacen("postgres://postgres@", &format!("postgres://{login}@"), 1);
        PgConnection::connect(&url).await.expect("connect as login")
    }

    async fn run_of(&self, project: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT r.id FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id
              WHERE j.project = $1 ORDER BY r.id LIMIT 1",
        )
        .bind(project)
        .fetch_one(&self.db.pool)
        .await
        .expect("a run")
    }

    /// The running run on `host`.
    async fn running_on(&self, host: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM sisyphus.runs WHERE host = $1 AND status = 'running'")
            .bind(host)
            .fetch_one(&self.db.pool)
            .await
            .expect("a running run")
    }
}

/// What one statement did as one login: allowed (and how many rows it saw or changed), or
/// refused with the database's message.
#[derive(Debug)]
enum Outcome {
    Allowed(i64),
    Refused(String),
}

/// Runs `sql` as `role` inside a transaction that is rolled back, so every cell of the matrix
/// starts from the same state.
async fn attempt(logins: &Logins, role: &str, sql: &str) -> Outcome {
    let mut conn = logins.connect(role).await;
    let mut tx = conn.begin().await.expect("begin");
    let wrapped = format!("WITH attempt AS ({sql}) SELECT count(*) FROM attempt");
    let direct = sql.starts_with("SELECT count(*)");
    let result: Result<i64, sqlx::Error> = if direct {
        sqlx::query_scalar(sql).fetch_one(&mut *tx).await
    } else {
        sqlx::query_scalar(&wrapped).fetch_one(&mut *tx).await
    };
    let _ = tx.rollback().await;
    match result {
        Ok(n) => Outcome::Allowed(n),
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

fn allowed(o: &Outcome) -> bool {
    matches!(o, Outcome::Allowed(n) if *n > 0)
}

/// Each role × each action, through SQL as the login: allowed means it worked on at least one
/// row of ACME.*; denied means refused (42501) or that it saw or changed nothing.
#[tokio::test]
async fn each_role_may_do_what_its_grant_says_and_nothing_more() {
    let l = Logins::new().await;
    let acme_run = l.run_of("ACME.FooBar").await;
    let (mine, theirs) = (l.running_on("h1").await, l.running_on("h2").await);
    let finish = |run: i64| {
        format!(
            "SELECT 1 WHERE sisyphus.finish_run({run}, '{{running}}', 'successful', 0, NULL, \
             NULL, NULL, now())"
        )
    };
    // The guardian's outcome batch (migration 0020): `recorded` of the one outcome.
    let finish_batch = |run: i64| {
        format!(
            "SELECT 1 FROM sisyphus.finish_runs(ARRAY[{run}]::bigint[], '{{successful}}', '{{0}}', \
             '{{NULL}}', '{{NULL}}', '{{NULL}}', ARRAY[now()]) f WHERE f.recorded"
        )
    };
    let line = |run: i64| {
        format!(
            "INSERT INTO sisyphus.run_logs (run_id, seq, at, stream, text) \
             VALUES ({run}, 1, now(), 'stdout', 'x') RETURNING run_id"
        )
    };
    let actions: Vec<(&str, String)> = vec![
        ("read runs", "SELECT count(*) FROM sisyphus.runs".into()),
        (
            "read job states",
            "SELECT count(*) FROM sisyphus.job_status".into(),
        ),
        (
            "run now",
            "SELECT sisyphus.run_now('ACME.FooBar', 'j')".into(),
        ),
        (
            "terminate",
            format!("SELECT sisyphus.terminate({acme_run})"),
        ),
        (
            "pause",
            "SELECT sisyphus.pause_job('ACME.FooBar', 'j')".into(),
        ),
        (
            "apply a job",
            "INSERT INTO sisyphus.jobs (project, name, command) \
             VALUES ('ACME.FooBar', 'new', '{true}') RETURNING id"
                .into(),
        ),
        (
            "remove a job",
            "SELECT sisyphus.remove_job('ACME.FooBar', 'spare')".into(),
        ),
        (
            "grant",
            "SELECT sisyphus.grant_access(session_user, 'editor', '*')".into(),
        ),
        ("drain", "SELECT sisyphus.drain_host('h1', true)".into()),
        (
            "insert into another project",
            "INSERT INTO sisyphus.jobs (project, name, command) \
             VALUES ('Other.X', 'new', '{true}') RETURNING id"
                .into(),
        ),
        (
            "update another host's run",
            format!(
                "UPDATE sisyphus.runs SET host = 'h2', status = 'running' WHERE id = {acme_run} \
                 RETURNING id"
            ),
        ),
        (
            "read the outbox",
            "SELECT count(*) + 1 FROM sisyphus.outbox".into(),
        ),
        // The daemons' paths.
        (
            "claim for its host",
            "SELECT * FROM sisyphus.claim_runs('h1', '{}', 10, '1 minute')".into(),
        ),
        (
            "claim for another host",
            "SELECT * FROM sisyphus.claim_runs('h2', '{}', 10, '1 minute')".into(),
        ),
        ("finish its own run", finish(mine)),
        ("finish another host's run", finish(theirs)),
        ("finish its own run in a batch", finish_batch(mine)),
        ("finish another host's run in a batch", finish_batch(theirs)),
        ("write lines of its run", line(mine)),
        ("write lines of another host's run", line(theirs)),
        (
            "beat as its host",
            "UPDATE sisyphus.hosts SET last_heartbeat = now() WHERE name = 'h1' RETURNING name"
                .into(),
        ),
        (
            "register as another host",
            "INSERT INTO sisyphus.hosts (name, last_heartbeat) VALUES ('h3', now()) \
             RETURNING name"
                .into(),
        ),
        (
            "undrain a host",
            "UPDATE sisyphus.hosts SET draining = false WHERE name = 'h1' RETURNING name".into(),
        ),
        (
            "suspend its own run",
            format!("UPDATE sisyphus.runs SET status = 'suspended' WHERE id = {mine} RETURNING id"),
        ),
        (
            "mark its own run successful by hand",
            format!(
                "UPDATE sisyphus.runs SET status = 'successful' WHERE id = {mine} RETURNING id"
            ),
        ),
    ];
    // Expected: the people's levels nest; the services have no business with people's actions,
    // and each may do its own work only: the guardian for its host h1, the scheduler planning
    // the whole fleet, the dispatcher the outbox.
    let expect = |role: &str, action: &str| -> bool {
        match (role, action) {
            ("guardian", a) => {
                return matches!(
                    a,
                    // The pending runs it may claim, and its own.
                    "read runs"
                        | "claim for its host"
                        | "finish its own run"
                        | "finish its own run in a batch"
                        | "write lines of its run"
                        | "beat as its host"
                        | "suspend its own run"
                );
            }
            ("scheduler", a) => {
                return matches!(
                    a,
                    "read runs"
                        | "read job states"
                        | "read the outbox"
                        | "update another host's run"
                        | "finish its own run"
                        | "finish another host's run"
                        | "suspend its own run"
                        | "mark its own run successful by hand"
                )
            }
            ("dispatcher", a) => return a == "read the outbox",
            _ => {}
        }
        let level = PEOPLE.iter().position(|p| *p == role);
        let needs = match action {
            "read runs" | "read job states" | "read the outbox" => 0,
            "run now" | "terminate" | "pause" => 1,
            "apply a job" | "remove a job" => 2,
            // Runs, hosts and lines change only through the functions and the daemons: no
            // person writes those tables directly.
            "update another host's run"
            | "claim for its host"
            | "claim for another host"
            | "finish its own run"
            | "finish another host's run"
            | "finish its own run in a batch"
            | "finish another host's run in a batch"
            | "write lines of its run"
            | "write lines of another host's run"
            | "beat as its host"
            | "register as another host"
            | "undrain a host"
            | "suspend its own run"
            | "mark its own run successful by hand" => return false,
            _ => 3,
        };
        level.is_some_and(|l| l >= needs)
    };
    let mut wrong = Vec::new();
    for role in PEOPLE.iter().chain(&SERVICES) {
        for (action, sql) in &actions {
            let outcome = attempt(&l, role, sql).await;
            if allowed(&outcome) != expect(role, action) {
                wrong.push(format!("{role} / {action}: {outcome:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "unexpected:\n{}", wrong.join("\n"));
}

/// PUBLIC may call no function of the schema: each role is granted what it may call.
#[tokio::test]
async fn public_may_call_no_function() {
    let db = TestDb::new().await;
    let callable: Vec<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'sisyphus' AND has_function_privilege('public', p.oid, 'EXECUTE')
          ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("functions");
    assert!(callable.is_empty(), "callable by PUBLIC: {callable:?}");
}

/// A refusal says who, what, and which grant is missing.
#[tokio::test]
async fn a_refusal_names_the_login_its_grant_and_what_is_needed() {
    let l = Logins::new().await;
    let Outcome::Refused(message) = attempt(
        &l,
        "operator",
        "SELECT sisyphus.remove_job('ACME.FooBar', 'spare')",
    )
    .await
    else {
        panic!("an operator removed a job")
    };
    let login = &l.names["operator"];
    assert!(
        message.contains(&format!(
            "{login} (operator of ACME.*) may not remove jobs of ACME.FooBar: needs editor"
        )),
        "{message}"
    );
    let Outcome::Refused(message) =
        attempt(&l, "viewer", "SELECT sisyphus.run_now('Other.X', 'k')").await
    else {
        panic!("a viewer ran a job of another project")
    };
    assert!(
        message.contains("(no grant on Other.X) may not run jobs of Other.X: needs operator"),
        "{message}"
    );
    // A guardian speaks only for its host names, and says so.
    let Outcome::Refused(message) = attempt(
        &l,
        "guardian",
        "SELECT * FROM sisyphus.claim_runs('h2', '{}', 10, '1 minute')",
    )
    .await
    else {
        panic!("a guardian bound to h1 claimed for h2")
    };
    let guardian = &l.names["guardian"];
    assert!(
        message.contains(&format!("{guardian} (bound to h1) may not act as host h2")),
        "{message}"
    );
}

/// A viewer of ACME.* counts no row of Other.* anywhere it can read.
#[tokio::test]
async fn a_viewer_sees_no_row_of_another_project() {
    let l = Logins::new().await;
    let other_run = l.run_of("Other.X").await;
    sqlx::query(
        "INSERT INTO sisyphus.run_logs (run_id, seq, stream, text) VALUES ($1, 1, 'stdout', 'x')",
    )
    .bind(other_run)
    .execute(&l.db.pool)
    .await
    .expect("a line of the other project");
    let reads = [
        "SELECT count(*) FROM sisyphus.jobs WHERE project = 'Other.X'",
        "SELECT count(*) FROM sisyphus.runs r WHERE r.id = $1",
        "SELECT count(*) FROM sisyphus.run_logs WHERE run_id = $1",
        "SELECT count(*) FROM sisyphus.job_status WHERE project = 'Other.X'",
        "SELECT count(*) FROM sisyphus.recent_runs WHERE job LIKE 'Other.X/%'",
        "SELECT count(*) FROM sisyphus.audit WHERE project = 'Other.X'",
        "SELECT count(*) FROM sisyphus.project_defaults WHERE project = 'Other.X'",
    ];
    let mut conn = l.connect("viewer").await;
    for sql in reads {
        let n: i64 = sqlx::query_scalar(sql)
            .bind(other_run)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(n, 0, "{sql}");
    }
    // The same reads see ACME's rows: the filter is by project, not a blanket refusal.
    let mine: i64 = sqlx::query_scalar("SELECT count(*) FROM sisyphus.runs")
        .fetch_one(&mut conn)
        .await
        .expect("own runs");
    assert_eq!(
        mine, 2,
        "ACME.FooBar/j's pending run and ACME.FooBar/busy's running one"
    );
    // And the owner still sees both projects' rows.
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM sisyphus.runs")
        .fetch_one(&l.db.pool)
        .await
        .expect("all runs");
    assert_eq!(all, 4);
}

/// Every mutating action leaves exactly one audit row naming its actor; a rolled-back one
/// leaves none; nobody but the owner can change or delete the log.
#[tokio::test]
async fn every_change_leaves_one_audit_row_and_the_log_cannot_be_rewritten() {
    let l = Logins::new().await;
    let acme_run = l.run_of("ACME.FooBar").await;
    let count = |action: &'static str| {
        let pool = l.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sisyphus.audit WHERE action = $1")
                .bind(action)
                .fetch_one(&pool)
                .await
                .expect("count audit rows")
        }
    };
    let cases: [(&str, String, &str); 6] = [
        (
            "operator",
            "SELECT sisyphus.run_now('ACME.FooBar', 'j')".into(),
            "run.now",
        ),
        (
            "operator",
            format!("SELECT sisyphus.terminate({acme_run})"),
            "run.terminate",
        ),
        (
            "operator",
            "SELECT sisyphus.pause_job('ACME.FooBar', 'j')".into(),
            "job.pause",
        ),
        (
            "editor",
            "UPDATE sisyphus.jobs SET retries = 3, env = '{\"TOKEN\": \"hunter2\"}' \
             WHERE name = 'spare' RETURNING id"
                .into(),
            "job.update",
        ),
        (
            "editor",
            "SELECT sisyphus.remove_job('ACME.FooBar', 'spare')".into(),
            "job.remove",
        ),
        (
            "admin",
            "SELECT sisyphus.drain_host('h1', true)".into(),
            "host.drain",
        ),
    ];
    for (role, sql, action) in &cases {
        let before = count(action).await;
        // Rolled back: nothing.
        let outcome = attempt(&l, role, sql).await;
        assert!(
            matches!(outcome, Outcome::Allowed(_)),
            "{role} {sql}: {outcome:?}"
        );
        assert_eq!(
            count(action).await,
            before,
            "{action}: a rolled-back change was audited"
        );
        // Committed: one row, by this login, through this channel.
        let mut conn = l.connect(role).await;
        sqlx::query("SET application_name = 'access-test'")
            .execute(&mut conn)
            .await
            .expect("name the channel");
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
        assert_eq!(count(action).await, before + 1, "{action}");
        let (actor, channel): (String, Option<String>) = sqlx::query_as(
            "SELECT actor, channel FROM sisyphus.audit WHERE action = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(action)
        .fetch_one(&l.db.pool)
        .await
        .expect("the row");
        assert_eq!(actor, l.names[role], "{action}");
        assert_eq!(channel.as_deref(), Some("access-test"), "{action}");
    }
    // The changed keys with before and after; never an environment value.
    let diff: serde_json::Value = sqlx::query_scalar(
        "SELECT diff FROM sisyphus.audit WHERE action = 'job.update' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&l.db.pool)
    .await
    .expect("diff");
    assert_eq!(diff["retries"]["before"], 0, "{diff}");
    assert_eq!(diff["retries"]["after"], 3, "{diff}");
    assert_eq!(
        diff["env"]["changed"],
        serde_json::json!(["TOKEN"]),
        "{diff}"
    );
    assert!(!diff.to_string().contains("hunter2"), "{diff}");
    // The scheduler's own writes are not changes of a definition.
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM sisyphus.audit")
        .fetch_one(&l.db.pool)
        .await
        .expect("count");
    sqlx::query("UPDATE sisyphus.jobs SET next_slot = now(), fired = fired + 1")
        .execute(&l.db.pool)
        .await
        .expect("scheduler-like update");
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM sisyphus.audit")
        .fetch_one(&l.db.pool)
        .await
        .expect("count");
    assert_eq!(after, before);
    // Nobody but the owner rewrites the log, not even an admin.
    for role in ["operator", "admin"] {
        for sql in [
            "DELETE FROM sisyphus.audit RETURNING id",
            "UPDATE sisyphus.audit SET actor = 'nobody' RETURNING id",
            "INSERT INTO sisyphus.audit (action) VALUES ('forged') RETURNING id",
            "SELECT sisyphus.audit_write('forged', NULL, NULL, NULL)",
        ] {
            let outcome = attempt(&l, role, sql).await;
            assert!(
                matches!(&outcome, Outcome::Refused(m) if m.contains("permission denied")),
                "{role}: {sql}: {outcome:?}"
            );
        }
    }
}

/// A guardian started under a login bound to another host name stops at once and says why.
#[tokio::test]
async fn a_guardian_cannot_register_as_a_host_it_is_not_bound_to() {
    let db = TestDb::new().await;
    let bound_to_h1 = service_url(&db.url, &["guardian".into(), "--name".into(), "h1".into()]);
    let dir = crate::harness::temp_dir("unbound-guardian");
    let out = std::process::Command::new(crate::harness::bin("sisyphus"))
        .args(["guardian", "--name", "h2", "--database-url", &bound_to_h1])
        .args(["--log-dir", &dir.join("logs").display().to_string()])
        .args(["--spool-dir", &dir.join("spool").display().to_string()])
        .env_remove("SISYPHUS_DATABASE_URL")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run a guardian");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("(bound to h1) may not act as host h2"),
        "{err}"
    );
    assert_eq!(db.count("hosts").await, 0, "a host row was written");
}
