//! `WatchRun` resume: a watcher that disconnects and reconnects with
//! `after_seq = N` gets exactly the events after N, in order, without gaps or
//! duplicates, up to the terminal event, whether the run is still live or
//! already finished.

use anyhow::Context as _;
use futures::StreamExt;
use serde_json::Value;
use synod_integration_tests::events::{check_complete_after, decode};
use synod_integration_tests::experts::{gate_expert, serve, text_expert};
use synod_integration_tests::{TestOrchestrator, within};
use synod_proto::orchestrator::{RunStatus, WatchRunRequest};

/// `first`, then a gate the test holds, then `last`.
pub(crate) const GATED: &str = r#"
name: gated
steps:
  first:
    uses: text/tag
    with: { text: "x", tag: "1" }
  hold:
    needs: [first]
    uses: gate/wait
  last:
    needs: [hold]
    uses: text/tag
    with: { text: "${{ steps.first.output.text }}", tag: "2" }
"#;

/// The error of `WatchRun` on a run id nobody started.
async fn watch_unknown_run(orchestrator: &TestOrchestrator, recorded_only: bool) -> tonic::Status {
    orchestrator
        .runs()
        .watch_run(WatchRunRequest {
            run_id: "00000000-0000-4000-8000-000000000000".to_owned(),
            after_seq: 0,
            recorded_only,
        })
        .await
        .expect_err("unknown run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_from_a_sequence_number_without_gaps_or_duplicates() -> anyhow::Result<()> {
    let text = serve(text_expert()).await?;
    let (gate_builder, gate) = gate_expert();
    let gate_server = serve(gate_builder).await?;
    let orchestrator = TestOrchestrator::start(&[text.endpoint(), gate_server.endpoint()]).await?;
    let run_id = orchestrator.start_run(GATED, Value::Null).await?;

    // Live: read until the gated step started, then disconnect.
    let mut stream = orchestrator.watch(&run_id, 0).await?;
    let mut seen = Vec::new();
    within("the gated step to start", async {
        while let Some(message) = stream.next().await {
            let event = decode(&message?)?;
            let at_gate = event.kind.step().is_some_and(|s| s.as_str() == "hold");
            seen.push(event);
            if at_gate {
                break;
            }
        }
        Ok::<(), anyhow::Error>(())
    })
    .await??;
    drop(stream);
    check_complete_after(&seen, 0).expect_err("the run cannot have ended at the gate");
    // Reconnect from the middle of what was seen, while the run is live.
    let resume_at = seen.len() as u64 - 1;
    let resumed = orchestrator.watch(&run_id, resume_at).await?;
    gate.open();
    let rest = within("the resumed watch to end", async {
        let mut rest = Vec::new();
        let mut resumed = resumed;
        while let Some(message) = resumed.next().await {
            rest.push(decode(&message?)?);
        }
        Ok::<_, anyhow::Error>(rest)
    })
    .await??;

    check_complete_after(&rest, resume_at)?;
    let mut stitched = seen[..resume_at as usize].to_vec();
    stitched.extend(rest);
    check_complete_after(&stitched, 0)?;
    let full = orchestrator.events(&run_id, 0).await?;
    assert_eq!(stitched, full, "resumed watch differs from a full replay");
    assert_eq!(
        orchestrator.get_run(&run_id).await?.status,
        RunStatus::Succeeded as i32
    );
    // After the end: every resume point gives exactly the suffix.
    let last = full.len() as u64;
    for after in 0..=last {
        let suffix = orchestrator.events(&run_id, after).await?;
        assert_eq!(suffix, full[after as usize..], "after_seq {after}");
    }
    assert!(orchestrator.events(&run_id, last + 5).await?.is_empty());
    assert_eq!(orchestrator.get_run(&run_id).await?.last_seq, last);

    let unknown = watch_unknown_run(&orchestrator, false).await;
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown}");
    orchestrator.shutdown().await?;
    text.shutdown().await?;
    gate_server.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_still_gets_every_event_once() -> anyhow::Result<()> {
    // More events than the store's live buffer (1024) while the watcher
    // reads nothing: its subscription lags and must catch up from the log.
    const STEPS: usize = 600;
    let text = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[text.endpoint()]).await?;
    let mut workflow = String::from("name: wide\nsteps:\n");
    for index in 0..STEPS {
        workflow.push_str(&format!(
            "  s{index}: {{ uses: text/join, with: {{ parts: [\"{index}\"] }} }}\n"
        ));
    }
    let run_id = orchestrator.start_run(&workflow, Value::Null).await?;
    let mut slow = orchestrator.watch(&run_id, 0).await?;
    let first = within("the first event", slow.next())
        .await?
        .context("stream ended at once")??;
    let full = orchestrator.events(&run_id, 0).await?;
    // RunStarted, StepStarted + StepSucceeded per step (more if some
    // attempt was retried), RunSucceeded.
    assert!(full.len() >= 2 + 2 * STEPS, "{} events", full.len());

    let mut seen = vec![decode(&first)?];
    within("the slow watcher to catch up", async {
        while let Some(message) = slow.next().await {
            seen.push(decode(&message?)?);
        }
        Ok::<(), anyhow::Error>(())
    })
    .await??;
    check_complete_after(&seen, 0)?;
    assert_eq!(seen, full);
    orchestrator.shutdown().await?;
    text.shutdown().await?;
    Ok(())
}

/// Reads a `recorded_only` stream to its end (it must end on its own).
async fn recorded(
    orchestrator: &TestOrchestrator,
    run_id: &str,
    after_seq: u64,
) -> anyhow::Result<Vec<synod_types::RunEvent>> {
    let mut stream = orchestrator
        .runs()
        .watch_run(WatchRunRequest {
            run_id: run_id.to_owned(),
            after_seq,
            recorded_only: true,
        })
        .await?
        .into_inner();
    within("a recorded_only stream to end", async {
        let mut events = Vec::new();
        while let Some(message) = stream.next().await {
            events.push(decode(&message?)?);
        }
        Ok::<_, anyhow::Error>(events)
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_only_gives_what_a_live_run_recorded_so_far_and_ends() -> anyhow::Result<()> {
    let text = serve(text_expert()).await?;
    let (gate_builder, gate) = gate_expert();
    let gate_server = serve(gate_builder).await?;
    let orchestrator = TestOrchestrator::start(&[text.endpoint(), gate_server.endpoint()]).await?;
    let run_id = orchestrator.start_run(GATED, Value::Null).await?;
    gate.wait_entered(1).await?;

    // The run is held at the gate: the stream ends without a terminal event.
    let so_far = recorded(&orchestrator, &run_id, 0).await?;
    check_complete_after(&so_far, 0).expect_err("the run cannot have ended at the gate");
    assert!(
        so_far
            .iter()
            .any(|e| e.kind.step().is_some_and(|s| s.as_str() == "hold")),
        "the gated step's start is recorded: {so_far:?}"
    );
    let tail = recorded(&orchestrator, &run_id, 2).await?;
    assert_eq!(tail, so_far[2..], "after_seq applies");

    gate.open();
    let finished = orchestrator.events(&run_id, 0).await?;
    let all = recorded(&orchestrator, &run_id, 0).await?;
    check_complete_after(&all, 0)?;
    assert_eq!(all, finished);

    let unknown = watch_unknown_run(&orchestrator, true).await;
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown}");
    orchestrator.shutdown().await?;
    text.shutdown().await?;
    gate_server.shutdown().await?;
    Ok(())
}
