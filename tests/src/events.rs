//! Run events as tests see them: decoded from their CloudEvents JSON (the
//! bytes both `WatchRun` and SSE send), and checks on whole sequences.

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;
use synod_proto::orchestrator::RunEventMessage;
use synod_types::error::StepError;
use synod_types::{CloudEvent, RunEvent, RunEventKind};

/// Decodes a `WatchRun` message from its `cloud_event_json` and checks that
/// the convenience fields (run id, seq, type, subject) agree with it.
pub fn decode(message: &RunEventMessage) -> anyhow::Result<RunEvent> {
    let event = decode_cloud_event(&message.cloud_event_json)?;
    ensure!(
        event.seq == message.seq
            && event.run_id.to_string() == message.run_id
            && event.kind.cloud_event_type() == message.r#type
            && event.kind.step().map(|s| s.as_str()).unwrap_or_default() == message.subject,
        "WatchRun message fields (seq {}, run {}, type {}, subject {:?}) disagree with its CloudEvent {}",
        message.seq,
        message.run_id,
        message.r#type,
        message.subject,
        message.cloud_event_json
    );
    Ok(event)
}

/// Decodes one CloudEvents 1.0 JSON text into a run event, checking the
/// CloudEvents envelope (`specversion`, `id`, `source`, `type`).
pub fn decode_cloud_event(json: &str) -> anyhow::Result<RunEvent> {
    let cloud: CloudEvent =
        serde_json::from_str(json).with_context(|| format!("not a CloudEvent: {json}"))?;
    ensure!(cloud.specversion == "1.0", "specversion is not 1.0: {json}");
    let event = RunEvent::from_cloud_event(&cloud)
        .with_context(|| format!("CloudEvent data is not a run event: {json}"))?;
    ensure!(
        cloud.id == format!("{}:{}", event.run_id, event.seq)
            && cloud.source == format!("synod/runs/{}", event.run_id)
            && cloud.event_type == event.kind.cloud_event_type(),
        "inconsistent CloudEvent envelope: {json}"
    );
    Ok(event)
}

/// Checks that `events` are exactly seq `after_seq + 1, after_seq + 2, …`
/// (no gap, no duplicate, in order) and end with the run's only terminal
/// event.
pub fn check_complete_after(events: &[RunEvent], after_seq: u64) -> anyhow::Result<()> {
    check_contiguous(events, after_seq)?;
    let Some(last) = events.last() else {
        bail!("no events after seq {after_seq}");
    };
    ensure!(
        last.kind.is_terminal(),
        "the last event (seq {}) is not terminal: {:?}",
        last.seq,
        last.kind
    );
    let terminals = events.iter().filter(|e| e.kind.is_terminal()).count();
    ensure!(terminals == 1, "{terminals} terminal events");
    Ok(())
}

/// Checks that `events` are exactly seq `after_seq + 1, after_seq + 2, …`.
pub fn check_contiguous(events: &[RunEvent], after_seq: u64) -> anyhow::Result<()> {
    for (index, event) in events.iter().enumerate() {
        let expected = after_seq + 1 + index as u64;
        ensure!(
            event.seq == expected,
            "event #{index} has seq {} where {expected} was expected (gap, duplicate or reorder); seqs: {:?}",
            event.seq,
            events.iter().map(|e| e.seq).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// The CloudEvents types of `events`, in order (e.g. `synod.step.started`).
pub fn types(events: &[RunEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.cloud_event_type()).collect()
}

/// The events about step `step`, in order.
pub fn of_step<'a>(events: &'a [RunEvent], step: &str) -> Vec<&'a RunEventKind> {
    events
        .iter()
        .filter(|e| e.kind.step().is_some_and(|s| s.as_str() == step))
        .map(|e| &e.kind)
        .collect()
}

/// Position in `events` of the first event of type `event_type` about
/// `step`.
pub fn position(events: &[RunEvent], event_type: &str, step: &str) -> anyhow::Result<usize> {
    events
        .iter()
        .position(|e| {
            e.kind.cloud_event_type() == event_type
                && e.kind.step().is_some_and(|s| s.as_str() == step)
        })
        .with_context(|| {
            format!(
                "no `{event_type}` event for step `{step}`; events: {:?}",
                types(events)
            )
        })
}

/// The output of step `step` from its `StepSucceeded` event.
pub fn output(events: &[RunEvent], step: &str) -> anyhow::Result<Value> {
    succeeded(events, step).map(|(output, _)| output.clone())
}

/// The instance that served step `step`, from its `StepSucceeded` event.
pub fn instance(events: &[RunEvent], step: &str) -> anyhow::Result<String> {
    succeeded(events, step).map(|(_, instance)| instance.to_owned())
}

fn succeeded<'a>(events: &'a [RunEvent], step: &str) -> anyhow::Result<(&'a Value, &'a str)> {
    of_step(events, step)
        .into_iter()
        .find_map(|kind| match kind {
            RunEventKind::StepSucceeded {
                output, instance, ..
            } => Some((output, instance.as_str())),
            _ => None,
        })
        .with_context(|| {
            format!(
                "step `{step}` did not succeed; its events: {:?}",
                of_step(events, step)
            )
        })
}

/// Every `StepFailed` of step `step` as `(attempt, error, will_retry)`.
pub fn failures<'a>(events: &'a [RunEvent], step: &str) -> Vec<(u32, &'a StepError, bool)> {
    of_step(events, step)
        .into_iter()
        .filter_map(|kind| match kind {
            RunEventKind::StepFailed {
                attempt,
                error,
                will_retry,
                ..
            } => Some((*attempt, error, *will_retry)),
            _ => None,
        })
        .collect()
}

/// The error of the run's `RunFailed` event, if it failed.
pub fn run_error(events: &[RunEvent]) -> Option<String> {
    events.iter().find_map(|event| match &event.kind {
        RunEventKind::RunFailed { error, .. } => Some(error.clone()),
        _ => None,
    })
}

/// No event, in its wire form, holds the secret.
pub fn assert_secret_absent(events: &[RunEvent], secret: &str) {
    for event in events {
        let json = event.to_cloud_event_json();
        assert!(
            !json.contains(secret),
            "secret in event #{}: {json}",
            event.seq
        );
    }
}

/// (round, critic, verdict, stop) of every `StepReflected`, in order.
pub fn reflections(events: &[RunEvent]) -> Vec<(u32, String, String, Option<String>)> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            RunEventKind::StepReflected {
                round,
                critic,
                verdict,
                stop,
                ..
            } => Some((*round, critic.clone(), verdict.clone(), stop.clone())),
            _ => None,
        })
        .collect()
}

/// The `uses` of every choice of a `RunPlanned` event, in order.
pub fn chosen_skills(choices: &Value) -> Vec<String> {
    choices
        .as_array()
        .unwrap()
        .iter()
        .map(|choice| choice["uses"].as_str().unwrap().to_owned())
        .collect()
}
