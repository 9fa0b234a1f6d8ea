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

/// Reads `reader` to its end, sending each line. Stops early if the receiver is gone.
pub async fn read_lines<R: AsyncRead + Unpin>(
    mut reader: R,
    stream: Stream,
    tx: mpsc::Sender<Line>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        while let Some(pos) = chunk.iter().position(|b| *b == b'\n') {
            pending.extend_from_slice(&chunk[..pos]);
            chunk = &chunk[pos + 1..];
            if send(&tx, stream, &mut pending).await.is_err() {
                return;
            }
        }
        pending.extend_from_slice(chunk);
        while pending.len() >= MAX_LINE {
            let rest = pending.split_off(MAX_LINE);
            if send(&tx, stream, &mut pending).await.is_err() {
                return;
            }
            pending = rest;
        }
    }
    if !pending.is_empty() {
        let _ = send(&tx, stream, &mut pending).await;
    }
}

async fn send(tx: &mpsc::Sender<Line>, stream: Stream, bytes: &mut Vec<u8>) -> Result<(), ()> {
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    let (text, lossy) = match String::from_utf8(std::mem::take(bytes)) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    tx.send(Line {
        stream,
        text,
        lossy,
    })
    .await
    .map_err(|_| ())
}
