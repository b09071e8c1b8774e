//! `$all` subscription on EventStoreDB: catch up with `read_all` pages, then a live `subscribe_to_all`
//! (server-side filter leaving out `$`-system and snapshot streams) started exactly after the last event
//! delivered, or after the head read *before* the last (empty) catch-up page. Events at positions already
//! delivered are dropped, so a resubscription never repeats one. On an error the subscription goes back to
//! catching up from where it was.

use std::collections::VecDeque;
use std::time::Duration;

use eventstore::{StreamPosition, SubscribeToAllOptions, Subscription, SubscriptionFilter};
use futures::StreamExt;

use super::{server_position, to_recorded_raw, unavailable, EsdbEventLog, LIVE_FILTER};
use crate::{EventLog, LogError, Position, RawEventSubscription, RawRecordedEvent};

const PAGE: usize = 512;
const RETRY_AFTER: Duration = Duration::from_millis(500);

enum Phase {
    CatchUp,
    Live(Box<Subscription>),
}

struct Follow {
    log: EsdbEventLog,
    next: Position,
    buffer: VecDeque<RawRecordedEvent>,
    phase: Phase,
    failed: bool,
}

pub(super) fn subscribe(log: EsdbEventLog, from: Position) -> RawEventSubscription {
    let state = Follow {
        log,
        next: from,
        buffer: VecDeque::new(),
        phase: Phase::CatchUp,
        failed: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        let item = s.next_item().await;
        Some((item, s))
    })
    .boxed()
}

impl Follow {
    async fn next_item(&mut self) -> Result<RawRecordedEvent, LogError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.next = event.position + 1;
                return Ok(event);
            }
            if std::mem::take(&mut self.failed) {
                tokio::time::sleep(RETRY_AFTER).await;
            }
            let step = match &mut self.phase {
                Phase::CatchUp => self.catch_up().await,
                Phase::Live(subscription) => match subscription.next().await {
                    Ok(resolved) => to_recorded_raw(&resolved, false).map(|event| {
                        self.buffer
                            .extend(event.filter(|e| e.position >= self.next));
                    }),
                    Err(e) => Err(unavailable(e)),
                },
            };
            if let Err(e) = step {
                self.phase = Phase::CatchUp;
                self.failed = true;
                return Err(e);
            }
        }
    }

    /// Read one page; when there is nothing more, go live after the head read *before* that page
    /// (events of ours up to it were in the page, so nothing falls between the two).
    async fn catch_up(&mut self) -> Result<(), LogError> {
        let head = self.log.head_position().await?;
        let page = self.log.read_all(self.next, PAGE).await?;
        if !page.is_empty() {
            self.buffer.extend(page);
            return Ok(());
        }
        let start = match head {
            0 => StreamPosition::Start,
            head => StreamPosition::Position(server_position(head)),
        };
        let filter = SubscriptionFilter::on_stream_name().regex(LIVE_FILTER);
        let options = SubscribeToAllOptions::default()
            .position(start)
            .filter(filter);
        let subscription = self.log.client.subscribe_to_all(&options).await;
        self.phase = Phase::Live(Box::new(subscription));
        Ok(())
    }
}
