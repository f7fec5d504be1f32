//! A step input that breaks the skill's input schema fails the step, without
//! retries, with the JSON Pointer of the offending field.

use synod_integration_tests::TestOrchestrator;
use synod_integration_tests::events::failures;
use synod_integration_tests::experts::{serve, worker_expert};
use synod_proto::orchestrator::RunStatus;
use synod_types::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_that_breaks_the_skill_schema_fails_naming_the_field() -> anyhow::Result<()> {
    let expert = serve(worker_expert("only")).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;
    let workflow = r#"
name: bad-input
inputs:
  n: { type: string }
steps:
  work:
    uses: worker/work
    with: { n: "${{ inputs.n }}" }
    retry: { policy: fixed, interval: 10ms, max_attempts: 3 }
"#;

    let run = orchestrator
        .run(workflow, serde_json::json!({ "n": "seven" }))
        .await?;

    assert_eq!(run.status(), RunStatus::Failed, "{:#?}", run.events);
    let failed = failures(&run.events, "work");
    assert_eq!(
        failed.len(),
        1,
        "invalid input must not be retried: {failed:?}"
    );
    let (_, error, will_retry) = failed[0];
    assert!(!will_retry);
    assert_eq!(error.code, ErrorCode::InvalidInput, "{error:?}");
    assert!(error.message.contains("/n"), "names the field: {error}");
    assert!(
        error.message.contains("integer"),
        "says what was expected: {error}"
    );
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}
