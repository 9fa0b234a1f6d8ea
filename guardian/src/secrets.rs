//! Secrets: a job's env value `{ secret = "NAME" }` is only a reference in the database; the
//! guardian resolves it on its host when the run starts, and masks every resolved value (`***`)
//! in what the run prints before it is stored anywhere.
//!
//! - [`SecretSource`]: where values come from — the file `NAME` in `--secrets-dir` (its content,
//!   one trailing newline stripped), refused unless it is a regular file of the guardian's user
//!   that neither group nor others may read or write; else the guardian's own variable
//!   `SISYPHUS_SECRET_NAME`, read once at start. A missing or refused secret fails the run with
//!   an error that names the secret and why, never the value.
//! - [`Mask`]: every non-empty resolved value of a run, replaced by `***` in each line of its
//!   output (stdout, stderr, protocol records), its guardian's own lines and its outcome.
//!
//! What masking can and cannot do, decided here:
//! - Output is masked line by line, as it is read. A value holding a line break is therefore
//!   also masked line by line: each of its non-empty lines is masked wherever it appears. A value
//!   that a job prints cut across lines some other way, or across the 64 KiB line limit, is not
//!   recognised — nor one it prints transformed (encoded, reversed, one character at a time).
//! - Every non-empty value is masked, however short: a one-character secret masks that character
//!   everywhere in the run's output. Short secrets make unreadable logs, not leaks.
//! - Overlapping and adjacent occurrences (of one value or of several) become one `***`.
//! - Nothing of a secret goes to the guardian's own log (tracing) either: errors name the secret
//!   and the file, never the content.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sisyphus_model::spec::EnvValue;

/// The prefix of the guardian's variables that hold secrets: `SISYPHUS_SECRET_<NAME>`.
pub const ENV_PREFIX: &str = "SISYPHUS_SECRET_";

/// The largest secret file read.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// What masked text shows instead of a secret.
pub const MASKED: &str = "***";

/// Why a secret could not be had. Names the secret (and file), never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret `{name}` is missing: {where_looked}")]
    Missing { name: String, where_looked: String },
    #[error("secret `{name}`: {path} is refused: {why}")]
    Refused {
        name: String,
        path: PathBuf,
        why: String,
    },
    #[error("secret `{name}`: {why}")]
    Invalid { name: String, why: String },
}

/// Where a guardian finds secret values: its `--secrets-dir`, then its own environment.
#[derive(Clone, Default)]
pub struct SecretSource {
    dir: Option<PathBuf>,
    /// `SISYPHUS_SECRET_<NAME>` of the guardian's environment, by NAME.
    env: BTreeMap<String, String>,
}

/// Names only: a `SecretSource` is never printed with its values.
impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSource")
            .field("dir", &self.dir)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretSource {
    /// Secrets from `dir` (if any) and `env` (values by name, as if from `SISYPHUS_SECRET_*`).
    pub fn new(dir: Option<PathBuf>, env: BTreeMap<String, String>) -> SecretSource {
        SecretSource { dir, env }
    }

    /// Secrets from `dir` (if any) and the guardian's `SISYPHUS_SECRET_*` variables, read now.
    /// A variable whose value is not UTF-8 is left out (and said, by name).
    pub fn from_environment(dir: Option<PathBuf>) -> SecretSource {
        let mut env = BTreeMap::new();
        for (key, value) in std::env::vars_os() {
            let Some(name) = key.to_str().and_then(|k| k.strip_prefix(ENV_PREFIX)) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => {
                    env.insert(name.to_string(), value);
                }
                Err(_) => {
                    tracing::warn!("{ENV_PREFIX}{name} is not UTF-8 text; jobs cannot be given it")
                }
            }
        }
        SecretSource { dir, env }
    }

    /// The value of secret `name`: its file in the secrets directory if there is one, else the
    /// guardian's variable. A file that is there but refused is an error, not a reason to look
    /// further: whoever put it there meant it.
    pub fn resolve(&self, name: &str) -> Result<String, SecretError> {
        if !sisyphus_model::spec::is_secret_name(name) {
            return Err(SecretError::Invalid {
                name: name.to_string(),
                why: "is not a secret name (letters, digits, `_`)".to_string(),
            });
        }
        if let Some(dir) = &self.dir {
            if let Some(value) = read_secret_file(name, &dir.join(name))? {
                return Ok(value);
            }
        }
        if let Some(value) = self.env.get(name) {
            return check_value(name, value.clone());
        }
        let where_looked = match &self.dir {
            Some(dir) => format!(
                "no file {} and no {ENV_PREFIX}{name} in the guardian's environment",
                dir.join(name).display()
            ),
            None => format!(
                "no {ENV_PREFIX}{name} in the guardian's environment (and no --secrets-dir)"
            ),
        };
        Err(SecretError::Missing {
            name: name.to_string(),
            where_looked,
        })
    }

    /// The job's environment with every secret resolved, and the mask of their values; or
    /// every secret that could not be had.
    pub fn resolve_env(
        &self,
        env: &BTreeMap<String, EnvValue>,
    ) -> Result<(BTreeMap<String, String>, Mask), Vec<SecretError>> {
        let mut resolved = BTreeMap::new();
        let mut values = Vec::new();
        let mut errors = Vec::new();
        for (key, value) in env {
            match value {
                EnvValue::Plain(text) => {
                    resolved.insert(key.clone(), text.clone());
                }
                EnvValue::Secret { secret } => match self.resolve(secret) {
                    Ok(v) => {
                        values.push(v.clone());
                        resolved.insert(key.clone(), v);
                    }
                    Err(e) if errors.contains(&e) => {}
                    Err(e) => errors.push(e),
                },
            }
        }
        if errors.is_empty() {
            Ok((resolved, Mask::new(values.iter().map(String::as_str))))
        } else {
            Err(errors)
        }
    }
}

