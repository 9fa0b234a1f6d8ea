//! `sisyctl apply FILE`: make the database hold a jobs file's definitions.

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;

use anyhow::anyhow;
use sisyphus_client::jobsfile::{self, Checked};
use sisyphus_client::{Change, Client};

use crate::{output, say, Failure};

/// The largest jobs file `apply` reads: far more than any fleet's definitions.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and checks a jobs file, before any connection is made. Refuses (exit 2) what is not a
/// regular file — a directory, a fifo, a device such as /dev/zero — and files over
/// [`MAX_FILE_BYTES`], without reading them; a file that grows while it is read is cut off at
/// the limit and refused too. Warnings (`Checked::warnings`) go to stderr.
pub fn read(file: &str) -> Result<Checked, Failure> {
    let refuse = |why: String| Failure::usage(anyhow!("{file}: {why}"));
    let meta = std::fs::metadata(file).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    let kind = meta.file_type();
    let not_regular = if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a fifo")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else if !kind.is_file() {
        Some("not a file")
    } else {
        None
    };
    if let Some(what) = not_regular {
        return Err(refuse(format!(
            "is {what}, not a regular file; give a jobs file (TOML)"
        )));
    }
    let too_big = || {
        refuse(format!(
            "is larger than {} MiB, the largest jobs file apply reads",
            MAX_FILE_BYTES / (1024 * 1024)
        ))
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let checked = jobsfile::parse_all(&text, file)?;
    warn(&checked);
    Ok(checked)
}

/// Says on stderr what the file allows but probably should not (a plain value under an env key
/// that looks secret), naming the job and the key; it is applied all the same. A stderr that
/// cannot be written does not stop the apply.
fn warn(checked: &Checked) {
    let mut err = std::io::stderr().lock();
    for warning in checked.warnings() {
        let text = warning.to_string();
        let _ = writeln!(err, "sisyctl: warning: {}", output::escape(&text, false));
    }
}

pub async fn run(
    client: &Client,
    checked: &Checked,
    prune: bool,
    json: bool,
) -> Result<(), Failure> {
    let report = client
        .apply_with_defaults(&checked.jobs, &checked.projects, prune)
        .await?;
    if json {
        return Ok(output::json(&report)?);
    }
    let rows: Vec<Vec<String>> = report
        .iter()
        .map(|a| vec![a.job.clone(), format!("{:?}", a.change).to_lowercase()])
        .collect();
    output::table(&["JOB", "CHANGE"], &rows)?;
    let changed = report
        .iter()
        .filter(|a| a.change != Change::Unchanged)
        .count();
    say!("{changed} of {} job(s) changed", report.len())?;
    Ok(())
}
