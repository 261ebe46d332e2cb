//! When to talk to Redis: the connection's state machine, pure and over
//! injected time (the async side is in [`super::link`]).
//!
//! - `Idle`: nothing yet; the first request starts a connect.
//! - `Connecting`: one connect is under way; requests wait for it (each
//!   within its own time budget). Never two connects at once.
//! - `Up`: requests use the connection. A call that fails on it (I/O error,
//!   timeout) takes it `Down` for [`RETRY_MIN`]; only the first failure of a
//!   connection counts, later reports carry an older generation.
//! - `Down { until }`: Redis is skipped: every request is decided by
//!   `on_store_error` at once, without touching the network. The first
//!   request after `until` starts a reconnect; each failed one doubles the
//!   wait, up to [`RETRY_MAX`]. So a dead Redis sees at most one connect
//!   attempt per wait per route and instance, and a recovered one is back in
//!   use at most [`RETRY_MAX`] later.

use std::time::{Duration, Instant};

/// Redis is skipped this long after a failure.
pub const RETRY_MIN: Duration = Duration::from_millis(250);

/// The longest wait between connect attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(2);

/// The state, generic over the connection so tests need no Redis.
#[derive(Debug)]
pub enum State<C> {
    Idle,
    Connecting { backoff: Duration },
    Up { conn: C, generation: u64 },
    Down { until: Instant, backoff: Duration },
}

/// What a request should do.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<C> {
    /// Use this connection; report a failure with its generation.
    Use(C, u64),
    /// Start the connect (this request is the one that does).
    Connect,
    /// A connect is under way: wait for its outcome.
    Wait,
    /// Redis is down: apply `on_store_error` now.
    Skip,
}

/// What a transition changed, for logging.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing (a stale report, or the same state).
    None,
    /// Went down; Redis is skipped for this long.
    Down(Duration),
    /// Still down after another failed connect; skipped for this long.
    StillDown(Duration),
    /// A connection is up.
    Up,
}

#[derive(Debug)]
pub struct Circuit<C> {
    state: State<C>,
    generation: u64,
}

impl<C: Clone> Circuit<C> {
    pub fn new() -> Self {
        Self {
            state: State::Idle,
            generation: 0,
        }
    }

    pub fn state(&self) -> &State<C> {
        &self.state
    }

    /// Decides a request at `now`; may move to `Connecting`.
    pub fn acquire(&mut self, now: Instant) -> Step<C> {
        match &self.state {
            State::Up { conn, generation } => Step::Use(conn.clone(), *generation),
            State::Connecting { .. } => Step::Wait,
            State::Down { until, .. } if now < *until => Step::Skip,
            State::Down { backoff, .. } => {
                self.state = State::Connecting { backoff: *backoff };
                Step::Connect
            }
            State::Idle => {
                self.state = State::Connecting {
                    backoff: Duration::ZERO,
                };
                Step::Connect
            }
        }
    }

    /// The connect succeeded.
    pub fn connected(&mut self, conn: C) -> Change {
        self.generation += 1;
        self.state = State::Up {
            conn,
            generation: self.generation,
        };
        Change::Up
    }

    /// The connect failed at `now`: down for twice the last wait.
    pub fn connect_failed(&mut self, now: Instant) -> Change {
        let last = match &self.state {
            State::Connecting { backoff } => *backoff,
            _ => Duration::ZERO,
        };
        let backoff = (last * 2).clamp(RETRY_MIN, RETRY_MAX);
        self.state = State::Down {
            until: now + backoff,
            backoff,
        };
        if last.is_zero() {
            Change::Down(backoff)
        } else {
            Change::StillDown(backoff)
        }
    }

    /// A call on connection `generation` failed at `now`: if that is still
    /// the connection in use, drop it and skip Redis for [`RETRY_MIN`].
    pub fn call_failed(&mut self, generation: u64, now: Instant) -> Change {
        match &self.state {
            State::Up { generation: g, .. } if *g == generation => {
                self.state = State::Down {
                    until: now + RETRY_MIN,
                    backoff: RETRY_MIN,
                };
                Change::Down(RETRY_MIN)
            }
            _ => Change::None,
        }
    }
}

impl<C: Clone> Default for Circuit<C> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_request_connects_and_the_rest_wait_for_it() {
        let t0 = Instant::now();
        let mut c = Circuit::<u8>::new();
        assert_eq!(c.acquire(t0), Step::Connect);
        assert_eq!(c.acquire(t0), Step::Wait, "never two connects at once");
        assert_eq!(c.connected(7), Change::Up);
        assert_eq!(c.acquire(t0), Step::Use(7, 1));
    }

    #[test]
    fn a_failed_call_skips_redis_then_one_request_reconnects() {
        let t0 = Instant::now();
        let mut c = Circuit::<u8>::new();
        c.acquire(t0);
        c.connected(1);
        assert_eq!(c.call_failed(1, t0), Change::Down(RETRY_MIN));
        assert_eq!(c.call_failed(1, t0), Change::None, "reported once");
        assert_eq!(c.acquire(t0 + RETRY_MIN - MS), Step::Skip);
        assert_eq!(c.acquire(t0 + RETRY_MIN), Step::Connect);
        assert_eq!(c.acquire(t0 + RETRY_MIN), Step::Wait);
        c.connected(2);
        assert_eq!(c.acquire(t0 + RETRY_MIN), Step::Use(2, 2));
    }

    #[test]
    fn a_stale_failure_does_not_drop_a_newer_connection() {
        let t0 = Instant::now();
        let mut c = Circuit::<u8>::new();
        c.acquire(t0);
        c.connected(1);
        c.call_failed(1, t0);
        c.acquire(t0 + RETRY_MIN);
        c.connected(2);
        assert_eq!(c.call_failed(1, t0 + RETRY_MIN), Change::None);
        assert_eq!(c.acquire(t0 + RETRY_MIN), Step::Use(2, 2));
    }

    #[test]
    fn failed_connects_back_off_exponentially_up_to_the_cap() {
        let mut t = Instant::now();
        let mut c = Circuit::<u8>::new();
        assert_eq!(c.acquire(t), Step::Connect);
        let mut waits = Vec::new();
        for _ in 0..6 {
            match c.connect_failed(t) {
                Change::Down(d) | Change::StillDown(d) => waits.push(d),
                other => panic!("{other:?}"),
            }
            let State::Down { until, .. } = *c.state() else {
                panic!("down")
            };
            assert_eq!(c.acquire(until - MS), Step::Skip, "no attempt before until");
            t = until;
            assert_eq!(c.acquire(t), Step::Connect, "one attempt at until");
        }
        let ms: Vec<u128> = waits.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 2000, 2000]);
        c.connected(1);
        c.call_failed(1, t);
        assert!(
            matches!(c.state(), State::Down { backoff, .. } if *backoff == RETRY_MIN),
            "a working connection resets the backoff"
        );
    }
}
