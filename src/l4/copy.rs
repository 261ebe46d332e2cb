//! Copying bytes both ways between a client and a backend.
//!
//! Each direction reads into its own buffer and writes everything it read
//! (flushing, since Pingora streams buffer writes). When one side ends its
//! sending (EOF), the other side's write half is shut down, so a client's
//! `shutdown(SHUT_WR)` reaches the backend as EOF while the backend's reply
//! still flows back. The splice ends when both directions ended, on the first
//! I/O error, or after `idle` with no byte moving either way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

const BUF: usize = 32 * 1024;

/// Copies `client` ⇄ `backend`. `rx` counts bytes from the client, `tx`
/// bytes to it.
pub async fn splice<C, B>(
    client: &mut C,
    backend: &mut B,
    idle: Duration,
    rx: &IntCounter,
    tx: &IntCounter,
) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (client_r, client_w) = tokio::io::split(client);
    let (backend_r, backend_w) = tokio::io::split(backend);
    let start = Instant::now();
    // Milliseconds after `start` of the last byte moved, either way.
    let last = AtomicU64::new(0);
    let both = async {
        let (up, down) = tokio::join!(
            one_way(client_r, backend_w, rx, &last, start),
            one_way(backend_r, client_w, tx, &last, start)
        );
        up.and(down)
    };
    let watchdog = async {
        loop {
            let since = start
                .elapsed()
                .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
            if since >= idle {
                return;
            }
            tokio::time::sleep(idle - since).await;
        }
    };
    tokio::select! {
        result = both => result,
        () = watchdog => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "idle timeout")),
    }
}

async fn one_way<R, W>(
    mut from: ReadHalf<R>,
    mut to: WriteHalf<W>,
    counter: &IntCounter,
    last: &AtomicU64,
    start: Instant,
) -> std::io::Result<()>
where
    R: AsyncRead,
    W: AsyncWrite,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            // Pass the half-close on; the other direction keeps going.
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
        counter.inc_by(n as u64);
        last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn counters() -> (IntCounter, IntCounter) {
        (
            IntCounter::new("rx", "rx").unwrap(),
            IntCounter::new("tx", "tx").unwrap(),
        )
    }

    #[tokio::test]
    async fn copies_both_ways_and_passes_half_close() {
        let (mut client_app, mut client) = duplex(1024);
        let (mut backend, mut backend_app) = duplex(1024);
        let (rx, tx) = counters();
        let proxy = tokio::spawn(async move {
            let r = splice(&mut client, &mut backend, Duration::from_secs(5), &rx, &tx).await;
            (r.is_ok(), rx.get(), tx.get())
        });
        client_app.write_all(b"hello").await.unwrap();
        client_app.shutdown().await.unwrap();
        // The backend sees the bytes, then EOF, and can still answer.
        let mut got = Vec::new();
        backend_app.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        backend_app.write_all(b"world!").await.unwrap();
        backend_app.shutdown().await.unwrap();
        let mut reply = Vec::new();
        client_app.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"world!");
        assert_eq!(proxy.await.unwrap(), (true, 5, 6));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_are_closed() {
        let (_client_app, mut client) = duplex(1024);
        let (mut backend, _backend_app) = duplex(1024);
        let (rx, tx) = counters();
        let r = splice(&mut client, &mut backend, Duration::from_secs(30), &rx, &tx).await;
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }
}
