//! The schema: migrations, the status enum, the schema-version checks, invariant `one-run-per-slot`'s index.

use sisyphus_client::{JobDefinition, RunStatus};

use crate::harness::{stderr, TestDb};

#[tokio::test]
async fn run_status_enum_matches_postgres() {
    let db = TestDb::new().await;
    let labels: Vec<String> =
        sqlx::query_scalar("SELECT unnest(enum_range(NULL::sisyphus.run_status))::text")
            .fetch_all(&db.pool)
            .await
            .expect("enum labels");
    let ours: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(labels, ours);
    let catchup: Vec<String> =
        sqlx::query_scalar("SELECT unnest(enum_range(NULL::sisyphus.catchup_policy))::text")
            .fetch_all(&db.pool)
            .await
            .expect("enum labels");
    let ours: Vec<&str> = sisyphus_client::Catchup::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(catchup, ours);
    let outbox: Vec<String> =
        sqlx::query_scalar("SELECT unnest(enum_range(NULL::sisyphus.outbox_state))::text")
            .fetch_all(&db.pool)
            .await
            .expect("enum labels");
    let ours: Vec<&str> = sisyphus_client::notifications::OutboxState::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(outbox, ours);
    let events: Vec<String> =
        sqlx::query_scalar("SELECT unnest(enum_range(NULL::sisyphus.notify_event))::text")
            .fetch_all(&db.pool)
            .await
            .expect("enum labels");
    let ours: Vec<&str> = sisyphus_client::notifications::Event::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(events, ours);
}

