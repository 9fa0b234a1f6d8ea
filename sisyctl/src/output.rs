//! Output: aligned tables for people, JSON for scripts. Only `sisyctl` knows about terminals.
//!
//! Everything goes through [`say!`](crate::say) and the functions here, which write to stdout
//! with error handling: a closed pipe (`sisyctl … | head`) comes back as an `io::Error` of kind
//! `BrokenPipe`, which [`Failure`](crate::Failure) turns into a quiet end, never a panic.
//!
//! Text that came from jobs (output, summaries, errors) can hold control characters and escape
//! sequences; tables and log lines show them escaped ([`escape`]) so that nothing a job printed
//! can move the cursor, change colours or retitle the terminal of whoever reads it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// `say!("…", args)`: one line on stdout, as `println!` but returning `io::Result<()>`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

/// Writes one line to stdout.
pub fn line(args: std::fmt::Arguments<'_>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")
}

/// Prints `value` as pretty JSON (serde_json escapes control characters itself).
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    line(format_args!("{text}"))?;
    Ok(())
}

/// Whether a character is shown escaped: C0 controls, DEL and C1 controls (U+0080–U+009F, which
/// some terminals read as escape sequences too).
fn is_control(c: char, keep_tab: bool) -> bool {
    c.is_control() && !(keep_tab && c == '\t')
}

/// `text` with control characters escaped: `\n`, `\r`, `\t` (unless `keep_tab`), `\\x1b`
/// for other C0 controls and DEL, `\u{9b}` for C1 controls. A backslash stays as it is, so the
/// escaping is for reading, not a reversible encoding (`--raw` or `--json` give the bytes).
pub fn escape(text: &str, keep_tab: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_control(c, keep_tab)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !is_control(c, keep_tab) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Prints rows under a header, columns padded to their widest cell. Cells are shown escaped
/// (tabs and newlines too: they would break the columns).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape(cell, false)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut line = |cells: Vec<&str>| -> io::Result<()> {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        writeln!(out, "{}", padded.join("  ").trim_end())
    };
    line(header.to_vec())?;
    for row in &rows {
        line(row.iter().map(|c| c.as_ref()).collect())?;
    }
    out.flush()
}

/// Prints `key: value` lines, keys right-aligned to 12 columns; values shown escaped.
pub fn fields(lines: &[(&str, String)]) -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    for (k, v) in lines {
        writeln!(out, "{k:>12}: {}", escape(v, true))?;
    }
    out.flush()
}

/// A time for a table: RFC 3339 to the second, or `-`.
pub fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// An optional value for a table, or `-`.
pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain text", false), "plain text");
        assert_eq!(
            escape("\x1b]0;owned\x07red \x1b[31mX", false),
            "\\x1b]0;owned\\x07red \\x1b[31mX"
        );
        assert_eq!(escape("a\tb\r\nc\x7f", false), "a\\tb\\r\\nc\\x7f");
        assert_eq!(escape("a\tb", true), "a\tb");
        assert_eq!(escape("csi \u{9b}31m", true), "csi \\u{9b}31m");
        assert_eq!(escape("nul \0", true), "nul \\x00");
        assert_eq!(escape("ünïcödé ✓", false), "ünïcödé ✓");
    }
}
