//! A lane handles the jobs of the reservations hashed to it, one at a time and in log order, so the
//! saga of one reservation never races with itself; lanes run side by side.
//!
//! Handling a trigger: record it on the saga stream (a trigger already handled records nothing),
//! then send every action recorded for it (sent again after a crash; each is idempotent), then
//! report the saga's armed timers so the coordinator can commit them with the checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use domain::reservation::ReservationEvent;
use domain::saga::{SagaInput, SagaPolicy, SagaTrigger, TimerKind};
use domain::{ReservationId, Timestamp};
use eventlog::CommandContext;
use eventlog::Position;
use tokio::sync::mpsc;
use tracing::Instrument;
use uuid::Uuid;

use super::actions::Actions;
use super::commands::{Commands, Outcome};
use super::ids::{action_id, timer_trigger_id};
use super::inbound::Inbound;
use super::payment::{ActionContext, ActionOutcome};
use super::retry::Stopped;
use crate::status::SagaStatus;
use crate::store::{ArmedTimer, ParkedAction, RefundRetry};

/// Work for a lane.
#[derive(Debug, Clone)]
pub enum Job {
    Event {
        position: Position,
        inbound: Inbound,
    },
    Timer(ArmedTimer),
    Refund(RefundRetry),
}

impl Job {
    pub fn reservation_id(&self) -> ReservationId {
        match self {
            Self::Event { inbound, .. } => inbound.reservation_id,
            Self::Timer(timer) => timer.reservation_id,
            Self::Refund(retry) => retry.reservation_id,
        }
    }
}

/// Which job finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Event(Position),
    Timer(ArmedTimer),
    Refund(Uuid),
}

/// What a finished job leaves for the coordinator to commit.
#[derive(Debug, Clone)]
pub struct Completion {
    pub finished: Finished,
    pub reservation_id: ReservationId,
    /// The saga's armed timers after the job (`None`: the saga could not be read).
    pub timers: Option<BTreeMap<TimerKind, Timestamp>>,
    pub refunds_due: Vec<RefundRetry>,
    pub refunds_settled: Vec<Uuid>,
    pub parked: Vec<ParkedAction>,
    /// The event, if it came before its reservation's request was handled (a consumer group
    /// redelivered it out of order): nothing was recorded; it waits for the request.
    /// Boxed: rare, and completions are sent for every event.
    pub early: Option<Box<Inbound>>,
}

impl Completion {
    fn new(finished: Finished, reservation_id: ReservationId) -> Self {
        Self {
            finished,
            reservation_id,
            timers: None,
            refunds_due: Vec::new(),
            refunds_settled: Vec::new(),
            parked: Vec::new(),
            early: None,
        }
    }

    fn park(&mut self, trigger_id: Uuid, attempted: String, error: String) {
        tracing::warn!(reservation_id = %self.reservation_id, %trigger_id, %attempted, %error, "saga action parked");
        self.parked.push(ParkedAction {
            reservation_id: Some(self.reservation_id),
            trigger_id,
            attempted,
            error,
            parked_at: Utc::now(),
        });
    }
}

/// One span per handled event, timer or refund retry.
fn job_span(job: &Job) -> tracing::Span {
    let reservation_id = job.reservation_id();
    match job {
        Job::Event { position, inbound } => tracing::info_span!(
            "saga_event", %reservation_id, position, trigger_id = %inbound.trigger_id
        ),
        Job::Timer(timer) => tracing::info_span!(
            "saga_timer", %reservation_id, kind = ?timer.kind, due_at = %timer.due_at
        ),
        Job::Refund(retry) => tracing::info_span!(
            "saga_refund_retry", %reservation_id, attempt = retry.attempt
        ),
    }
}

pub struct Lane {
    pub commands: Arc<Commands>,
    pub actions: Actions,
    pub policy: SagaPolicy,
    pub status: SagaStatus,
    /// Check that a reservation's request was handled before any other event of it (a consumer
    /// group may redeliver out of order; the whole log never does).
    pub hold_early: bool,
}

impl Lane {
    /// Take jobs until the channel closes or shutdown; report each finished job.
    pub async fn run(
        self: Arc<Self>,
        mut jobs: mpsc::UnboundedReceiver<Job>,
        done: mpsc::UnboundedSender<Completion>,
    ) {
        let shutdown = self.commands.shutdown().clone();
        loop {
            let job = tokio::select! {
                () = shutdown.cancelled() => return,
                job = jobs.recv() => match job { Some(job) => job, None => return },
            };
            // Abandoning a job midway at shutdown is safe: it is handled again after the restart,
            // and every step of it is idempotent.
            let span = job_span(&job);
            let handled = tokio::select! {
                () = shutdown.cancelled() => return,
                handled = self.handle(job).instrument(span) => handled,
            };
            match handled {
                Ok(completion) => {
                    if done.send(completion).is_err() {
                        return;
                    }
                }
                Err(Stopped) => return,
            }
        }
    }

