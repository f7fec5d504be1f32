//! Outputs that break the skill's output schema fail the step with an error
//! naming the violation, whether the SDK catches it inside the expert or the
//! orchestrator catches it (an expert written without the SDK).

use serde_json::Value;
use synod_integration_tests::TestOrchestrator;
use synod_integration_tests::events::{check_complete_after, failures};
use synod_integration_tests::experts::{serve, sloppy_expert};
use synod_integration_tests::rogue::serve_rogue;
use synod_proto::orchestrator::RunStatus;
use synod_types::ErrorCode;

fn workflow(uses: &str) -> String {
    format!(
        "name: invalid-output\nsteps:\n  count:\n    uses: {uses}\n    retry: {{ policy: fixed, interval: 10ms, max_attempts: 3 }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_rejects_output_that_breaks_the_card_schema() -> anyhow::Result<()> {
    let rogue = serve_rogue().await?;
    let orchestrator = TestOrchestrator::start(&[&rogue.endpoint]).await?;

    let run = orchestrator
        .run(&workflow("rogue/count"), Value::Null)
        .await?;

    assert_eq!(run.status(), RunStatus::Failed, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    let failed = failures(&run.events, "count");
    assert_eq!(
        failed.len(),
        1,
        "invalid output must not be retried: {failed:?}"
    );
    let (_, error, will_retry) = failed[0];
    assert!(!will_retry && !error.retryable);
    assert_eq!(error.code, ErrorCode::InvalidOutput, "{error:?}");
    assert_eq!(error.code_text, "SYN-R0005");
    let message = &error.message;
    assert!(message.contains("rogue/count"), "{message}");
    assert!(message.contains("output schema"), "{message}");
    assert!(message.contains("count"), "names the field: {message}");
    assert!(
        message.contains("integer"),
        "names the expected type: {message}"
    );
    let step = run.step("count")?;
    assert_eq!(step.status, "failed");
    assert!(step.error.contains("SYN-R0005"), "{step:?}");
    orchestrator.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_expert_reports_its_own_schema_violation() -> anyhow::Result<()> {
    let expert = serve(sloppy_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;

    let run = orchestrator
        .run(&workflow("sloppy/count"), Value::Null)
        .await?;

    assert_eq!(run.status(), RunStatus::Failed, "{:#?}", run.events);
    let failed = failures(&run.events, "count");
    assert_eq!(
        failed.len(),
        1,
        "a bug in the expert is not retried: {failed:?}"
    );
    let (_, error, _) = failed[0];
    assert_eq!(error.code, ErrorCode::ExpertFailed, "{error:?}");
    let message = &error.message;
    assert!(
        message.contains("does not match its output schema"),
        "{message}"
    );
    assert!(
        message.contains("`/count`"),
        "names the JSON pointer: {message}"
    );
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}