/// Checks that a guardian's `--secrets-dir` is a directory of its own user that nobody else may
/// write to (else anyone could put a file — or a link to one of the guardian's files — there).
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "{} is owned by uid {}, not by the guardian's user (uid {me})",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} may be written by group or others (mode {:04o}); make it 0700 (chmod 700)",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The content of a secret file, one trailing newline (`\n` or `\r\n`) stripped; `None` when
/// there is no such file. Refuses what is not a regular file of the guardian's user, a file that
/// group or others may read or write, and one larger than [`MAX_SECRET_BYTES`].
fn read_secret_file(name: &str, path: &Path) -> Result<Option<String>, SecretError> {
    let refuse = |why: String| SecretError::Refused {
        name: name.to_string(),
        path: path.to_path_buf(),
        why,
    };
    // Non-blocking, so that a fifo put there cannot hang the run's start; checked below.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refuse(format!("cannot open it: {e}"))),
    };
    // The checks are on the open file (what is read), not on the path.
    let meta = file
        .metadata()
        .map_err(|e| refuse(format!("cannot read its metadata: {e}")))?;
    if !meta.is_file() {
        return Err(refuse("it is not a regular file".to_string()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(format!(
            "it is owned by uid {}, not by the guardian's user (uid {me})",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o066 != 0 {
        return Err(refuse(format!(
            "group or others may read or write it (mode {mode:04o}); make it 0600 or 0400 \
             (chmod 600)"
        )));
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(refuse(format!(
            "it is larger than {MAX_SECRET_BYTES} bytes"
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(refuse(format!(
            "it is larger than {MAX_SECRET_BYTES} bytes"
        )));
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    let value = String::from_utf8(bytes)
        .map_err(|_| refuse("its content is not UTF-8 text".to_string()))?;
    check_value(name, value).map(Some)
}

/// A value a process can be given: no NUL (an environment cannot hold one).
fn check_value(name: &str, value: String) -> Result<String, SecretError> {
    if value.contains('\0') {
        return Err(SecretError::Invalid {
            name: name.to_string(),
            why: "its value holds a NUL character, which an environment cannot".to_string(),
        });
    }
    Ok(value)
}

/// The secret values of one run, to be replaced by [`MASKED`] wherever they appear. Holds the
/// non-empty values, and for a value with line breaks each of its non-empty lines too (output
/// is masked line by line).
#[derive(Clone, Default)]
pub struct Mask {
    /// Distinct, non-empty.
    needles: Vec<String>,
}

/// How many values, never which.
impl fmt::Debug for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mask({} values)", self.needles.len())
    }
}

impl Mask {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Mask {
        let mut needles: Vec<String> = Vec::new();
        for value in values {
            let lines = value
                .lines()
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .filter(|l| *l != value);
            for needle in std::iter::once(value).chain(lines) {
                if !needle.is_empty() && !needles.iter().any(|n| n == needle) {
                    needles.push(needle.to_string());
                }
            }
        }
        Mask { needles }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every occurrence of every value replaced by [`MASKED`]; overlapping and
    /// adjacent occurrences become one.
    pub fn apply<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for needle in &self.needles {
            let mut from = 0;
            while let Some(at) = text.get(from..).and_then(|rest| rest.find(needle.as_str())) {
                let start = from + at;
                spans.push((start, start + needle.len()));
                // On past the first character of this match, so overlapping matches are found.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut spans = spans.into_iter().peekable();
        while let Some((start, mut end)) = spans.next() {
            while let Some(&(next_start, next_end)) = spans.peek() {
                if next_start > end {
                    break;
                }
                end = end.max(next_end);
                spans.next();
            }
            out.push_str(&text[copied..start]);
            out.push_str(MASKED);
            copied = end;
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// [`apply`](Self::apply) in place.
    pub fn apply_to(&self, text: &mut String) {
        if self.is_empty() {
            return;
        }
        if let Cow::Owned(masked) = self.apply(text) {
            *text = masked;
        }
    }

    /// [`apply_to`](Self::apply_to) for optional text.
    pub fn apply_to_opt(&self, text: &mut Option<String>) {
        if let Some(t) = text {
            self.apply_to(t);
        }
    }

    /// Every string (and key) in a JSON value masked, so that JSON's escaping cannot hide a value.
    pub fn apply_json(&self, value: &mut serde_json::Value) {
        if self.is_empty() {
            return;
        }
        match value {
            serde_json::Value::String(s) => self.apply_to(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.apply_json(v)),
            serde_json::Value::Object(map) => {
                let entries = std::mem::take(map);
                for (mut k, mut v) in entries {
                    self.apply_to(&mut k);
                    self.apply_json(&mut v);
                    map.insert(k, v);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn masked(values: &[&str], text: &str) -> String {
        Mask::new(values.iter().copied()).apply(text).into_owned()
    }

    #[test]
    fn whole_occurrences_are_masked() {
        assert_eq!(masked(&["hunter2"], "pw=hunter2!"), "pw=***!");
        assert_eq!(masked(&["hunter2"], "hunter2 and hunter2"), "*** and ***");
        assert_eq!(masked(&["hunter2"], "hunter"), "hunter");
        assert_eq!(masked(&[], "hunter2"), "hunter2");
        // Empty values mask nothing.
        assert_eq!(masked(&[""], "text"), "text");
    }

    #[test]
    fn overlapping_and_adjacent_occurrences_become_one() {
        // Two secrets overlapping: neither's tail shows.
        assert_eq!(masked(&["abcdef", "defghi"], "xabcdefghiy"), "x***y");
        // One inside another, either order.
        assert_eq!(
            masked(&["secret", "cre"], "a secret, a cre"),
            "a ***, a ***"
        );
        assert_eq!(masked(&["cre", "secret"], "a secret"), "a ***");
        // A value overlapping itself, and back to back.
        assert_eq!(masked(&["aba"], "ababa"), "***");
        assert_eq!(masked(&["xy"], "xyxy-xy"), "***-***");
    }

    #[test]
    fn a_one_character_secret_masks_that_character_everywhere() {
        assert_eq!(masked(&["e"], "secret text"), "s***cr***t t***xt");
    }

    #[test]
    fn multibyte_text_is_masked_on_character_boundaries() {
        assert_eq!(masked(&["ñé"], "aññéé ñé"), "añ***é ***");
        assert_eq!(masked(&["🔑🔑"], "🔑🔑🔑"), "***");
    }

    #[test]
    fn lines_of_a_multi_line_secret_are_masked_line_by_line() {
        let pem = "-----BEGIN KEY-----\r\nMIIBVwIBADANBg\nkqhkiG9w0BAQEF\n-----END KEY-----";
        let mask = Mask::new([pem]);
        // Output arrives as lines: each line of the value is masked where it appears.
        assert_eq!(mask.apply("key: MIIBVwIBADANBg"), "key: ***");
        assert_eq!(mask.apply("kqhkiG9w0BAQEF"), "***");
        assert_eq!(mask.apply("-----BEGIN KEY-----"), "***");
        // A part of a line is not the value: only whole lines of it are known.
        assert_eq!(mask.apply("MIIBVw"), "MIIBVw");
    }

    #[test]
    fn json_strings_and_keys_are_masked() {
        let mask = Mask::new(["tok\"en"]);
        let mut v = serde_json::json!({"a": ["x tok\"en"], "tok\"en": 1});
        mask.apply_json(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x ***"], "***": 1}));
    }

    #[test]
    fn masks_say_how_many_values_not_which() {
        let mask = Mask::new(["hunter2"]);
        assert_eq!(format!("{mask:?}"), "Mask(1 values)");
        let source = SecretSource::new(None, BTreeMap::from([("A".into(), "hunter2".into())]));
        assert!(!format!("{source:?}").contains("hunter2"));
    }

    fn secrets_dir(files: &[(&str, &str, u32)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sisyphus-secrets-unit-{}-{}",
            std::process::id(),
            files.first().map_or("none", |f| f.0)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        for (name, content, mode) in files {
            let path = dir.join(name);
            std::fs::write(&path, content).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).expect("chmod");
        }
        dir
    }

    #[test]
    fn files_come_first_and_lose_one_trailing_newline() {
        let dir = secrets_dir(&[
            ("FILE_A", "from-file\n\n", 0o600),
            ("FILE_B", "b\r\n", 0o400),
        ]);
        check_dir(&dir).expect("a private directory is fine");
        let env = BTreeMap::from([
            ("FILE_A".to_string(), "from-env".to_string()),
            ("ENV_ONLY".to_string(), "from-env".to_string()),
        ]);
        let source = SecretSource::new(Some(dir.clone()), env);
        assert_eq!(source.resolve("FILE_A"), Ok("from-file\n".to_string()));
        assert_eq!(source.resolve("FILE_B"), Ok("b".to_string()));
        assert_eq!(source.resolve("ENV_ONLY"), Ok("from-env".to_string()));
        let missing = source.resolve("NOWHERE").err().map(|e| e.to_string());
        assert!(
            missing
                .as_deref()
                .is_some_and(|m| m.contains("secret `NOWHERE` is missing")
                    && m.contains("SISYPHUS_SECRET_NOWHERE")),
            "{missing:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_file_group_or_others_may_read_is_refused_without_its_value() {
        let dir = secrets_dir(&[("OPEN", "hunter2", 0o644), ("GROUPW", "hunter2", 0o620)]);
        let source = SecretSource::new(
            Some(dir.clone()),
            BTreeMap::from([("OPEN".to_string(), "from-env".to_string())]),
        );
        for name in ["OPEN", "GROUPW"] {
            let e = source.resolve(name).err().map(|e| e.to_string());
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains(&format!("secret `{name}`"))
                        && e.contains("group or others may read or write it")
                        && !e.contains("hunter2")),
                "{e:?}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn what_is_not_a_regular_file_is_refused() {
        let dir = secrets_dir(&[("X_SUB", "x", 0o600)]);
        std::fs::create_dir(dir.join("ADIR")).expect("subdir");
        let fifo = dir.join("AFIFO");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("fifo");
        let source = SecretSource::new(Some(dir.clone()), BTreeMap::new());
        for name in ["ADIR", "AFIFO"] {
            let e = source.resolve(name).err().map(|e| e.to_string());
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains("not a regular file")),
                "{name}: {e:?}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_directory_others_may_write_is_refused() {
        let dir = secrets_dir(&[("W_DIR", "x", 0o600)]);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let e = check_dir(&dir).err().unwrap_or_default();
        assert!(e.contains("may be written by group or others"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_job_environment_resolves_every_secret_or_names_each_missing_one() {
        let source = SecretSource::new(
            None,
            BTreeMap::from([("TOKEN".to_string(), "t0ken".to_string())]),
        );
        let env = BTreeMap::from([
            ("MODE".to_string(), EnvValue::from("fast")),
            ("API".to_string(), EnvValue::secret("TOKEN")),
        ]);
        let (resolved, mask) = source.resolve_env(&env).expect("resolved");
        assert_eq!(resolved.get("API").map(String::as_str), Some("t0ken"));
        assert_eq!(resolved.get("MODE").map(String::as_str), Some("fast"));
        assert_eq!(mask.apply("t0ken fast"), "*** fast");
        let mut env = env;
        env.insert("A".into(), EnvValue::secret("GONE"));
        env.insert("B".into(), EnvValue::secret("GONE"));
        env.insert("C".into(), EnvValue::secret("ALSO_GONE"));
        let errors = source.resolve_env(&env).err().unwrap_or_default();
        let names: Vec<String> = errors
            .iter()
            .filter_map(|e| match e {
                SecretError::Missing { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["GONE", "ALSO_GONE"]);
    }
}
