//! The dashboard in headless Chromium (WebDriver): the IOC triage workflow
//! runs through the demo experts, the run page shows the live DAG until
//! every node has succeeded, the event log and the step panel; the secret
//! input never reaches the page. Saves `test-artifacts/dashboard-run.png`
//! (under `CARGO_TARGET_DIR` or `target/`).
//!
//! Needs Chromium: `scripts/setup-browser.sh` (CI runs it).

use anyhow::Context as _;
use serde_json::{Value, json};
use synod_integration_tests::browser::{Browser, artifact_path};
use synod_integration_tests::{TestOrchestrator, eventually, fast_config, repo_file};
use synod_server::demo::start_demo_experts;

const SECRET: &str = "tok-9c4e1f7a-dashboard-secret";

/// `workflows/ioc-triage.yaml` with a secret-named input that flows into the
/// report step's input (its title), so the step panel would show it were it
/// not redacted.
const WORKFLOW: &str = r#"
name: ioc-triage-with-token
inputs:
  text: { type: string }
  api_token: { type: string }
steps:
  extract:
    uses: ioc/extract
    with: { text: "${{ inputs.text }}" }
  ips:
    needs: [extract]
    uses: ioc/classify-ips
    with: { iocs: "${{ steps.extract.output.iocs }}" }
  domains:
    needs: [extract]
    uses: ioc/classify-domains
    with: { iocs: "${{ steps.extract.output.iocs }}" }
  report:
    needs: [ips, domains]
    uses: report/summarize
    with:
      title: "${{ inputs.api_token }}"
      finding_sets:
        ips: "${{ steps.ips.output.findings }}"
        domains: "${{ steps.domains.output.findings }}"
"#;

/// What the test reads from the page in one go.
const READ_PAGE: &str = r#"
const nodes = [...document.querySelectorAll('#dag g.node')].map((n) => ({
  step: n.dataset.step, state: n.dataset.state, attempts: Number(n.dataset.attempts) }));
const events = [...document.querySelectorAll('#event-log-body tr.event')].map((r) => ({
  seq: Number(r.dataset.seq), type: r.dataset.type }));
return {
  nodes, events,
  edges: document.querySelectorAll('#dag path.edge').length,
  status: document.getElementById('run-status').dataset.status,
  workflow: document.getElementById('run-workflow').textContent,
  html: document.documentElement.outerHTML,
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_page_shows_every_node_succeeded_and_never_the_secret() -> anyhow::Result<()> {
    // Fail first (not skip) when the browser is missing.
    let browser = Browser::start(1400, 1700).await?;
    let experts = start_demo_experts().await?;
    let mut config = fast_config();
    config.static_experts = experts.iter().map(|e| e.endpoint.clone()).collect();
    let orchestrator = TestOrchestrator::start_with(config).await?;
    let example: Value =
        serde_json::from_str(&repo_file("workflows/examples/ioc-triage.input.json")?)?;
    let inputs = json!({ "text": example["text"], "api_token": SECRET });
    let run_id = orchestrator.start_run(WORKFLOW, inputs).await?;

    // The run page, opened while the run may still be going: the DAG is
    // driven by the SSE stream.
    browser
        .goto(&format!("{}/#/runs/{run_id}", orchestrator.http_url()))
        .await?;
    let page = eventually("every node of the DAG to show succeeded", || async {
        let page = browser.execute(READ_PAGE, json!([])).await?;
        let nodes = page["nodes"].as_array().cloned().unwrap_or_default();
        let all_succeeded = nodes.len() == 4 && nodes.iter().all(|n| n["state"] == "succeeded");
        let finished = page["status"] == "succeeded";
        Ok((all_succeeded && finished).then_some(page))
    })
    .await?;

    let mut steps: Vec<&str> = page["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .filter_map(|node| node["step"].as_str())
        .collect();
    steps.sort_unstable();
    assert_eq!(steps, ["domains", "extract", "ips", "report"], "{page:#}");
    // extract->ips, extract->domains, ips->report, domains->report.
    assert_eq!(page["edges"], 4, "{}", page["edges"]);
    assert_eq!(page["workflow"], "ioc-triage-with-token");

    // The event log holds every event of the run, in order, once.
    let stored = orchestrator.events(&run_id, 0).await?;
    let shown: Vec<(u64, String)> = page["events"]
        .as_array()
        .context("events")?
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap_or_default(),
                e["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = stored
        .iter()
        .map(|e| (e.seq, e.kind.cloud_event_type().to_owned()))
        .collect();
    assert_eq!(shown, expected);
    let succeeded = shown
        .iter()
        .filter(|(_, kind)| kind == "synod.step.succeeded")
        .count();
    assert_eq!(succeeded, 4);

    // The report step's panel shows its (redacted) input.
    browser
        .execute(
            "document.querySelector('#dag g.node[data-step=\"report\"]')\
             .dispatchEvent(new MouseEvent('click', { bubbles: true }));",
            json!([]),
        )
        .await?;
    let details = eventually("the report step's panel", || async {
        let text = browser
            .execute(
                "return document.getElementById('step-title').textContent === 'report' \
                 ? document.getElementById('step-details').textContent : null;",
                json!([]),
            )
            .await?;
        Ok(text.as_str().map(str::to_owned))
    })
    .await?;
    assert!(details.contains("[REDACTED]"), "{details}");
    assert!(
        details.contains("IOC") || details.contains("findings"),
        "{details}"
    );

    // No secret anywhere in the page: DOM, attributes, titles.
    let html = browser.execute(READ_PAGE, json!([])).await?["html"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(html.contains("report/summarize"), "the page was read");
    assert!(!html.contains(SECRET), "the secret is in the page");

    let screenshot = artifact_path("dashboard-run.png");
    browser.screenshot(&screenshot).await?;
    let png = std::fs::read(&screenshot)?;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    eprintln!("dashboard screenshot: {}", screenshot.display());

    // The home page lists the run and the experts.
    browser
        .goto(&format!("{}/", orchestrator.http_url()))
        .await?;
    eventually("the run list and the expert registry", || async {
        let listed = browser
            .execute(
                "return [document.querySelector('#runs-body tr[data-run=\"' + arguments[0] + '\"]')?.dataset.status ?? null, \
                 document.querySelectorAll('#experts-summary [data-expert]').length];",
                json!([run_id]),
            )
            .await?;
        let ready = listed[0] == "succeeded" && listed[1].as_u64().unwrap_or(0) >= 2;
        Ok(ready.then_some(()))
    })
    .await?;
    browser
        .screenshot(&artifact_path("dashboard-home.png"))
        .await?;

    browser.quit().await?;
    orchestrator.shutdown().await?;
    for expert in experts {
        expert.stop().await;
    }
    Ok(())
}
