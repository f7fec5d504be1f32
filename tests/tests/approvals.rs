//! Approval-gated bindings end to end: the binding waits (ApprovalRequested)
//! until approved over gRPC `Decide` (then it is delivered), rejected over
//! `POST /runs/{id}/approvals/{binding}` (never sent, run failed) or its
//! timeout passes (never sent, run failed).

use serde_json::{Value, json};
use synod_integration_tests::events::run_error;
use synod_integration_tests::experts::serve;
use synod_integration_tests::{TestOrchestrator, fast_config};
use synod_proto::orchestrator as pb;
use synod_proto::orchestrator::RunStatus;
use synod_types::RunEventKind;

use synod_integration_tests::receiver::Receiver;

use crate::bindings::intel_expert;

/// A workflow whose `block` binding waits for a `soc-lead` approver.
pub(crate) fn workflow(origin: &str, timeout: &str) -> String {
    format!(
        r#"name: gated-block
inputs:
  iocs: {{ type: array, required: true }}
steps:
  lookup:
    uses: intel/lookup
    for_each: "${{{{ inputs.iocs }}}}"
    with: {{ ioc: "${{{{ item }}}}" }}
  summarize:
    uses: intel/summarize
    needs: [lookup]
    with: {{ verdicts: "${{{{ steps.lookup.output }}}}" }}
bindings:
  block:
    needs: [summarize]
    http:
      method: POST
      url: "{origin}/firewall/block"
      body: {{ reason: "${{{{ steps.summarize.output.summary }}}}" }}
    idempotency_key: "${{{{ run.id }}}}-block"
    approval: {{ roles: [soc-lead], timeout: {timeout} }}
"#
    )
}

struct Setup {
    receiver: Receiver,
    intel: synod_expert_sdk::ExpertHandle,
    orchestrator: TestOrchestrator,
}

impl Setup {
    async fn start() -> anyhow::Result<Setup> {
        let receiver = Receiver::start(&[]).await?;
        let intel = serve(intel_expert()).await?;
        let mut config = fast_config();
        config.static_experts = vec![intel.endpoint().to_owned()];
        config.allowed_destinations = vec![receiver.origin()];
        let orchestrator = TestOrchestrator::start_with(config).await?;
        Ok(Setup {
            receiver,
            intel,
            orchestrator,
        })
    }

    /// Starts a run and waits until its binding asks for approval.
    async fn start_gated(&self, timeout: &str) -> anyhow::Result<String> {
        let yaml = workflow(&self.receiver.origin(), timeout);
        let run_id = self
            .orchestrator
            .start_run(&yaml, json!({ "iocs": ["evil.example"] }))
            .await?;
        let requested = self
            .orchestrator
            .wait_for_event(&run_id, "ApprovalRequested", |kind| {
                matches!(kind, RunEventKind::ApprovalRequested { .. })
            })
            .await?;
        match requested.kind {
            RunEventKind::ApprovalRequested { binding, roles, .. } => {
                assert_eq!(binding, "block");
                assert_eq!(roles, ["soc-lead"]);
            }
            other => panic!("{other:?}"),
        }
        Ok(run_id)
    }

    async fn decide_grpc(&self, run_id: &str, approve: bool) -> anyhow::Result<bool> {
        let response = self
            .orchestrator
            .runs()
            .decide(pb::DecideRequest {
                run_id: run_id.to_owned(),
                binding: "block".to_owned(),
                approve,
                comment: "looked at it".to_owned(),
            })
            .await?;
        Ok(response.into_inner().accepted)
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        self.orchestrator.shutdown().await?;
        self.intel.shutdown().await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_over_grpc_delivers_the_binding() -> anyhow::Result<()> {
    let setup = Setup::start().await?;
    let run_id = setup.start_gated("10m").await?;
    assert!(setup.receiver.received().is_empty(), "sent before approval");

    assert!(setup.decide_grpc(&run_id, true).await?);
    let run = setup.orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let received = setup.receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].uri, "/firewall/block");
    assert_eq!(
        received[0].headers["idempotency-key"],
        format!("{run_id}-block").as_str()
    );
    assert_eq!(
        received[0].body,
        json!({ "reason": "malicious: evil.example" })
    );
    assert!(run.events.iter().any(|event| matches!(
        &event.kind,
        RunEventKind::ApprovalDecided { approved: true, comment, .. } if comment == "looked at it"
    )));
    // Nothing waits any more.
    assert!(!setup.decide_grpc(&run_id, false).await?);
    setup.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_over_http_fails_the_run_without_sending() -> anyhow::Result<()> {
    let setup = Setup::start().await?;
    let run_id = setup.start_gated("10m").await?;
    let url = format!(
        "{}/runs/{run_id}/approvals/block",
        setup.orchestrator.http_url()
    );
    let response = setup
        .orchestrator
        .http()
        .post(&url)
        .json(&json!({ "approve": false, "comment": "false positive" }))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let run = setup.orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Failed);
    assert!(setup.receiver.received().is_empty());
    let error = run_error(&run.events).unwrap_or_default();
    assert_eq!(
        error,
        "binding `block` failed: the approval was rejected: false positive; it was not sent"
    );
    // A second decision is refused.
    let again = setup
        .orchestrator
        .http()
        .post(&url)
        .json(&json!({ "approve": true }))
        .send()
        .await?;
    assert_eq!(again.status().as_u16(), 409);
    let body: Value = again.json().await?;
    assert_eq!(body["accepted"], false);
    setup.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_timeout_fails_the_run_without_sending() -> anyhow::Result<()> {
    let setup = Setup::start().await?;
    let run_id = setup.start_gated("300ms").await?;
    let run = setup.orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Failed);
    assert!(setup.receiver.received().is_empty());
    assert!(run.events.iter().any(|event| matches!(
        &event.kind,
        RunEventKind::ApprovalTimedOut { binding, after_ms: 300 } if binding == "block"
    )));
    setup.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_rejects_and_then_reports_nothing_waiting() -> anyhow::Result<()> {
    let setup = Setup::start().await?;
    let run_id = setup.start_gated("10m").await?;
    let server = setup.orchestrator.grpc_url();
    synod_server::approvals::decide_from_cli(&server, &run_id, "block", false, "not now", true)
        .await?;
    let run = setup.orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Failed);
    assert!(setup.receiver.received().is_empty());
    let again =
        synod_server::approvals::decide_from_cli(&server, &run_id, "block", true, "", true).await;
    let error = again.expect_err("nothing waits any more").to_string();
    assert!(
        error.contains("no binding `block` waiting for approval"),
        "{error}"
    );
    setup.shutdown().await
}
