//! The senders: one notification to one channel, as the real service expects it.
//!
//! - e-mail: SMTP with lettre (STARTTLS, TLS or plain; AUTH when a user is configured), a
//!   `multipart/mixed` message holding `multipart/alternative` (plain text + HTML) and the run
//!   as a JSON attachment;
//! - Mattermost: `POST {url}/api/v4/posts` with `Authorization: Bearer <token>` and
//!   `{"channel_id", "message"}`;
//! - Sentry: the envelope endpoint of the DSN with `X-Sentry-Auth`, one event per envelope,
//!   built with the `sentry` crate's protocol types. (Its own transports are fire-and-forget;
//!   the outbox must know whether the server took the event, so the POST is ours.)
//! - webhook: the notification as JSON, `X-Sisyphus-Signature: sha256=<HMAC-SHA256 of the body>`.
//!
//! A notification may take several requests (one post or event per tagged line). `done` says
//! how many went in earlier attempts; they are not sent again, and a failure reports how many
//! have gone now. Error messages never hold a secret: URLs are left out of HTTP errors (a
//! webhook URL may carry a token), and credentials only travel in headers and SMTP AUTH.

use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;

use crate::channel::{Channel, Email, Mattermost, Sentry, Tls, Webhook};
use crate::notification::{Event, Notification};
use crate::render;

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Sent, in this many requests in all (earlier attempts included).
    Sent(usize),
    /// Nothing for this channel: a tagged event without lines tagged for its kind.
    Nothing,
}

/// A delivery that failed after `done` of its requests went.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub done: usize,
    pub message: String,
}

impl SendError {
    fn at(done: usize, message: impl Into<String>) -> SendError {
        SendError {
            done,
            message: message.into(),
        }
    }
}

/// The senders, sharing one HTTP client.
#[derive(Clone)]
pub struct Senders {
    http: reqwest::Client,
    timeout: Duration,
}

impl Senders {
    /// Senders whose every request gives up after `timeout`.
    pub fn new(timeout: Duration) -> Result<Senders, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("sisyphus/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Senders { http, timeout })
    }

    /// Sends `n` to `channel`, skipping the first `done` requests.
    pub async fn send(
        &self,
        channel: &Channel,
        n: &Notification,
        done: usize,
    ) -> Result<Delivered, SendError> {
        match channel {
            Channel::Email(c) => self.email(c, n).await,
            Channel::Mattermost(c) => self.mattermost(c, n, done).await,
            Channel::Sentry(c) => self.sentry(c, n, done).await,
            Channel::Webhook(c) => self.webhook(c, n).await,
        }
    }

    async fn email(&self, c: &Email, n: &Notification) -> Result<Delivered, SendError> {
        if n.event == Event::Tagged && n.tagged_for("email").next().is_none() {
            return Ok(Delivered::Nothing);
        }
        let message = build_mail(c, n).map_err(|e| SendError::at(0, e))?;
        let transport = smtp_transport(c, self.timeout).map_err(|e| SendError::at(0, e))?;
        transport
            .send(message)
            .await
            .map_err(|e| SendError::at(0, format!("SMTP {}:{}: {e}", c.host, c.port)))?;
        Ok(Delivered::Sent(1))
    }

    async fn mattermost(
        &self,
        c: &Mattermost,
        n: &Notification,
        done: usize,
    ) -> Result<Delivered, SendError> {
        let messages = render::mattermost_messages(n);
        if messages.is_empty() {
            return Ok(Delivered::Nothing);
        }
        let url = c.posts_url();
        for (i, message) in messages.iter().enumerate().skip(done) {
            let body = serde_json::json!({ "channel_id": c.channel_id, "message": message });
            let request = self
                .http
                .post(&url)
                .bearer_auth(c.token.expose())
                .header("Content-Type", "application/json")
                .body(body.to_string());
            self.expect_success(request, "Mattermost", i).await?;
        }
        Ok(Delivered::Sent(messages.len()))
    }

