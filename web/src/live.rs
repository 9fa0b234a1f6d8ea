//! Live pages: one LISTEN connection per server process (`sisyphus_web` for runs and log
//! lines, `sisyphus_jobs`, `sisyphus_outbox`), its notifications gathered for a moment and fanned
//! out to every browser's event stream (Server-Sent Events).
//!
//! An event is a hint, never data: a page that hears `runs` fetches itself again, the Run page
//! that hears `log` fetches the lines after the last one it has — both under the person's own
//! role. So a stream shows nobody anything, and catching up after a lost connection (the
//! browser's EventSource reconnects by itself; the page refreshes on `open`) or a lost LISTEN
//! connection (`resync`) is the same fetch.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use sisyphus_client::db::{self, Listener};
use sisyphus_client::RunId;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::auth::Person;
use crate::{App, Error};

/// How long notifications are gathered into one fan-out: a burst of claims and lines becomes
/// one event per browser, not hundreds.
const GATHER: Duration = Duration::from_millis(150);

/// What changed in one gathering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub runs: bool,
    pub jobs: bool,
    pub outbox: bool,
    /// Runs with new log lines.
    pub lines: BTreeSet<i64>,
    /// Lines of more runs than a notification can name.
    pub all_lines: bool,
    /// Something may have been missed: every page fetches itself again.
    pub resync: bool,
}

impl Changes {
    fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    fn add(&mut self, channel: &str, payload: &str) {
        match (channel, payload.split_once(' ')) {
            (db::web::CHANNEL, Some(("log", "*"))) => self.all_lines = true,
            (db::web::CHANNEL, Some(("log", ids))) => self
                .lines
                .extend(ids.split(',').filter_map(|id| id.parse::<i64>().ok())),
            (db::web::CHANNEL, _) => self.runs = true,
            (db::scheduler::JOBS_CHANNEL, _) => self.jobs = true,
            (db::dispatcher::OUTBOX_CHANNEL, _) => self.outbox = true,
            _ => {}
        }
    }

    fn has_lines_of(&self, run: i64) -> bool {
        self.all_lines || self.resync || self.lines.contains(&run)
    }
}

/// The fan-out: every event stream subscribes.
#[derive(Clone)]
pub struct Hub(broadcast::Sender<Arc<Changes>>);

impl Hub {
    pub fn new() -> Hub {
        Hub(broadcast::channel(64).0)
    }

    fn send(&self, changes: Changes) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.0.send(Arc::new(changes));
    }
}

/// The LISTEN task: until `shutdown`, hears the channels and fans out what changed.
pub async fn listen(url: String, hub: Hub, shutdown: CancellationToken) {
    let channels = [
        db::web::CHANNEL,
        db::scheduler::JOBS_CHANNEL,
        db::dispatcher::OUTBOX_CHANNEL,
    ];
    let mut listener = loop {
        match Listener::connect(&url, "sisyphus web (listen)", &channels).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!(error = %e, "dashboard cannot LISTEN yet; pages refresh only on reload");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    };
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            n = listener.recv() => n,
        };
        let mut changes = Changes::default();
        match first {
            Ok(n) => changes.add(&n.channel, &n.payload),
            Err(e) => {
                tracing::warn!(error = %e, "dashboard's LISTEN connection lost; reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
                changes.resync = true;
            }
        }
        let deadline = tokio::time::Instant::now() + GATHER;
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, listener.recv()).await {
            changes.add(&n.channel, &n.payload);
        }
        if !changes.is_empty() {
            hub.send(changes);
        }
    }
}

#[derive(Deserialize)]
pub struct Subscription {
    /// The run whose log lines the page shows.
    run: Option<i64>,
}

/// `GET /events[?run=ID]`: the event stream of a page: `runs`, `jobs`, `outbox`, `resync`, and
/// for a Run page `log`. A run the person may not see is refused (404) before the stream opens.
pub async fn events(
    State(app): State<Arc<App>>,
    person: Person,
    Query(sub): Query<Subscription>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Error> {
    if let Some(run) = sub.run {
        let mut tx = app.begin(&person).await?;
        db::runs::one(&mut tx, RunId(run))
            .await?
            .ok_or(Error::NotFound)?;
    }
    let state = (app.hub.0.subscribe(), app.shutdown.clone(), sub.run);
    let stream = stream::unfold(state, |(mut rx, shutdown, run)| async move {
        loop {
            let changes = tokio::select! {
                () = shutdown.cancelled() => return None,
                c = rx.recv() => c,
            };
            let event = match changes {
                Ok(c) => event_for(&c, run),
                Err(broadcast::error::RecvError::Lagged(_)) => Some("resync"),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if let Some(name) = event {
                // The name is the data too: a browser dispatches no event whose data is empty.
                return Some((
                    Ok(Event::default().event(name).data(name)),
                    (rx, shutdown, run),
                ));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The one event a page needs for `changes` (the most it must do), if any.
fn event_for(changes: &Changes, run: Option<i64>) -> Option<&'static str> {
    if changes.resync {
        return Some("resync");
    }
    let lines = run.is_some_and(|r| changes.has_lines_of(r));
    match (lines, changes.runs || changes.jobs || changes.outbox) {
        (true, true) => Some("resync"),
        (true, false) => Some("log"),
        (false, true) => Some("changed"),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_gather_into_one_change() {
        let mut c = Changes::default();
        c.add("sisyphus_web", "log 3,5");
        c.add("sisyphus_web", "log 7");
        assert_eq!(event_for(&c, Some(5)), Some("log"));
        assert_eq!(event_for(&c, Some(4)), None);
        assert_eq!(event_for(&c, None), None);
        c.add("sisyphus_web", "runs");
        assert_eq!(event_for(&c, None), Some("changed"));
        assert_eq!(event_for(&c, Some(7)), Some("resync"));
        let mut all = Changes::default();
        all.add("sisyphus_web", "log *");
        assert_eq!(event_for(&all, Some(123)), Some("log"));
        let mut jobs = Changes::default();
        jobs.add("sisyphus_jobs", "");
        assert_eq!(event_for(&jobs, None), Some("changed"));
    }
}
