//! `retry_on` as the proxy reads it: the reasons a try may be made again.

/// A failure after which a request may go to another backend (`retry_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryReason {
    /// The connection to the backend could not be made: nothing was sent.
    ConnectFailure,
    /// The connection broke before a response head.
    Reset,
    /// No response head within `read_timeout`.
    Timeout,
    Status502,
    Status503,
    Status504,
}

impl RetryReason {
    pub const ALL: [RetryReason; 6] = [
        RetryReason::ConnectFailure,
        RetryReason::Reset,
        RetryReason::Timeout,
        RetryReason::Status502,
        RetryReason::Status503,
        RetryReason::Status504,
    ];

    /// As written in `retry_on`, and the `reason` label of
    /// `switchyard_upstream_retries_total`.
    pub fn name(self) -> &'static str {
        match self {
            RetryReason::ConnectFailure => "connect_failure",
            RetryReason::Reset => "reset",
            RetryReason::Timeout => "timeout",
            RetryReason::Status502 => "502",
            RetryReason::Status503 => "503",
            RetryReason::Status504 => "504",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The reason a backend's answer with `status` is, if any.
    pub fn for_status(status: u16) -> Option<Self> {
        match status {
            502 => Some(RetryReason::Status502),
            503 => Some(RetryReason::Status503),
            504 => Some(RetryReason::Status504),
            _ => None,
        }
    }

    /// Its position in [`RetryReason::ALL`] (and in per-reason tables).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The set of `retry_on` reasons: one bit each, so checking costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryOn(u8);

impl RetryOn {
    /// `[connect_failure]`, the default.
    pub const CONNECT_FAILURE: RetryOn = RetryOn(1);

    pub fn with(self, reason: RetryReason) -> Self {
        RetryOn(self.0 | 1 << reason.index())
    }

    pub fn has(self, reason: RetryReason) -> bool {
        self.0 & (1 << reason.index()) != 0
    }

    /// Whether anything but a connect failure is retried: only then is a
    /// request body kept for replay.
    pub fn beyond_connect(self) -> bool {
        self.0 & !Self::CONNECT_FAILURE.0 != 0
    }
}
