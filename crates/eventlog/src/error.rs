use crate::ExpectedVersion;

/// Failure of the store itself (I/O, connection, corruption): maps to 503/500 at the edge.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("event store corrupt: {0}")]
    Corrupt(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Optimistic-concurrency conflict: the stream moved on. Reload, decide again, retry.
    #[error("stream {stream}: expected version {expected:?}, actual {actual:?}")]
    Conflict {
        stream: String,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },
    #[error(transparent)]
    Log(#[from] LogError),
}
