//! Who is asking: sign-in with a personal token (`sisyctl token create`), or a person named by
//! a trusted reverse proxy; sessions; CSRF.
//!
//! A session is a random id in an HttpOnly, SameSite=Strict cookie, mapped in memory to the
//! token's SHA-256 (never the token). Every request checks that hash again in its own
//! transaction (`db::web::act_as`), so a revoked or expired token ends its sessions at once.
//! State-changing requests carry a CSRF token: an HMAC of the session's id under a key made at
//! start, compared in constant time, with the request's `Origin` (when sent) checked too.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use sisyphus_client::db::{self, web::Credential};
use sisyphus_client::token;

use crate::{layout, App, Error};

/// The session cookie's name.
pub const COOKIE: &str = "sisyphus_session";
/// How long a session lasts without a new sign-in.
const SESSION_LIFE: Duration = Duration::from_secs(12 * 3600);

/// The sessions of this server process (a restart signs everyone out).
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    /// The CSRF tokens' key.
    key: [u8; 32],
}

struct Session {
    credential: Credential,
    login: String,
    started: Instant,
}

impl Sessions {
    pub fn new() -> Result<Sessions, Error> {
        Ok(Sessions {
            map: Mutex::new(HashMap::new()),
            key: random()?,
        })
    }

    fn start(&self, credential: Credential, login: String) -> Result<String, Error> {
        let id = token::hex(&random()?);
        let mut map = self.lock();
        map.retain(|_, s| s.started.elapsed() < SESSION_LIFE);
        map.insert(
            id.clone(),
            Session {
                credential,
                login,
                started: Instant::now(),
            },
        );
        Ok(id)
    }

    fn find(&self, id: &str) -> Option<(Credential, String)> {
        let map = self.lock();
        map.get(id)
            .filter(|s| s.started.elapsed() < SESSION_LIFE)
            .map(|s| (s.credential.clone(), s.login.clone()))
    }

    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the map cannot leave it half-changed: take it anyway.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The CSRF token for a session key.
    fn csrf(&self, key: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(key.as_bytes());
        token::hex(&mac.finalize().into_bytes())
    }
}

fn random() -> Result<[u8; 32], Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| Error::Config(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// Sign-in by a reverse proxy's header, accepted only from its addresses.
pub struct Proxy {
    header: HeaderName,
    from: Vec<IpAddr>,
}

impl Proxy {
    pub fn new(header: &str, from: &[IpAddr]) -> Result<Proxy, Error> {
        let header = HeaderName::try_from(header).map_err(|_| {
            Error::Config(format!("--proxy-header: `{header}` is not a header name"))
        })?;
        Ok(Proxy {
            header,
            from: from.to_vec(),
        })
    }
}

/// The person a request is from.
pub struct Person {
    pub login: String,
    pub credential: Credential,
    /// The session's id (None for a proxy's person).
    pub session: Option<String>,
    /// The CSRF token every form of the page carries.
    pub csrf: String,
}

impl Person {
    /// Refuses a state-changing request without this person's CSRF token, or from another
    /// origin.
    pub fn check_csrf(&self, headers: &HeaderMap, given: &str) -> Result<(), Error> {
        if !same_origin(headers) {
            return Err(Error::Forbidden("cross-origin request refused".into()));
        }
        if !constant_time_eq(given.as_bytes(), self.csrf.as_bytes()) {
            return Err(Error::Forbidden(
                "missing or wrong CSRF token: reload the page and try again".into(),
            ));
        }
        Ok(())
    }
}

/// An `Origin` header, when the browser sends one, names this server (`Host`).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<Arc<App>> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Person, Response> {
        if let Some(proxy) = &app.proxy {
            let peer = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            if let Some(login) = parts.headers.get(&proxy.header) {
                if !peer.is_some_and(|p| proxy.from.contains(&p)) {
                    return Err(Error::Forbidden(format!(
                        "{} is accepted only from the trusted proxies",
                        proxy.header
                    ))
                    .into_response());
                }
                let login = login
                    .to_str()
                    .map_err(|_| {
                        Error::BadRequest("the proxy's user header is not text".into())
                            .into_response()
                    })?
                    .to_string();
                return Ok(Person {
                    csrf: app.sessions.csrf(&format!("proxy:{login}")),
                    credential: Credential::Proxy(login.clone()),
                    login,
                    session: None,
                });
            }
        }
        let found = cookie(&parts.headers, COOKIE)
            .and_then(|id| app.sessions.find(id).map(|(c, l)| (id.to_string(), c, l)));
        match found {
            Some((id, credential, login)) => Ok(Person {
                csrf: app.sessions.csrf(&format!("session:{id}")),
                credential,
                login,
                session: Some(id),
            }),
            None if parts.method == axum::http::Method::GET
                && !parts.headers.contains_key("x-fragment") =>
            {
                Err(Redirect::to("/sign-in").into_response())
            }
            None => Err((StatusCode::UNAUTHORIZED, "sign in first").into_response()),
        }
    }
}

pub async fn sign_in_form(State(app): State<Arc<App>>) -> Response {
    layout::sign_in_page(None, app.proxy.is_some()).into_response()
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
}

/// Checks the token in a transaction of its own (as the person, like every later request),
/// then starts a session.
pub async fn sign_in(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Result<Response, Error> {
    if !same_origin(&headers) {
        return Err(Error::Forbidden("cross-origin sign-in refused".into()));
    }
    let credential = Credential::Token(token::hash(&form.token));
    let mut tx = db::begin(&app.pool).await?;
    let login = match db::web::act_as(&mut tx, &credential).await {
        Ok(login) => login,
        Err(e) if e.sqlstate().as_deref() == Some("28000") => {
            tracing::info!("dashboard sign-in refused: unknown, expired or revoked token");
            return Ok((
                StatusCode::UNAUTHORIZED,
                layout::sign_in_page(Some("Unknown, expired or revoked token."), false),
            )
                .into_response());
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await.map_err(db::Error::from)?;
    tracing::info!(login = %login, "signed in to the dashboard");
    let id = app.sessions.start(credential, login)?;
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_LIFE.as_secs()
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Error> {
    person.check_csrf(&headers, &form.csrf)?;
    if let Some(id) = &person.session {
        app.sessions.end(id);
    }
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/sign-in")).into_response())
}
