//! How SQLite runs the view store's and the inbox's lists: each list's SQL, built as `read.rs` and
//! `inbox.rs` build it, against the schema they create, reads from the index meant for it and sorts
//! nothing it need not.
//! The store keeps no statistics (no `ANALYZE`), so an empty file plans as a full one does.

use rusqlite::types::Value;
use rusqlite::Connection;

use super::inbox::{entries_query, open_writer as open_inbox, STATUS_CHANGES};
use super::read::{lodgings_query, payouts_query, requests_query, reservations_query, ListQuery};
use super::schema::open_writer;
use crate::inbox::InboxFilter;
use crate::query::{encode_cursor, encode_seq_cursor, CursorKind};
use crate::{LodgingFilter, PageRequest, PayoutFilter, RequestFilter, ReservationFilter};

/// A fresh view store's file, with the real schema and query indexes.
fn store() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let conn = open_writer(&dir.path().join("views.db")).expect("open");
    (dir, conn)
}

/// The steps of `query`'s plan, joined (`|` between steps).
fn plan(conn: &Connection, query: ListQuery) -> String {
    let mut statement = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", query.sql))
        .expect("explain");
    let steps = statement
        .query_map(rusqlite::params_from_iter(query.values), |row| {
            row.get::<_, String>(3)
        })
        .expect("plan");
    steps
        .collect::<Result<Vec<_>, _>>()
        .expect("plan")
        .join(" | ")
}

/// The first page and a later one (the cursor of `kind` after `key`).
fn pages(kind: CursorKind, key: &str) -> [PageRequest; 2] {
    let cursor = match key.parse::<u64>() {
        Ok(seq) => encode_seq_cursor(kind, seq),
        Err(_) => encode_cursor(kind, key),
    };
    [
        PageRequest::first(20),
        PageRequest {
            limit: 20,
            cursor: Some(cursor),
        },
    ]
}

fn ids(ids: &[&str]) -> Option<Vec<String>> {
    Some(ids.iter().map(ToString::to_string).collect())
}

#[test]
fn a_customers_reservations_come_from_the_customers_index_whatever_else_narrows_them() {
    let (_dir, conn) = store();
    let customer = |f: ReservationFilter| ReservationFilter {
        customer_id: Some("ana".into()),
        ..f
    };
    let filters = [
        customer(ReservationFilter {
            status: Some("confirmed".into()),
            ..ReservationFilter::default()
        }),
        customer(ReservationFilter {
            lodging_ids: ids(&["l1", "l2", "l3"]),
            status: Some("completed".into()),
            ..ReservationFilter::default()
        }),
        customer(ReservationFilter {
            lodging_id: Some("l1".into()),
            check_in_from: "2026-06-01".parse().ok(),
            check_in_to: "2026-06-07".parse().ok(),
            ..ReservationFilter::default()
        }),
    ];
    for filter in &filters {
        for request in &pages(CursorKind::Reservations, "4000") {
            let steps = plan(&conn, reservations_query(filter, request).expect("query"));
            assert!(steps.contains("reservations_by_customer"), "{steps}");
            assert!(!steps.contains("TEMP B-TREE"), "no sort: {steps}");
        }
    }
    // Without a customer, the columns stay open to their indexes (`+status` for a lodging's list
    // made big hosts' lists slower).
    let lodging = ReservationFilter {
        lodging_id: Some("l1".into()),
        status: Some("confirmed".into()),
        ..ReservationFilter::default()
    };
    let [first, _] = pages(CursorKind::Reservations, "4000");
    let query = reservations_query(&lodging, &first).expect("query");
    assert!(!query.sql.contains('+'), "{}", query.sql);
}

#[test]
fn a_hosts_first_page_of_requests_is_walked_as_the_next_pages_are() {
    let (_dir, conn) = store();
    for lodgings in [&["l1"][..], &["l1", "l2", "l3"]] {
        let filter = RequestFilter {
            lodging_ids: ids(lodgings),
            ..RequestFilter::default()
        };
        let [first, next] = pages(CursorKind::Requests, "4000");
        let first = plan(&conn, requests_query(&filter, &first).expect("query"));
        let next = plan(&conn, requests_query(&filter, &next).expect("query"));
        assert!(
            first.contains("requests_by_lodging (lodging_id=? AND rowid>?)"),
            "{first}"
        );
        assert_eq!(first, next, "one plan for every page");
        if lodgings.len() == 1 {
            assert!(!first.contains("TEMP B-TREE"), "no sort: {first}");
        }
    }
}

