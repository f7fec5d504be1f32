//! Bounded concurrency: a run never has more attempts in flight than the
//! executor's `max_concurrency`, and independent steps do run in parallel.

use serde_json::Value;
use synod_integration_tests::experts::{busy_expert, serve};
use synod_integration_tests::{TestOrchestrator, fast_config};
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

async fn max_in_flight(max_concurrency: Option<usize>) -> anyhow::Result<u32> {
    let (builder, probe) = busy_expert();
    let expert = serve(builder).await?;
    let mut config = fast_config();
    config.static_experts = vec![expert.endpoint().to_owned()];
    if let Some(limit) = max_concurrency {
        config.executor.max_concurrency = limit;
    }
    let orchestrator = TestOrchestrator::start_with(config).await?;
    let run = orchestrator.run(FAN_OUT, Value::Null).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(probe.max())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_in_flight_never_exceed_max_concurrency() -> anyhow::Result<()> {
    assert_eq!(max_in_flight(Some(2)).await?, 2);
    assert_eq!(max_in_flight(Some(1)).await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_steps_run_in_parallel_by_default() -> anyhow::Result<()> {
    assert_eq!(max_in_flight(None).await?, 6);
    Ok(())
}
