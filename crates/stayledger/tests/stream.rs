//! The live stream over real HTTP on a real `serve`: `GET /stream` sends each change of a
//! reservation the caller may see as an SSE frame (`event: reservation`, `id: <log position>`,
//! `data: <ReservationList document>`), ids growing; `Last-Event-ID` resumes right after a frame
//! without a gap or a repeat; a browser may bring its token as `access_token`; no one sees
//! another's reservations.

mod common;
#[path = "common/sse.rs"]
mod sse;

use std::time::Duration;

use common::TestPlatform;
use reqwest::StatusCode;
use sse::{Frame, Frames};

fn ids(frames: &[Frame]) -> Vec<u64> {
    frames.iter().map(|f| f.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_whoever_may_see_them_live_and_a_stream_resumes_without_a_gap() {
    let t = TestPlatform::start().await;
    t.register_lodging("live-inn", 2, "instant").await;
    t.register_lodging("other-inn", 2, "instant").await;
    let mut mina = Frames::open(&t, "", Some(&t.customer("mina")), None).await;
    let browser = format!("?access_token={}", t.customer("joon"));
    let mut joon = Frames::open(&t, &browser, None, None).await;
    let mut desk = Frames::open(&t, "", Some(&t.admin_of("live-inn")), None).await;
    let mut elsewhere = Frames::open(&t, "", Some(&t.admin_of("other-inn")), None).await;

    let (id, _) = t.request("mina", "live-inn", 5, 2).await;
    let frames = mina.until(&id, "confirmed").await;
    assert!(frames
        .iter()
        .all(|f| f.event == "reservation" && f.data["reservation_id"] == id.as_str()));
    assert!(
        ids(&frames).windows(2).all(|w| w[0] < w[1]),
        "ids grow: {:?}",
        ids(&frames)
    );
    // Every version, each as its event left it: the lodging's admin sees the same ones.
    let desk_frames = desk.until(&id, "confirmed").await;
    assert_eq!(
        ids(&desk_frames),
        ids(&frames),
        "the lodging's admin follows it too"
    );
    let statuses: Vec<&str> = frames
        .iter()
        .map(|f| f.data["status"].as_str().unwrap_or_default())
        .collect();
    for status in ["requested", "approved", "confirmed"] {
        assert!(statuses.contains(&status), "{status} in {statuses:?}");
    }
    assert!(
        joon.next(Duration::from_millis(500)).await.is_none(),
        "another customer sees nothing of it"
    );
    assert!(elsewhere.next(Duration::from_millis(200)).await.is_none());

    assert!(
        frames
            .iter()
            .all(|f| f.data["position"].as_u64() == Some(f.id)),
        "a frame's id is its document's version"
    );

    // From the start: the same versions the live stream sent.
    let mut replayed = Frames::open(&t, "", Some(&t.customer("mina")), Some(0)).await;
    let again = replayed.until(&id, "confirmed").await;
    assert_eq!(ids(&again), ids(&frames));
    assert_eq!(
        again.iter().map(|f| &f.data).collect::<Vec<_>>(),
        frames.iter().map(|f| &f.data).collect::<Vec<_>>()
    );

    // The client goes away after the confirmed frame; meanwhile the stay is cancelled. Resumed with
    // that frame's id, it gets the versions after it, exactly as the live stream does.
    let confirmed = frames.last().map_or(0, |f| f.id);
    drop(replayed);
    let (status, _) = t
        .post(
            &format!("/reservations/{id}/cancel"),
            &t.customer("mina"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let live = mina.until(&id, "cancelled").await;
    let mut resumed = Frames::open(&t, "", Some(&t.customer("mina")), Some(confirmed)).await;
    let after = resumed.until(&id, "cancelled").await;
    assert!(
        live.iter().chain(&after).all(|f| f.id > confirmed),
        "no repeat"
    );
    assert_eq!(ids(&after), ids(&live), "no gap");
    assert!(ids(&after).windows(2).all(|w| w[0] < w[1]));

    let (status, body) = t.call(reqwest::Method::GET, "/stream", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let bad = t
        .http
        .get(format!("{}/stream", t.base))
        .bearer_auth(t.customer("mina"))
        .header("Last-Event-ID", "not-a-position")
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    drop((mina, joon, desk, elsewhere, resumed));
    t.stop().await;
}
