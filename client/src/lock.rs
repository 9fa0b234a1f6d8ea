//! Reader/writer locks on named resources for any service — jobspy's `ResourceManager` in Rust.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use sisyphus_client::{Client, LockRequest};
//! # async fn f(client: &Client) -> sisyphus_client::Result<()> {
//! let lock = client
//!     .lock(
//!         LockRequest::new("billing-service")
//!             .inputs(["reporting.events.2026-11-23"])
//!             .outputs(["reporting.revenue.2026-11-23"])
//!             .lease(Duration::from_secs(60))
//!             .wait(Duration::from_secs(300)),
//!     )
//!     .await?;
//! // … produce the output; the lease is refreshed in the background …
//! lock.stop().await?; // writes the outputs; dropping the lock (or `fail()`) writes none
//! # Ok(()) }
//! ```
//!
//! The rules live in SQL (migrations/0004): all locks at once or none, shared readers, one
//! exclusive writer, inputs must have been written, nothing held while waiting. This module only
//! waits between attempts ([`wait_for`], also used by the guardian) and keeps the lease fresh.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sisyphus_db::PgPool;
use tokio::task::JoinHandle;

use crate::db::resources::{self, Attempt};
use crate::resources::Template;
use crate::{Error, Result};

/// What a service wants to lock.
#[derive(Debug, Clone)]
pub struct LockRequest {
    owner: String,
    holder: Option<String>,
    inputs: Vec<String>,
    outputs: Vec<String>,
    lease: Duration,
    wait: Duration,
    outputs_expire: Option<Duration>,
}

impl LockRequest {
    /// A request by `owner` (shown as the writer of the outputs and in the lineage graph), with a
    /// lease of 5 minutes and a wait of 15 minutes, as jobspy's usual `duration=300, wait=900`.
    pub fn new(owner: &str) -> LockRequest {
        LockRequest {
            owner: owner.to_string(),
            holder: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            lease: crate::spec::DEFAULT_LOCK_LEASE,
            wait: crate::spec::DEFAULT_LOCK_WAIT,
            outputs_expire: None,
        }
    }

    /// Adds inputs (shared locks; each must have been written as an output).
    pub fn inputs<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.inputs.extend(names.into_iter().map(Into::into));
        self
    }

    /// Adds outputs (exclusive locks; written by [`ResourceLock::stop`]).
    pub fn outputs<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.outputs.extend(names.into_iter().map(Into::into));
        self
    }

    /// How long the locks hold without a refresh (the guard refreshes every third of it).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long to wait for busy locks before giving up.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Written outputs count as unwritten after this long.
    pub fn expire_outputs(mut self, after: Duration) -> Self {
        self.outputs_expire = Some(after);
        self
    }

    /// Names the holder (shown in `sisyctl resources`); by default owner, host process and a
    /// counter.
    pub fn holder(mut self, holder: &str) -> Self {
        self.holder = Some(holder.to_string());
        self
    }

    fn check(&self) -> Result<()> {
        for name in self.inputs.iter().chain(&self.outputs) {
            let t = Template::parse(name).map_err(Error::Refused)?;
            if !t.is_fixed() {
                return Err(Error::Refused(format!(
                    "`{name}`: placeholders are for job definitions; give the resolved name"
                )));
            }
        }
        if self.lease.is_zero() {
            return Err(Error::Refused("a lock lease must be more than zero".into()));
        }
        Ok(())
    }

    fn holder_name(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        self.holder.clone().unwrap_or_else(|| {
            format!(
                "{}:{}:{}",
                self.owner,
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            )
        })
    }
}

/// SQLSTATE `deadlock_detected`: two holders' attempts crossed; the next try sorts it out.
const DEADLOCK: &str = "40P01";

/// How a wait for locks ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    Granted,
    /// Refused for good (an input never written) or still busy when the wait ran out.
    Refused(String),
}

