//! Cancelling a running run, over gRPC (`CancelRun`) and HTTP
//! (`POST /runs/{id}/cancel`): the run ends `Cancelled`, the in-flight step
//! is cancelled (and its call dropped at the expert), pending steps too.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;

use serde_json::{Value, json};
use synod_expert_sdk::ExpertHandle;
use synod_integration_tests::events::{check_complete_after, decode, of_step};
use synod_integration_tests::experts::{
    HangProbe, flaky_expert, hanging_expert, serve, text_expert,
};
use synod_integration_tests::{Finished, TestOrchestrator, eventually, within};
use synod_proto::orchestrator::{CancelRunRequest, RunStatus};
use synod_types::RunEventKind;

const STUCK: &str = r#"
name: stuck
steps:
  first:
    uses: text/tag
    with: { text: "x", tag: "y" }
  stuck:
    needs: [first]
    uses: sleepy/hang
    timeout: 30s
  never:
    needs: [stuck]
    uses: text/tag
    with: { text: "x", tag: "z" }
"#;

struct Setup {
    orchestrator: TestOrchestrator,
    probe: Arc<HangProbe>,
    experts: Vec<ExpertHandle>,
    run_id: String,
}

/// Starts the run and returns once the hanging call is inside the expert.
async fn run_until_stuck() -> anyhow::Result<Setup> {
    let (builder, probe) = hanging_expert();
    let sleepy = serve(builder).await?;
    let text = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[sleepy.endpoint(), text.endpoint()]).await?;
    let run_id = orchestrator.start_run(STUCK, Value::Null).await?;
    eventually("the hanging call to reach the expert", || async {
        Ok((probe.started.load(Ordering::SeqCst) == 1).then_some(()))
    })
    .await?;
    Ok(Setup {
        orchestrator,
        probe,
        experts: vec![sleepy, text],
        run_id,
    })
}

/// Checks the run ended cancelled with the in-flight and pending steps
/// cancelled, and that the expert dropped the call.
async fn check_cancelled(run: &Finished, probe: &HangProbe) -> anyhow::Result<()> {
    assert_eq!(run.status(), RunStatus::Cancelled, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    assert!(
        matches!(
            run.events.last().map(|e| &e.kind),
            Some(RunEventKind::RunCancelled { .. })
        ),
        "{:?}",
        run.events.last()
    );
    assert_eq!(run.step("first")?.status, "succeeded");
    for step in ["stuck", "never"] {
        assert_eq!(run.step(step)?.status, "cancelled", "{step}");
        assert!(
            of_step(&run.events, step)
                .iter()
                .any(|kind| matches!(kind, RunEventKind::StepCancelled { .. })),
            "no StepCancelled for {step}"
        );
    }
    assert!(
        !of_step(&run.events, "never")
            .iter()
            .any(|kind| matches!(kind, RunEventKind::StepStarted { .. })),
        "a step after the cancelled one started"
    );
    eventually("the expert to drop the cancelled call", || async {
        Ok((probe.dropped.load(Ordering::SeqCst) == 1).then_some(()))
    })
    .await?;
    Ok(())
}

async fn stop(setup: Setup) -> anyhow::Result<()> {
    setup.orchestrator.shutdown().await?;
    for expert in setup.experts {
        expert.shutdown().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_run_over_grpc_cancels_the_in_flight_step() -> anyhow::Result<()> {
    let setup = run_until_stuck().await?;
    let mut runs = setup.orchestrator.runs();
    let request = |run_id: &str| CancelRunRequest {
        run_id: run_id.to_owned(),
        reason: "operator said so".to_owned(),
    };

    let answer = runs.cancel_run(request(&setup.run_id)).await?.into_inner();
    assert!(answer.cancelled);
    let run = setup.orchestrator.finish(&setup.run_id).await?;

    check_cancelled(&run, &setup.probe).await?;
    // Cancelling again: the run has ended.
    let again = runs.cancel_run(request(&setup.run_id)).await?.into_inner();
    assert!(!again.cancelled);
    // Unknown and malformed run ids.
    let unknown = runs
        .cancel_run(request("00000000-0000-4000-8000-000000000000"))
        .await
        .expect_err("unknown run");
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown}");
    let malformed = runs
        .cancel_run(request("not-a-run"))
        .await
        .expect_err("malformed id");
    assert_eq!(
        malformed.code(),
        tonic::Code::InvalidArgument,
        "{malformed}"
    );
    stop(setup).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_over_http_cancels_the_in_flight_step() -> anyhow::Result<()> {
    let setup = run_until_stuck().await?;
    let http = setup.orchestrator.http();
    let url = |run_id: &str| format!("{}/runs/{run_id}/cancel", setup.orchestrator.http_url());

    let response = http.post(url(&setup.run_id)).send().await?;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await?,
        json!({ "cancelled": true })
    );
    let run = setup.orchestrator.finish(&setup.run_id).await?;

    check_cancelled(&run, &setup.probe).await?;
    let again = http.post(url(&setup.run_id)).send().await?;
    assert_eq!(again.json::<Value>().await?, json!({ "cancelled": false }));
    let unknown = http
        .post(url("00000000-0000-4000-8000-000000000000"))
        .send()
        .await?;
    assert_eq!(unknown.status(), reqwest::StatusCode::NOT_FOUND);
    // The HTTP view of the run agrees.
    let view: Value = http
        .get(format!(
            "{}/runs/{}",
            setup.orchestrator.http_url(),
            setup.run_id
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(view["status"], "cancelled", "{view}");
    stop(setup).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_during_a_retry_backoff_ends_the_run_at_once() -> anyhow::Result<()> {
    let (builder, calls) = flaky_expert(10);
    let expert = serve(builder).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;
    let workflow = r#"
name: backoff
steps:
  call:
    uses: flaky/flaky
    retry: { policy: fixed, interval: 30s, max_attempts: 3 }
"#;
    let run_id = orchestrator.start_run(workflow, Value::Null).await?;
    orchestrator
        .wait_for_event(&run_id, "the retry to be scheduled", |kind| {
            matches!(kind, RunEventKind::StepRetryScheduled { .. })
        })
        .await?;

    let started = Instant::now();
    let cancelled = orchestrator
        .runs()
        .cancel_run(CancelRunRequest {
            run_id: run_id.clone(),
            reason: String::new(),
        })
        .await?
        .into_inner();
    let run = orchestrator.finish(&run_id).await?;

    assert!(cancelled.cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited for the backoff"
    );
    assert_eq!(run.status(), RunStatus::Cancelled, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    assert_eq!(run.step("call")?.status, "cancelled");
    assert_eq!(calls.count(), 1, "no attempt after the cancel");
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_the_orchestrator_cancels_active_runs() -> anyhow::Result<()> {
    let setup = run_until_stuck().await?;
    let mut watch = setup.orchestrator.watch(&setup.run_id, 0).await?;

    setup.orchestrator.shutdown().await?;

    // The open watch still receives the end of the run.
    let mut events = Vec::new();
    within("the watch to end", async {
        while let Some(Ok(message)) = watch.next().await {
            events.push(decode(&message)?);
        }
        Ok::<(), anyhow::Error>(())
    })
    .await??;
    check_complete_after(&events, 0)?;
    assert!(
        matches!(
            events.last().map(|e| &e.kind),
            Some(RunEventKind::RunCancelled { .. })
        ),
        "{events:#?}"
    );
    eventually("the expert to drop the cancelled call", || async {
        Ok((setup.probe.dropped.load(Ordering::SeqCst) == 1).then_some(()))
    })
    .await?;
    for expert in setup.experts {
        expert.shutdown().await?;
    }
    Ok(())
}
