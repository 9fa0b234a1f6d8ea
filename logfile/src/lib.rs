//! Local log files in ll.sisyphus' layout and line format, shared by the guardian and the job
//! SDK's standalone mode so that both write exactly the same files:
//!
//! ```text
//! <base>/<project>/<job>/2026-11-24-09-15-02-123456.sisyphuslog
//! [2026-11-24 09:15:02.123456]=[t+0:00:00.001234] :: host 4711 :: {sisyphus}{init} >> text
//! ```
//!
//! with the links `current.sisyphuslog` (the running or last run), `last_successful`,
//! `last_failed`, `last_interrupted` and `last_timeout` (`.sisyphuslog` each), set when a run ends.
//! The file of an uneventful run is deleted (`current` then points at a missing file whose name
//! still tells when the run was). Older files are compressed, and removed, by age.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local, Utc};

/// How a run ended, as far as its log file is concerned: which `last_*` link it sets, and
/// whether the file is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Successful,
    /// The file is deleted.
    Uneventful,
    Failed,
    Interrupted,
    Timeout,
    /// No `last_*` link (a run that never really ran).
    Other,
}

impl Ending {
    /// The link this ending points at the file, if any.
    pub fn link(self) -> Option<&'static str> {
        match self {
            Ending::Successful => Some("last_successful.sisyphuslog"),
            Ending::Failed => Some("last_failed.sisyphuslog"),
            Ending::Interrupted => Some("last_interrupted.sisyphuslog"),
            Ending::Timeout => Some("last_timeout.sisyphuslog"),
            Ending::Uneventful | Ending::Other => None,
        }
    }
}

/// What happens to a job's local log files as they age.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSettings {
    /// Remove files older than this.
    pub keep: Option<Duration>,
    /// Compress files older than this.
    pub compress_after: Option<Duration>,
    pub compression: Compression,
}

/// How old log files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    Gzip,
    #[default]
    Bzip2,
    Xz,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }

    /// The file name extension of a compressed file.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "gz",
            Compression::Bzip2 => "bz2",
            Compression::Xz => "xz",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "bzip2" => Ok(Compression::Bzip2),
            "xz" | "lzma" => Ok(Compression::Xz),
            _ => Err(format!(
                "`{s}` is not a compression; expected gzip, bzip2 or xz"
            )),
        }
    }
}

/// Formats ll.sisyphus' elapsed time: `H:MM:SS.ffffff`, or `H:MM:SS` for whole seconds
/// (Python's `timedelta` as text).
pub fn elapsed(d: chrono::Duration) -> String {
    let micros = d.num_microseconds().unwrap_or(0).max(0);
    let secs = micros / 1_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    match micros % 1_000_000 {
        0 => format!("{h}:{m:02}:{s:02}"),
        us => format!("{h}:{m:02}:{s:02}.{us:06}"),
    }
}

/// One line in ll.sisyphus' format:
///
/// ```text
/// [2026-11-24 09:15:02.123456]=[t+0:00:00.001234] :: parent 4711 :: [3/226] module sys :: {xml}{warning} >> text
/// ```
///
/// `who` names the writer, shown with `pid` as the first segment (the guardian's host, or
/// ll.sisyphus' `parent`, `child`, `[2] child`), or nothing when empty; `tasks` is the task
/// stack as the SDK shows it (levels joined by ` :: `), empty for none; tags follow in braces.
pub fn format_line(
    at: DateTime<Utc>,
    start: DateTime<Utc>,
    who: &str,
    pid: u32,
    tasks: &str,
    tags: &[String],
    text: &str,
) -> String {
    let mut line = format!(
        "[{}]=[t+{}]",
        at.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S%.6f"),
        elapsed(at - start)
    );
    if !who.is_empty() {
        line.push_str(&format!(" :: {who} {pid}"));
    }
    if !tasks.is_empty() {
        line.push_str(" :: ");
        line.push_str(tasks);
    }
    if !tags.is_empty() {
        line.push_str(" :: ");
        for t in tags {
            line.push('{');
            line.push_str(t);
            line.push('}');
        }
    }
    line.push_str(" >> ");
    line.push_str(text);
    line
}

/// Who may read the log files: their owner alone (directories 0700, files 0600), or also a group
/// (0750 / 0640, owned by that group). A run's output can hold anything, secrets included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// The group that may read the files too.
    pub group: Option<u32>,
}

impl Access {
    fn dir_mode(self) -> u32 {
        if self.group.is_some() {
            0o750
        } else {
            0o700
        }
    }

    fn file_mode(self) -> u32 {
        if self.group.is_some() {
            0o640
        } else {
            0o600
        }
    }

    /// Creates `dir` and its missing parents with this access. Directories that exist already
    /// are left as they are (a `--log-dir /var/log` is not made private).
    pub fn create_dir(self, dir: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir(parent)?;
        }
        match std::fs::DirBuilder::new().mode(self.dir_mode()).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(e),
        }
        // The umask may have taken bits away; the mode is exact.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(self.dir_mode()))?;
        self.chown(dir)
    }

    /// Creates (truncating) a file with this access.
    pub fn create_file(self, path: &Path) -> std::io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(self.file_mode())
            .open(path)?;
        self.chown(path)?;
        Ok(file)
    }

    fn chown(self, path: &Path) -> std::io::Result<()> {
        match self.group {
            Some(gid) => std::os::unix::fs::chown(path, None, Some(gid)),
            None => Ok(()),
        }
    }
}

/// The open log file of one run.
pub struct RunLog {
    dir: PathBuf,
    name: String,
    file: Option<BufWriter<File>>,
    start: DateTime<Utc>,
    who: String,
    pid: u32,
}