/// Tries `attempt` until it is granted, refused for good, or `wait` has passed, sleeping 20 ms
/// at first and up to 500 ms between tries. Nothing is held between tries.
pub async fn wait_for<F, Fut>(wait: Duration, mut attempt: F) -> Result<Waited>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(20);
    loop {
        let a = match attempt().await {
            Ok(a) => a,
            // Chosen as a deadlock victim by the database (a lock change crossing a batch of
            // ended runs): nothing was taken; try again like a busy name.
            Err(e) if e.sqlstate().as_deref() == Some(DEADLOCK) => Attempt {
                granted: false,
                waitable: true,
                reason: Some(e.to_string()),
            },
            Err(e) => return Err(e),
        };
        if a.granted {
            return Ok(Waited::Granted);
        }
        let reason = a.reason.unwrap_or_default();
        let now = tokio::time::Instant::now();
        if !a.waitable {
            return Ok(Waited::Refused(reason));
        }
        if now >= deadline {
            return Ok(Waited::Refused(format!(
                "still busy after waiting {}: {reason}",
                crate::schedule::format_duration(wait)
            )));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Held resource locks. The lease is refreshed in the background; [`stop`](Self::stop) writes
/// the outputs, [`fail`](Self::fail) or dropping the guard releases without writing.
pub struct ResourceLock {
    pool: PgPool,
    holder: String,
    lost: Arc<AtomicBool>,
    refresher: JoinHandle<()>,
    ended: bool,
}

impl ResourceLock {
    /// Waits for the locks `request` asks for (see [`crate::Client::lock`]).
    pub(crate) async fn acquire(pool: &PgPool, request: LockRequest) -> Result<ResourceLock> {
        request.check()?;
        let holder = request.holder_name();
        resources::request(
            pool,
            &holder,
            &request.owner,
            &request.inputs,
            &request.outputs,
            request.lease,
            request.outputs_expire,
        )
        .await?;
        let waited = wait_for(request.wait, || resources::try_lock(pool, &holder)).await;
        match waited {
            Ok(Waited::Granted) => {}
            Ok(Waited::Refused(reason)) => {
                resources::release(pool, &holder, false).await?;
                return Err(Error::LockRefused(reason));
            }
            Err(e) => {
                let _ = resources::release(pool, &holder, false).await;
                return Err(e);
            }
        }
        let lost = Arc::new(AtomicBool::new(false));
        let refresher = tokio::spawn(keep_fresh(
            pool.clone(),
            holder.clone(),
            request.lease / 3,
            lost.clone(),
        ));
        Ok(ResourceLock {
            pool: pool.clone(),
            holder,
            lost,
            refresher,
            ended: false,
        })
    }

    /// The holder's name, as `sisyctl resources` shows it.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Refreshes the lease now; an error when a lease lapsed and another holder took over.
    pub async fn refresh(&self) -> Result<()> {
        if self.lost.load(Ordering::Relaxed)
            || !resources::refresh(&self.pool, &self.holder).await?
        {
            self.lost.store(true, Ordering::Relaxed);
            return Err(Error::LockLost(format!(
                "{}: a lease lapsed and another holder took over",
                self.holder
            )));
        }
        Ok(())
    }

    /// Releases the locks and writes the outputs; returns how many were written. Fails, writing
    /// nothing, when a lease lapsed and another holder took over meanwhile.
    pub async fn stop(mut self) -> Result<usize> {
        self.end();
        match resources::release(&self.pool, &self.holder, true).await? {
            (_, Some(reason)) => Err(Error::LockLost(reason)),
            (written, None) => Ok(written.max(0) as usize),
        }
    }

    /// Releases the locks without writing the outputs (jobspy's `stop(failed=True)`).
    pub async fn fail(mut self) -> Result<()> {
        self.end();
        resources::release(&self.pool, &self.holder, false).await?;
        Ok(())
    }

    fn end(&mut self) {
        self.ended = true;
        self.refresher.abort();
    }
}

impl Drop for ResourceLock {
    /// Releases without writing. Outside a runtime (or if the release fails) the locks go when
    /// their lease ends.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        self.refresher.abort();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (pool, holder) = (self.pool.clone(), self.holder.clone());
            rt.spawn(async move {
                let _ = resources::release(&pool, &holder, false).await;
            });
        }
    }
}

async fn keep_fresh(pool: PgPool, holder: String, every: Duration, lost: Arc<AtomicBool>) {
    let every = every.max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        match resources::refresh(&pool, &holder).await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::Relaxed);
                tracing::warn!(%holder, "resource lock lost: a lease lapsed and was taken over");
                return;
            }
            // The database is away: try again; the lease may still be saved.
            Err(e) => tracing::warn!(%holder, "refreshing resource locks failed: {e}"),
        }
    }
}
