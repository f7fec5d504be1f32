//! `POST /hooks/<name>`: a correctly signed request starts a run of the
//! stored workflow (202 + run id, body -> inputs); a wrong signature, a
//! stale timestamp or a missing header answers 401 and starts nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use synod_connectors::SecretValue;
use synod_connectors::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use synod_integration_tests::experts::{serve, text_expert};
use synod_integration_tests::{TempDir, TestOrchestrator, fast_config};
use synod_proto::orchestrator::RunStatus;

const HOOK_KEY: &str = "whk-4d1f0b-secret";

const WORKFLOW: &str = r#"name: siem-alert
on:
  webhook: { name: siem, secret: "${{ secrets.HOOK_KEY }}", tolerance: 5m }
secrets:
  HOOK_KEY: { description: HMAC key shared with the SIEM }
inputs:
  text: { type: string, required: true }
steps:
  tag:
    uses: text/tag
    with: { text: "${{ inputs.text }}", tag: "hook" }
"#;

struct Setup {
    orchestrator: TestOrchestrator,
    expert: synod_expert_sdk::ExpertHandle,
    _dir: TempDir,
}

async fn setup() -> anyhow::Result<Setup> {
    let expert = serve(text_expert()).await?;
    let dir = TempDir::new()?;
    std::fs::write(dir.path().join("siem-alert.yaml"), WORKFLOW)?;
    std::fs::write(dir.path().join("HOOK_KEY"), HOOK_KEY)?;
    let mut config = fast_config();
    config.static_experts = vec![expert.endpoint().to_owned()];
    config.workflow_paths = vec![dir.path().join("siem-alert.yaml")];
    config.secrets_dir = Some(dir.path().to_owned());
    let orchestrator = TestOrchestrator::start_with(config).await?;
    Ok(Setup {
        orchestrator,
        expert,
        _dir: dir,
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default()
}

impl Setup {
    /// Posts `body` to `/hooks/siem` with these optional headers.
    async fn post(
        &self,
        body: &str,
        timestamp: Option<String>,
        signature: Option<String>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .orchestrator
            .http()
            .post(format!("{}/hooks/siem", self.orchestrator.http_url()))
            .body(body.to_owned());
        if let Some(timestamp) = timestamp {
            request = request.header(TIMESTAMP_HEADER, timestamp);
        }
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Number of runs recorded.
    async fn runs(&self) -> anyhow::Result<usize> {
        let runs: Value = self
            .orchestrator
            .http()
            .get(format!("{}/runs", self.orchestrator.http_url()))
            .send()
            .await?
            .json()
            .await?;
        Ok(runs.as_array().map_or(0, Vec::len))
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        self.orchestrator.shutdown().await?;
        self.expert.shutdown().await?;
        Ok(())
    }
}

fn signed(secret: &str, timestamp: u64, body: &str) -> (Option<String>, Option<String>) {
    let timestamp = timestamp.to_string();
    let signature = sign(&SecretValue::new(secret), &timestamp, body.as_bytes());
    (Some(timestamp), Some(signature))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_starts_a_run_with_the_body_as_inputs() -> anyhow::Result<()> {
    let setup = setup().await?;
    let body = r#"{"text": "alert-17"}"#;
    let (timestamp, signature) = signed(HOOK_KEY, now(), body);
    let (status, answer) = setup.post(body, timestamp, signature).await?;
    assert_eq!(status, 202, "{answer}");
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    let run = setup.orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    assert_eq!(
        synod_integration_tests::events::output(&run.events, "tag")?,
        json!({ "text": "alert-17/hook" })
    );
    setup.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_missing_or_stale_signatures_get_401_and_start_nothing() -> anyhow::Result<()> {
    let setup = setup().await?;
    let body = r#"{"text": "alert-18"}"#;

    let (timestamp, signature) = signed("not-the-key", now(), body);
    let (status, answer) = setup.post(body, timestamp, signature).await?;
    assert_eq!(status, 401, "wrong key: {answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("does not match")
    );

    // Signed for another body.
    let (timestamp, signature) = signed(HOOK_KEY, now(), r#"{"text": "other"}"#);
    let (status, _) = setup.post(body, timestamp, signature).await?;
    assert_eq!(status, 401, "tampered body");

    // Ten minutes old, outside the 5 minute window.
    let (timestamp, signature) = signed(HOOK_KEY, now() - 600, body);
    let (status, answer) = setup.post(body, timestamp, signature).await?;
    assert_eq!(status, 401, "stale: {answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("too old"),
        "{answer}"
    );

    let (timestamp, signature) = signed(HOOK_KEY, now(), body);
    let (status, answer) = setup.post(body, None, signature).await?;
    assert_eq!(status, 401, "no timestamp: {answer}");
    let (status, answer) = setup.post(body, timestamp, None).await?;
    assert_eq!(status, 401, "no signature: {answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("missing header")
    );

    assert_eq!(setup.runs().await?, 0, "a rejected hook started a run");

    // An unknown hook is 404.
    let response = setup
        .orchestrator
        .http()
        .post(format!("{}/hooks/nope", setup.orchestrator.http_url()))
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 404);
    setup.shutdown().await
}
