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
//!
//! A connection that began with a PROXY header (`send_proxy_protocol`)
//! belongs to that header's client: it is kept with its [`ConnAddrs`] and
//! only taken again for the same ones. Such owned connections are capped at
//! [`MAX_OWNED_PER_BACKEND`], the oldest making room for a new one (it most
//! likely belongs to a client that has gone).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::proxy_protocol::ConnAddrs;

/// Idle connections kept per backend and thread; more are closed when
/// released. (256 made a 1,000-connection load reconnect constantly.)
pub const MAX_IDLE_PER_BACKEND: usize = 1024;
/// An idle connection older than this is closed instead of reused.
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Idle connections owned by a client (PROXY header sent) kept per backend
/// and thread; each take scans them for its owner.
pub const MAX_OWNED_PER_BACKEND: usize = 256;

/// Threads with stacks of their own; threads beyond this share them.
const SHARDS: usize = 16;

/// An idle connection: when it was released, and the client whose PROXY
/// header it carries (`None`: none, anyone's).
struct Idle {
    conn: TcpStream,
    since: Instant,
    owner: Option<ConnAddrs>,
}

/// Idle connections to one backend.
type Stack = Mutex<Vec<Idle>>;

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

    /// This thread's stack for backend `index`.
    fn stack(&self, index: usize) -> Option<&Stack> {
        if index >= self.backends {
            return None;
        }
        self.stacks.get(shard() * self.backends + index)
    }

    /// A usable idle connection to backend `index` that carries `owner`'s
    /// PROXY header (`None`: one without), if there is one.
    pub fn take(&self, index: usize, owner: Option<&ConnAddrs>) -> Option<TcpStream> {
        let stack = self.stack(index)?;
        loop {
            let idle = {
                let mut stack = lock(stack);
                // Without owners: the top one.
                let at = stack.iter().rposition(|i| i.owner.as_ref() == owner)?;
                stack.remove(at)
            };
            if idle.since.elapsed() < IDLE_LIMIT && still_idle(&idle.conn) {
                return Some(idle.conn);
            }
        }
    }

    /// Keeps `conn`, which carries `owner`'s PROXY header (or none), for the
    /// next request to backend `index`.
    pub fn put(&self, index: usize, conn: TcpStream, owner: Option<ConnAddrs>) {
        let Some(stack) = self.stack(index) else {
            return;
        };
        let mut stack = lock(stack);
        let evicted = match owner {
            None if stack.len() >= MAX_IDLE_PER_BACKEND => return,
            Some(_) if stack.len() >= MAX_OWNED_PER_BACKEND => Some(stack.remove(0)),
            _ => None,
        };
        stack.push(Idle {
            conn,
            since: Instant::now(),
            owner,
        });
        drop(stack);
        drop(evicted);
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
        idle.put(0, c, None);
        assert_eq!(idle.idle(0), 1);
        assert!(idle.take(0, None).is_some(), "open and quiet: reusable");
        assert!(idle.take(0, None).is_none());

        let (c, server) = pair().await;
        idle.put(1, c, None);
        drop(server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            idle.take(1, None).is_none(),
            "closed by the backend: dropped"
        );

        let (c, mut server) = pair().await;
        idle.put(1, c, None);
        server.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(idle.take(1, None).is_none(), "unasked-for bytes: dropped");
        assert!(idle.take(7, None).is_none(), "no such backend");
    }

    fn owner(client: &str) -> ConnAddrs {
        ConnAddrs {
            client: client.parse().unwrap(),
            local: "127.0.0.1:80".parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn an_owned_connection_goes_only_to_its_owner() {
        let idle = IdleConns::new(1);
        let (a, b) = (owner("10.0.0.1:1"), owner("10.0.0.2:2"));
        let mut servers = Vec::new();
        for who in [Some(a), Some(b), Some(a)] {
            let (c, server) = pair().await;
            servers.push(server);
            idle.put(0, c, who);
        }
        assert!(idle.take(0, None).is_none(), "no plain connection");
        assert!(idle.take(0, Some(&owner("10.0.0.1:9"))).is_none());
        assert!(idle.take(0, Some(&b)).is_some());
        assert!(idle.take(0, Some(&b)).is_none());
        assert!(idle.take(0, Some(&a)).is_some());
        assert!(idle.take(0, Some(&a)).is_some());
        assert_eq!(idle.idle(0), 0);
    }

    #[tokio::test]
    async fn owned_connections_are_capped_oldest_out() {
        let idle = IdleConns::new(1);
        let mut servers = Vec::new();
        for n in 0..=MAX_OWNED_PER_BACKEND {
            let (c, server) = pair().await;
            servers.push(server);
            idle.put(0, c, Some(owner(&format!("10.0.0.1:{}", n + 1))));
        }
        assert_eq!(idle.idle(0), MAX_OWNED_PER_BACKEND);
        assert!(
            idle.take(0, Some(&owner("10.0.0.1:1"))).is_none(),
            "evicted"
        );
        assert!(idle.take(0, Some(&owner("10.0.0.1:2"))).is_some());
    }
}
