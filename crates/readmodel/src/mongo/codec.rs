//! Documents as MongoDB stores them: the view's own fields, plus `_id` and the list sort key `seq`.

use mongodb::bson::{self, Bson, Document};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::projection::Stored;
use crate::ViewError;

pub(super) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The stored form of `view` under `_id` = `id`, with `seq` if it is a list document.
pub(super) fn encode<T: Serialize>(
    view: &T,
    id: impl Into<Bson>,
    seq: Option<u64>,
) -> Result<Document, ViewError> {
    let mut doc =
        bson::to_document(view).map_err(|e| ViewError::Corrupt(format!("view to BSON: {e}")))?;
    doc.insert("_id", id.into());
    if let Some(seq) = seq {
        doc.insert("seq", to_i64(seq));
    }
    Ok(doc)
}

pub(super) fn decode<T: DeserializeOwned>(doc: Document) -> Result<T, ViewError> {
    bson::from_document(doc).map_err(|e| ViewError::Corrupt(format!("stored view: {e}")))
}

pub(super) fn seq_of(doc: &Document) -> Result<u64, ViewError> {
    let seq = doc
        .get_i64("seq")
        .map_err(|e| ViewError::Corrupt(format!("stored view without seq: {e}")))?;
    Ok(u64::try_from(seq).unwrap_or(0))
}

pub(super) fn decode_stored<T: DeserializeOwned>(doc: Document) -> Result<Stored<T>, ViewError> {
    let seq = seq_of(&doc)?;
    Ok(Stored {
        seq,
        view: decode(doc)?,
    })
}

/// Map a driver failure: everything the driver reports is the store being unreachable or refusing.
pub(super) fn unavailable(error: mongodb::error::Error) -> ViewError {
    ViewError::Unavailable(format!("MongoDB: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::timeline::recorded_at;
    use crate::{ApprovalStatus, ManagementView, PaymentStatus};
    use chrono::NaiveDate;
    use uuid::Uuid;

    #[test]
    fn a_view_survives_the_round_trip_through_bson() {
        let day = NaiveDate::from_ymd_opt(2030, 2, 1).unwrap_or_default();
        let view = ManagementView {
            rooms: 1,
            reservation_id: Uuid::from_u128(9),
            lodging_id: "seoul-1".into(),
            customer_id: "$where".into(),
            check_in: day,
            check_out: day.succ_opt().unwrap_or(day),
            guests: 2,
            request_status: ApprovalStatus::Approved,
            available: true,
            payment_status: PaymentStatus::Pending,
            requested_at: recorded_at(3),
            decided_at: Some(recorded_at(7)),
            decided_by: None,
            position: u64::from(u32::MAX) + 5,
        };
        let doc = encode(&view, view.reservation_id.to_string(), Some(4)).expect("encode");
        assert_eq!(
            doc.get_str("_id"),
            Ok(view.reservation_id.to_string().as_str())
        );
        assert_eq!(doc.get_str("request_status"), Ok("approved"));
        assert_eq!(doc.get_str("check_in"), Ok("2030-02-01"));
        let stored: Stored<ManagementView> = decode_stored(doc).expect("decode");
        assert_eq!(stored.seq, 4);
        assert_eq!(stored.view, view);
        let bytes = serde_json::to_string(&stored.view).expect("json");
        assert_eq!(bytes, serde_json::to_string(&view).expect("json"));
    }

    #[test]
    fn a_reservation_stored_before_payouts_reads_payout_status_none() {
        let old = crate::views::tests::stored_before_payouts();
        let mut doc = mongodb::bson::to_document(&old).expect("to BSON");
        doc.insert("_id", old["reservation_id"].as_str().unwrap_or_default());
        doc.insert("seq", 3_i64);
        let stored: Stored<crate::ReservationView> = decode_stored(doc).expect("decode");
        assert_eq!(stored.view.payout_status, crate::PayoutStatus::None);
    }
}
