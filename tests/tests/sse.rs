//! `GET /runs/{id}/events` (SSE): resume with `Last-Event-ID` or
//! `?after_seq=` gives exactly the events after that sequence number, in
//! order, up to the terminal event; unknown runs are 404, malformed
//! `Last-Event-ID` is 400.

use serde_json::Value;
use synod_integration_tests::TestOrchestrator;
use synod_integration_tests::events::check_complete_after;
use synod_integration_tests::experts::{gate_expert, serve, text_expert};
use synod_integration_tests::sse::read_events;

use crate::watch::GATED;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_resumes_with_last_event_id_and_after_seq() -> anyhow::Result<()> {
    let text = serve(text_expert()).await?;
    let (gate_builder, gate) = gate_expert();
    let gate_server = serve(gate_builder).await?;
    let orchestrator = TestOrchestrator::start(&[text.endpoint(), gate_server.endpoint()]).await?;
    let run_id = orchestrator.start_run(GATED, Value::Null).await?;
    let events_url = format!("{}/runs/{run_id}/events", orchestrator.http_url());
    let http = orchestrator.http();
    gate.wait_entered(1).await?;

    // Live: take the first two events, then disconnect.
    let first = read_events(http.get(&events_url).send().await?, Some(2)).await?;
    assert_eq!(first.len(), 2);
    let last_id = first[1].seq;
    // Reconnect with Last-Event-ID and with ?after_seq while the run is live.
    let by_header = http
        .get(&events_url)
        .header("Last-Event-ID", last_id.to_string())
        .send()
        .await?;
    let by_query = http
        .get(format!("{events_url}?after_seq={last_id}"))
        .send()
        .await?;
    gate.open();
    let by_header = read_events(by_header, None).await?;
    let by_query = read_events(by_query, None).await?;

    check_complete_after(&by_header, last_id)?;
    check_complete_after(&by_query, last_id)?;
    assert_eq!(by_header, by_query);
    let mut stitched = first.clone();
    stitched.extend(by_header);
    let full = orchestrator.events(&run_id, 0).await?;
    assert_eq!(stitched, full, "SSE resume differs from the gRPC replay");
    // After the end, from every point.
    for after in 0..=full.len() as u64 {
        let response = http
            .get(&events_url)
            .header("Last-Event-ID", after.to_string())
            .send()
            .await?;
        let suffix = read_events(response, None).await?;
        assert_eq!(suffix, full[after as usize..], "Last-Event-ID {after}");
    }
    // Last-Event-ID wins over the query, as a reconnecting browser sends it.
    let response = http
        .get(format!("{events_url}?after_seq=1"))
        .header("Last-Event-ID", "3")
        .send()
        .await?;
    check_complete_after(&read_events(response, None).await?, 3)?;

    orchestrator.shutdown().await?;
    text.shutdown().await?;
    gate_server.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_rejects_unknown_runs_and_malformed_last_event_ids() -> anyhow::Result<()> {
    let text = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[text.endpoint()]).await?;
    let http = orchestrator.http();
    let base = orchestrator.http_url();

    let unknown = http
        .get(format!(
            "{base}/runs/00000000-0000-4000-8000-000000000000/events"
        ))
        .send()
        .await?;
    assert_eq!(unknown.status(), reqwest::StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await?;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("not found")),
        "{body}"
    );

    let run = orchestrator
        .run(
            "name: one\nsteps:\n  a: { uses: text/tag, with: { text: x, tag: y } }\n",
            Value::Null,
        )
        .await?;
    let events_url = format!("{base}/runs/{}/events", run.run_id);
    for bad in ["abc", "-1", "1.5", ""] {
        let response = http
            .get(&events_url)
            .header("Last-Event-ID", bad)
            .send()
            .await?;
        assert_eq!(
            response.status(),
            reqwest::StatusCode::BAD_REQUEST,
            "Last-Event-ID `{bad}`"
        );
        let body: Value = response.json().await?;
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("Last-Event-ID")),
            "{body}"
        );
    }
    let malformed_run = http.get(format!("{base}/runs/nope/events")).send().await?;
    assert_eq!(malformed_run.status(), reqwest::StatusCode::BAD_REQUEST);
    let unknown_run = http
        .get(format!("{base}/runs/00000000-0000-4000-8000-000000000000"))
        .send()
        .await?;
    assert_eq!(unknown_run.status(), reqwest::StatusCode::NOT_FOUND);
    let malformed_run = http.get(format!("{base}/runs/nope")).send().await?;
    assert_eq!(malformed_run.status(), reqwest::StatusCode::BAD_REQUEST);
    orchestrator.shutdown().await?;
    text.shutdown().await?;
    Ok(())
}
