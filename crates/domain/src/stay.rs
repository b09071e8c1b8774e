//! A stay: the nights between check-in and check-out, how many guests in how many rooms; and the
//! lodging-local calendar its dates are read in ([`local_date`]).

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The time zone of the lodgings registered before lodgings had one: the wave-1 platform served
/// Korea (docs/decisions/0017).
pub const WAVE1_TIMEZONE: Tz = Tz::Asia__Seoul;

/// The calendar date at `now` where the lodging is: every date rule ("today", "in the past",
/// "before check-in") reads this, never the UTC date.
#[must_use]
pub fn local_date(now: Timestamp, zone: Tz) -> NaiveDate {
    now.with_timezone(&zone).date_naive()
}

/// The hour of its check-out day, where the lodging is, at which a confirmed stay is completed.
pub const CHECK_OUT_HOUR: u32 = 12;

/// The instant of `CHECK_OUT_HOUR` on `date` in `zone` (the earlier one where clocks fall back; the
/// hour after a gap where they spring forward).
#[must_use]
pub fn check_out_moment(date: NaiveDate, zone: Tz) -> Timestamp {
    use chrono::TimeZone;
    let noon = date.and_hms_opt(CHECK_OUT_HOUR, 0, 0).unwrap_or_default();
    zone.from_local_datetime(&noon)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(noon + chrono::TimeDelta::hours(1)))
                .earliest()
        })
        .map_or_else(|| noon.and_utc(), |local| local.with_timezone(&chrono::Utc))
}

/// Longest stay that can be requested, in nights.
pub const MAX_NIGHTS: u32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stay {
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: u32,
    /// Rooms taken on every night (1 unless asked for more).
    #[serde(default = "one_room")]
    pub rooms: u32,
}

/// The rooms of a stay recorded before stays could take several.
#[must_use]
pub fn one_room() -> u32 {
    1
}

/// What a stay is checked against: the lodging's rooms and guests per room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLimits {
    pub rooms: u32,
    pub max_guests: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StayError {
    #[error("check_out ({check_out}) must be after check_in ({check_in})")]
    CheckOutNotAfterCheckIn {
        check_in: NaiveDate,
        check_out: NaiveDate,
    },
    #[error("a stay is at most {MAX_NIGHTS} nights, this one is {nights}")]
    TooManyNights { nights: i64 },
    #[error("check_in {check_in} is in the past (today is {today})")]
    InThePast {
        check_in: NaiveDate,
        today: NaiveDate,
    },
    #[error("guests must be at least 1")]
    NoGuests,
    #[error("{guests} guests exceed {rooms} room(s) of {max_guests} guests each")]
    TooManyGuests {
        guests: u32,
        rooms: u32,
        max_guests: u32,
    },
    #[error("rooms must be at least 1")]
    NoRooms,
    #[error("{rooms} rooms exceed the lodging's {available}")]
    TooManyRooms { rooms: u32, available: u32 },
}

impl Stay {
    /// Number of nights (check_out - check_in), negative or zero for an invalid stay.
    #[must_use]
    pub fn nights_signed(&self) -> i64 {
        (self.check_out - self.check_in).num_days()
    }

    /// Number of nights of a valid stay.
    #[must_use]
    pub fn nights(&self) -> u32 {
        u32::try_from(self.nights_signed().max(0)).unwrap_or(u32::MAX)
    }

    /// Every night of the stay (the date each night starts), check_in inclusive, check_out exclusive.
    pub fn each_night(&self) -> impl Iterator<Item = NaiveDate> {
        self.check_in
            .iter_days()
            .take_while({
                let check_out = self.check_out;
                move |night| *night < check_out
            })
            .take(MAX_NIGHTS as usize)
    }

    /// Check the stay's own rules: dates ordered, 1..=30 nights, not in the past (`today` is the
    /// lodging's local date, see [`local_date`]), 1..=the lodging's rooms, 1..=rooms x max guests.
    pub fn validate(&self, today: NaiveDate, limits: RoomLimits) -> Result<(), StayError> {
        let nights = self.nights_signed();
        if nights <= 0 {
            return Err(StayError::CheckOutNotAfterCheckIn {
                check_in: self.check_in,
                check_out: self.check_out,
            });
        }
        if nights > i64::from(MAX_NIGHTS) {
            return Err(StayError::TooManyNights { nights });
        }
        if self.check_in < today {
            return Err(StayError::InThePast {
                check_in: self.check_in,
                today,
            });
        }
        if self.rooms == 0 {
            return Err(StayError::NoRooms);
        }
        if self.rooms > limits.rooms {
            return Err(StayError::TooManyRooms {
                rooms: self.rooms,
                available: limits.rooms,
            });
        }
        if self.guests == 0 {
            return Err(StayError::NoGuests);
        }
        let capacity = u64::from(self.rooms) * u64::from(limits.max_guests);
        if u64::from(self.guests) > capacity {
            return Err(StayError::TooManyGuests {
                guests: self.guests,
                rooms: self.rooms,
                max_guests: limits.max_guests,
            });
        }
        Ok(())
    }
}
