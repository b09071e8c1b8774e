//! Consumer groups ([`ConsumerGroups`]): two members split the events, every event of one correlation
//! id to one member, each event once; when a member leaves, the other gets what it left unsettled and
//! the rest of its correlations, and nothing that was acknowledged comes back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio::time::{timeout_at, Instant};
use uuid::Uuid;

use super::{new_event, Failure, Outcome, DEADLINE};
use crate::group::{ConsumerGroups, GroupDelivery, GroupMember};
use crate::{EventLog, ExpectedVersion};

/// Correlation ids (reservations) written by the case; two streams each.
const CORRELATIONS: usize = 16;
/// After the expected deliveries, how long the case waits for one that must not come.
const QUIET: Duration = Duration::from_millis(500);

struct Seen {
    member: usize,
    correlation: Uuid,
    retries: u32,
}

/// Two members of a fresh group of `groups` over `log`: pinning by correlation, each event once,
/// hand-over.
pub async fn consumer_group(log: Arc<dyn EventLog>, groups: Arc<dyn ConsumerGroups>) -> Outcome {
    let suffix = Uuid::new_v4().simple().to_string();
    let group = format!("conformance-{suffix}");
    let after = log.head_position().await?;
    let mut members = vec![
        Some(groups.join(&group, "a", after).await?),
        Some(groups.join(&group, "b", after).await?),
    ];
    let correlations: Vec<Uuid> = (0..CORRELATIONS).map(|_| Uuid::new_v4()).collect();
    let mut ours = BTreeMap::new();
    for (i, correlation) in correlations.iter().enumerate() {
        for kind in ["order", "payment"] {
            let stream = format!("group{kind}-{suffix}-{i}");
            let ids = append(&*log, &stream, *correlation, 2).await?;
            ours.extend(ids.into_iter().map(|id| (id, *correlation)));
        }
    }

    // Member 0 settles nothing of the first correlation it gets: those events are its to hand over.
    let mut seen: HashMap<Uuid, Vec<Seen>> = HashMap::new();
    let mut held_back: Option<Uuid> = None;
    let mut order: HashMap<Uuid, Vec<u64>> = HashMap::new();
    let until = Instant::now() + DEADLINE;
    while seen.len() < ours.len() {
        let (member, delivery) = next(&mut members, until).await?;
        let event = &delivery.event;
        let Some(correlation) = ours.get(&event.event_id).copied() else {
            ack(&members, member, event.event_id);
            continue;
        };
        order.entry(correlation).or_default().push(event.position);
        seen.entry(event.event_id).or_default().push(Seen {
            member,
            correlation,
            retries: delivery.retries,
        });
        if member == 0 && *held_back.get_or_insert(correlation) == correlation {
            continue;
        }
        ack(&members, member, event.event_id);
    }
    let mut holder: HashMap<Uuid, BTreeSet<usize>> = HashMap::new();
    for (id, deliveries) in &seen {
        ensure!(
            deliveries.len() == 1 && deliveries[0].retries == 0,
            "event {id} was delivered {} times while both members were there",
            deliveries.len()
        );
        holder
            .entry(deliveries[0].correlation)
            .or_default()
            .insert(deliveries[0].member);
    }
    for (correlation, members) in &holder {
        ensure!(
            members.len() == 1,
            "the events of correlation {correlation} went to members {members:?}, not one"
        );
    }
    for (correlation, positions) in &order {
        ensure!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "correlation {correlation} was delivered out of order: {positions:?}"
        );
    }
    let of_member = |m: usize| -> Vec<Uuid> {
        holder
            .iter()
            .filter(|(_, ms)| ms.contains(&m))
            .map(|(c, _)| *c)
            .collect()
    };
    let (first, second) = (of_member(0), of_member(1));
    ensure!(
        !first.is_empty() && !second.is_empty(),
        "one member got every correlation ({} / {})",
        first.len(),
        second.len()
    );
    let held_back = held_back.ok_or_else(|| Failure("member 0 got nothing".into()))?;

    // Member 0 leaves (its acknowledgements had time to arrive); then its correlations move on.
    tokio::time::sleep(QUIET).await;
    members[0] = None;
    let mut expected: BTreeSet<Uuid> = seen
        .iter()
        .filter(|(_, d)| d[0].correlation == held_back)
        .map(|(id, _)| *id)
        .collect();
    for (i, correlation) in correlations.iter().enumerate() {
        if first.contains(correlation) {
            let stream = format!("grouporder-{suffix}-{i}");
            expected.extend(append(&*log, &stream, *correlation, 1).await?);
        }
    }
    let until = Instant::now() + DEADLINE;
    while !expected.is_empty() {
        let (member, delivery) = next(&mut members, until).await?;
        let id = delivery.event.event_id;
        ack(&members, member, id);
        ensure!(
            expected.remove(&id) || !ours.contains_key(&id) || !seen.contains_key(&id),
            "event {id}, acknowledged by its member, was delivered again after member 0 left"
        );
    }
    match next(&mut members, Instant::now() + QUIET).await {
        Ok((_, delivery)) if ours.contains_key(&delivery.event.event_id) => Err(Failure(format!(
            "event {} was delivered again",
            delivery.event.event_id
        ))),
        _ => Ok(()),
    }
}

/// Append `count` events of `correlation` to a new `stream`; their ids.
async fn append(
    log: &dyn EventLog,
    stream: &str,
    correlation: Uuid,
    count: usize,
) -> Result<Vec<Uuid>, Failure> {
    let events: Vec<_> = (0..count)
        .map(|n| {
            let mut event = new_event("GroupTested", json!({ "n": n }));
            event.metadata.correlation_id = correlation;
            event
        })
        .collect();
    let ids = events.iter().map(|e| e.event_id).collect();
    log.append(stream, ExpectedVersion::Any, events).await?;
    Ok(ids)
}

/// The next delivery to any member still there, with the member's index.
async fn next(
    members: &mut [Option<GroupMember>],
    until: Instant,
) -> Result<(usize, GroupDelivery), Failure> {
    let streams = members.iter_mut().enumerate().filter_map(|(i, m)| {
        m.as_mut()
            .map(|m| m.deliveries.by_ref().map(move |item| (i, item)))
    });
    let mut all = futures::stream::select_all(streams.map(StreamExt::boxed));
    match timeout_at(until, all.next()).await {
        Ok(Some((i, Ok(delivery)))) => Ok((i, delivery)),
        Ok(Some((i, Err(e)))) => Err(Failure(format!("member {i}: {e}"))),
        Ok(None) => Err(Failure("every member's deliveries ended".into())),
        Err(_) => Err(Failure("deliveries stopped before every event came".into())),
    }
}

fn ack(members: &[Option<GroupMember>], member: usize, event_id: Uuid) {
    if let Some(m) = &members[member] {
        m.acks.ack(event_id);
    }
}
