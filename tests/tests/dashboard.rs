//! The dashboard in headless Chromium (WebDriver): the IOC triage workflow
//! runs through the demo experts, the run page shows the live DAG until
//! every node has succeeded, the pending approval of its ticket binding is
//! approved with the page's button (and the ticket is then delivered), the
//! event log and the step panel are checked; the secret input never reaches
//! the page. Saves `test-artifacts/dashboard-run.png` and
//! `dashboard-home.png` (under `CARGO_TARGET_DIR` or `target/`).
//!
//! Needs Chromium: `scripts/setup-browser.sh` (CI runs it).

use anyhow::Context as _;
use serde_json::{Value, json};
use synod_integration_tests::browser::{Browser, artifact_path};
use synod_integration_tests::receiver::Receiver;
use synod_integration_tests::{TestOrchestrator, eventually, fast_config, repo_file};
use synod_server::demo::start_demo_experts;

const SECRET: &str = "tok-9c4e1f7a-dashboard-secret";

/// `workflows/ioc-triage.yaml` with a secret-named input that flows into the
/// report step's input (its title), so the step panel would show it were it
/// not redacted, and a ticket binding to `{origin}` that needs approval.
pub(crate) const WORKFLOW: &str = r#"
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
bindings:
  ticket:
    needs: [report]
    http:
      method: POST
      url: "{origin}/tickets"
      body: { total: "${{ steps.report.output.report.counts.total }}" }
    approval: { roles: [soc-lead] }
"#;

/// What the test reads from the page in one go.
pub(crate) const READ_PAGE: &str = r#"
const nodes = [...document.querySelectorAll('#dag g.node')].map((n) => ({
  step: n.dataset.step, state: n.dataset.state, attempts: Number(n.dataset.attempts) }));
const events = [...document.querySelectorAll('#event-log-body tr.event')].map((r) => ({
  seq: Number(r.dataset.seq), type: r.dataset.type }));
return {
  nodes, events,
  edges: document.querySelectorAll('#dag path.edge').length,
  status: document.getElementById('run-status').dataset.status,
  approvals: [...document.querySelectorAll('#approvals .approval')].map((a) => a.dataset.binding),
  bindings: Object.fromEntries([...document.querySelectorAll('#bindings .binding-row')].map((b) =>
    [b.dataset.binding, b.querySelector('.badge').dataset.status])),
  workflow: document.getElementById('run-workflow').textContent,
  html: document.documentElement.outerHTML,
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_page_shows_every_node_succeeded_and_never_the_secret() -> anyhow::Result<()> {
    // Fail first (not skip) when the browser is missing.
    let browser = Browser::start(1400, 1700).await?;
    let experts = start_demo_experts().await?;
    let tickets = Receiver::start(&[]).await?;
    let mut config = fast_config();
    config.static_experts = experts.iter().map(|e| e.endpoint.clone()).collect();
    config.allowed_destinations = vec![tickets.origin()];
    let orchestrator = TestOrchestrator::start_with(config).await?;
    let example: Value =
        serde_json::from_str(&repo_file("workflows/examples/ioc-triage.input.json")?)?;
    let inputs = json!({ "text": example["text"], "api_token": SECRET });
    let workflow = WORKFLOW.replace("{origin}", &tickets.origin());
    let run_id = orchestrator.start_run(&workflow, inputs).await?;

    // The run page, opened while the run may still be going: the DAG is
    // driven by the SSE stream.
    browser
        .goto(&format!("{}/#/runs/{run_id}", orchestrator.http_url()))
        .await?;
    let waiting = eventually(
        "every node to show succeeded and the ticket to wait for approval",
        || async {
            let page = browser.execute(READ_PAGE, json!([])).await?;
            let nodes = page["nodes"].as_array().cloned().unwrap_or_default();
            let all_succeeded = nodes.len() == 4 && nodes.iter().all(|n| n["state"] == "succeeded");
            let asking = page["approvals"] == json!(["ticket"]);
            Ok((all_succeeded && asking).then_some(page))
        },
    )
    .await?;
    assert_eq!(
        waiting["status"], "running",
        "the run waits for the decision"
    );
    assert_eq!(waiting["bindings"]["ticket"], "waiting");
    assert!(
        tickets.received().is_empty(),
        "nothing sent before approval"
    );
    // The artifact shows the finished DAG with the approval waiting.
    let screenshot = artifact_path("dashboard-run.png");
    browser.screenshot(&screenshot).await?;
    let png = std::fs::read(&screenshot)?;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    eprintln!("dashboard screenshot: {}", screenshot.display());

    // Approve with the page's button, as an operator would.
    browser
        .execute(
            "const card = document.querySelector('#approvals .approval[data-binding=\"ticket\"]');\
             card.querySelector('input').value = 'ok from the browser test';\
             card.querySelector('button.approve').click();",
            json!([]),
        )
        .await?;
    let page = eventually("the run to succeed after the approval", || async {
        let page = browser.execute(READ_PAGE, json!([])).await?;
        let done = page["status"] == "succeeded" && page["bindings"]["ticket"] == "delivered";
        Ok(done.then_some(page))
    })
    .await?;
    assert_eq!(page["approvals"], json!([]), "no approval left");
    assert_eq!(tickets.received().len(), 1, "the ticket was sent once");

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
    let count = |wanted: &str| shown.iter().filter(|(_, kind)| kind == wanted).count();
    assert_eq!(count("synod.step.succeeded"), 4);
    assert_eq!(count("synod.approval.decided"), 1);
    assert_eq!(count("synod.binding.delivered"), 1);
    let decided = stored
        .iter()
        .find_map(|event| match &event.kind {
            synod_types::RunEventKind::ApprovalDecided {
                approved, comment, ..
            } => Some((*approved, comment.clone())),
            _ => None,
        })
        .context("no ApprovalDecided")?;
    assert_eq!(decided, (true, "ok from the browser test".to_owned()));

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
