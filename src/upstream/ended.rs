//! How one attempt on a backend ended, as both engines report it to
//! [`Upstream::report`](super::Upstream::report): the circuit breaker reads a
//! success or a failure from it, outlier detection the kind of failure.

use super::breaker::Outcome;

/// How one attempt on a backend ended. Its latency (to the response head)
/// travels in the [`Attempt`](super::Attempt) itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The backend answered with a response head of this status, and the
    /// body (if any) came whole.
    Answered(u16),
    /// A TCP (L4) connection was made and served.
    Connected,
    /// The connect failed: refused, unreachable, `connect_timeout`.
    ConnectFailure,
    /// The connection broke, or the answer was malformed, before the head
    /// or while the body streamed.
    Reset,
    /// No response head within `read_timeout` (or the route's `timeout`).
    Timeout,
}

impl Ended {
    /// For the circuit breaker: connect errors, timeouts, resets and 5xx
    /// answers are failures.
    pub fn outcome(self) -> Outcome {
        if self.is_5xx() {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }

    /// Counts toward `consecutive_5xx`: an answer ≥ 500, and every failure
    /// switchyard itself answers 502 or 504 for.
    pub fn is_5xx(self) -> bool {
        match self {
            Ended::Answered(status) => status >= 500,
            Ended::Connected => false,
            Ended::ConnectFailure | Ended::Reset | Ended::Timeout => true,
        }
    }

    /// Counts toward `consecutive_gateway_failures`: 502, 503, 504, connect
    /// failures, resets and timeouts. (A 500 is a 5xx but breaks this run.)
    pub fn is_gateway_failure(self) -> bool {
        match self {
            Ended::Answered(status) => matches!(status, 502..=504),
            Ended::Connected => false,
            Ended::ConnectFailure | Ended::Reset | Ended::Timeout => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_failure() {
        assert_eq!(Ended::Answered(404).outcome(), Outcome::Success);
        assert_eq!(Ended::Answered(500).outcome(), Outcome::Failure);
        assert!(Ended::Answered(500).is_5xx() && !Ended::Answered(500).is_gateway_failure());
        assert!(Ended::Answered(503).is_gateway_failure());
        assert!(Ended::Timeout.is_5xx() && Ended::Timeout.is_gateway_failure());
        assert!(!Ended::Connected.is_5xx());
        assert_eq!(Ended::ConnectFailure.outcome(), Outcome::Failure);
    }
}