    async fn handle(&self, job: Job) -> Result<Completion, Stopped> {
        let rid = job.reservation_id();
        match job {
            Job::Event { position, inbound } => {
                let mut completion = Completion::new(Finished::Event(position), rid);
                if self.hold_early && self.is_early(&inbound).await? {
                    completion.early = Some(Box::new(inbound));
                    return Ok(completion);
                }
                completion.timers = self.handle_trigger(&inbound, &mut completion).await?;
                Ok(completion)
            }
            Job::Timer(timer) => {
                let mut completion = Completion::new(Finished::Timer(timer), rid);
                completion.timers = self.handle_timer(timer, &mut completion).await?;
                Ok(completion)
            }
            Job::Refund(retry) => {
                let action_id = retry.action_id;
                let mut completion = Completion::new(Finished::Refund(action_id), rid);
                let attempted = format!("refund of charge {}", retry.charge_ref);
                match self.actions.payments().retry_refund(retry).await? {
                    ActionOutcome::RefundDeferred(next) => completion.refunds_due.push(next),
                    outcome => {
                        completion.refunds_settled.push(action_id);
                        if let ActionOutcome::Parked(error) = outcome {
                            completion.park(action_id, attempted, error);
                        }
                    }
                }
                Ok(completion)
            }
        }
    }

    /// Whether `inbound` is an event of a reservation whose request its saga has not handled yet.
    /// The saga records an input that does not fit its state as handled with no action, so such an
    /// event must wait rather than be recorded.
    async fn is_early(&self, inbound: &Inbound) -> Result<bool, Stopped> {
        if matches!(
            inbound.input,
            SagaInput::Reservation(ReservationEvent::ReservationRequested(_))
        ) {
            return Ok(false);
        }
        let (c, id) = (&self.commands, inbound.reservation_id.to_string());
        Ok(match c.load(&c.sagas, &id).await? {
            Ok(state) => {
                state.reservation.is_none() && !state.handled.contains_key(&inbound.trigger_id)
            }
            // Unreadable: handling it parks it, as without a group.
            Err(_) => false,
        })
    }

    /// Record the trigger on the saga stream, then send the actions recorded for it.
    async fn handle_trigger(
        &self,
        inbound: &Inbound,
        completion: &mut Completion,
    ) -> Result<Option<BTreeMap<TimerKind, Timestamp>>, Stopped> {
        let trigger = SagaTrigger {
            trigger_id: inbound.trigger_id,
            input: inbound.input.clone(),
            policy: self.policy,
        };
        let ctx = CommandContext {
            correlation_id: inbound.correlation_id,
            causation_id: inbound.trigger_id,
            actor: "saga".to_string(),
            now: Utc::now(),
        };
        let (c, id) = (&self.commands, inbound.reservation_id.to_string());
        // A reservation's request is its saga's first trigger: the saga stream is not read first.
        let opens = matches!(
            inbound.input,
            SagaInput::Reservation(ReservationEvent::ReservationRequested(_))
        );
        let state = match c.execute_with(&c.sagas, &id, &trigger, &ctx, opens).await? {
            Outcome::Done(executed) => executed.state,
            Outcome::Rejected(error) => {
                completion.park(inbound.trigger_id, "saga trigger".into(), error.to_string());
                return Ok(None);
            }
            Outcome::Poison(error) => {
                completion.park(inbound.trigger_id, "saga trigger".into(), error);
                return Ok(None);
            }
        };
        self.status.count_trigger();
        let actions = state
            .handled
            .get(&inbound.trigger_id)
            .cloned()
            .unwrap_or_default();
        for (index, action) in actions.iter().enumerate() {
            let cx = ActionContext {
                reservation_id: inbound.reservation_id,
                action_id: action_id(inbound.trigger_id, index),
                correlation_id: inbound.correlation_id,
            };
            match self.actions.perform(&cx, action).await? {
                ActionOutcome::Done => {}
                ActionOutcome::Parked(error) => {
                    let attempted = serde_json::to_string(action).unwrap_or_default();
                    completion.park(inbound.trigger_id, attempted, error);
                }
                ActionOutcome::RefundDeferred(retry) => completion.refunds_due.push(retry),
            }
        }
        Ok(Some(state.timers.to_map()))
    }

    /// Fire a due timer, unless the saga has moved on (disarmed or re-armed it since).
    async fn handle_timer(
        &self,
        timer: ArmedTimer,
        completion: &mut Completion,
    ) -> Result<Option<BTreeMap<TimerKind, Timestamp>>, Stopped> {
        let trigger_id = timer_trigger_id(timer.reservation_id, timer.kind, timer.due_at);
        let id = timer.reservation_id.to_string();
        let state = match self.commands.load(&self.commands.sagas, &id).await? {
            Ok(state) => state,
            Err(error) => {
                completion.park(trigger_id, "timer".into(), error);
                return Ok(None);
            }
        };
        let handled = state.handled.contains_key(&trigger_id);
        let still_armed = state.timers.get(&timer.kind) == Some(&timer.due_at);
        let mut timers = if handled || still_armed {
            self.status.count_timer_fired();
            let inbound = Inbound {
                trigger_id,
                correlation_id: timer.reservation_id,
                reservation_id: timer.reservation_id,
                input: SagaInput::Timer(timer.kind),
            };
            self.handle_trigger(&inbound, completion).await?
        } else {
            Some(state.timers.to_map())
        };
        // This firing is spent, whatever the saga did with it.
        if let Some(timers) = timers.as_mut() {
            if timers.get(&timer.kind) == Some(&timer.due_at) {
                timers.remove(&timer.kind);
            }
        }
        Ok(timers)
    }
}
