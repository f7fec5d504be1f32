//! A diamond DAG (a -> b, a -> c, b + c -> d) runs to success with data
//! flowing along every edge.

use serde_json::json;
use synod_integration_tests::TestOrchestrator;
use synod_integration_tests::events::{check_complete_after, output, position};
use synod_integration_tests::experts::{serve, text_expert};
use synod_proto::orchestrator::{ListRunsRequest, RunStatus};

const DIAMOND: &str = r#"
name: diamond
inputs:
  seed:
    type: string
    required: true
steps:
  a:
    uses: text/tag
    with: { text: "${{ inputs.seed }}", tag: "a" }
  b:
    needs: [a]
    uses: text/tag
    with: { text: "${{ steps.a.output.text }}", tag: "b" }
  c:
    needs: [a]
    uses: text/tag
    with: { text: "${{ steps.a.output.text }}", tag: "c" }
  d:
    needs: [b, c]
    uses: text/join
    with:
      parts: ["${{ steps.b.output.text }}", "${{ steps.c.output.text }}"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diamond_runs_to_success_with_outputs_flowing_along_edges() -> anyhow::Result<()> {
    let expert = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;

    let run = orchestrator.run(DIAMOND, json!({ "seed": "s" })).await?;

    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    assert_eq!(output(&run.events, "a")?, json!({ "text": "s/a" }));
    assert_eq!(output(&run.events, "b")?, json!({ "text": "s/a/b" }));
    assert_eq!(output(&run.events, "c")?, json!({ "text": "s/a/c" }));
    assert_eq!(
        output(&run.events, "d")?,
        json!({ "joined": "s/a/b + s/a/c", "count": 2 })
    );
    // Order: a before b and c; b and c in flight together; d after both.
    let a_done = position(&run.events, "synod.step.succeeded", "a")?;
    let b_start = position(&run.events, "synod.step.started", "b")?;
    let c_start = position(&run.events, "synod.step.started", "c")?;
    let b_done = position(&run.events, "synod.step.succeeded", "b")?;
    let c_done = position(&run.events, "synod.step.succeeded", "c")?;
    let d_start = position(&run.events, "synod.step.started", "d")?;
    assert!(a_done < b_start && a_done < c_start);
    assert!(
        b_start < c_done && c_start < b_done,
        "b and c did not overlap"
    );
    assert!(b_done < d_start && c_done < d_start);
    // GetRun agrees with the events.
    for step in ["a", "b", "c", "d"] {
        let info = run.step(step)?;
        assert_eq!(info.status, "succeeded", "{info:?}");
        assert_eq!(info.attempts, 1, "{info:?}");
    }
    assert_eq!(run.step("d")?.needs, vec!["b", "c"]);
    let result = synod_proto::json::opt_struct_to_json(run.info.result.as_ref())?;
    assert_eq!(result["d"]["joined"], "s/a/b + s/a/c", "{result}");
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_run_rejects_inputs_that_do_not_match_the_workflow() -> anyhow::Result<()> {
    let expert = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;

    let missing = orchestrator
        .start_run(DIAMOND, json!({}))
        .await
        .expect_err("`seed` is required");
    assert!(missing.to_string().contains("`seed`"), "{missing}");
    let response = orchestrator
        .http()
        .post(format!("{}/runs", orchestrator.http_url()))
        .json(&json!({ "workflow_yaml": DIAMOND, "inputs": { "seed": 7, "extra": true } }))
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await?;
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("`seed` must be a string"), "{body}");
    assert!(error.contains("unknown input `extra`"), "{body}");
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_keep_their_data_apart() -> anyhow::Result<()> {
    const RUNS: usize = 16;
    let expert = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;

    let mut started = Vec::new();
    for index in 0..RUNS {
        let seed = format!("seed{index}");
        started.push((
            orchestrator
                .start_run(DIAMOND, json!({ "seed": seed }))
                .await?,
            seed,
        ));
    }
    let finished = futures::future::try_join_all(
        started
            .iter()
            .map(|(run_id, _)| orchestrator.finish(run_id)),
    )
    .await?;

    for (run, (_, seed)) in finished.iter().zip(&started) {
        assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
        check_complete_after(&run.events, 0)?;
        assert_eq!(
            output(&run.events, "d")?["joined"],
            format!("{seed}/a/b + {seed}/a/c")
        );
    }
    // ListRuns: newest first, limited.
    let listed = orchestrator
        .runs()
        .list_runs(ListRunsRequest { limit: 5 })
        .await?
        .into_inner()
        .runs;
    let newest: Vec<&str> = started
        .iter()
        .rev()
        .take(5)
        .map(|(id, _)| id.as_str())
        .collect();
    let listed: Vec<&str> = listed.iter().map(|run| run.run_id.as_str()).collect();
    assert_eq!(listed, newest);
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}
