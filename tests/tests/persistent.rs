//! The same watch guarantees on the SQLite run store, and finished runs
//! readable (GetRun, WatchRun, SSE replay) after the orchestrator restarts
//! on the same database.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use synod_integration_tests::events::{check_complete_after, decode};
use synod_integration_tests::experts::{gate_expert, serve, text_expert};
use synod_integration_tests::sse::read_events;
use synod_integration_tests::{TempDir, TestOrchestrator, fast_config, within};
use synod_proto::orchestrator::RunStatus;
use synod_store::RunStore;

use crate::watch::GATED;

async fn sqlite(dir: &TempDir) -> anyhow::Result<Arc<dyn RunStore>> {
    let url = format!("sqlite://{}", dir.path().join("runs.db").display());
    Ok(synod_store::open(&url).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resume_and_replay_after_restart_on_sqlite() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let text = serve(text_expert()).await?;
    let (gate_builder, gate) = gate_expert();
    let gate_server = serve(gate_builder).await?;
    let mut config = fast_config();
    config.static_experts = vec![
        text.endpoint().to_owned(),
        gate_server.endpoint().to_owned(),
    ];
    let orchestrator =
        TestOrchestrator::start_with_store(config.clone(), sqlite(&dir).await?).await?;
    let run_id = orchestrator.start_run(GATED, Value::Null).await?;
    gate.wait_entered(1).await?;

    // Two events, then disconnect; resume over gRPC and SSE while live.
    let mut first = orchestrator.watch(&run_id, 0).await?;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let message = within("an event", first.next()).await?;
        seen.push(decode(
            &message.ok_or_else(|| anyhow::anyhow!("stream ended"))??,
        )?);
    }
    drop(first);
    let resumed = orchestrator.watch(&run_id, 2).await?;
    let events_url = format!("{}/runs/{run_id}/events", orchestrator.http_url());
    let by_sse = orchestrator
        .http()
        .get(&events_url)
        .header("Last-Event-ID", "2")
        .send()
        .await?;
    gate.open();
    let rest = within("the resumed watch", async {
        resumed
            .map(|message| decode(&message?))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await??;
    let by_sse = read_events(by_sse, None).await?;
    check_complete_after(&rest, 2)?;
    assert_eq!(rest, by_sse);
    seen.extend(rest);
    let full = orchestrator.events(&run_id, 0).await?;
    assert_eq!(seen, full);
    orchestrator.shutdown().await?;

    // A new orchestrator on the same database still serves the run.
    let restarted = TestOrchestrator::start_with_store(config, sqlite(&dir).await?).await?;
    let info = restarted.get_run(&run_id).await?;
    assert_eq!(info.status, RunStatus::Succeeded as i32, "{info:?}");
    assert_eq!(info.last_seq, full.len() as u64);
    assert_eq!(restarted.events(&run_id, 0).await?, full);
    let events_url = format!("{}/runs/{run_id}/events", restarted.http_url());
    let replay = restarted
        .http()
        .get(format!("{events_url}?after_seq=3"))
        .send()
        .await?;
    assert_eq!(read_events(replay, None).await?, full[3..]);
    restarted.shutdown().await?;
    text.shutdown().await?;
    gate_server.shutdown().await?;
    Ok(())
}