    async fn sentry(
        &self,
        c: &Sentry,
        n: &Notification,
        done: usize,
    ) -> Result<Delivered, SendError> {
        let ctx = render::SentryContext {
            environment: c.environment.as_deref(),
            release: c.release.as_deref(),
        };
        let events = render::sentry_events(n, &ctx);
        let total = events.len();
        if total == 0 {
            return Ok(Delivered::Nothing);
        }
        let dsn: sentry::types::Dsn = c
            .dsn
            .expose()
            .parse()
            .map_err(|e| SendError::at(done, format!("Sentry DSN: {e}")))?;
        let url = dsn.envelope_api_url().to_string();
        let auth = dsn
            .to_auth(Some(concat!("sisyphus/", env!("CARGO_PKG_VERSION"))))
            .to_string();
        for (i, event) in events.into_iter().enumerate().skip(done) {
            let mut body = Vec::new();
            sentry::Envelope::from(event)
                .to_writer(&mut body)
                .map_err(|e| SendError::at(i, format!("Sentry envelope: {e}")))?;
            let request = self
                .http
                .post(&url)
                .header("X-Sentry-Auth", &auth)
                .header("Content-Type", "application/x-sentry-envelope")
                .body(body);
            self.expect_success(request, "Sentry", i).await?;
        }
        Ok(Delivered::Sent(total))
    }

    async fn webhook(&self, c: &Webhook, n: &Notification) -> Result<Delivered, SendError> {
        if n.event == Event::Tagged && n.tagged_for("external").next().is_none() {
            return Ok(Delivered::Nothing);
        }
        let body = serde_json::to_vec(n).map_err(|e| SendError::at(0, e.to_string()))?;
        let request = self
            .http
            .post(&c.url)
            .header("Content-Type", "application/json")
            .header("X-Sisyphus-Event", n.event.as_str())
            .header("X-Sisyphus-Signature", sign(c.secret.expose(), &body))
            .body(body);
        self.expect_success(request, "webhook", 0).await?;
        Ok(Delivered::Sent(1))
    }

    /// Sends one request; anything but a 2xx answer is an error naming the service.
    async fn expect_success(
        &self,
        request: reqwest::RequestBuilder,
        service: &str,
        done: usize,
    ) -> Result<(), SendError> {
        let response = request
            .send()
            .await
            .map_err(|e| SendError::at(done, format!("{service}: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        Err(SendError::at(
            done,
            format!("{service} answered {status}: {text}"),
        ))
    }
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`, as GitHub signs its webhooks.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The failure report e-mail.
pub fn build_mail(c: &Email, n: &Notification) -> Result<Message, String> {
    let mailbox = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| format!("`{a}` is not an e-mail address: {e}"))
    };
    let mut builder = Message::builder()
        .from(mailbox(&c.from)?)
        .subject(render::subject(n));
    let mut recipients: Vec<&String> = c.to.iter().chain(&n.to).collect();
    recipients.dedup();
    if recipients.is_empty() {
        return Err("no recipients: the channel's `to` and the job's rule are both empty".into());
    }
    for to in recipients {
        builder = builder.to(mailbox(to)?);
    }
    let (name, json) = render::json_attachment(n);
    let json_type =
        ContentType::parse("application/json").map_err(|e| format!("content type: {e}"))?;
    builder
        .multipart(
            MultiPart::mixed()
                .multipart(MultiPart::alternative_plain_html(
                    render::text_body(n),
                    render::html_body(n),
                ))
                .singlepart(Attachment::new(name).body(json, json_type)),
        )
        .map_err(|e| format!("cannot build the e-mail: {e}"))
}

fn smtp_transport(
    c: &Email,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let builder = match c.tls {
        Tls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
        Tls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)
            .map_err(|e| format!("SMTP {}: {e}", c.host))?,
        Tls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host)
            .map_err(|e| format!("SMTP {}: {e}", c.host))?,
    };
    let mut builder = builder.port(c.port).timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&c.user, &c.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
