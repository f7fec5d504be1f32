//! One run driven over the `synod.orchestrator.v1.Runs` API: `StartRun`
//! of a stored workflow, then `WatchRun` until its terminal event
//! (reconnecting after the last sequence number seen), and afterwards a
//! `GetRun` check of what the store recorded.

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use synod_proto::orchestrator::runs_client::RunsClient;
use synod_proto::orchestrator::{
    GetRunRequest, RunInfo, RunStatus, StartRunRequest, WatchRunRequest, start_run_request,
};
use tokio::time::Instant;
use tonic::transport::Channel;

/// How a run ended, as seen by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// `synod.run.succeeded`.
    Succeeded,
    /// `synod.run.failed`.
    Failed,
    /// `synod.run.cancelled`.
    Cancelled,
    /// Started, but no terminal event before the deadline.
    Unfinished,
    /// `StartRun` was refused or failed.
    NotStarted,
}

impl Ending {
    /// The ending a terminal event type announces.
    pub fn of_event_type(event_type: &str) -> Option<Ending> {
        match event_type {
            "synod.run.succeeded" => Some(Ending::Succeeded),
            "synod.run.failed" => Some(Ending::Failed),
            "synod.run.cancelled" => Some(Ending::Cancelled),
            _ => None,
        }
    }

    /// The ending a stored run status means (`None`: not terminal).
    pub fn of_status(status: i32) -> Option<Ending> {
        match RunStatus::try_from(status).ok()? {
            RunStatus::Succeeded => Some(Ending::Succeeded),
            RunStatus::Failed => Some(Ending::Failed),
            RunStatus::Cancelled => Some(Ending::Cancelled),
            _ => None,
        }
    }

    /// Whether this is a defined terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Ending::Succeeded | Ending::Failed | Ending::Cancelled)
    }
}

/// What the client saw of one run.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// The run id (`None` when `StartRun` failed).
    pub run_id: Option<String>,
    /// How it ended.
    pub ending: Ending,
    /// From just before `StartRun` to the terminal event.
    pub latency: Duration,
    /// `StartRun`'s round trip.
    pub submit: Duration,
    /// Why it did not start, or why watching failed.
    pub error: Option<String>,
    /// `WatchRun` reconnections.
    pub reconnects: u32,
}

/// Starts a run of the stored workflow `workflow` and watches it until it
/// ends or `deadline` passes. `on_started` is called once it is accepted.
pub async fn start_and_watch(
    channel: Channel,
    workflow: &str,
    deadline: Instant,
    on_started: impl FnOnce(),
) -> Tracked {
    let mut client = RunsClient::new(channel);
    let started = Instant::now();
    let request = StartRunRequest {
        source: Some(start_run_request::Source::WorkflowName(workflow.to_owned())),
        ..StartRunRequest::default()
    };
    let run_id = match client.start_run(request).await {
        Ok(response) => response.into_inner().run_id,
        Err(status) => {
            return Tracked {
                run_id: None,
                ending: Ending::NotStarted,
                latency: started.elapsed(),
                submit: started.elapsed(),
                error: Some(format!("StartRun failed: {status}")),
                reconnects: 0,
            };
        }
    };
    let submit = started.elapsed();
    on_started();
    let (ending, error, reconnects) = watch_until_end(&mut client, &run_id, deadline).await;
    Tracked {
        run_id: Some(run_id),
        ending,
        latency: started.elapsed(),
        submit,
        error,
        reconnects,
    }
}

/// Follows `run_id`'s events until a terminal one (or `deadline`).
async fn watch_until_end(
    client: &mut RunsClient<Channel>,
    run_id: &str,
    deadline: Instant,
) -> (Ending, Option<String>, u32) {
    let mut after_seq = 0;
    let mut reconnects = 0;
    let mut last_error = None;
    loop {
        let request = WatchRunRequest {
            run_id: run_id.to_owned(),
            after_seq,
            recorded_only: false,
        };
        let watched = tokio::time::timeout_at(deadline, async {
            let mut stream = client.watch_run(request).await?.into_inner();
            while let Some(message) = stream.next().await {
                let message = message?;
                after_seq = after_seq.max(message.seq);
                if let Some(ending) = Ending::of_event_type(&message.r#type) {
                    return Ok(Some(ending));
                }
            }
            Ok::<_, tonic::Status>(None)
        })
        .await;
        match watched {
            Err(_) => {
                return (
                    Ending::Unfinished,
                    Some(last_error.unwrap_or_else(|| {
                        format!("no terminal event before the deadline (last seq {after_seq})")
                    })),
                    reconnects,
                );
            }
            Ok(Ok(Some(ending))) => return (ending, None, reconnects),
            Ok(Ok(None)) => {
                last_error = Some(format!(
                    "the event stream ended without a terminal event (last seq {after_seq})"
                ));
            }
            Ok(Err(status)) => last_error = Some(format!("WatchRun failed: {status}")),
        }
        reconnects += 1;
        if Instant::now() >= deadline {
            return (Ending::Unfinished, last_error, reconnects);
        }
        tokio::time::sleep(Duration::from_millis(50 * u64::from(reconnects.min(20)))).await;
    }
}

/// `GetRun` of `run_id`; `Ok(None)` when the store does not know it.
pub async fn stored_run(channel: Channel, run_id: &str) -> anyhow::Result<Option<RunInfo>> {
    let request = GetRunRequest {
        run_id: run_id.to_owned(),
    };
    match RunsClient::new(channel).get_run(request).await {
        Ok(info) => Ok(Some(info.into_inner())),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(anyhow::anyhow!("GetRun {run_id} failed: {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_events_and_statuses_map_to_endings() {
        assert_eq!(
            Ending::of_event_type("synod.run.failed"),
            Some(Ending::Failed)
        );
        assert_eq!(Ending::of_event_type("synod.step.failed"), None);
        assert_eq!(
            Ending::of_status(RunStatus::Cancelled as i32),
            Some(Ending::Cancelled)
        );
        assert_eq!(Ending::of_status(RunStatus::Running as i32), None);
        assert!(!Ending::Unfinished.is_terminal());
        assert!(Ending::Succeeded.is_terminal());
    }
}
