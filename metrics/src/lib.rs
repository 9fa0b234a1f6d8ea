//! The daemons' metrics with the Prometheus project's own Rust client (`prometheus-client`): each
//! daemon keeps its counters, gauges, histograms and labelled families in a [`Registry`] of its
//! own; a scrape encodes it as OpenMetrics text (1.0.0), which Prometheus asks for first and
//! parses natively, and [`serve`] answers `GET /metrics` with an axum router, in a task on the
//! daemon's `TaskTracker` (so its shutdown waits for the server). A scrape never touches the
//! database unless the daemon's own render function does.
//!
//! Names: a counter is registered without `_total` and exposed with it (OpenMetrics adds the
//! suffix), so `sisyphus_guardian_runs` is scraped as `sisyphus_guardian_runs_total`; a histogram
//! registered with [`Unit::Seconds`] gets `_seconds` appended and a `# UNIT` line. Help texts are
//! written without the final full stop, which the library adds.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::{Registry, Unit};

/// The content type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bucket bounds for durations in seconds, 5 ms to 1 hour.
pub const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Bucket bounds for small counts (batch sizes).
pub const COUNTS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// A histogram with these bucket bounds (upper bounds; `+Inf` is implied).
pub fn histogram(bounds: &[f64]) -> Histogram {
    Histogram::new(bounds.iter().copied())
}

/// Counters with one label, e.g. `[("status", "successful")]`.
pub type LabelledCounter = Family<[(&'static str, &'static str); 1], Counter>;

/// A gauge counted for one scrape only (by a query, say): its name, its help, and its value, or
/// None where it could not be counted — then it is left out of the exposition rather than shown
/// stale or made up.
pub type Scraped<'a> = (&'a str, &'a str, Option<i64>);

/// The exposition of `registry`, followed by the `scraped` gauges that could be counted.
pub fn encode(registry: &Registry, scraped: &[Scraped<'_>]) -> String {
    use prometheus_client::encoding::text;
    let mut extra = Registry::default();
    for (name, help, value) in scraped {
        if let Some(v) = value {
            let gauge = Gauge::<i64>::default();
            gauge.set(*v);
            extra.register(*name, *help, gauge);
        }
    }
    let mut out = String::new();
    let written = text::encode_registry(&mut out, registry)
        .and_then(|()| text::encode_registry(&mut out, &extra))
        .and_then(|()| text::encode_eof(&mut out));
    if let Err(e) = written {
        // Only a metric's own encoder can fail here (writing to a String cannot).
        tracing::error!("metrics: cannot encode: {e}");
    }
    out
}

/// `GET /metrics` (and `GET /`), answered with `render`'s text as OpenMetrics; anything else is
/// 404 (405 for another method). For daemons that serve more than metrics to merge in.
pub fn router<F, Fut>(render: F) -> Router
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    let render = Arc::new(render);
    let scrape = move || {
        let render = render.clone();
        async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], render().await) }
    };
    Router::new()
        .route("/metrics", get(scrape.clone()))
        .route("/", get(scrape))
}

/// Serves [`router`] on `addr` until `stop` (then shuts down gracefully: no new connections,
/// scrapes under way are answered). Returns once bound (or with the bind error), serving in a
/// task on `tasks`, so a daemon that waits for its tracker on shutdown waits for the server too.
pub async fn serve<F, Fut>(
    addr: SocketAddr,
    render: F,
    stop: CancellationToken,
    tasks: &TaskTracker,
) -> std::io::Result<SocketAddr>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(render);
    tasks.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!("metrics: server on {bound} stopped: {e}");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn registry() -> (Registry, Counter, LabelledCounter, Histogram) {
        let mut r = Registry::default();
        let c = Counter::default();
        let f = LabelledCounter::default();
        let h = histogram(SECONDS);
        r.register("t_ticks", "Ticks", c.clone());
        r.register("t_runs", "Runs by status", f.clone());
        r.register_with_unit("t_tick", "Cost of one tick", Unit::Seconds, h.clone());
        (r, c, f, h)
    }

    #[test]
    fn exposition_is_openmetrics_with_the_names_we_scrape() {
        let (r, c, f, h) = registry();
        c.inc_by(3);
        f.get_or_create(&[("status", "successful")]).inc();
        f.get_or_create(&[("status", "a\"b")]).inc();
        h.observe(0.007);
        h.observe(7200.0);
        let text = encode(
            &r,
            &[("t_depth", "Pending", Some(4)), ("t_gone", "x", None)],
        );
        for line in [
            "# HELP t_ticks Ticks.",
            "# TYPE t_ticks counter",
            "t_ticks_total 3",
            "# TYPE t_runs counter",
            "t_runs_total{status=\"successful\"} 1",
            "t_runs_total{status=\"a\\\"b\"} 1",
            "# TYPE t_tick_seconds histogram",
            "# UNIT t_tick_seconds seconds",
            "t_tick_seconds_bucket{le=\"0.005\"} 0",
            "t_tick_seconds_bucket{le=\"0.01\"} 1",
            "t_tick_seconds_bucket{le=\"3600.0\"} 1",
            "t_tick_seconds_bucket{le=\"+Inf\"} 2",
            "t_tick_seconds_count 2",
            "# TYPE t_depth gauge",
            "t_depth 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("t_gone"), "{text}");
        assert_eq!(text.lines().filter(|l| *l == "# EOF").count(), 1);
        assert!(text.ends_with("\n# EOF\n"), "{text}");
    }

    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut response))
            .await
            .expect("answered in time")
            .expect("read");
        response
    }

    #[tokio::test]
    async fn serves_get_metrics_until_stopped() {
        let (r, c, ..) = registry();
        let r = Arc::new(r);
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let addr = serve(
            "127.0.0.1:0".parse().expect("addr"),
            move || {
                let r = r.clone();
                async move { encode(&r, &[]) }
            },
            stop.clone(),
            &tasks,
        )
        .await
        .expect("bound");
        c.inc();

        let response = get(addr, "GET /metrics HTTP/1.0\r\n\r\n").await;
        let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains(&format!("content-type: {CONTENT_TYPE}")),
            "{head}"
        );
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(body.contains("\nt_ticks_total 1\n"), "{body}");

        let response = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        let response = get(addr, "GET /other HTTP/1.0\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.0 404"), "{response}");

        stop.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(5), tasks.wait())
            .await
            .expect("the server's task ends once stopped");
        let mut refused = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "still listening after stop");
    }

    #[tokio::test]
    async fn a_taken_address_is_an_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let r = serve(addr, || async { String::new() }, stop, &tasks).await;
        assert!(r.is_err());
        assert!(tasks.is_empty(), "nothing is spawned when the bind fails");
    }
}