impl RunLog {
    /// Creates `<base>/<project>/<job>/<start>.sisyphuslog` (for its owner alone) and points
    /// `current` at it. Problems with the local file never fail a run: they are logged and the
    /// file is skipped.
    pub fn create(
        base: &Path,
        project: &str,
        job: &str,
        start: DateTime<Utc>,
        who: &str,
    ) -> RunLog {
        Self::create_with(base, project, job, start, who, Access::default())
    }

    /// [`RunLog::create`] with the given access to the directories and the file.
    pub fn create_with(
        base: &Path,
        project: &str,
        job: &str,
        start: DateTime<Utc>,
        who: &str,
        access: Access,
    ) -> RunLog {
        let dir = base.join(project).join(job);
        let name = format!(
            "{}.sisyphuslog",
            start.with_timezone(&Local).format("%Y-%m-%d-%H-%M-%S-%6f")
        );
        let file = access
            .create_dir(&dir)
            .and_then(|()| access.create_file(&dir.join(&name)))
            .map(BufWriter::new)
            .map_err(|e| tracing::warn!("cannot create a log file in {}: {e}", dir.display()))
            .ok();
        let log = RunLog {
            dir,
            name,
            file,
            start,
            who: who.to_string(),
            pid: std::process::id(),
        };
        log.link("current.sisyphuslog");
        log
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Appends one line (buffered; see [`RunLog::flush`]).
    pub fn line(&mut self, at: DateTime<Utc>, tasks: &str, tags: &[String], text: &str) {
        let line = format_line(at, self.start, &self.who, self.pid, tasks, tags, text);
        if let Some(f) = &mut self.file {
            if writeln!(f, "{line}").is_err() {
                self.file = None;
            }
        }
    }

    /// Appends one line formatted by the caller (a job's own `formatlogline`).
    pub fn raw_line(&mut self, line: &str) {
        if let Some(f) = &mut self.file {
            if writeln!(f, "{line}").is_err() {
                self.file = None;
            }
        }
    }

    /// The job's log directory (where the links are).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The start time the file is named after.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Writes what is buffered (before a fork, or when another process shares the file).
    pub fn flush(&mut self) {
        if let Some(f) = &mut self.file {
            if f.flush().is_err() {
                self.file = None;
            }
        }
    }

    /// Closes the file, sets the link for the ending (or deletes the file of an uneventful run),
    /// then applies the job's retention.
    pub fn finish(mut self, ending: Ending, settings: &LogSettings) {
        if let Some(mut f) = self.file.take() {
            let _ = f.flush();
        }
        if ending == Ending::Uneventful {
            let _ = std::fs::remove_file(self.path());
        }
        if let Some(link) = ending.link() {
            self.link(link);
        }
        apply_retention(&self.dir, settings, SystemTime::now());
    }

    fn link(&self, link: &str) {
        if point_link(&self.dir, link, Path::new(&self.name)).is_err() {
            tracing::warn!(
                "cannot point {}/{link} at {}",
                self.dir.display(),
                self.name
            );
        }
    }
}

/// Points the link `dir/link` at `target` (relative to `dir`), replacing it atomically.
pub fn point_link(dir: &Path, link: &str, target: &Path) -> std::io::Result<()> {
    let path = dir.join(link);
    let tmp = dir.join(format!(".{link}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).and_then(|()| std::fs::rename(&tmp, &path))
}

/// Removes log files older than `keep` and compresses those older than `compress_after`.
/// Nothing to do (no directory scan at all) when the job keeps its files forever uncompressed,
/// the default: this runs at the end of every run.
pub fn apply_retention(dir: &Path, settings: &LogSettings, now: SystemTime) {
    if settings.keep.is_none() && settings.compress_after.is_none() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_log = name.contains(".sisyphuslog")
            && !name.starts_with("current.")
            && !name.starts_with("last_")
            && !name.starts_with('.');
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !is_log || !meta.is_file() {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        if settings.keep.is_some_and(|keep| age > keep) {
            let _ = std::fs::remove_file(&path);
        } else if settings.compress_after.is_some_and(|c| age > c) && name.ends_with(".sisyphuslog")
        {
            if let Err(e) = compress(&path, settings.compression) {
                tracing::warn!("cannot compress {}: {e}", path.display());
            }
        }
    }
}

/// Compresses `path` to `path.<ext>` (keeping its modification time) and removes `path`.
pub fn compress(path: &Path, mode: Compression) -> std::io::Result<PathBuf> {
    let target = PathBuf::from(format!("{}.{}", path.display(), mode.extension()));
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut input = File::open(path)?;
    let meta = input.metadata()?;
    // The compressed file is as private as the original from its first byte: its mode, its group.
    let output = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(meta.mode() & 0o777)
        .open(&target)?;
    output.set_permissions(meta.permissions())?;
    let _ = std::os::unix::fs::chown(&target, None, Some(meta.gid()));
    let output = BufWriter::new(output);
    let mut output: Box<dyn Write> = match mode {
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
            output,
            flate2::Compression::default(),
        )),
        Compression::Bzip2 => Box::new(bzip2::write::BzEncoder::new(
            output,
            bzip2::Compression::default(),
        )),
        Compression::Xz => Box::new(xz2::write::XzEncoder::new(output, 6)),
    };
    std::io::copy(&mut input, &mut output)?;
    output.flush()?;
    drop(output);
    if let Ok(modified) = std::fs::metadata(path).and_then(|m| m.modified()) {
        let _ = File::options()
            .write(true)
            .open(&target)
            .and_then(|f| f.set_modified(modified));
    }
    std::fs::remove_file(path)?;
    Ok(target)
}
