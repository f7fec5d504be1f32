//! Bounded concurrency: a run never has more attempts in flight than the
//! executor's `max_concurrency`, and independent steps do run in parallel.

use std::time::Duration;

use serde_json::Value;
use synod_integration_tests::experts::{busy_expert, serve};
use synod_integration_tests::{TestOrchestrator, eventually, fast_config};
use synod_proto::orchestrator::RunStatus;

const FAN_OUT: &str = r#"
name: fan-out
steps:
  s1: { uses: busy/work }
  s2: { uses: busy/work }
  s3: { uses: busy/work }
  s4: { uses: busy/work }
  s5: { uses: busy/work }
  s6: { uses: busy/work }
"#;

/// Runs six independent steps with `max_concurrency` and checks that
/// exactly `expected` calls are held at the expert at once.
async fn check_in_flight(max_concurrency: Option<usize>, expected: u32) -> anyhow::Result<()> {
    let (builder, probe) = busy_expert();
    let expert = serve(builder).await?;
    let mut config = fast_config();
    config.static_experts = vec![expert.endpoint().to_owned()];
    if let Some(limit) = max_concurrency {
        config.executor.max_concurrency = limit;
    }
    let orchestrator = TestOrchestrator::start_with(config).await?;
    let run_id = orchestrator.start_run(FAN_OUT, Value::Null).await?;

    eventually("the calls to reach the expert", || async {
        Ok((probe.current() == expected).then_some(()))
    })
    .await?;
    // Give a call beyond the limit time to arrive (none may).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        probe.current(),
        expected,
        "max_concurrency {max_concurrency:?}"
    );
    probe.release();
    let run = orchestrator.finish(&run_id).await?;

    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    assert_eq!(probe.max(), expected, "max_concurrency {max_concurrency:?}");
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_in_flight_never_exceed_max_concurrency() -> anyhow::Result<()> {
    check_in_flight(Some(2), 2).await?;
    check_in_flight(Some(1), 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_steps_run_in_parallel_by_default() -> anyhow::Result<()> {
    check_in_flight(None, 6).await
}
