//! Retries: an expert failing twice with a retryable error, then answering,
//! is retried under the step's policy and the run succeeds; a permanent
//! error is not retried.

use std::time::Duration;

use serde_json::{Value, json};
use synod_integration_tests::TestOrchestrator;
use synod_integration_tests::events::{check_complete_after, failures, of_step, output};
use synod_integration_tests::experts::{flaky_expert, serve};
use synod_proto::orchestrator::RunStatus;
use synod_types::{ErrorCode, RunEvent, RunEventKind};

const FLAKY: &str = r#"
name: flaky
steps:
  call:
    uses: flaky/flaky
    retry: { policy: fixed, interval: 20ms, max_attempts: 3 }
  after:
    needs: [call]
    uses: flaky/flaky
"#;

/// For each `StepRetryScheduled` of `step`: the announced delay in ms and
/// the time from that event to the next attempt's `StepStarted`.
fn retry_delays(events: &[RunEvent], step: &str) -> Vec<(u64, Duration)> {
    let mut delays = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let RunEventKind::StepRetryScheduled {
            step: id, delay_ms, ..
        } = &event.kind
        else {
            continue;
        };
        if id.as_str() != step {
            continue;
        }
        let started = events[index..].iter().find(|later| {
            matches!(&later.kind, RunEventKind::StepStarted { step: s, .. } if s.as_str() == step)
        });
        let waited = started
            .and_then(|later| (later.time - event.time).to_std().ok())
            .unwrap_or_default();
        delays.push((*delay_ms, waited));
    }
    delays
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_until_the_step_succeeds() -> anyhow::Result<()> {
    let (builder, calls) = flaky_expert(2);
    let expert = serve(builder).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;

    let run = orchestrator.run(FLAKY, Value::Null).await?;

    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    // Attempts 1 and 2 failed retryably, each followed by a scheduled retry.
    let failed = failures(&run.events, "call");
    assert_eq!(failed.len(), 2, "{failed:?}");
    for (index, (attempt, error, will_retry)) in failed.iter().enumerate() {
        assert_eq!(*attempt, index as u32 + 1);
        assert!(*will_retry, "attempt {attempt} should be retried");
        assert_eq!(error.code, ErrorCode::ExpertTransient, "{error:?}");
        assert!(error.retryable);
        assert!(error.message.contains("simulated outage"), "{error}");
    }
    let sequence: Vec<(&str, u32)> = of_step(&run.events, "call")
        .into_iter()
        .map(|kind| match kind {
            RunEventKind::StepStarted { attempt, .. } => ("started", *attempt),
            RunEventKind::StepFailed { attempt, .. } => ("failed", *attempt),
            RunEventKind::StepRetryScheduled { next_attempt, .. } => ("retry", *next_attempt),
            RunEventKind::StepSucceeded { attempt, .. } => ("succeeded", *attempt),
            other => panic!("unexpected event for step `call`: {other:?}"),
        })
        .collect();
    assert_eq!(
        sequence,
        [
            ("started", 1),
            ("failed", 1),
            ("retry", 2),
            ("started", 2),
            ("failed", 2),
            ("retry", 3),
            ("started", 3),
            ("succeeded", 3),
        ]
    );
    assert_eq!(
        output(&run.events, "call")?,
        json!({ "calls": 3, "attempt": 3 })
    );
    let delays: Vec<u64> = retry_delays(&run.events, "call")
        .iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(delays, [20, 20], "fixed policy");
    // The expert saw each attempt number; the dependent step ran once.
    assert_eq!(calls.attempts(), [1, 2, 3, 1]);
    assert_eq!(run.step("call")?.attempts, 3);
    assert_eq!(run.step("after")?.status, "succeeded");
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_max_attempts_and_the_run_fails() -> anyhow::Result<()> {
    let (builder, calls) = flaky_expert(5);
    let expert = serve(builder).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;
    let workflow = FLAKY.replace(
        "{ policy: fixed, interval: 20ms, max_attempts: 3 }",
        "{ policy: exponential, initial_interval: 40ms, factor: 2, max_interval: 1s, max_attempts: 3 }",
    );

    let run = orchestrator.run(&workflow, Value::Null).await?;

    assert_eq!(run.status(), RunStatus::Failed, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    let failed = failures(&run.events, "call");
    let retried: Vec<bool> = failed
        .iter()
        .map(|(_, _, will_retry)| *will_retry)
        .collect();
    assert_eq!(retried, [true, true, false]);
    assert_eq!(calls.count(), 3, "max_attempts is 3");
    // Exponential backoff with equal jitter: 40 ms then 80 ms, each at least
    // half fixed; the next attempt starts no earlier than announced.
    let delays = retry_delays(&run.events, "call");
    assert_eq!(delays.len(), 2, "{delays:?}");
    assert!((20..=40).contains(&delays[0].0), "{delays:?}");
    assert!((40..=80).contains(&delays[1].0), "{delays:?}");
    for (delay_ms, waited) in delays {
        assert!(
            waited >= Duration::from_millis(delay_ms),
            "{waited:?} < {delay_ms} ms"
        );
    }
    assert_eq!(run.step("after")?.status, "skipped");
    match &run.events.last().map(|e| &e.kind) {
        Some(RunEventKind::RunFailed { failed_steps, .. }) => {
            assert_eq!(failed_steps.len(), 1);
            assert_eq!(failed_steps[0].as_str(), "call");
        }
        other => panic!("expected RunFailed, got {other:?}"),
    }
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_are_not_retried() -> anyhow::Result<()> {
    let (builder, calls) = flaky_expert(0);
    let expert = serve(builder).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;
    let workflow = r#"
name: broken
steps:
  call:
    uses: flaky/broken
    retry: { policy: fixed, interval: 20ms, max_attempts: 3 }
"#;

    let run = orchestrator.run(workflow, Value::Null).await?;

    assert_eq!(run.status(), RunStatus::Failed);
    let failed = failures(&run.events, "call");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let (_, error, will_retry) = failed[0];
    assert!(!will_retry);
    assert!(!error.retryable);
    assert_eq!(error.code, ErrorCode::ExpertFailed, "{error:?}");
    assert!(
        error.message.contains("simulated bug in the expert"),
        "{error}"
    );
    assert_eq!(calls.count(), 1);
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}
