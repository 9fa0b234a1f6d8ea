//! Run parameters (issue 19): what a job declares it takes (`params = { date = { default =
//! "{yesterday}" }, full = { default = "false", choices = ["true", "false"] } }`) and the values
//! one run is given (`sisyctl run P/N --param date=2026-11-30`).
//!
//! The database resolves a run's values (`sisyphus.run_params`, migrations/0013): the given
//! ones, checked against the declaration, over the defaults, whose placeholders are those of
//! resource names, resolved at the run's slot in the job's zone. Scheduled, data-triggered and
//! retried runs take the defaults (a retry its first attempt's values), so a scheduled job must
//! give every parameter a default. The run sees them as `SISYPHUS_PARAM_<NAME>` (the name in
//! upper case) and `$SISYPHUS_PARAMS` (a JSON object).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most parameters a job may declare.
pub const MAX_PARAMS: usize = 64;
/// The longest parameter name, in bytes (an environment variable's name with the prefix).
pub const MAX_NAME: usize = 64;
/// The longest value (a default, a choice or a given value), in characters.
pub const MAX_VALUE: usize = 4096;
/// The most choices one parameter may list.
pub const MAX_CHOICES: usize = 256;

/// One declared parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// The value when a run is not given one; may hold the placeholders of resource names
    /// (`{date}`, `{yesterday}`, …). None: a manual run must be given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The only values allowed, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
}

/// A job's declared parameters by name.
pub type Params = BTreeMap<String, ParamSpec>;

/// The environment variable a parameter reaches the run as: `SISYPHUS_PARAM_` and the name in
/// upper case.
pub fn env_name(param: &str) -> String {
    format!("SISYPHUS_PARAM_{}", param.to_ascii_uppercase())
}

/// Checks a declaration; `scheduled`: the job runs by itself (a schedule or a data trigger), so
/// every parameter needs a default. The problem names the parameter.
pub fn check(params: &Params, scheduled: bool) -> Result<(), String> {
    if params.len() > MAX_PARAMS {
        return Err(format!("{} parameters; at most {MAX_PARAMS}", params.len()));
    }
    for (name, spec) in params {
        check_name(name)?;
        if let Some(default) = &spec.default {
            check_value(name, "default", default)?;
        }
        if let Some(choices) = &spec.choices {
            if choices.is_empty() || choices.len() > MAX_CHOICES {
                return Err(format!(
                    "`{name}`: choices must list 1 to {MAX_CHOICES} values"
                ));
            }
            for (i, c) in choices.iter().enumerate() {
                check_value(name, "choice", c)?;
                if choices[..i].contains(c) {
                    return Err(format!("`{name}`: choice `{c}` is listed twice"));
                }
            }
            if let Some(d) = spec.default.as_ref().filter(|d| !choices.contains(d)) {
                return Err(format!(
                    "`{name}`: default `{d}` is not one of its choices ({})",
                    choices.join(", ")
                ));
            }
        }
        if scheduled && spec.default.is_none() {
            return Err(format!(
                "`{name}` has no default, but the job runs by itself (scheduled runs take the \
                 defaults): give it one"
            ));
        }
    }
    Ok(())
}

/// A parameter's name: a letter or `_`, then letters, digits and `_` (it becomes part of an
/// environment variable's name).
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let good_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !good_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > MAX_NAME
    {
        return Err(format!(
            "`{name}` is not a parameter name: a letter or _, then letters, digits or _ (at \
             most {MAX_NAME})"
        ));
    }
    Ok(())
}

/// A value: at most [`MAX_VALUE`] characters, no NUL.
pub fn check_value(name: &str, what: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!("`{name}`: the {what} contains a NUL character"));
    }
    if value.chars().count() > MAX_VALUE {
        return Err(format!(
            "`{name}`: the {what} is longer than {MAX_VALUE} characters"
        ));
    }
    Ok(())
}

/// `NAME=VALUE` as given on a command line (`--param date=2026-11-30`).
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))?;
    check_name(name)?;
    check_value(name, "value", value)?;
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(default: Option<&str>, choices: Option<&[&str]>) -> ParamSpec {
        ParamSpec {
            default: default.map(str::to_string),
            choices: choices.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn declarations_are_checked_naming_the_parameter() {
        let ok: Params = [
            ("date".to_string(), spec(Some("{yesterday}"), None)),
            (
                "full".to_string(),
                spec(Some("false"), Some(&["true", "false"])),
            ),
        ]
        .into();
        assert_eq!(check(&ok, true), Ok(()));
        let cases: [(&str, ParamSpec, bool, &str); 6] = [
            (
                "9lives",
                spec(Some("x"), None),
                false,
                "not a parameter name",
            ),
            (
                "with-dash",
                spec(Some("x"), None),
                false,
                "not a parameter name",
            ),
            (
                "mode",
                spec(Some("fast"), Some(&["slow"])),
                false,
                "not one of its choices",
            ),
            ("mode", spec(None, Some(&[])), false, "1 to 256"),
            ("mode", spec(None, Some(&["a", "a"])), false, "listed twice"),
            ("date", spec(None, None), true, "`date` has no default"),
        ];
        for (name, s, scheduled, want) in cases {
            let declared: Params = [(name.to_string(), s)].into();
            let why = check(&declared, scheduled).expect_err(name);
            assert!(why.contains(want), "{name}: {why}");
        }
        // A manual job may leave a parameter without a default: a run must be given it.
        let required: Params = [("date".to_string(), spec(None, None))].into();
        assert_eq!(check(&required, false), Ok(()));
    }

    #[test]
    fn assignments_are_name_equals_value() {
        assert_eq!(
            parse_assignment("date=2026-11-30"),
            Ok(("date".into(), "2026-11-30".into()))
        );
        assert_eq!(parse_assignment("q=a=b"), Ok(("q".into(), "a=b".into())));
        assert_eq!(
            parse_assignment("empty="),
            Ok(("empty".into(), String::new()))
        );
        assert!(parse_assignment("novalue").is_err());
        assert!(parse_assignment("bad name=1").is_err());
        assert_eq!(env_name("full_load"), "SISYPHUS_PARAM_FULL_LOAD");
    }
}
