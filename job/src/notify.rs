//! A standalone run's notifications, sent as ll.sisyphus sends them — through the same senders
//! as the dispatcher (`sisyphus-notify`), so a mail, post or Sentry event reads the same
//! whether a job runs under cron or under a guardian:
//!
//! - e-mail (`--fromemail`, `--toemail`, `--smtphost`, optional `--smtpuser`/`--smtppassword`):
//!   one mail per run when a line was tagged `email`/`external`, the run failed, or it timed out
//!   with `--noisykills`; it holds those lines and the error, at most `--maxemailerrors`;
//! - Mattermost (`--mattermost_url`, `--mattermost_channel`, `--mattermost_token`): one post per
//!   line tagged `mattermost`/`external` and for the error that aborted the run;
//! - Sentry (`--sentry_dsn`, `--sentry_environment`, `--sentry_release`): one event per line
//!   tagged `sentry`/`external` and for the aborting error (level fatal).
//!
//! Under a guardian none of this happens here: the lines travel in `run_logs` with their tags,
//! and the dispatcher sends them.

use chrono::{DateTime, Utc};
use sisyphus_notify::channel::{Email, Mattermost, Sentry, Tls};
use sisyphus_notify::{Channel, Event, Line, Notification, RunInfo, Senders};
use sisyphus_protocol::Status;

use crate::context::Notice;
use crate::options::Options;

/// How long each send may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a run ended with, as the senders need it.
pub(crate) struct Outcome<'a> {
    pub status: Status,
    pub text: Option<&'a str>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub notices: &'a [Notice],
}

/// Sends what this run has to tell to the channels the options configure; returns one message
/// per delivery that failed (nothing is retried: the next run speaks again).
pub(crate) fn send(options: &Options, outcome: &Outcome) -> Vec<String> {
    let plan = plan(options, outcome);
    if plan.is_empty() {
        return Vec::new();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return vec![format!("cannot start the senders: {e}")],
    };
    runtime.block_on(async {
        let senders = match Senders::new(TIMEOUT) {
            Ok(s) => s,
            Err(e) => return vec![e],
        };
        let mut errors = Vec::new();
        for (channel, notification) in &plan {
            if let Err(e) = senders.send(channel, notification, 0).await {
                errors.push(format!("{} notification not sent: {e}", channel.kind()));
            }
        }
        errors
    })
}

/// Which notification goes to which configured channel: the run with its routed lines (the
/// notices) to Mattermost and Sentry when some line is for them; to e-mail, the lines for
/// e-mail (at most `maxemailerrors`) when there are any or the run failed (timed out, with
/// `noisykills`).
fn plan(options: &Options, outcome: &Outcome) -> Vec<(Channel, Notification)> {
    let email = email_channel(options);
    let others: Vec<Channel> = [mattermost_channel(options), sentry_channel(options)]
        .into_iter()
        .flatten()
        .collect();
    if email.is_none() && others.is_empty() {
        return Vec::new();
    }
    let lines: Vec<Line> = outcome.notices.iter().map(line).collect();
    let base = notification(options, outcome, lines);
    let mut plan = Vec::new();
    if let Some(email) = email {
        let mut for_mail: Vec<Line> = base.tagged_for("email").cloned().collect();
        let event = match outcome.status {
            Status::Failed => Some(Event::Failed),
            Status::Timeout if options.noisykills => Some(Event::Timeout),
            _ if !for_mail.is_empty() => Some(Event::Tagged),
            _ => None,
        };
        if let Some(event) = event {
            for_mail.truncate(options.maxemailerrors as usize);
            let mail = Notification {
                event,
                lines: for_mail.clone(),
                tagged: for_mail,
                ..base.clone()
            };
            plan.push((email, mail));
        }
    }
    for channel in others {
        if base.tagged_for(channel.tag()).next().is_some() {
            plan.push((channel, base.clone()));
        }
    }
    plan
}

/// The run as a `tagged` notification carrying `lines`.
fn notification(options: &Options, o: &Outcome, lines: Vec<Line>) -> Notification {
    let failed = matches!(o.status, Status::Failed | Status::Timeout);
    Notification {
        v: 1,
        event: Event::Tagged,
        job: format!("{}/{}", options.projectname, options.jobname),
        reason: None,
        to: Vec::new(),
        at: o.finished,
        run: Some(RunInfo {
            id: None,
            status: o.status.into(),
            attempt: None,
            trigger: None,
            host: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok()),
            slot: None,
            started_at: Some(o.started),
            finished_at: Some(o.finished),
            exit_code: None,
            signal: None,
            summary: o.text.filter(|_| !failed).map(str::to_string),
            error: o.text.filter(|_| failed).map(str::to_string),
        }),
        tagged: lines.clone(),
        lines,
        identifier: options.identifier.clone(),
    }
}

fn line(n: &Notice) -> Line {
    Line {
        at: n.at,
        stream: Some("sdk".to_string()),
        tags: n.tags.clone(),
        task: (!n.tasks.is_empty()).then(|| n.tasks.clone()),
        text: n.text.clone(),
    }
}

fn email_channel(o: &Options) -> Option<Channel> {
    Some(Channel::Email(Email {
        host: o.smtphost.clone()?,
        port: o.smtpport,
        user: o.smtpuser.clone(),
        password: o.smtppassword.clone(),
        // ll.sisyphus speaks plain SMTP to its --smtphost (a local relay, usually).
        tls: Tls::None,
        from: o.fromemail.clone()?,
        to: vec![o.toemail.clone()?],
    }))
}

fn mattermost_channel(o: &Options) -> Option<Channel> {
    Some(Channel::Mattermost(Mattermost {
        url: o.mattermost_url.clone()?,
        channel_id: o.mattermost_channel.clone()?,
        token: o.mattermost_token.clone()?,
    }))
}

fn sentry_channel(o: &Options) -> Option<Channel> {
    Some(Channel::Sentry(Sentry {
        dsn: o.sentry_dsn.clone()?,
        environment: o.sentry_environment.clone(),
        release: o.sentry_release.clone(),
    }))
}
