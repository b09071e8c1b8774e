//! Errors of the view-store port, kept apart by what the caller should do about them.

/// A failed view-store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// A page cursor that this store did not hand out (a 400 at the HTTP edge).
    #[error("invalid cursor: {0}")]
    BadCursor(String),
    /// A filter value outside the contract, e.g. an unknown status (a 400 at the HTTP edge).
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// The store cannot be reached or is busy: retry later (a 503 at the HTTP edge).
    #[error("view store unavailable: {0}")]
    Unavailable(String),
    /// A stored document cannot be read back: the store needs a rebuild (a 500 at the HTTP edge).
    #[error("view store corrupt: {0}")]
    Corrupt(String),
    /// This event cannot be applied to the views, and retrying will not change that: park it.
    #[error("event at position {position} cannot be projected: {reason}")]
    Unprocessable { position: u64, reason: String },
}

impl ViewError {
    /// The caller asked for something invalid (bad cursor or filter).
    #[must_use]
    pub fn is_client_error(&self) -> bool {
        matches!(self, Self::BadCursor(_) | Self::InvalidFilter(_))
    }

    /// The failure is transient (the store itself), so retrying the same call may succeed.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
