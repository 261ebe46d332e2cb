//! Connection caps that wait: `server.max_connections` (all listeners) and a
//! listener's `max_connections`.
//!
//! An accept loop takes a [`Slots`] *before* calling `accept`: at a cap it
//! waits (no accept-and-close, no polling), so new clients queue in the
//! kernel's backlog and are taken in order once a connection closes, while
//! established ones are served as before. A connection's task holds its
//! slots; dropping them (however the connection ends) frees them and wakes
//! the accept loops waiting for one.
//!
//! Cost per connection: one compare-and-swap per cap to take a slot, one
//! atomic decrement to give it back; [`Notify`] (a lock inside) is touched
//! only when the cap was reached. The admin listener takes no slot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// One cap on open connections.
#[derive(Debug)]
pub struct Cap {
    max: usize,
    open: AtomicUsize,
    freed: Notify,
}

impl Cap {
    /// At most `max` connections at once (`max` 0 is taken as 1).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            open: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections holding a slot now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn try_take(self: &Arc<Self>) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(Slot {
            cap: Arc::clone(self),
        })
    }

    /// A slot, waiting for one to free while the cap is reached.
    pub async fn take(self: &Arc<Self>) -> Slot {
        loop {
            if let Some(slot) = self.try_take() {
                return slot;
            }
            // Registered before looking again, so a slot freed in between
            // still wakes this waiter.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_take() {
                return slot;
            }
            freed.await;
        }
    }
}

/// One connection's place under one cap; freed on drop.
#[derive(Debug)]
pub struct Slot {
    cap: Arc<Cap>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let was = self.cap.open.fetch_sub(1, Ordering::Release);
        if was >= self.cap.max {
            // The cap was reached: accept loops may be waiting. All of them
            // are woken (there is one per listener at most); the ones that
            // find no slot wait again.
            self.cap.freed.notify_waiters();
        }
    }
}

/// The caps a listener's connections count against: the server-wide one and
/// the listener's own, if any.
#[derive(Debug, Clone)]
pub struct Caps {
    pub server: Arc<Cap>,
    pub listener: Option<Arc<Cap>>,
}

/// A connection's slots under every cap of its listener.
#[derive(Debug)]
pub struct Slots {
    _listener: Option<Slot>,
    _server: Slot,
}

impl Caps {
    /// `listener_max` 0: only the server-wide cap.
    pub fn new(server: &Arc<Cap>, listener_max: u32) -> Self {
        Self {
            server: Arc::clone(server),
            listener: (listener_max > 0).then(|| Cap::new(listener_max as usize)),
        }
    }

    /// Slots under every cap, waiting as long as one of them is reached.
    /// The listener's first: a listener at its own cap holds no server-wide
    /// slot that other listeners could use.
    pub async fn take(&self) -> Slots {
        let listener = match &self.listener {
            Some(cap) => Some(cap.take().await),
            None => None,
        };
        Slots {
            _listener: listener,
            _server: self.server.take().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_at_the_cap_until_a_slot_frees() {
        let cap = Cap::new(2);
        let a = cap.take().await;
        let _b = cap.take().await;
        assert_eq!(cap.open(), 2);
        let waiting = tokio::spawn({
            let cap = Arc::clone(&cap);
            async move { cap.take().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a third slot was given at cap 2");
        drop(a);
        let c = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken when a slot freed")
            .unwrap();
        assert_eq!(cap.open(), 2);
        drop(c);
        assert_eq!(cap.open(), 1);
    }

    #[tokio::test]
    async fn every_waiter_is_served_when_several_slots_free() {
        let cap = Cap::new(2);
        let held = (cap.take().await, cap.take().await);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let cap = Arc::clone(&cap);
                tokio::spawn(async move { cap.take().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("woken")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn the_listener_cap_and_the_server_cap_both_hold() {
        let server = Cap::new(3);
        let caps = Caps::new(&server, 1);
        let one = caps.take().await;
        assert_eq!(
            (server.open(), caps.listener.as_ref().unwrap().open()),
            (1, 1)
        );
        let second = tokio::time::timeout(Duration::from_millis(50), caps.take()).await;
        assert!(
            second.is_err(),
            "the listener cap of 1 let a second through"
        );
        drop(one);
        let _two = caps.take().await;
        let uncapped = Caps::new(&server, 0);
        let _x = uncapped.take().await;
        let _y = uncapped.take().await;
        assert_eq!(server.open(), 3);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), uncapped.take())
                .await
                .is_err()
        );
    }
}
