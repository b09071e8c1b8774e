//! What a caller can do about a failed command: the one classification of [`RepositoryError`] that
//! every writer uses (the command API maps it to HTTP statuses, the saga to its outcomes).
//!
//! - [`Failure::Rejected`]: the aggregate said no. Answer it (4xx); retrying the same command on the
//!   same stream gets the same answer.
//! - [`Failure::Poison`]: the stream cannot be read back (a stored event does not decode), so no
//!   command on it can be decided. Retrying does not help; an operator must look (500, or parked).
//! - [`Failure::Retry`]: the infrastructure let the command down: the store failed, or the stream
//!   kept changing for longer than the repository re-decides. The same command may pass later (the
//!   command API answers 409/503 and leaves that to its client; the saga retries with backoff).

use crate::{LogError, RepositoryError};

/// A [`RepositoryError`], by what a caller can do about it.
#[derive(Debug)]
pub enum Failure<E> {
    /// Rejected by the domain.
    Rejected(E),
    /// The stream cannot be read back.
    Poison(Poison),
    /// Infrastructure or conflict: may pass if tried again.
    Retry(Retry),
}

/// A stored event that does not decode: the stream it is in cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode a stored event: {0}")]
pub struct Poison(pub domain::DecodeError);

/// A failure that may pass if the command is tried again.
#[derive(Debug, thiserror::Error)]
pub enum Retry {
    /// The stream kept changing: the repository gave up re-deciding.
    #[error("stream {stream} kept changing: gave up after retries")]
    Conflict { stream: String },
    /// The store failed.
    #[error(transparent)]
    Log(LogError),
}

impl<E> RepositoryError<E> {
    /// What a caller can do about this failure. The messages are the error's own.
    pub fn classify(self) -> Failure<E> {
        match self {
            Self::Domain(error) => Failure::Rejected(error),
            Self::Decode(error) => Failure::Poison(Poison(error)),
            Self::Conflict { stream } => Failure::Retry(Retry::Conflict { stream }),
            Self::Log(error) => Failure::Retry(Retry::Log(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Error = RepositoryError<&'static str>;

    #[test]
    fn each_error_has_one_kind_and_keeps_its_message() {
        let decode = || domain::DecodeError::UnknownType("Exploded".into());
        let rejected: Error = RepositoryError::Domain("no room");
        assert!(matches!(rejected.classify(), Failure::Rejected("no room")));
        let poison: Error = RepositoryError::Decode(decode());
        let message = poison.to_string();
        match poison.classify() {
            Failure::Poison(poison) => assert_eq!(poison.to_string(), message),
            other => panic!("{other:?}"),
        }
        let conflict: Error = RepositoryError::Conflict {
            stream: "s-1".into(),
        };
        let message = conflict.to_string();
        match conflict.classify() {
            Failure::Retry(retry @ Retry::Conflict { .. }) => {
                assert_eq!(retry.to_string(), message);
            }
            other => panic!("{other:?}"),
        }
        let down: Error = RepositoryError::Log(LogError::Unavailable("down".into()));
        let message = down.to_string();
        match down.classify() {
            Failure::Retry(retry @ Retry::Log(LogError::Unavailable(_))) => {
                assert_eq!(retry.to_string(), message);
            }
            other => panic!("{other:?}"),
        }
    }
}
