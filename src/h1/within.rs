//! Timeouts that cost nothing when the work is done at once.
//!
//! `tokio::time::timeout` builds a timer (a clock read and a runtime handle)
//! even when its future is ready on the first poll, as writes to a socket
//! with room in its buffer nearly always are. [`within`] polls once first.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

/// `fut`'s output, or `None` if it took longer than `limit`.
pub async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(out) => Some(out),
        Poll::Pending => tokio::time::timeout(limit, fut).await.ok(),
    }
}

/// As [`within`] (with `gaps.read`), for a read that feeds `out`: when the
/// read cannot complete at once, `out` is flushed before waiting (what it
/// gathered must not wait on the next read). `Err` when that flush fails
/// or takes longer than `gaps.write`.
pub async fn within_flushing<F, W>(
    gaps: super::body::Gaps,
    fut: F,
    out: &mut W,
) -> std::io::Result<Option<F::Output>>
where
    F: Future,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(out) => Ok(Some(out)),
        Poll::Pending => {
            let flushed = within(gaps.write, tokio::io::AsyncWriteExt::flush(out)).await;
            flushed.unwrap_or_else(|| Err(std::io::ErrorKind::TimedOut.into()))?;
            Ok(tokio::time::timeout(gaps.read, fut).await.ok())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::within;
    use std::time::Duration;

    #[tokio::test]
    async fn ready_at_once_or_in_time_or_not_at_all() {
        assert_eq!(
            within(Duration::from_millis(10), async { 7 }).await,
            Some(7)
        );
        let soon = tokio::time::sleep(Duration::from_millis(5));
        assert_eq!(within(Duration::from_secs(5), soon).await, Some(()));
        let late = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(within(Duration::from_millis(10), late).await, None);
    }
}
