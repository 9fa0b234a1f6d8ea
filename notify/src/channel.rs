//! What a channel is: where it sends and with which credentials. Channels are configured in the
//! dispatcher's file (`[channels.NAME]`, see README.md) or, for a standalone job, from its
//! ll.sisyphus options; jobs refer to them by name only.
//!
//! Secrets are [`Secret`]s: read from the environment (`{ env = "SMTP_PASSWORD" }`) or given in
//! the (private) configuration file, and never printed — `Debug` shows `***`.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A password, token, DSN or signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How a secret is written in a configuration file.
#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum SecretSource {
    Inline(String),
    Env { env: String },
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        match SecretSource::deserialize(d)? {
            SecretSource::Inline(s) => Ok(Secret(s)),
            SecretSource::Env { env } => std::env::var(&env).map(Secret).map_err(|_| {
                serde::de::Error::custom(format!("environment variable {env} is not set"))
            }),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain SMTP (a relay on localhost).
    None,
    /// Plain, then STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

/// An SMTP server and the failure e-mail's addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    pub host: String,
    #[serde(default = "smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub tls: Tls,
    pub from: String,
    /// Always receive; a job's rule may add more.
    #[serde(default)]
    pub to: Vec<String>,
}

fn smtp_port() -> u16 {
    25
}

/// A Mattermost server: posts go to `{url}/api/v4/posts` (a `url` that already ends in
/// `/api/v4/posts`, as ll.sisyphus' `--mattermost_url`, is taken as it is).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mattermost {
    pub url: String,
    pub channel_id: String,
    /// A personal access token.
    pub token: Secret,
}

impl Mattermost {
    pub fn posts_url(&self) -> String {
        let base = self.url.trim_end_matches('/');
        if base.ends_with("/api/v4/posts") {
            base.to_string()
        } else {
            format!("{base}/api/v4/posts")
        }
    }
}

/// A Sentry project.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sentry {
    pub dsn: Secret,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub release: Option<String>,
}

/// A URL that receives each notification as JSON, signed with HMAC-SHA256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// The signing key; the signature is `X-Sisyphus-Signature: sha256=<hex>` of the body.
    pub secret: Secret,
}

/// A channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Channel {
    Email(Email),
    Mattermost(Mattermost),
    Sentry(Sentry),
    Webhook(Webhook),
}

impl Channel {
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Email(_) => "email",
            Channel::Mattermost(_) => "mattermost",
            Channel::Sentry(_) => "sentry",
            Channel::Webhook(_) => "webhook",
        }
    }

    /// The log tag that routes lines to this kind of channel (besides `external`).
    pub fn tag(&self) -> &'static str {
        match self {
            Channel::Webhook(_) => "external",
            other => other.kind(),
        }
    }

    /// Checks what serde cannot: addresses and URLs that will not work.
    pub fn check(&self) -> Result<(), String> {
        let url = |u: &str, what: &str| {
            reqwest::Url::parse(u)
                .ok()
                .filter(|p| matches!(p.scheme(), "http" | "https"))
                .map(|_| ())
                .ok_or_else(|| format!("{what} `{u}` is not an http(s) URL"))
        };
        match self {
            Channel::Email(e) => {
                for a in std::iter::once(&e.from).chain(&e.to) {
                    a.parse::<lettre::Address>()
                        .map_err(|err| format!("`{a}` is not an e-mail address: {err}"))?;
                }
                if e.user.is_some() != e.password.is_some() {
                    return Err("user and password go together".to_string());
                }
                Ok(())
            }
            Channel::Mattermost(m) => url(&m.url, "url"),
            Channel::Sentry(s) => s
                .dsn
                .expose()
                .parse::<sentry::types::Dsn>()
                .map(|_| ())
                .map_err(|e| format!("dsn is not a Sentry DSN: {e}")),
            Channel::Webhook(w) => url(&w.url, "url"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_the_environment_and_never_print() {
        std::env::set_var("SISYPHUS_TEST_SECRET_A", "hunter2");
        let c: Channel = toml::from_str(
            "kind = \"mattermost\"\nurl = \"http://mm\"\nchannel_id = \"c\"\n\
             token = { env = \"SISYPHUS_TEST_SECRET_A\" }",
        )
        .expect("channel");
        let Channel::Mattermost(m) = &c else {
            panic!("not mattermost: {c:?}")
        };
        assert_eq!(m.token.expose(), "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(m.posts_url(), "http://mm/api/v4/posts");
        let missing = toml::from_str::<Channel>(
            "kind = \"webhook\"\nurl = \"http://x\"\nsecret = { env = \"SISYPHUS_TEST_UNSET_B\" }",
        )
        .expect_err("unset variable");
        assert!(missing
            .to_string()
            .contains("SISYPHUS_TEST_UNSET_B is not set"));
    }

    #[test]
    fn bad_channels_are_refused_by_name() {
        let bad = [
            (
                "kind = \"email\"\nhost = \"h\"\nfrom = \"not an address\"",
                "not an e-mail address",
            ),
            (
                "kind = \"email\"\nhost = \"h\"\nfrom = \"a@b.c\"\nuser = \"u\"",
                "user and password",
            ),
            (
                "kind = \"sentry\"\ndsn = \"nonsense\"",
                "dsn is not a Sentry DSN",
            ),
            (
                "kind = \"webhook\"\nurl = \"ftp://x\"\nsecret = \"s\"",
                "not an http(s) URL",
            ),
        ];
        for (text, want) in bad {
            let c: Channel = toml::from_str(text).expect(text);
            let err = c.check().expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
