//! Reading a child's stdout or stderr as lines, with bounded memory whatever the child prints.
//!
//! A line longer than `MAX_LINE` bytes is cut into pieces of that size; invalid UTF-8 is
//! replaced (U+FFFD) and the line is marked so, rather than lost.

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use sisyphus_client::db::logs::Stream;

/// The longest line kept as one line.
pub const MAX_LINE: usize = 64 * 1024;

/// One line of output.
#[derive(Debug)]
pub struct Line {
    pub stream: Stream,
    pub text: String,
    /// The bytes were not valid UTF-8.
    pub lossy: bool,
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
    let (text, lossy) = match String::from_utf8(std::mem::take(bytes)) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    Line {
        stream,
        text,
        lossy,
    }
}
