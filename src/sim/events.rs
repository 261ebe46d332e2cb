//! The event queue of the discrete-event simulations: events in time order,
//! and among events at the same instant in the order they were scheduled, so
//! a run depends only on its seed.
//!
//! Simulated time is integer nanoseconds from the start of the run
//! ([`Nanos`]), so time never rounds and comparisons are exact.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Simulated time, in nanoseconds since the run started.
pub type Nanos = u64;

pub const NANOS_PER_SEC: f64 = 1e9;

/// `secs` seconds as [`Nanos`] (negative or not-a-number gives 0).
pub fn from_secs(secs: f64) -> Nanos {
    (secs * NANOS_PER_SEC).round().max(0.0) as Nanos
}

/// `t` in seconds.
pub fn to_secs(t: Nanos) -> f64 {
    t as f64 / NANOS_PER_SEC
}

/// Pending events, earliest first; ties in scheduling order.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    scheduled: u64,
}

struct Entry<E> {
    at: Nanos,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    /// Reversed, so the max-heap pops the earliest (then first-scheduled) entry.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            scheduled: 0,
        }
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, at: Nanos, event: E) {
        self.heap.push(Entry {
            at,
            seq: self.scheduled,
            event,
        });
        self.scheduled += 1;
    }

    pub fn pop(&mut self) -> Option<(Nanos, E)> {
        self.heap.pop().map(|e| (e.at, e.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_by_scheduling_order() {
        let mut q = EventQueue::new();
        q.push(30, "c");
        q.push(10, "a1");
        q.push(20, "b");
        q.push(10, "a2");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(10, "a1"), (10, "a2"), (20, "b"), (30, "c")]);
    }

    #[test]
    fn seconds_round_trip() {
        assert_eq!(from_secs(1.5), 1_500_000_000);
        assert_eq!(from_secs(-1.0), 0);
        assert_eq!(to_secs(250_000_000), 0.25);
    }
}
