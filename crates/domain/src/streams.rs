//! Stream names, typed: which context a stream belongs to and whose it is.
//!
//! Owns: [`StreamId`] and its one spelling on disk, `{prefix}-{id}` (`reservation-{uuid}`,
//! `lodging-{id}`, `payment-{uuid}`, `saga-{uuid}`), both ways (`Display`, `FromStr`). Lodging ids
//! may contain `-`: a name is split on its first `-` only. A new kind of stream is one line of the
//! [`streams!`] list below (its variant, prefix and key type).
//! Must not: know what is in a stream (see [`crate::events`] for the payloads).

use std::fmt;
use std::str::FromStr;

use crate::ReservationId;

/// The key of a stream kind, as it appears after the prefix.
pub trait StreamKey: Sized {
    /// The key spelled `text`, if it is one.
    fn parse_key(text: &str) -> Option<Self>;
}

impl StreamKey for uuid::Uuid {
    fn parse_key(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text).ok()
    }
}

impl StreamKey for String {
    /// Any non-empty text.
    fn parse_key(text: &str) -> Option<Self> {
        (!text.is_empty()).then(|| text.to_string())
    }
}

/// Why a name is not a [`StreamId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    /// No known prefix (a stream of no context, e.g. the command API's own bookkeeping).
    #[error("stream {0:?} is of no known kind")]
    UnknownKind(String),
    /// A known prefix whose id is not one of that kind (e.g. `reservation-x`).
    #[error("stream {stream:?}: {id:?} is not a {kind} id")]
    BadId {
        stream: String,
        kind: StreamKind,
        id: String,
    },
}

/// The stream kinds: `Variant(KeyType) = "prefix"`. Generates [`StreamId`], [`StreamKind`] and
/// their spellings.
macro_rules! streams {
    ($($(#[$doc:meta])* $variant:ident($key:ty) = $prefix:literal,)*) => {
        /// One stream of the log, by kind and key; `Display` gives its name on disk.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum StreamId {
            $($(#[$doc])* $variant($key),)*
        }

        /// The kind of a stream: its name's prefix.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum StreamKind {
            $($variant,)*
        }

        impl StreamKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [StreamKind] = &[$(StreamKind::$variant,)*];

            /// The prefix of this kind's stream names (before the first `-`).
            #[must_use]
            pub const fn prefix(self) -> &'static str {
                match self { $(StreamKind::$variant => $prefix,)* }
            }

            /// The kind whose prefix is `prefix`.
            #[must_use]
            pub fn from_prefix(prefix: &str) -> Option<Self> {
                match prefix { $($prefix => Some(StreamKind::$variant),)* _ => None }
            }

            /// The stream of this kind whose key is spelled `key`.
            #[must_use]
            pub fn with_key(self, key: &str) -> Option<StreamId> {
                match self {
                    $(StreamKind::$variant => <$key as StreamKey>::parse_key(key).map(StreamId::$variant),)*
                }
            }
        }

        impl StreamId {
            #[must_use]
            pub fn kind(&self) -> StreamKind {
                match self { $(StreamId::$variant(_) => StreamKind::$variant,)* }
            }
        }

        impl fmt::Display for StreamId {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $(StreamId::$variant(key) => write!(f, "{}-{key}", $prefix),)* }
            }
        }
    };
}

streams! {
    /// `reservation-{uuid}`: the Reservation aggregate.
    Reservation(ReservationId) = "reservation",
    /// `lodging-{id}`: the LodgingApproval aggregate (the id may contain `-`).
    Lodging(String) = "lodging",
    /// `payment-{uuid}`: the Payment aggregate of a reservation.
    Payment(ReservationId) = "payment",
    /// `saga-{uuid}`: the reservation saga's own record.
    Saga(ReservationId) = "saga",
    /// `payout-{uuid}`: the Payout of a completed stay to its host.
    Payout(ReservationId) = "payout",
    /// `customer-{id}`: a customer's sealed profile and its erasure (the id is the token's `sub`).
    Customer(String) = "customer",
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

impl StreamKind {
    /// The kind of stream `name` and the key text after its first `-`, without checking the key.
    #[must_use]
    pub fn split(name: &str) -> Option<(StreamKind, &str)> {
        let (prefix, key) = name.split_once('-')?;
        Some((StreamKind::from_prefix(prefix)?, key))
    }
}

impl StreamId {
    /// The reservation the stream belongs to, if its key is one.
    #[must_use]
    pub fn reservation_id(&self) -> Option<ReservationId> {
        match self {
            StreamId::Reservation(id)
            | StreamId::Payment(id)
            | StreamId::Saga(id)
            | StreamId::Payout(id) => Some(*id),
            StreamId::Lodging(_) | StreamId::Customer(_) => None,
        }
    }
}

impl FromStr for StreamId {
    type Err = StreamIdError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let (kind, key) =
            StreamKind::split(name).ok_or_else(|| StreamIdError::UnknownKind(name.to_string()))?;
        kind.with_key(key).ok_or_else(|| StreamIdError::BadId {
            stream: name.to_string(),
            kind,
            id: key.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn names_on_disk_round_trip() {
        let id = Uuid::from_u128(7);
        for (stream, name) in [
            (StreamId::Reservation(id), format!("reservation-{id}")),
            (
                StreamId::Lodging("seoul-station-2".into()),
                "lodging-seoul-station-2".into(),
            ),
            (StreamId::Payment(id), format!("payment-{id}")),
            (StreamId::Saga(id), format!("saga-{id}")),
        ] {
            assert_eq!(stream.to_string(), name);
            assert_eq!(name.parse::<StreamId>(), Ok(stream));
        }
    }

    #[test]
    fn lodging_ids_split_on_the_first_dash_only() {
        assert_eq!(
            "lodging-a-b-c".parse::<StreamId>(),
            Ok(StreamId::Lodging("a-b-c".into()))
        );
        assert_eq!(
            StreamKind::split("lodging-a-b"),
            Some((StreamKind::Lodging, "a-b"))
        );
    }

    #[test]
    fn bad_names_say_why() {
        assert_eq!(
            "idempotency".parse::<StreamId>(),
            Err(StreamIdError::UnknownKind("idempotency".into()))
        );
        assert_eq!(
            "tally-1".parse::<StreamId>(),
            Err(StreamIdError::UnknownKind("tally-1".into()))
        );
        let bad = "reservation-x".parse::<StreamId>().unwrap_err();
        assert!(matches!(
            bad,
            StreamIdError::BadId {
                kind: StreamKind::Reservation,
                ..
            }
        ));
        assert_eq!(
            bad.to_string(),
            r#"stream "reservation-x": "x" is not a reservation id"#
        );
        assert!(matches!(
            "lodging-".parse::<StreamId>(),
            Err(StreamIdError::BadId {
                kind: StreamKind::Lodging,
                ..
            })
        ));
    }

    #[test]
    fn every_kind_has_its_own_prefix() {
        for kind in StreamKind::ALL {
            assert_eq!(StreamKind::from_prefix(kind.prefix()), Some(*kind));
        }
        assert_eq!(
            StreamId::Payment(Uuid::nil()).reservation_id(),
            Some(Uuid::nil())
        );
        assert_eq!(StreamId::Lodging("l".into()).reservation_id(), None);
    }
}
