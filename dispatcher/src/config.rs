//! The dispatcher's configuration file: its retry policy and the channels it can send to.
//!
//! ```toml
//! max_attempts = 10        # then the notification is `failed` (see `sisyctl notifications`)
//! retry_base = "5s"        # first retry after this, doubling each time ...
//! retry_max = "10m"        # ... up to this
//!
//! [channels.ops-mail]
//! kind = "email"
//! host = "smtp.example.org"
//! port = 587
//! tls = "starttls"         # or "tls", "none"
//! user = "sisyphus"
//! password = { env = "SMTP_PASSWORD" }
//! from = "sisyphus@example.org"
//! to = ["ops@example.org"]
//! ```
//!
//! Secrets are read once, when the file is loaded; a missing variable or a bad channel refuses
//! the whole file with every problem named.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use sisyphus_notify::Channel;

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    max_attempts: Option<u32>,
    retry_base: Option<String>,
    retry_max: Option<String>,
    send_timeout: Option<String>,
    #[serde(default)]
    channels: BTreeMap<String, Channel>,
}

/// What the dispatcher does.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Attempts before a notification is marked failed.
    pub max_attempts: u32,
    /// The wait before the first retry; each further retry waits twice as long, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Each request gives up after this.
    pub send_timeout: Duration,
    pub channels: BTreeMap<String, Channel>,
}

impl Default for Settings {
    /// 10 attempts over about 20 minutes (5 s doubling, at most 10 min apart); no channels.
    fn default() -> Self {
        Settings {
            max_attempts: 10,
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            send_timeout: Duration::from_secs(20),
            channels: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Settings::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses and checks configuration text; the error names every bad key and channel.
    pub fn parse(text: &str) -> Result<Settings, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let defaults = Settings::default();
        let mut problems = Vec::new();
        let mut duration = |key: &str, value: Option<String>, default: Duration| match value {
            None => default,
            Some(v) => match humantime::parse_duration(&v) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => {
                    problems.push(format!("{key}: must be more than zero"));
                    default
                }
                Err(e) => {
                    problems.push(format!("{key}: `{v}` is not a duration ({e})"));
                    default
                }
            },
        };
        let retry_base = duration("retry_base", file.retry_base, defaults.retry_base);
        let retry_max = duration("retry_max", file.retry_max, defaults.retry_max);
        let send_timeout = duration("send_timeout", file.send_timeout, defaults.send_timeout);
        let max_attempts = file.max_attempts.unwrap_or(defaults.max_attempts);
        if max_attempts == 0 {
            problems.push("max_attempts: must be at least 1".to_string());
        }
        for (name, channel) in &file.channels {
            if let Err(e) = channel.check() {
                problems.push(format!("channels.{name}: {e}"));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(Settings {
            max_attempts,
            retry_base,
            retry_max,
            send_timeout,
            channels: file.channels,
        })
    }

    /// The wait after the `attempts`-th failed attempt (1-based).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reads_with_its_channels_and_retry_policy() {
        let s = Settings::parse(
            "max_attempts = 3\nretry_base = \"200ms\"\nretry_max = \"1s\"\n\
             [channels.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/h\"\nsecret = \"k\"\n",
        )
        .expect("settings");
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.channels["hook"].kind(), "webhook");
        let waits: Vec<u128> = (1..=5).map(|a| s.backoff(a).as_millis()).collect();
        assert_eq!(waits, vec![200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn bad_files_name_every_problem() {
        let err = Settings::parse(
            "max_attempts = 0\nretry_base = \"soon\"\n\
             [channels.mail]\nkind = \"email\"\nhost = \"h\"\nfrom = \"nobody\"\n",
        )
        .expect_err("bad file");
        for want in [
            "max_attempts",
            "retry_base: `soon`",
            "channels.mail",
            "`nobody`",
        ] {
            assert!(err.contains(want), "{want} not in: {err}");
        }
        let err = Settings::parse("[channels.x]\nkind = \"pigeon\"\n").expect_err("kind");
        assert!(err.contains("pigeon"), "{err}");
    }
}