#[test]
fn a_desks_pending_requests_are_read_by_one_plan_run_after_run() {
    let (_dir, conn) = store();
    let status = |s: &str| RequestFilter {
        lodging_ids: ids(&["l1"]),
        status: Some(s.into()),
        ..RequestFilter::default()
    };
    for filter in [status("pending"), status("approved")] {
        let [first, next] = pages(CursorKind::Requests, "4000");
        let steps = plan(&conn, requests_query(&filter, &first).expect("query"));
        assert!(steps.contains("requests_by_lodging_status"), "{steps}");
        assert!(!steps.contains("TEMP B-TREE"), "no sort: {steps}");
        // A desk polled again and again, page after page: SQLite must not plan the statement anew
        // at each run (it does when a bound value could change the plan, as the status does with
        // the partial index of pending requests).
        for request in [&first, &next, &first, &next] {
            let query = requests_query(&filter, request).expect("query");
            let mut statement = conn.prepare_cached(&query.sql).expect("prepare");
            let mut rows = statement
                .query(rusqlite::params_from_iter(query.values))
                .expect("run");
            while rows.next().expect("row").is_some() {}
            drop(rows);
            let planned = statement.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(planned, 0, "planned again: {}", query.sql);
        }
    }
}

#[test]
fn a_lodgings_payouts_without_a_status_are_read_in_seq_order() {
    let (_dir, conn) = store();
    for lodgings in [&["l1"][..], &["l1", "l2", "l3"]] {
        let filter = PayoutFilter {
            lodging_ids: ids(lodgings),
            ..PayoutFilter::default()
        };
        for request in &pages(CursorKind::Payouts, "4000") {
            let steps = plan(&conn, payouts_query(&filter, request).expect("query"));
            assert!(steps.contains("payouts_by_lodging_seq"), "{steps}");
            if lodgings.len() == 1 {
                assert!(!steps.contains("TEMP B-TREE"), "no sort: {steps}");
            }
        }
    }
}

#[test]
fn an_admins_lodgings_come_from_the_admin_index_not_a_catalog_scan() {
    let (_dir, conn) = store();
    let filter = LodgingFilter {
        admin_id: Some("host-7".into()),
        ..LodgingFilter::default()
    };
    for request in &pages(CursorKind::Lodgings, "lodging-00042") {
        let query = lodgings_query(&filter, request).expect("query");
        assert!(query.values.contains(&Value::Text("host-7".into())));
        let steps = plan(&conn, query);
        assert!(steps.contains("USING INDEX lodgings_by_admin"), "{steps}");
        assert!(!steps.contains("TEMP B-TREE"), "no sort: {steps}");
    }
}

#[test]
fn the_webhooks_status_changes_are_walked_by_seq_not_sorted_from_the_recipients_index() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let conn = open_inbox(&dir.path().join("inbox.db")).expect("open");
    let status_changes = |sql: &str| ListQuery {
        sql: sql.to_string(),
        values: [1, 2, 3].map(Value::Integer).to_vec(),
        limit: 3,
    };
    let steps = plan(&conn, status_changes(STATUS_CHANGES));
    assert!(steps.contains("INTEGER PRIMARY KEY"), "{steps}");
    assert!(!steps.contains("TEMP B-TREE"), "no sort: {steps}");
    let unguided = STATUS_CHANGES.replace(" NOT INDEXED", "");
    assert!(
        plan(&conn, status_changes(&unguided)).contains("TEMP B-TREE"),
        "without it, SQLite sorts the recipients' index (if it stops, this guard may go)"
    );
}

#[test]
fn every_desks_entries_are_walked_by_seq_and_one_inbox_by_its_index() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let conn = open_inbox(&dir.path().join("inbox.db")).expect("open");
    for request in &pages(CursorKind::Inbox, "4000") {
        let steps = plan(
            &conn,
            entries_query(&InboxFilter::Lodgings(None), request).expect("query"),
        );
        assert!(
            steps.contains("INTEGER PRIMARY KEY") || steps.starts_with("SCAN inbox"),
            "{steps}"
        );
        assert!(!steps.contains("TEMP B-TREE"), "no sort: {steps}");
        let one = InboxFilter::Customer("ana".into());
        let steps = plan(&conn, entries_query(&one, request).expect("query"));
        assert!(steps.contains("inbox_by_recipient"), "{steps}");
        assert!(!steps.contains("TEMP B-TREE"), "no sort: {steps}");
    }
}
