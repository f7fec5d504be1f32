//! Live subscriptions shared by every backend.
//!
//! A [`LiveHub`] holds one broadcast channel per run that has subscribers.
//! Writers publish a [`Notice`] after an event is committed; a follower
//! ([`follow`]) delivers the stored backlog, then live events, and reads the
//! store again whenever its view has a hole: a notice without the event (an
//! append by another replica), an event past the next expected sequence
//! number (publishes of two appenders crossed), a lagged receiver, or a
//! [`Notice::Resync`] after a lost database notification connection. So
//! correctness rests on the store's ordered log, and the channel is only a
//! wake-up with a fast path.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use futures::StreamExt;
use synod_types::{RunEvent, RunId};
use tokio::sync::broadcast;

use crate::store::{EventStream, RunStore, StoreError};

/// Live notices buffered per run for slow subscribers; a subscriber that
/// falls further behind catches up from the stored log instead.
pub(crate) const LIVE_BUFFER: usize = 1024;

/// What a follower is told after a commit.
#[derive(Debug, Clone)]
pub(crate) enum Notice {
    /// This process appended the event.
    Appended(RunEvent),
    /// Someone (maybe another replica) committed the event with this seq.
    Committed(u64),
    /// Notices may have been lost: read the store again.
    Resync,
}

/// Broadcast channels of the runs that have subscribers.
#[derive(Debug, Default)]
pub(crate) struct LiveHub {
    channels: Mutex<HashMap<RunId, broadcast::Sender<Notice>>>,
}

impl LiveHub {
    fn lock(&self) -> MutexGuard<'_, HashMap<RunId, broadcast::Sender<Notice>>> {
        // Every mutation is a single map operation: poisoning leaves it consistent.
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A receiver for `run_id`'s notices from now on.
    pub(crate) fn receiver(&self, run_id: RunId) -> broadcast::Receiver<Notice> {
        self.lock()
            .entry(run_id)
            .or_insert_with(|| broadcast::channel(LIVE_BUFFER).0)
            .subscribe()
    }

    /// Tells `run_id`'s subscribers, if any; forgets runs nobody follows.
    pub(crate) fn publish(&self, run_id: RunId, notice: Notice) {
        let mut channels = self.lock();
        if let Some(sender) = channels.get(&run_id)
            && sender.send(notice).is_err()
        {
            channels.remove(&run_id);
        }
    }

    /// Tells every subscriber to read the store again.
    pub(crate) fn resync_all(&self) {
        let mut channels = self.lock();
        channels.retain(|_, sender| sender.send(Notice::Resync).is_ok());
    }
}

/// Stored then live events of `run_id` with `seq > after_seq`, each once, in
/// order, ending after the terminal event. `receiver` must have been taken
/// from the hub before this call, so nothing committed after the backlog
/// read can be missed.
pub(crate) async fn follow<S>(
    store: S,
    run_id: RunId,
    after_seq: u64,
    receiver: broadcast::Receiver<Notice>,
) -> Result<EventStream, StoreError>
where
    S: RunStore + Clone,
{
    // The status is read before the backlog: if the run had ended, the
    // backlog holds everything; if not, its terminal event comes later.
    let record = store
        .get_run(run_id)
        .await?
        .ok_or(StoreError::RunNotFound(run_id))?;
    let backlog = store.events(run_id, after_seq).await?;
    if record.status.is_terminal() {
        return Ok(futures::stream::iter(backlog.into_iter().map(Ok)).boxed());
    }
    let follower = Follower {
        store,
        run_id,
        receiver,
        last_seq: after_seq,
        pending: backlog.into(),
        done: false,
    };
    Ok(
        futures::stream::unfold(follower, |mut follower| async move {
            let event = follower.next().await?;
            Some((event, follower))
        })
        .boxed(),
    )
}

/// The live part of a subscription.
struct Follower<S> {
    store: S,
    run_id: RunId,
    receiver: broadcast::Receiver<Notice>,
    /// The last sequence number delivered.
    last_seq: u64,
    /// Events read from the store, not yet delivered, in order.
    pending: VecDeque<RunEvent>,
    done: bool,
}

impl<S: RunStore> Follower<S> {
    async fn next(&mut self) -> Option<Result<RunEvent, StoreError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                if event.seq <= self.last_seq {
                    continue;
                }
                return Some(Ok(self.deliver(event)));
            }
            let needs_read = match self.receiver.recv().await {
                Ok(Notice::Appended(event)) if event.seq == self.last_seq + 1 => {
                    return Some(Ok(self.deliver(event)));
                }
                Ok(Notice::Appended(event)) => event.seq > self.last_seq,
                Ok(Notice::Committed(seq)) => seq > self.last_seq,
                Ok(Notice::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if needs_read {
                match self.store.events(self.run_id, self.last_seq).await {
                    Ok(missed) => self.pending = missed.into(),
                    Err(error) => {
                        self.done = true;
                        return Some(Err(error));
                    }
                }
            }
        }
    }

    fn deliver(&mut self, event: RunEvent) -> RunEvent {
        self.last_seq = event.seq;
        if event.kind.is_terminal() {
            self.done = true;
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use crate::store::RunRecord;
    use serde_json::json;
    use synod_types::{RunEventKind, StepId};

    fn skipped(n: usize) -> RunEventKind {
        RunEventKind::StepSkipped {
            step: StepId::new(format!("s{n}")),
            reason: "test".into(),
        }
    }

    /// A follower on its own hub, so the test decides which notices it gets:
    /// crossed publishes, notices without events, resyncs.
    #[tokio::test]
    async fn follower_fills_every_hole_from_the_store() {
        let store = MemoryStore::new();
        let run_id = RunId::new();
        store
            .create_run(RunRecord::pending(run_id, "wf", json!({})))
            .await
            .unwrap();
        let first = store.append(run_id, skipped(1)).await.unwrap();
        let hub = LiveHub::default();
        let mut stream = follow(store.clone(), run_id, 0, hub.receiver(run_id))
            .await
            .unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), first);

        // Publishes of two appenders crossed: 3 arrives before 2.
        let second = store.append(run_id, skipped(2)).await.unwrap();
        let third = store.append(run_id, skipped(3)).await.unwrap();
        hub.publish(run_id, Notice::Appended(third.clone()));
        hub.publish(run_id, Notice::Appended(second.clone()));
        assert_eq!(stream.next().await.unwrap().unwrap(), second);
        assert_eq!(stream.next().await.unwrap().unwrap(), third);

        // Another replica appended: only the seq is known.
        let fourth = store.append(run_id, skipped(4)).await.unwrap();
        hub.publish(run_id, Notice::Committed(4));
        assert_eq!(stream.next().await.unwrap().unwrap(), fourth);

        // Notifications were lost: a resync reads whatever is new.
        let fifth = store
            .append(run_id, RunEventKind::RunSucceeded { result: json!({}) })
            .await
            .unwrap();
        hub.resync_all();
        assert_eq!(stream.next().await.unwrap().unwrap(), fifth);
        assert!(
            stream.next().await.is_none(),
            "ends after the terminal event"
        );
    }

    #[test]
    fn hub_forgets_runs_nobody_follows() {
        let hub = LiveHub::default();
        let run_id = RunId::new();
        let receiver = hub.receiver(run_id);
        hub.publish(run_id, Notice::Committed(1));
        assert_eq!(hub.lock().len(), 1);
        drop(receiver);
        hub.publish(run_id, Notice::Committed(2));
        assert!(hub.lock().is_empty());
    }
}
