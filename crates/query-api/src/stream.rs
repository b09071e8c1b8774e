//! `GET /stream`: the live stream of reservation changes (Server-Sent Events), scoped like
//! `GET /reservations/{id}`: a customer follows their own reservations, an admin those of the
//! lodgings they manage, an auditor all. Each frame is `event: reservation`, `id: <log position>`,
//! `data: <ReservationList document>`: the stream follows the log in order and, at each event that
//! changed a reservation's document, sends the document as that event left it (`stream_frames.rs`
//! derives each version from the last one it sent; the views hold only the latest). So a frame's id
//! is its document's `position`, ids only grow, and a client that comes back with `Last-Event-ID`
//! resumes right after the last frame it got without a repeat. The hub keeps its latest frames: a
//! stream resuming (or joining again after the hub dropped it) within their reach is sent exactly
//! the frames a live one was. From further back a stream makes its frames from the log itself:
//! every version of a reservation begun after its starting point, and of one begun before, the
//! versions from the one the views hold when it reads them. Without
//! `Last-Event-ID` the stream starts at the log's head. A browser's `EventSource` cannot set headers,
//! so the token may also come as the `access_token` query parameter. Comments keep idle connections
//! alive. The streams of a process share one follower of the log, which reads each changed
//! document once for all of them (`stream_hub.rs`); this file owns one stream: who may read what,
//! where it starts, and catching up to the hub.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{Stream, StreamExt};
use http_edge::{AuthError, Principal, Role};
use readmodel::ReservationView;
use tokio::sync::mpsc;

use crate::error::QueryError;
use crate::params::Params;
use crate::state::QueryState;
use crate::stream_frames::{Frame, Framer};
use crate::stream_hub::BATCH;
use crate::views::may_read;

/// Frames made for a stream and not yet written to its connection.
const OUT_QUEUE: usize = 64;
/// Lodgings whose host a stream remembers at most.
const MAX_REMEMBERED: usize = 10_000;
/// A comment on an idle stream this often.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(crate) fn routes() -> Router<QueryState> {
    Router::new().route("/stream", get(stream))
}

/// The caller: the `Authorization` header, or else the `access_token` query parameter.
fn caller(
    state: &QueryState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Principal, AuthError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return state.auth.authenticate_headers(headers);
    }
    match params.raw("access_token") {
        Some(token) => state.auth.verify(token),
        None => Err(AuthError::Missing),
    }
}

/// Where to start: after `Last-Event-ID` (a log position), or at the head.
async fn start(state: &QueryState, headers: &HeaderMap) -> Result<u64, QueryError> {
    match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(|position| position.saturating_add(1))
            .ok_or_else(|| QueryError::parameter("Last-Event-ID", "must be a log position")),
        None => Ok(state.log.head_position().await?.saturating_add(1)),
    }
}

/// Whether `principal` may read `view`: [`may_read`]'s rule, with the lodgings an admin hosts
/// remembered (a lodging's host never changes).
struct Reader {
    principal: Principal,
    hosts: HashMap<String, bool>,
}

impl Reader {
    async fn may_read(
        &mut self,
        state: &QueryState,
        view: &ReservationView,
    ) -> Result<bool, QueryError> {
        if self.principal.role != Role::Admin || self.principal.manages(&view.lodging_id) {
            return may_read(state, &self.principal, view).await;
        }
        if let Some(&hosts) = self.hosts.get(&view.lodging_id) {
            return Ok(hosts);
        }
        let hosts = may_read(state, &self.principal, view).await?;
        if self.hosts.len() >= MAX_REMEMBERED {
            self.hosts.clear();
        }
        self.hosts.insert(view.lodging_id.clone(), hosts);
        Ok(hosts)
    }
}

/// One stream: the frames from `next` on that its caller may read, into `out`.
struct Follower {
    state: QueryState,
    reader: Reader,
    /// The first log position not yet considered.
    next: u64,
    out: mpsc::Sender<Event>,
}

impl Follower {
    /// Follow until the client goes (`Ok`) or the log or the views fail.
    async fn run(&mut self) -> Result<(), QueryError> {
        loop {
            let hub = Arc::clone(&self.state.stream_hub);
            let mut membership = hub
                .join(&self.state, &self.reader.principal, self.next)
                .await?;
            let caught_up = match membership.recent.take() {
                Some(recent) => self.replay(&recent, membership.covered).await?,
                None => self.catch_up(membership.covered).await?,
            };
            if !caught_up {
                return Ok(());
            }
            loop {
                let frame = tokio::select! {
                    () = self.out.closed() => return Ok(()),
                    frame = membership.frames.recv() => frame,
                };
                // None: the hub dropped this stream (it fell behind) or stopped; join again.
                let Some(frame) = frame else { break };
                if !self.offer(&frame).await? {
                    return Ok(());
                }
            }
        }
    }

    /// Send the hub's own frames up to `to` (every one it made since this stream's `next`);
    /// `false` if the client is gone.
    async fn replay(&mut self, recent: &[Arc<Frame>], to: u64) -> Result<bool, QueryError> {
        for frame in recent {
            if !self.offer(frame).await? {
                return Ok(false);
            }
        }
        self.next = self.next.max(to.saturating_add(1));
        Ok(true)
    }

    /// Make and send the frames up to `to` from the log; `false` if the client is gone.
    async fn catch_up(&mut self, to: u64) -> Result<bool, QueryError> {
        let mut framer = Framer::default();
        while self.next <= to {
            let mut batch = self.state.log.read_all(self.next, BATCH).await?;
            batch.retain(|recorded| recorded.position <= to);
            let Some(last) = batch.last().map(|recorded| recorded.position) else {
                break;
            };
            for frame in framer.frames(&self.state, &batch).await? {
                if !self.offer(&frame).await? {
                    return Ok(false);
                }
            }
            self.next = self.next.max(last.saturating_add(1));
        }
        self.next = self.next.max(to.saturating_add(1));
        Ok(true)
    }

    /// Send `frame` if it is new to this stream and its caller may read it; `false` if the
    /// client is gone.
    async fn offer(&mut self, frame: &Frame) -> Result<bool, QueryError> {
        if frame.position < self.next {
            return Ok(true);
        }
        self.next = frame.position.saturating_add(1);
        if !self.reader.may_read(&self.state, &frame.view).await? {
            return Ok(true);
        }
        let event = Event::default()
            .event("reservation")
            .id(frame.position.to_string())
            .data(&frame.data);
        Ok(self.out.send(event).await.is_ok())
    }
}

fn frames(
    state: QueryState,
    principal: Principal,
    from: u64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let (out, events) = mpsc::channel(OUT_QUEUE);
    let mut follower = Follower {
        state,
        reader: Reader {
            principal,
            hosts: HashMap::new(),
        },
        next: from,
        out,
    };
    tokio::spawn(async move {
        if let Err(error) = follower.run().await {
            tracing::warn!(%error, "a live stream could not go on; its client reconnects");
        }
    });
    futures::stream::unfold(events, |mut events| async move {
        let event = events.recv().await?;
        Some((Ok(event), events))
    })
}

async fn stream(State(state): State<QueryState>, headers: HeaderMap, params: Params) -> Response {
    let principal = match caller(&state, &headers, &params) {
        Ok(principal) => principal,
        Err(refused) => return refused.into_response(),
    };
    let from = match start(&state, &headers).await {
        Ok(from) => from,
        Err(error) => return error.into_response(),
    };
    let closing = state.closing.clone().cancelled_owned();
    Sse::new(frames(state, principal, from).take_until(closing))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}
