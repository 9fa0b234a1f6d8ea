//! The web dashboard (`sisyphus web`): server-rendered pages over the same database functions
//! as `sisyctl`, live through Server-Sent Events, acting as the signed-in person.
//!
//! - `auth.rs`: sign-in with a personal token (or a trusted proxy's header), sessions in an
//!   HttpOnly SameSite cookie, CSRF tokens, and [`auth::Person`], whose every request runs in a
//!   transaction switched to the person's role (`migrations/0018_web.sql`), so grants and
//!   row-level security decide what a page shows and what a button may do.
//! - `live.rs`: one LISTEN connection per server process, fanned out to every browser.
//! - `pages/`: one module per screen; `layout.rs` the page around them; `chart.rs` the SVG
//!   duration chart; `actions.rs` the buttons (POST, CSRF-checked, carried out by the same SQL
//!   functions as `sisyctl`).
//! - `assets/`: the CSS and the small script, embedded in the binary.

mod actions;
mod auth;
mod chart;
mod error;
mod layout;
mod live;
mod pages;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use sisyphus_client::db::{self, PgPool};
use tokio_util::sync::CancellationToken;

pub use error::Error;

/// How the dashboard runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it listens (loopback by default: put a TLS-terminating proxy in front).
    pub listen: SocketAddr,
    /// The database, as the web login (`sisyctl service add web NAME`).
    pub database_url: String,
    /// No buttons and every action refused: a screen for a wall.
    pub read_only: bool,
    /// Addresses of reverse proxies whose `proxy_header` names the person (oauth2-proxy's
    /// `X-Forwarded-User`); empty: no proxy sign-in.
    pub trusted_proxies: Vec<IpAddr>,
    pub proxy_header: Option<String>,
    /// Mark the session cookie `Secure` (behind an HTTPS proxy).
    pub secure_cookies: bool,
}

/// What every request shares.
struct App {
    pool: PgPool,
    sessions: auth::Sessions,
    hub: live::Hub,
    read_only: bool,
    proxy: Option<auth::Proxy>,
    secure_cookies: bool,
    shutdown: CancellationToken,
}

/// Serves the dashboard until `shutdown` is cancelled; the LISTEN task and every open event
/// stream end with it.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let client = sisyphus_client::Client::connect_as(
        &config.database_url,
        Duration::from_secs(10),
        "sisyphus web",
        None,
    )
    .await?;
    let hub = live::Hub::new();
    let listening = tokio::spawn(live::listen(
        config.database_url.clone(),
        hub.clone(),
        shutdown.clone(),
    ));
    let proxy = match (&config.proxy_header, config.trusted_proxies.is_empty()) {
        (Some(header), false) => Some(auth::Proxy::new(header, &config.trusted_proxies)?),
        (Some(_), true) => {
            return Err(Error::Config("--proxy-header needs --trusted-proxy".into()))
        }
        (None, _) => None,
    };
    let app = Arc::new(App {
        pool: client.pool().clone(),
        sessions: auth::Sessions::new()?,
        hub,
        read_only: config.read_only,
        proxy,
        secure_cookies: config.secure_cookies,
        shutdown: shutdown.clone(),
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
    tracing::info!(address = %config.listen, read_only = config.read_only, "dashboard listening");
    let served = axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
    .await;
    shutdown.cancel();
    let _ = listening.await;
    served.map_err(|e| Error::Config(format!("serving: {e}")))
}

/// Every screen and action, behind the security headers.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(pages::overview::page))
        .route("/jobs", get(pages::jobs::page))
        .route("/jobs/{project}/{name}", get(pages::job::page))
        .route("/runs", get(pages::runs::page))
        .route("/runs/{id}", get(pages::run::page))
        .route("/runs/{id}/lines", get(pages::run::lines))
        .route("/runs/{id}/log.txt", get(pages::run::download))
        .route("/hosts", get(pages::hosts::page))
        .route("/notifications", get(pages::notifications::page))
        .route("/audit", get(pages::audit::page))
        .route("/events", get(live::events))
        .route("/sign-in", get(auth::sign_in_form).post(auth::sign_in))
        .route("/sign-out", post(auth::sign_out))
        .route("/runs/{id}/control", post(actions::control))
        .route("/runs/{id}/rerun", post(actions::rerun))
        .route("/jobs/{project}/{name}/run", post(actions::run_now))
        .route("/jobs/{project}/{name}/pause", post(actions::pause))
        .route("/jobs/{project}/{name}/resume", post(actions::resume))
        .route("/hosts/{name}/drain", post(actions::drain))
        .route("/notifications/{id}/retry", post(actions::retry))
        .route("/assets/app.css", get(asset_css))
        .route("/assets/app.js", get(asset_js))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// A strict Content-Security-Policy (no inline script or style), no framing, no sniffing, no
/// referrer to elsewhere, and no caching of pages that show a person's data.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

async fn asset_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CSS)
}

async fn asset_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
}

impl App {
    /// A transaction as `person`: their role, their grants, their name in the audit.
    async fn begin(&self, person: &auth::Person) -> Result<db::Transaction, Error> {
        let mut tx = db::begin(&self.pool).await?;
        match db::web::act_as(&mut tx, &person.credential).await {
            Ok(_) => Ok(tx),
            Err(e) if e.sqlstate().as_deref() == Some("28000") => {
                if let Some(id) = &person.session {
                    self.sessions.end(id);
                }
                Err(Error::SignedOut)
            }
            Err(e) => Err(e.into()),
        }
    }
}
