//! The daemons' log writer: stderr, but never at the cost of the daemon.
//!
//! A daemon whose stderr is a pipe that nobody reads any more (a stopped pager, a wedged log
//! shipper) would block in `write` once the pipe is full, and with it the thread that logged —
//! a guardian then ignored SIGTERM. Here a write waits at most 100 ms for room and then drops the
//! line; it writes at most `PIPE_BUF` bytes at once, which a pipe with room takes without blocking.

use std::io::Write;
use std::os::fd::AsFd;

/// Bytes a pipe that polls writable takes without blocking.
const PIPE_BUF: usize = 4096;

/// How long a line may wait for room on stderr.
const WAIT_MS: u16 = 100;

/// A `tracing_subscriber` writer: `.with_writer(|| stderr::Stderr)`.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let stderr = std::io::stderr();
        let ready = {
            let mut fds = [PollFd::new(stderr.as_fd(), PollFlags::POLLOUT)];
            matches!(poll(&mut fds, PollTimeout::from(WAIT_MS)), Ok(n) if n > 0)
                && fds[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLOUT))
        };
        if !ready {
            // Dropped: nobody takes it, and waiting longer would stall the daemon.
            return Ok(buf.len());
        }
        let chunk = &buf[..buf.len().min(PIPE_BUF)];
        match stderr.lock().write(chunk) {
            Ok(n) => Ok(n),
            // A reader that has gone: the line has nowhere to go.
            Err(_) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
