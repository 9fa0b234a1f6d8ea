//! The Prometheus endpoints of the guardian and the scheduler, scraped over HTTP and parsed as
//! OpenMetrics text (1.0.0), the format Prometheus asks for first.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use sisyphus_client::JobDefinition;

use crate::harness::{ended, run_now, wait_for, Daemon, TestDb};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `GET /metrics`; the body, or None while nothing answers.
pub fn scrape(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains(
            "\r\ncontent-type: application/openmetrics-text; version=1.0.0; charset=utf-8"
        ),
        "{head}"
    );
    Some(body.to_string())
}

/// Parses OpenMetrics text strictly enough to catch a malformed exposition: every sample belongs
/// to a family declared by `# TYPE` (with `# HELP`, and `# UNIT` only where the name ends with
/// it), a counter's samples end in `_total`, names and labels are well formed, values are
/// numbers, histogram buckets are cumulative up to `+Inf` = `_count`, and `# EOF` ends it.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    let text = text
        .strip_suffix("# EOF\n")
        .unwrap_or_else(|| panic!("no `# EOF` at the end:\n{text}"));
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut samples = BTreeMap::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split_whitespace().next().expect("HELP name");
            helped.insert(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().expect("name"), parts.next().expect("type"));
            assert!(
                ["counter", "gauge", "histogram", "summary", "unknown"].contains(&kind),
                "{line}"
            );
            assert!(
                helped.contains(name),
                "TYPE before HELP or without it: {line}"
            );
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# UNIT ") {
            let (name, unit) = rest.split_once(' ').expect("UNIT name unit");
            assert!(
                types.contains_key(name) && name.ends_with(&format!("_{unit}")),
                "UNIT before TYPE, or the name does not end with the unit: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.trim().is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value of {line:?}"));
        let name = series.split('{').next().expect("name");
        assert!(name_ok(name), "bad metric name in {line:?}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}'));
                let inner = inner.unwrap_or_else(|| panic!("labels of {line:?}"));
                for pair in inner.split(',') {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("label {pair:?}"));
                    assert!(
                        name_ok(k) && v.starts_with('"') && v.ends_with('"'),
                        "label {pair:?}"
                    );
                }
            }
        }
        let suffixes = [
            ("_bucket", "histogram"),
            ("_sum", "histogram"),
            ("_count", "histogram"),
            ("_total", "counter"),
        ];
        let family = suffixes
            .iter()
            .find_map(|(s, kind)| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == kind))
            })
            .unwrap_or(name);
        let kind = types
            .get(family)
            .unwrap_or_else(|| panic!("sample of an undeclared family: {line:?}"));
        assert!(
            kind != "counter" || name.ends_with("_total"),
            "a counter's sample without _total: {line:?}"
        );
        samples.insert(series.to_string(), value);
    }
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let buckets: Vec<f64> = samples
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{family}_bucket{{")))
            .map(|(_, v)| *v)
            .collect();
        let inf = samples[&format!("{family}_bucket{{le=\"+Inf\"}}")];
        assert!(
            buckets.iter().all(|b| *b <= inf),
            "{family}: a bucket above +Inf"
        );
        assert_eq!(
            inf,
            samples[&format!("{family}_count")],
            "{family}: +Inf != count"
        );
    }
    samples
}

#[tokio::test]
async fn guardian_and_scheduler_metrics_are_prometheus_text() {
    let db = TestDb::new().await;
    let (gp, sp) = (free_port(), free_port());
    let _g = Daemon::guardian(&db.url, "g1", &["--metrics", &format!("127.0.0.1:{gp}")]);
    let _s = Daemon::scheduler_with(&db.url, &["--metrics", &format!("127.0.0.1:{sp}")]);
    let run = run_now(&db, JobDefinition::new("M", "echo", ["echo", "hello"])).await;
    let (status, ..) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(status, "successful");

    let g = wait_for(
        "the guardian's metrics to count the run",
        Duration::from_secs(10),
        || async {
            let m = parse(&scrape(gp)?);
            (m.get("sisyphus_guardian_runs_total{status=\"successful\"}") == Some(&1.0))
                .then_some(m)
        },
    )
    .await;
    assert_eq!(g["sisyphus_guardian_run_duration_seconds_count"], 1.0);
    assert!(g["sisyphus_guardian_start_latency_seconds_count"] >= 1.0);
    assert!(g["sisyphus_guardian_claim_batch_size_count"] >= 1.0);
    assert_eq!(g["sisyphus_guardian_runs_in_flight"], 0.0);
    let beats = wait_for("a lease renewal", Duration::from_secs(5), || async {
        let m = parse(&scrape(gp)?);
        let n = m["sisyphus_guardian_lease_renewals_total"];
        (n >= 1.0).then_some(n)
    })
    .await;
    println!("guardian metrics: {} samples, {beats} renewals", g.len());

    let s = wait_for(
        "the scheduler's metrics",
        Duration::from_secs(10),
        || async {
            let m = parse(&scrape(sp)?);
            (m.get("sisyphus_scheduler_leader") == Some(&1.0)).then_some(m)
        },
    )
    .await;
    assert!(s["sisyphus_scheduler_ticks_total"] >= 1.0);
    assert!(s["sisyphus_scheduler_tick_seconds_count"] >= 1.0);
    assert_eq!(s["sisyphus_queue_depth"], 0.0);
    assert_eq!(s["sisyphus_outbox_backlog"], 0.0);
    assert_eq!(s["sisyphus_scheduler_slow_runs_total"], 0.0);
}
