//! Access control through the real `sisyctl` (issue 15, items 2 and 3): logins made with
//! `user add` / `service add`, grants, what a granted user sees and may do, refusals with exit 1
//! and the database's words, `--reason` in the audit log and `sisyctl audit`.
//!
//! The test cluster trusts every login on 127.0.0.1, so a login connects by its name in the URL.
//! Roles are cluster-wide: each test names its logins after its own database.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::harness::{bin, jobs_file, sisyctl_with_url, stderr, stdout, TestDb};

/// A test database (the migration lets every login read the schema version, which every
/// client checks when it connects).
async fn new_db() -> TestDb {
    TestDb::new().await
}

/// A test database with two projects' jobs (ACME.FooBar/j, ACME.FooBar/spare, Other.X/k), one
/// pending run each of j and k.
async fn two_projects() -> TestDb {
    let db = new_db().await;
    let file = jobs_file(
        "[[job]]\nproject = \"ACME.FooBar\"\nname = \"j\"\ncommand = [\"true\"]\n\
         [[job]]\nproject = \"ACME.FooBar\"\nname = \"spare\"\ncommand = [\"true\"]\n\
         [[job]]\nproject = \"Other.X\"\nname = \"k\"\ncommand = [\"true\"]\n",
    );
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    for job in ["ACME.FooBar/j", "Other.X/k"] {
        let out = db.sisyctl(&["run", job]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    db
}

/// A login name unique to this test's database.
fn login(db: &TestDb, who: &str) -> String {
    let base = db.url.rsplit('/').next().unwrap_or("t");
    format!("{base}_{who}")
}

/// `sisyctl ARGS` logged in as `login`.
fn as_login(db: &TestDb, login: &str, args: &[&str]) -> Output {
    sisyctl_with_url(Some(&url_of(db, login)), args)
}

fn url_of(db: &TestDb, login: &str) -> String {
    db.url
        .replacen("postgres://postgres@", &format!("postgres://{login}@"), 1)
}

/// `sisyctl ARGS` as the owner, asserting success; its stdout.
fn ok(db: &TestDb, args: &[&str]) -> String {
    let out = db.sisyctl(args);
    assert!(
        out.status.success(),
        "sisyctl {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// `sisyctl user add NAME` and `sisyctl grant NAME LEVEL PATTERN`, as the owner.
fn user_with_grant(db: &TestDb, who: &str, level: &str, pattern: &str) -> String {
    let name = login(db, who);
    ok(db, &["user", "add", &name]);
    ok(db, &["grant", &name, level, pattern]);
    name
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// The values of `key` in a JSON array of objects.
fn column(rows: &serde_json::Value, key: &str) -> Vec<String> {
    rows.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| r[key].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_user_sees_only_the_projects_granted_and_nothing_after_revoke() {
    let db = two_projects().await;
    let alice = user_with_grant(&db, "alice", "viewer", "ACME.*");

    let runs = json(&as_login(&db, &alice, &["runs", "--json"]));
    assert_eq!(column(&runs, "job"), ["ACME.FooBar/j"], "{runs}");
    let jobs = json(&as_login(&db, &alice, &["job", "ls", "--json"]));
    let mut names = column(&jobs, "name");
    names.sort();
    assert_eq!(names, ["j", "spare"], "{jobs}");
    assert!(
        column(&jobs, "project").iter().all(|p| p == "ACME.FooBar"),
        "{jobs}"
    );
    // The owner still sees both projects.
    let all = json(&db.sisyctl(&["runs", "--json"]));
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");

    // Revoked: nothing of ACME any more.
    let out = ok(&db, &["revoke", &alice, "ACME.*"]);
    assert!(out.contains("no longer holds a grant on ACME.*"), "{out}");
    let out = as_login(&db, &alice, &["runs", "--json"]);
    let seen = if out.status.success() {
        stdout(&out)
    } else {
        String::new()
    };
    assert!(!seen.contains("ACME"), "after revoke: {seen}");
    // Revoking again takes nothing back, and says so.
    let out = ok(&db, &["revoke", &alice, "ACME.*"]);
    assert!(out.contains("held no grant on ACME.*"), "{out}");
}

#[tokio::test]
async fn an_operator_may_not_remove_a_job_and_is_told_which_grant_is_missing() {
    let db = two_projects().await;
    let bob = user_with_grant(&db, "bob", "operator", "ACME.*");

    let out = as_login(&db, &bob, &["job", "rm", "ACME.FooBar/spare"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!(
            "{bob} (operator of ACME.*) may not remove jobs of ACME.FooBar: needs editor"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(db.count("jobs WHERE name = 'spare'").await, 1);
    // What an operator may do, it does.
    let out = as_login(&db, &bob, &["job", "pause", "ACME.FooBar/spare"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Another project: no grant there, and the message says so.
    let out = as_login(&db, &bob, &["run", "Other.X/k"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("(no grant on Other.X) may not run jobs of Other.X: needs operator"),
        "{}",
        stderr(&out)
    );
    // Grants are admins' business.
    let out = as_login(&db, &bob, &["grant", &bob, "editor", "*"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{bob} may not grant access: needs admin")),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_reason_goes_into_the_audit_log_with_actor_and_channel() {
    let db = two_projects().await;
    let carol = user_with_grant(&db, "carol", "operator", "ACME.FooBar");
    // Spaces, quotes, a backslash, a tab and an equals sign: all must arrive as written.
    let reason = "deploy of v2 \"hotfix\" — it's late\\night\tmode=safe";
    let out = as_login(
        &db,
        &carol,
        &["--reason", reason, "job", "pause", "ACME.FooBar/j"],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let rows = json(&db.sisyctl(&["audit", "--job", "ACME.FooBar/j", "--json"]));
    let newest = &rows[0];
    assert_eq!(newest["action"], "job.pause", "{rows}");
    assert_eq!(newest["actor"], carol.as_str(), "{rows}");
    assert_eq!(newest["channel"], "sisyctl", "{rows}");
    assert_eq!(newest["reason"], reason, "{rows}");
    assert_eq!(newest["target"], "ACME.FooBar/j", "{rows}");
    // The other job's rows stay out of this job's listing.
    assert!(
        column(&rows, "target").iter().all(|t| t == "ACME.FooBar/j"),
        "{rows}"
    );

    // The reason from the environment, on a resume.
    let out = Command::new(bin("sisyctl"))
        .args(["job", "resume", "ACME.FooBar/j"])
        .env("SISYPHUS_DATABASE_URL", url_of(&db, &carol))
        .env("SISYPHUS_REASON", "from the environment")
        .output()
        .expect("run sisyctl");
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = json(&db.sisyctl(&[
        "audit",
        "--job",
        "ACME.FooBar/j",
        "--actor",
        &carol,
        "--since",
        "1h",
        "--json",
    ]));
    assert_eq!(
        column(&rows, "action"),
        ["job.resume", "job.pause"],
        "{rows}"
    );
    assert_eq!(rows[0]["reason"], "from the environment", "{rows}");

    // Without a reason, none; filters that match nothing list nothing.
    ok(&db, &["job", "pause", "ACME.FooBar/j"]);
    let rows = json(&db.sisyctl(&["audit", "--job", "ACME.FooBar/j", "--limit", "1", "--json"]));
    assert_eq!(rows[0]["actor"], "postgres", "{rows}");
    assert!(rows[0]["reason"].is_null(), "{rows}");
    let rows = json(&db.sisyctl(&["audit", "--actor", "nobody-at-all", "--json"]));
    assert_eq!(rows, serde_json::json!([]));

    // The table shows the reason too, its tab escaped.
    let table = ok(&db, &["audit", "--actor", &carol]);
    assert!(table.contains("deploy of v2 \"hotfix\""), "{table}");
    assert!(
        table.contains("job.pause") && table.contains("sisyctl"),
        "{table}"
    );
}

#[tokio::test]
async fn a_guardian_login_needs_hosts_and_other_services_take_none() {
    let db = new_db().await;
    let g = login(&db, "guard");
    let out = db.sisyctl(&["service", "add", "guardian", &g]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("a guardian login needs the host names it may act as: --hosts"),
        "{}",
        stderr(&out)
    );
    let exists = |name: String| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
                .bind(name)
                .fetch_one(&pool)
                .await
                .expect("pg_roles")
        }
    };
    assert!(!exists(g.clone()).await, "refused, yet created");

    let out = ok(
        &db,
        &["service", "add", "guardian", &g, "--hosts", "web-1,web-2"],
    );
    assert!(out.contains("web-1, web-2"), "{out}");
    let hosts: Vec<String> = sqlx::query_scalar(
        "SELECT host FROM sisyphus.service_hosts WHERE login = $1 ORDER BY host",
    )
    .bind(&g)
    .fetch_all(&db.pool)
    .await
    .expect("service hosts");
    assert_eq!(hosts, ["web-1", "web-2"]);
    let member: bool = sqlx::query_scalar("SELECT pg_has_role($1, 'sisyphus_guardian', 'MEMBER')")
        .bind(&g)
        .fetch_one(&db.pool)
        .await
        .expect("membership");
    assert!(member);

    let s = login(&db, "sched");
    let out = db.sisyctl(&["service", "add", "scheduler", &s, "--hosts", "web-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("a scheduler login acts for no host"),
        "{}",
        stderr(&out)
    );
    let out = db.sisyctl(&["service", "add", "user", &s]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("sisyctl user add"),
        "{}",
        stderr(&out)
    );
    ok(&db, &["service", "add", "scheduler", &s]);
    assert!(exists(s).await);
}

#[tokio::test]
async fn grants_are_listed_and_bad_levels_and_patterns_are_refused() {
    let db = new_db().await;
    let dave = user_with_grant(&db, "dave", "editor", "ACME.*");
    ok(&db, &["grant", &dave, "viewer", "*"]);
    // Granting again on the same pattern changes the level.
    ok(&db, &["grant", &dave, "operator", "*"]);

    let grants = json(&db.sisyctl(&["grants", "--json"]));
    let mine: Vec<(String, String, String)> = grants
        .as_array()
        .expect("array")
        .iter()
        .filter(|g| g["login"] == dave.as_str())
        .map(|g| {
            assert_eq!(g["granted_by"], "postgres", "{g}");
            assert!(g["granted_at"].is_string(), "{g}");
            (
                g["login"].as_str().unwrap_or_default().to_string(),
                g["level"].as_str().unwrap_or_default().to_string(),
                g["pattern"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        mine,
        [
            (dave.clone(), "operator".to_string(), "*".to_string()),
            (dave.clone(), "editor".to_string(), "ACME.*".to_string()),
        ]
    );
    // A person sees their own grants.
    let own = json(&as_login(&db, &dave, &["grants", "--json"]));
    assert_eq!(column(&own, "login"), [dave.as_str(), dave.as_str()]);
    let table = ok(&db, &["grants"]);
    assert!(table.starts_with("LOGIN"), "{table}");
    assert!(table.contains(&dave), "{table}");

    let out = db.sisyctl(&["grant", &dave, "owner", "ACME.*"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("`owner` is not a grant level; expected one of: viewer, operator, editor"),
        "{}",
        stderr(&out)
    );
    let out = db.sisyctl(&["grant", &dave, "viewer", "ACME*"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a project pattern"),
        "{}",
        stderr(&out)
    );
    // A login that does not exist: the database says how to make one.
    let out = db.sisyctl(&["grant", &login(&db, "ghost"), "viewer", "ACME.*"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("sisyctl user add"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_password_is_read_from_stdin_and_never_shown() {
    let db = new_db().await;
    let erin = login(&db, "erin");
    let secret = "s3cret with 'quotes' and spaces";
    let mut child = Command::new(bin("sisyctl"))
        .args(["user", "add", &erin, "--password-stdin", "--admin"])
        .env("SISYPHUS_DATABASE_URL", &db.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sisyctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{secret}\n").as_bytes())
        .expect("write the password");
    let out = child.wait_with_output().expect("sisyctl");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("s3cret") && !stderr(&out).contains("s3cret"));
    // Stored (as a hash), and the login is an admin.
    let (stored, hashed): (bool, bool) = sqlx::query_as(
        "SELECT rolpassword IS NOT NULL, rolpassword NOT LIKE '%s3cret%' FROM pg_authid \
         WHERE rolname = $1",
    )
    .bind(&erin)
    .fetch_one(&db.pool)
    .await
    .expect("pg_authid");
    assert!(stored && hashed);
    let out = as_login(&db, &erin, &["grant", &erin, "viewer", "*"]);
    assert!(out.status.success(), "an admin grants: {}", stderr(&out));
    // The audit row says a login was added, and nothing of the password.
    let rows = json(&db.sisyctl(&["audit", "--actor", "postgres", "--json"]));
    assert!(
        column(&rows, "action").contains(&"login.add".to_string()),
        "{rows}"
    );
    assert!(!rows.to_string().contains("s3cret"), "{rows}");

    // Nothing on stdin: refused before anything is sent.
    let out = db.sisyctl(&["user", "add", &login(&db, "frank"), "--password-stdin"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("stdin held no password"),
        "{}",
        stderr(&out)
    );
}

/// The matrix through the real `sisyctl`: each role (a login of each kind; the people granted
/// `ACME.*`) × each command, on a fresh copy of two projects per role so that no cell sees
/// another's effects. Allowed means exit 0 (and, for `runs`, ACME's runs listed); denied means
/// exit 1 with the database's refusal, or nothing listed.
#[tokio::test]
async fn each_role_may_do_through_sisyctl_what_its_grant_says_and_nothing_more() {
    let roles = [
        "viewer",
        "operator",
        "editor",
        "admin",
        "guardian",
        "scheduler",
        "dispatcher",
    ];
    let expect = |role: &str, action: &str| -> bool {
        match role {
            "guardian" => return action == "read runs",
            "scheduler" => return matches!(action, "read runs" | "read the outbox"),
            // `notifications` names each notification's job, which the dispatcher may not read
            // (it reads the outbox alone: the SQL matrix in access.rs shows that).
            "dispatcher" => return false,
            _ => {}
        }
        let level = roles.iter().position(|r| *r == role).unwrap_or(0);
        let needs = match action {
            "read runs" | "read the outbox" => 0,
            "run now" | "terminate" | "pause" => 1,
            "apply a job" | "remove a job" => 2,
            _ => 3,
        };
        level >= needs
    };
    let new_job =
        jobs_file("[[job]]\nproject = \"ACME.FooBar\"\nname = \"new\"\ncommand = [\"true\"]\n");
    let mut wrong = Vec::new();
    for role in roles {
        let db = two_projects().await;
        ok(&db, &["run", "ACME.FooBar/spare"]);
        sqlx::query("INSERT INTO sisyphus.hosts (name, last_heartbeat) VALUES ('h1', now())")
            .execute(&db.pool)
            .await
            .expect("a host");
        let acme_run: i64 = sqlx::query_scalar(
            "SELECT r.id FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id
              WHERE j.project = 'ACME.FooBar' AND j.name = 'j'",
        )
        .fetch_one(&db.pool)
        .await
        .expect("ACME's run");
        let name = login(&db, role);
        match role {
            "viewer" | "operator" | "editor" => {
                ok(&db, &["user", "add", &name]);
                ok(&db, &["grant", &name, role, "ACME.*"]);
            }
            "admin" => {
                ok(&db, &["user", "add", &name, "--admin"]);
            }
            "guardian" => {
                ok(&db, &["service", "add", "guardian", &name, "--hosts", "h1"]);
            }
            _ => {
                ok(&db, &["service", "add", role, &name]);
            }
        }
        let run = acme_run.to_string();
        let actions: [(&str, Vec<&str>); 9] = [
            ("read runs", vec!["--json", "runs"]),
            ("run now", vec!["run", "ACME.FooBar/j"]),
            ("terminate", vec!["kill", &run]),
            ("pause", vec!["job", "pause", "ACME.FooBar/j"]),
            (
                "apply a job",
                vec!["apply", new_job.to_str().expect("path")],
            ),
            ("remove a job", vec!["job", "rm", "ACME.FooBar/spare"]),
            ("grant", vec!["grant", &name, "editor", "*"]),
            ("drain", vec!["drain", "h1"]),
            ("read the outbox", vec!["notifications"]),
        ];
        for (action, args) in actions {
            let out = as_login(&db, &name, &args);
            let allowed = match (action, out.status.code()) {
                ("read runs", Some(0)) => out.stdout.windows(11).any(|w| w == b"ACME.FooBar"),
                (_, Some(0)) => true,
                (_, Some(1)) => false,
                (_, code) => {
                    wrong.push(format!(
                        "{role} / {action}: exit {code:?}: {}",
                        stderr(&out)
                    ));
                    continue;
                }
            };
            if allowed != expect(role, action) {
                wrong.push(format!(
                    "{role} / {action}: {} {}{}",
                    if allowed { "allowed" } else { "denied" },
                    stdout(&out),
                    stderr(&out)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "unexpected:\n{}", wrong.join("\n"));
}
