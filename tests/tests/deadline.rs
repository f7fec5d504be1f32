//! A hanging expert: the step's `timeout` is sent as the gRPC deadline, the
//! attempt fails when it passes, and the run ends `Failed` instead of
//! hanging.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use synod_integration_tests::events::{check_complete_after, failures};
use synod_integration_tests::experts::{hanging_expert, serve, text_expert};
use synod_integration_tests::{TestOrchestrator, eventually};
use synod_proto::orchestrator::RunStatus;
use synod_types::{ErrorCode, RunEventKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_expert_hits_the_step_deadline_and_the_run_fails() -> anyhow::Result<()> {
    let (builder, probe) = hanging_expert();
    let sleepy = serve(builder).await?;
    let text = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[sleepy.endpoint(), text.endpoint()]).await?;
    let workflow = r#"
name: hangs
steps:
  stuck:
    uses: sleepy/hang
    timeout: 300ms
    retry: { policy: fixed, interval: 10ms, max_attempts: 2 }
  next:
    needs: [stuck]
    uses: text/tag
    with: { text: "x", tag: "y" }
"#;

    let started = Instant::now();
    let run = orchestrator.run(workflow, Value::Null).await?;
    let elapsed = started.elapsed();

    assert_eq!(run.status(), RunStatus::Failed, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    // Two attempts of 300 ms each (deadline exceeded is retryable).
    let failed = failures(&run.events, "stuck");
    assert_eq!(failed.len(), 2, "{failed:?}");
    for (attempt, error, will_retry) in &failed {
        assert_eq!(error.code, ErrorCode::DeadlineExceeded, "{error:?}");
        assert_eq!(*will_retry, *attempt == 1);
        assert!(error.message.contains("deadline"), "{error}");
    }
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(5),
        "the run took {elapsed:?}; two 300 ms attempts were expected"
    );
    // The deadline travelled as the gRPC deadline to the expert.
    let remaining = probe.remaining();
    assert_eq!(remaining.len(), 2, "{remaining:?}");
    for left in remaining {
        let left = left.expect("the call carried no deadline");
        assert!(left <= Duration::from_millis(300), "{left:?}");
    }
    // Both handlers were dropped at the expert, none is left running.
    eventually("the expert to drop both hanging calls", || async {
        Ok((probe.dropped.load(Ordering::SeqCst) == 2).then_some(()))
    })
    .await?;
    let stuck = run.step("stuck")?;
    assert_eq!(stuck.status, "timed_out", "{stuck:?}");
    assert_eq!(stuck.attempts, 2);
    assert_eq!(run.step("next")?.status, "skipped");
    match &run.events.last().map(|e| &e.kind) {
        Some(RunEventKind::RunFailed {
            failed_steps,
            error,
        }) => {
            assert_eq!(failed_steps.len(), 1, "{error}");
            assert_eq!(failed_steps[0].as_str(), "stuck");
        }
        other => panic!("expected RunFailed, got {other:?}"),
    }
    orchestrator.shutdown().await?;
    sleepy.shutdown().await?;
    text.shutdown().await?;
    Ok(())
}
