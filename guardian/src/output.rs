//! Reading a child's stdout or stderr as lines, with bounded memory whatever the child prints.
//!
//! A line longer than `MAX_LINE` bytes is cut into pieces of that size; invalid UTF-8 and NUL
//! bytes (which PostgreSQL's text cannot hold) are replaced (U+FFFD) and the line is marked so,
//! rather than lost — or, worse, refused by the database together with other runs' lines.

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use sisyphus_model::views::Stream;

/// The longest line kept as one line.
pub const MAX_LINE: usize = 64 * 1024;

/// One line of output.
#[derive(Debug)]
pub struct Line {
    pub stream: Stream,
    pub text: String,
    /// The bytes were not valid UTF-8.
    pub lossy: bool,
    /// The bytes held NULs (replaced).
    pub nul: bool,
}

/// Reads `reader` to its end, sending the lines of each read as one batch (one channel message
/// per read, not per line: a chatty child costs a wake-up per 64 KiB, not per line). Stops early
/// if the receiver is gone.
pub async fn read_lines<R: AsyncRead + Unpin>(
    mut reader: R,
    stream: Stream,
    tx: mpsc::Sender<Vec<Line>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut batch = Vec::new();
        let mut chunk = &buf[..n];
        while let Some(pos) = chunk.iter().position(|b| *b == b'\n') {
            pending.extend_from_slice(&chunk[..pos]);
            chunk = &chunk[pos + 1..];
            batch.push(line(stream, &mut pending));
        }
        pending.extend_from_slice(chunk);
        while pending.len() >= MAX_LINE {
            let rest = pending.split_off(MAX_LINE);
            batch.push(line(stream, &mut pending));
            pending = rest;
        }
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            return;
        }
    }
    if !pending.is_empty() {
        let _ = tx.send(vec![line(stream, &mut pending)]).await;
    }
}

fn line(stream: Stream, bytes: &mut Vec<u8>) -> Line {
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    let (mut text, lossy) = match String::from_utf8(std::mem::take(bytes)) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    let nul = sisyphus_protocol::text::clean(&mut text);
    Line {
        stream,
        text,
        lossy,
        nul,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(bytes: &'static [u8]) -> Vec<Line> {
        let (tx, mut rx) = mpsc::channel(16);
        read_lines(bytes, Stream::Stdout, tx).await;
        let mut all = Vec::new();
        while let Some(batch) = rx.recv().await {
            all.extend(batch);
        }
        all
    }

    #[tokio::test]
    async fn nul_and_invalid_utf8_are_replaced_and_marked() {
        let lines = lines_of(b"a\0b\nplain\n\xff\0\r\n").await;
        let seen: Vec<(&str, bool, bool)> = lines
            .iter()
            .map(|l| (l.text.as_str(), l.lossy, l.nul))
            .collect();
        assert_eq!(
            seen,
            [
                ("a\u{FFFD}b", false, true),
                ("plain", false, false),
                ("\u{FFFD}\u{FFFD}", true, true)
            ]
        );
    }
}
