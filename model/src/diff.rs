//! Two definitions of a job compared key by key, with the jobs file's key names: what
//! `sisyctl apply --plan` shows for a changed job (each changed key, old → new).
//!
//! [`keys`] takes every field of a [`JobSpec`] apart by destructuring, so a new field does not
//! compile until it is given its key here — a plan never misses a change that apply makes
//! (apply compares whole specs).
//!
//! Plain env values are never shown: a changed one reads `(plain value, not shown)` →
//! `(another plain value, not shown)`; secrets show their reference (`secret:NAME`).

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use crate::schedule::format_duration;
use crate::spec::{EnvValue, JobSpec, SpecFields};

/// One key whose value differs. `old` is `None` for a key only the new definition sets (an env
/// variable) and `new` is `None` for one it drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyChange {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The keys of `new` whose values differ from `old`'s, in the order of [`keys`], env variables
/// one by one (`env.NAME`).
pub fn changed_keys(old: &JobSpec, new: &JobSpec) -> Vec<KeyChange> {
    let mut out: Vec<KeyChange> = keys(old)
        .into_iter()
        .zip(keys(new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((key, a), (_, b))| KeyChange {
            key: key.to_string(),
            old: Some(a),
            new: Some(b),
        })
        .collect();
    let names: BTreeSet<&String> = old.env.keys().chain(new.env.keys()).collect();
    for name in names {
        let (a, b) = (old.env.get(name), new.env.get(name));
        if a == b {
            continue;
        }
        let shown = |v: &EnvValue| match v.secret_name() {
            Some(secret) => format!("secret:{secret}"),
            None => "(plain value, not shown)".to_string(),
        };
        let (mut a, mut b) = (a.map(shown), b.map(shown));
        if a.is_some() && a == b {
            b = Some("(another plain value, not shown)".to_string());
        }
        if a.is_none() && b.is_none() {
            a = Some(String::new());
        }
        out.push(KeyChange {
            key: format!("env.{name}"),
            old: a,
            new: b,
        });
    }
    out
}

/// Every key of a definition but its name and env values, as (key, value shown).
pub fn keys(spec: &JobSpec) -> Vec<(&'static str, String)> {
    let SpecFields {
        job: _,
        command,
        shell,
        env: _,
        workdir,
        schedule,
        timezone,
        skip_on,
        only_on,
        start,
        end,
        iterations,
        ttl,
        catchup,
        jitter,
        maxtime,
        retries,
        retry_backoff,
        concurrency,
        overlap,
        target,
        paused,
        userdata,
        run_as,
        logs,
        resources,
        max_health_age,
        notify,
        warn_after,
        min_duration,
        limits,
        params,
        format,
    } = &**spec;
    let d = |x: &Duration| format_duration(*x);
    let opt_d = |x: &Option<Duration>| x.as_ref().map_or_else(|| "-".to_string(), d);
    let opt = |x: Option<String>| x.unwrap_or_else(|| "-".to_string());
    vec![
        ("command", json(command)),
        ("shell", shell.to_string()),
        ("format", format.to_string()),
        ("workdir", opt(workdir.clone())),
        ("schedule", opt(schedule.as_ref().map(|s| s.describe()))),
        ("timezone", timezone.name().to_string()),
        ("skip_on", json(skip_on)),
        ("only_on", json(only_on)),
        ("start", opt(start.map(|t| t.to_rfc3339()))),
        ("end", opt(end.map(|t| t.to_rfc3339()))),
        ("iterations", opt(iterations.map(|n| n.to_string()))),
        ("ttl", d(ttl)),
        ("catchup", catchup.to_string()),
        ("jitter", d(jitter)),
        ("maxtime", opt_d(maxtime)),
        ("retries", retries.to_string()),
        ("retry_backoff", d(retry_backoff)),
        ("concurrency", concurrency.to_string()),
        ("overlap", overlap.to_string()),
        ("target", target.to_string()),
        ("paused", paused.to_string()),
        ("userdata", json(userdata)),
        ("run_as", opt(run_as.clone())),
        ("keep_logs", opt_d(&logs.keep)),
        ("compress_logs", opt_d(&logs.compress_after)),
        ("compress_mode", logs.compression.as_str().to_string()),
        (
            "inputs",
            json(
                &resources
                    .inputs
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>(),
            ),
        ),
        (
            "outputs",
            json(
                &resources
                    .outputs
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>(),
            ),
        ),
        ("lock_lease", d(&resources.lease)),
        ("lock_wait", d(&resources.wait)),
        ("outputs_expire", opt_d(&resources.outputs_expire)),
        ("on_inputs", resources.on_inputs.to_string()),
        ("max_health_age", opt_d(max_health_age)),
        (
            "notify",
            notify
                .as_ref()
                .map_or_else(|| "(the project's defaults)".to_string(), json),
        ),
        ("warn_after", opt_d(warn_after)),
        ("min_duration", opt_d(min_duration)),
        (
            "memory_max",
            opt(limits.memory_max.map(|b| format!("{b} bytes"))),
        ),
        ("cpu_weight", opt(limits.cpu_weight.map(|w| w.to_string()))),
        ("params", json(params)),
    ]
}

/// Compact JSON of a value, for showing a key's value on one line.
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("(not shown: {e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::JobDefinition;

    fn spec(toml_text: &str) -> JobSpec {
        let def: JobDefinition = toml::from_str(toml_text).expect("toml");
        def.validate().expect("valid")
    }

    #[test]
    fn only_changed_keys_are_listed_and_plain_env_values_are_not_shown() {
        let old = spec(
            "project = \"ACME\"\nname = \"j\"\ncommand = [\"true\"]\ncron = \"0 2 * * *\"\n\
             env = { A = \"one\", B = \"same\", S = { secret = \"OLD\" } }\n",
        );
        let new = spec(
            "project = \"ACME\"\nname = \"j\"\ncommand = [\"true\"]\ncron = \"30 3 * * *\"\n\
             timezone = \"Europe/Amsterdam\"\nretries = 2\n\
             env = { A = \"two\", B = \"same\", C = \"new\", S = { secret = \"NEW\" } }\n",
        );
        let changes = changed_keys(&old, &new);
        let got: Vec<(&str, Option<&str>, Option<&str>)> = changes
            .iter()
            .map(|c| (c.key.as_str(), c.old.as_deref(), c.new.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("schedule", Some("0 2 * * *"), Some("30 3 * * *")),
                ("timezone", Some("UTC"), Some("Europe/Amsterdam")),
                ("retries", Some("0"), Some("2")),
                (
                    "env.A",
                    Some("(plain value, not shown)"),
                    Some("(another plain value, not shown)")
                ),
                ("env.C", None, Some("(plain value, not shown)")),
                ("env.S", Some("secret:OLD"), Some("secret:NEW")),
            ]
        );
        assert!(!format!("{changes:?}").contains("two"));
        assert!(changed_keys(&new, &new).is_empty());
    }
}
