//! An upstream's wait queue: requests (and TCP connections) that found
//! every eligible backend at its `max_conns` wait here, first come first
//! served, for at most `queue.timeout`.
//!
//! Waiting costs no task: the request's own task awaits its [`Waiter`]'s
//! notification. When an in-flight guard drops ([`super::load`]) the head
//! of the queue is woken and picks again (with every rule of
//! [`super::Upstream::select`]: the backend that freed a slot, or any other
//! now free); if another request took the slot first, the head goes back
//! to the front. A waiter that leaves after being woken without taking a
//! slot (its client went away, its wait timed out) passes the wake on, so
//! a freed slot is never lost. The lock is taken only while requests wait;
//! a freed slot with nobody waiting costs one atomic load.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::config::QueueSpec;

#[derive(Debug)]
pub struct WaitQueue {
    pub spec: QueueSpec,
    /// Waiters queued (mirrors `waiters.len()`, read without the lock).
    depth: AtomicUsize,
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
    /// Requests refused by a full queue or timed out, since start.
    timeouts: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Waiter {
    woken: AtomicBool,
    notify: Notify,
}

/// The queue was full (`queue.max` waiting already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl WaitQueue {
    pub fn new(spec: QueueSpec) -> Arc<Self> {
        Arc::new(Self {
            spec,
            depth: AtomicUsize::new(0),
            waiters: Mutex::new(VecDeque::new()),
            timeouts: AtomicU64::new(0),
        })
    }

    /// Requests waiting now.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Requests turned away (queue full or wait timed out) since start.
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }

    pub(super) fn count_timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A backend slot was freed: wakes the head of the queue, if any.
    pub fn slot_freed(&self) {
        if self.depth.load(Ordering::Acquire) == 0 {
            return;
        }
        self.wake_head();
    }

    fn wake_head(&self) {
        let head = {
            let mut waiters = self.lock();
            let head = waiters.pop_front();
            if head.is_some() {
                self.depth.fetch_sub(1, Ordering::Release);
            }
            head
        };
        if let Some(w) = head {
            w.woken.store(true, Ordering::Release);
            // Stored if the waiter is not awaiting yet: its await returns at once.
            w.notify.notify_one();
        }
    }

    /// Queues a waiter: at the back, or at the front for one that was woken
    /// and lost the slot (it keeps its turn; the `max` check does not apply
    /// to it, it was counted already).
    pub(super) fn join(self: &Arc<Self>, front: bool) -> Result<Ticket, Full> {
        let waiter = Arc::new(Waiter::default());
        let mut waiters = self.lock();
        if front {
            waiters.push_front(Arc::clone(&waiter));
        } else {
            if waiters.len() >= self.spec.max {
                drop(waiters);
                self.count_timeout();
                return Err(Full);
            }
            waiters.push_back(Arc::clone(&waiter));
        }
        self.depth.fetch_add(1, Ordering::Release);
        Ok(Ticket {
            queue: Arc::clone(self),
            waiter,
            consumed: false,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Waiter>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A place in the queue. Dropping it leaves the queue; one woken whose wake
/// was not [`consume`](Ticket::consume)d passes it to the next waiter.
#[derive(Debug)]
pub(super) struct Ticket {
    queue: Arc<WaitQueue>,
    waiter: Arc<Waiter>,
    consumed: bool,
}

impl Ticket {
    /// Until the head of the queue is woken for this waiter.
    pub async fn woken(&self) {
        self.waiter.notify.notified().await;
    }

    /// The wake (if any) was used: this waiter took a slot or picks again.
    pub fn consume(&mut self) {
        self.consumed = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let still_queued = {
            let mut waiters = self.queue.lock();
            match waiters.iter().position(|w| Arc::ptr_eq(w, &self.waiter)) {
                Some(at) => {
                    waiters.remove(at);
                    self.queue.depth.fetch_sub(1, Ordering::Release);
                    true
                }
                None => false,
            }
        };
        if !still_queued && !self.consumed && self.waiter.woken.load(Ordering::Acquire) {
            self.queue.wake_head();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn queue(max: usize) -> Arc<WaitQueue> {
        WaitQueue::new(QueueSpec {
            max,
            timeout: Duration::from_secs(5),
        })
    }

    #[tokio::test]
    async fn wakes_in_order_and_refuses_past_max() {
        let q = queue(2);
        let a = q.join(false).unwrap();
        let b = q.join(false).unwrap();
        assert_eq!(q.join(false).unwrap_err(), Full);
        assert_eq!((q.depth(), q.timeouts()), (2, 1));
        q.slot_freed();
        tokio::time::timeout(Duration::from_secs(1), a.woken())
            .await
            .expect("the head is woken first");
        assert!(tokio::time::timeout(Duration::from_millis(20), b.woken())
            .await
            .is_err());
        assert_eq!(q.depth(), 1);
        drop(b);
        assert_eq!(q.depth(), 0);
    }

    #[tokio::test]
    async fn a_woken_waiter_that_leaves_passes_the_wake_on() {
        let q = queue(10);
        let a = q.join(false).unwrap();
        let b = q.join(false).unwrap();
        q.slot_freed();
        drop(a); // woken, but gone without taking the slot
        tokio::time::timeout(Duration::from_secs(1), b.woken())
            .await
            .expect("the wake went on to the next waiter");
    }

    #[tokio::test]
    async fn a_consumed_wake_is_not_passed_on_and_front_keeps_the_turn() {
        let q = queue(1);
        let mut a = q.join(false).unwrap();
        q.slot_freed();
        a.woken().await;
        a.consume();
        drop(a);
        let b = q.join(false).unwrap();
        let again = q.join(true).expect("a woken waiter always gets back in");
        q.slot_freed();
        tokio::time::timeout(Duration::from_secs(1), again.woken())
            .await
            .expect("the front is woken first");
        assert!(tokio::time::timeout(Duration::from_millis(20), b.woken())
            .await
            .is_err());
    }
}