#[tokio::test]
async fn migrate_is_idempotent_and_reports_versions() {
    let db = TestDb::empty().await;
    let first = db.sisyctl(&["migrate", "--json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).expect("json");
    assert_eq!(v["from_version"], 0);
    let expected = sisyphus_client::db::expected_version();
    assert_eq!(v["to_version"], expected);
    let again = db.sisyctl(&["migrate", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(v["from_version"], expected);
    assert_eq!(v["to_version"], expected);
    // Nothing of ours lands in `public`.
    let public: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&db.pool)
            .await
            .expect("count");
    assert_eq!(public, 0);
}

#[tokio::test]
async fn commands_say_when_the_schema_is_missing() {
    let db = TestDb::empty().await;
    let out = db.sisyctl(&["job", "ls"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no Sisyphus schema yet; run `sisyctl migrate`"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn commands_say_when_the_schema_is_older() {
    let db = TestDb::new().await;
    let expected = sisyphus_client::db::expected_version();
    sqlx::query("DELETE FROM sisyphus._sqlx_migrations WHERE version = $1")
        .bind(expected)
        .execute(&db.pool)
        .await
        .expect("forget the newest migration");
    let out = db.sisyctl(&["runs"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("needs version {expected}")) && err.contains("sisyctl migrate"),
        "{err}"
    );
    // And a schema newer than the binary is refused too.
    sqlx::query("INSERT INTO sisyphus._sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1, 'future', true, '\\x00', 0)")
        .bind(expected + 100)
        .execute(&db.pool)
        .await
        .expect("pretend a newer schema");
    let out = db.sisyctl(&["runs"]);
    assert!(
        stderr(&out).contains("is newer than this program"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn the_same_slot_cannot_be_materialised_twice() {
    let db = TestDb::new().await;
    db.client
        .apply(
            &[JobDefinition::new("P", "j", ["true"]).cron("* * * * *")],
            false,
        )
        .await
        .expect("apply");
    let insert = "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, attempt, target_host)
                  SELECT id, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', $1, $2 FROM sisyphus.jobs";
    sqlx::query(insert)
        .bind(1)
        .bind(None::<String>)
        .execute(&db.pool)
        .await
        .expect("first");
    let dup = sqlx::query(insert)
        .bind(1)
        .bind(None::<String>)
        .execute(&db.pool)
        .await;
    assert!(
        dup.is_err(),
        "a second run for the same (job, slot, attempt) was accepted"
    );
    // Another attempt, or another host of an `all` job, is a different run.
    sqlx::query(insert)
        .bind(2)
        .bind(None::<String>)
        .execute(&db.pool)
        .await
        .expect("attempt 2");
    sqlx::query(insert)
        .bind(1)
        .bind(Some("h1"))
        .execute(&db.pool)
        .await
        .expect("host h1");
    let dup = sqlx::query(insert)
        .bind(1)
        .bind(Some("h1"))
        .execute(&db.pool)
        .await;
    assert!(dup.is_err(), "a second run for the same host was accepted");
}

/// Every statement in `sql/` is parsed and planned against the migrated schema (PostgreSQL's
/// Parse and Describe, as sqlx does before a statement first runs): a column, table, function or
/// type that a migration renamed or dropped fails here, in CI, not in production. Files that
/// start with `WHERE`/`ORDER`/`AND` are tails of `sql/jobs/columns.sql`, the way the code joins
/// them (`concat!`/`format!`), and are checked joined.
#[tokio::test]
async fn every_statement_in_sql_prepares_against_the_migrated_schema() {
    use sqlx::Executor;
    let db = TestDb::new().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql");
    let columns = std::fs::read_to_string(root.join("jobs/columns.sql")).expect("columns.sql");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).expect("sql/").flatten() {
        for file in std::fs::read_dir(dir.path())
            .expect("a sql/ folder")
            .flatten()
        {
            if file.path().extension().is_some_and(|x| x == "sql") {
                files.push(file.path());
            }
        }
    }
    files.sort();
    assert!(files.len() > 50, "only {} statements found", files.len());
    let mut conn = db.pool.acquire().await.expect("connection");
    // The benchmarks' own scratch table, which their statements write (not part of the schema).
    let scratch = std::fs::read_to_string(root.join("bench/create_counter.sql")).expect("scratch");
    conn.execute(scratch.as_str())
        .await
        .expect("the benchmarks' scratch table");
    // And the fleet bench's statement counts (pg_stat_statements: planned without being loaded).
    let counts = std::fs::read_to_string(root.join("bench/statements_extension.sql")).expect("ext");
    conn.execute(counts.as_str())
        .await
        .expect("pg_stat_statements");
    let mut broken = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read a statement");
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("--"))
            .unwrap_or_default()
            .to_ascii_uppercase();
        let is_tail = ["WHERE", "ORDER", "AND"]
            .iter()
            .any(|k| first.starts_with(k));
        let statement = if is_tail {
            format!("{columns}{text}")
        } else {
            text
        };
        if let Err(e) = conn.prepare(statement.as_str()).await {
            broken.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(
        broken.is_empty(),
        "statements that no longer fit the schema:\n{}",
        broken.join("\n")
    );
    println!("{} statements prepared", files.len());
}

/// The control actions `runs.requested` may hold are exactly `ControlAction`'s.
#[tokio::test]
async fn control_actions_match_the_requested_check() {
    let db = TestDb::new().await;
    let check: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint
          WHERE conrelid = 'sisyphus.runs'::regclass AND pg_get_constraintdef(oid) LIKE '%requested%'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("the check on runs.requested");
    let labels: Vec<&str> = check.split('\'').skip(1).step_by(2).collect();
    let ours: Vec<&str> = sisyphus_client::ControlAction::ALL
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(labels, ours, "{check}");
    assert!("kill".parse::<sisyphus_client::ControlAction>().is_err());
}

/// The formats `jobs.format` may hold (migration 0014) are exactly `JobFormat`'s.
#[tokio::test]
async fn job_formats_match_the_format_check() {
    let db = TestDb::new().await;
    let check: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint
          WHERE conrelid = 'sisyphus.jobs'::regclass AND conname = 'jobs_format_check'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("the check on jobs.format");
    let labels: Vec<&str> = check.split('\'').skip(1).step_by(2).collect();
    let ours: Vec<&str> = sisyphus_client::spec::JobFormat::ALL
        .iter()
        .map(|f| f.as_str())
        .collect();
    assert_eq!(labels, ours, "{check}");
}

/// The policies `jobs.overlap` may hold (migration 0016) are exactly `Overlap`'s.
#[tokio::test]
async fn overlap_policies_match_the_overlap_check() {
    let db = TestDb::new().await;
    let check: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint
          WHERE conrelid = 'sisyphus.jobs'::regclass AND conname = 'jobs_overlap_check'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("the check on jobs.overlap");
    let labels: Vec<&str> = check.split('\'').skip(1).step_by(2).collect();
    let ours: Vec<&str> = sisyphus_client::spec::Overlap::ALL
        .iter()
        .map(|o| o.as_str())
        .collect();
    assert_eq!(labels, ours, "{check}");
}
