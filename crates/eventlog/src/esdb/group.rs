//! Consumer groups on EventStoreDB: a persistent subscription to `$all` per group, consumer strategy
//! `PinnedByCorrelation` (the server hashes each event's `$correlationId`, which `chain` writes, to
//! one of its buckets, each bucket held by one connected member; a member that disconnects has its
//! buckets and its unacknowledged events given to the others). The same server-side filter as the
//! catch-up subscription leaves out `$`-system and snapshot streams.
//!
//! One task per member owns the gRPC subscription: it forwards deliveries and sends settlements.

use std::time::Duration;

use eventstore::{
    NakAction, PersistentSubscription, PersistentSubscriptionEvent,
    PersistentSubscriptionToAllOptions, StreamPosition, SubscribeToPersistentSubscriptionOptions,
    SubscriptionFilter, SystemConsumerStrategy,
};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{server_position, to_recorded_raw, unavailable, EsdbEventLog, LIVE_FILTER};
use crate::group::{GroupAcks, GroupDelivery, GroupMember, Settlement};
use crate::{LogError, Position};

/// Events the server may hand a member before it has acknowledged them.
const BUFFER: usize = 512;
/// A delivery not acknowledged within this is handed out again.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Deliveries of one event before the server parks it.
const MAX_RETRIES: i32 = 10;

/// The settings a group is created with: it starts at the event at `after` (whose delivery the
/// member drops) or at the beginning.
fn group_options(after: Position) -> PersistentSubscriptionToAllOptions {
    let start = match after {
        0 => StreamPosition::Start,
        after => StreamPosition::Position(server_position(after)),
    };
    PersistentSubscriptionToAllOptions::default()
        .filter(SubscriptionFilter::on_stream_name().regex(LIVE_FILTER))
        .start_from(start)
        .resolve_link_tos(false)
        .consumer_strategy_name(SystemConsumerStrategy::PinnedByCorrelation)
        .message_timeout(MESSAGE_TIMEOUT)
        .max_retry_count(MAX_RETRIES)
        .checkpoint_after(Duration::from_secs(1))
}

pub(super) async fn join(
    log: &EsdbEventLog,
    group: &str,
    member: &str,
    after: Position,
) -> Result<GroupMember, LogError> {
    match log
        .client
        .create_persistent_subscription_to_all(group, &group_options(after))
        .await
    {
        Ok(()) | Err(eventstore::Error::ResourceAlreadyExists) => {}
        Err(e) => return Err(unavailable(e)),
    }
    let subscription = log
        .client
        .subscribe_to_persistent_subscription_to_all(
            group,
            &SubscribeToPersistentSubscriptionOptions::default().buffer_size(BUFFER),
        )
        .await
        .map_err(unavailable)?;
    tracing::info!(group, member, "joined the EventStoreDB consumer group");
    let (deliveries, rx) = mpsc::channel(BUFFER);
    let (settle, settlements) = mpsc::unbounded_channel();
    tokio::spawn(run(subscription, after, deliveries, settlements));
    Ok(GroupMember {
        deliveries: ReceiverStream::new(rx).boxed(),
        acks: GroupAcks::new(settle),
    })
}

enum Step {
    Event(Box<eventstore::Result<PersistentSubscriptionEvent>>),
    Settle(Option<Settlement>),
}

/// Forward deliveries and settle them until the member is dropped or the subscription fails.
async fn run(
    mut subscription: PersistentSubscription,
    after: Position,
    deliveries: mpsc::Sender<Result<GroupDelivery, LogError>>,
    mut settlements: mpsc::UnboundedReceiver<Settlement>,
) {
    loop {
        let step = tokio::select! {
            biased;
            settlement = settlements.recv() => Step::Settle(settlement),
            event = subscription.next_subscription_event() => Step::Event(Box::new(event)),
        };
        let event = match step {
            Step::Settle(None) => return,
            Step::Settle(Some(settlement)) => {
                if let Err(e) = settle(&mut subscription, settlement).await {
                    let _ = deliveries.send(Err(unavailable(e))).await;
                    return;
                }
                continue;
            }
            Step::Event(event) => *event,
        };
        let sent = match event {
            Ok(PersistentSubscriptionEvent::Confirmed(_)) => Ok(()),
            Ok(PersistentSubscriptionEvent::EventAppeared { retry_count, event }) => {
                let id = event.get_original_event().id;
                match to_recorded_raw(&event, false) {
                    // System, snapshot and foreign events are not the group's business, nor
                    // the one the group was created to start after (the server starts at it).
                    Ok(None) => subscription.ack_ids([id]).await,
                    Ok(Some(recorded)) if after != 0 && recorded.position == after => {
                        subscription.ack_ids([id]).await
                    }
                    Ok(Some(recorded)) => {
                        let delivery = GroupDelivery {
                            event: recorded,
                            retries: u32::try_from(retry_count).unwrap_or(u32::MAX),
                        };
                        if deliveries.send(Ok(delivery)).await.is_err() {
                            return;
                        }
                        Ok(())
                    }
                    Err(error) => {
                        let reason = error.to_string();
                        subscription.nack_ids([id], NakAction::Park, reason).await
                    }
                }
            }
            Err(e) => {
                let _ = deliveries.send(Err(unavailable(e))).await;
                return;
            }
        };
        if let Err(e) = sent {
            let _ = deliveries.send(Err(unavailable(e))).await;
            return;
        }
    }
}

async fn settle(
    subscription: &mut PersistentSubscription,
    settlement: Settlement,
) -> eventstore::Result<()> {
    match settlement {
        Settlement::Ack(id) => subscription.ack_ids([id]).await,
        Settlement::Park { event_id, reason } => {
            subscription
                .nack_ids([event_id], NakAction::Park, reason)
                .await
        }
    }
}
