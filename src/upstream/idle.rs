//! Idle keep-alive connections to an upstream's backends, for the HTTP/1
//! forwarder ([`crate::h1`]): one stack per backend, newest on top.
//!
//! A connection is only put back after a response that ended cleanly on it.
//! Taking one checks it is still usable without a syscall in the common
//! case: tokio knows from the reactor whether the socket turned readable
//! while it sat idle (the backend closed it, or sent something unasked), and
//! such a connection is dropped. One that stayed idle longer than
//! [`IDLE_LIMIT`] is dropped too: backends close idle connections on their
//! own schedule, and an old one is the likeliest to be half-closed.
//!
//! Each worker thread runs its own runtime, and a socket's readiness comes
//! from the reactor of the runtime that opened it; so every thread keeps its
//! own stacks (a shard) and reuses only the connections it opened.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Idle connections kept per backend and thread; more are closed when
/// released. (256 made a 1,000-connection load reconnect constantly.)
pub const MAX_IDLE_PER_BACKEND: usize = 1024;
/// An idle connection older than this is closed instead of reused.
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Threads with stacks of their own; threads beyond this share them.
const SHARDS: usize = 16;

/// Idle connections to one backend, each with the time it was released.
type Stack = Mutex<Vec<(TcpStream, Instant)>>;

pub struct IdleConns {
    backends: usize,
    /// `SHARDS` × `backends` stacks: shard-major.
    stacks: Box<[Stack]>,
}

impl IdleConns {
    pub fn new(backends: usize) -> Self {
        Self {
            backends,
            stacks: (0..backends * SHARDS)
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
        }
    }

    /// A pool that keeps nothing: for an upstream with `send_proxy_protocol`,
    /// whose connections each carry one client's PROXY header.
    pub fn none() -> Self {
        Self::new(0)
    }

    /// This thread's stack for backend `index`.
    fn stack(&self, index: usize) -> Option<&Stack> {
        if index >= self.backends {
            return None;
        }
        self.stacks.get(shard() * self.backends + index)
    }

    /// A usable idle connection to backend `index`, if there is one.
    pub fn take(&self, index: usize) -> Option<TcpStream> {
        let stack = self.stack(index)?;
        loop {
            let (conn, since) = lock(stack).pop()?;
            if since.elapsed() < IDLE_LIMIT && still_idle(&conn) {
                return Some(conn);
            }
        }
    }

    /// Keeps `conn` for the next request to backend `index`.
    pub fn put(&self, index: usize, conn: TcpStream) {
        let Some(stack) = self.stack(index) else {
            return;
        };
        let mut stack = lock(stack);
        if stack.len() < MAX_IDLE_PER_BACKEND {
            stack.push((conn, Instant::now()));
        }
    }

    /// Idle connections held for backend `index` by this thread.
    pub fn idle(&self, index: usize) -> usize {
        self.stack(index).map_or(0, |s| lock(s).len())
    }
}

/// This thread's shard, fixed at its first use.
fn shard() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The stacks hold no invariant a panicking holder could break.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when nothing (no data, no EOF, no error) is waiting on `conn`.
fn still_idle(conn: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(conn.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    #[tokio::test]
    async fn reuses_an_idle_connection_and_drops_a_closed_one() {
        let idle = IdleConns::new(2);
        let (c, _server) = pair().await;
        idle.put(0, c);
        assert_eq!(idle.idle(0), 1);
        assert!(idle.take(0).is_some(), "open and quiet: reusable");
        assert!(idle.take(0).is_none());

        let (c, server) = pair().await;
        idle.put(1, c);
        drop(server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(idle.take(1).is_none(), "closed by the backend: dropped");

        let (c, mut server) = pair().await;
        idle.put(1, c);
        server.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(idle.take(1).is_none(), "unasked-for bytes: dropped");
        assert!(idle.take(7).is_none(), "no such backend");
    }

    #[tokio::test]
    async fn the_empty_pool_keeps_nothing() {
        let idle = IdleConns::none();
        let (c, _server) = pair().await;
        idle.put(0, c);
        assert_eq!(idle.idle(0), 0);
        assert!(idle.take(0).is_none());
    }
}
