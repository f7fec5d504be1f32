//! Workflow bindings end to end: a run over gRPC with `for_each`, `if` and
//! an HTTP binding delivered to a real local axum receiver. Asserts what the
//! receiver got (method, path, headers, body), that retries carry the same
//! `Idempotency-Key`, and that the secret appears only in the header it was
//! put in, never in any event.

use axum::http::Method;
use serde_json::{Value, json};
use synod_expert_sdk::{ExpertServer, ExpertServerBuilder, SkillDefinition, SkillOutput, skill_fn};
use synod_integration_tests::events::{assert_secret_absent, run_error};
use synod_integration_tests::experts::{object_schema, serve};
use synod_integration_tests::receiver::Receiver;
use synod_integration_tests::{Finished, TempDir, TestOrchestrator, fast_config};
use synod_proto::orchestrator::RunStatus;
use synod_types::RunEventKind;

/// Expert `intel`: `lookup` `{ioc}` → `{ioc, malicious}` (malicious when the
/// IOC contains `evil`); `summarize` `{verdicts: [..]}` → `{malicious, total,
/// summary}`.
pub(crate) fn intel_expert() -> ExpertServerBuilder {
    let lookup = SkillDefinition::new("lookup")
        .input_schema(object_schema(json!({ "ioc": { "type": "string" } })))
        .output_schema(object_schema(json!({
            "ioc": { "type": "string" },
            "malicious": { "type": "boolean" }
        })));
    let summarize = SkillDefinition::new("summarize")
        .input_schema(object_schema(json!({ "verdicts": { "type": "array" } })))
        .output_schema(object_schema(json!({
            "malicious": { "type": "integer" },
            "total": { "type": "integer" },
            "summary": { "type": "string" }
        })));
    ExpertServer::builder("intel", "0.1.0")
        .skill(skill_fn(lookup, |_ctx, input| async move {
            let ioc = input["ioc"].as_str().unwrap_or_default().to_owned();
            let malicious = ioc.contains("evil");
            Ok(SkillOutput::new(
                json!({ "ioc": ioc, "malicious": malicious }),
            ))
        }))
        .skill(skill_fn(summarize, |_ctx, input| async move {
            let verdicts = input["verdicts"].as_array().cloned().unwrap_or_default();
            let bad: Vec<&str> = verdicts
                .iter()
                .filter(|verdict| verdict["malicious"] == json!(true))
                .filter_map(|verdict| verdict["ioc"].as_str())
                .collect();
            Ok(SkillOutput::new(json!({
                "malicious": bad.len(),
                "total": verdicts.len(),
                "summary": format!("malicious: {}", bad.join(", ")),
            })))
        }))
}

const SECRET: &str = "tk-91c2e4-secret-value";

fn workflow(origin: &str) -> String {
    format!(
        r#"name: ioc-ticket
secrets:
  TICKET_TOKEN: {{ description: ticket API token }}
inputs:
  iocs: {{ type: array, required: true }}
steps:
  lookup:
    uses: intel/lookup
    for_each: "${{{{ inputs.iocs }}}}"
    max_parallel: 2
    with: {{ ioc: "${{{{ item }}}}" }}
  summarize:
    uses: intel/summarize
    needs: [lookup]
    with: {{ verdicts: "${{{{ steps.lookup.output }}}}" }}
  escalate:
    uses: intel/lookup
    needs: [summarize]
    if: "${{{{ steps.summarize.output.malicious > 5 }}}}"
    with: {{ ioc: "none" }}
bindings:
  ticket:
    needs: [summarize]
    if: "${{{{ steps.summarize.output.malicious > 0 }}}}"
    http:
      method: POST
      url: "{origin}/api/queues/${{{{ run.workflow }}}}/tickets?source=synod"
      headers:
        Authorization: "Bearer ${{{{ secrets.TICKET_TOKEN }}}}"
        X-Total: "${{{{ string(steps.summarize.output.total) }}}}"
      body:
        summary: "${{{{ steps.summarize.output.summary }}}}"
        malicious: "${{{{ steps.summarize.output.malicious }}}}"
    idempotency_key: "${{{{ run.id }}}}-ticket"
    retry: {{ policy: fixed, interval: 50ms, max_attempts: 3 }}
"#
    )
}

/// A receiver, the intel expert and an orchestrator reading the ticket
/// secret from a secrets directory.
struct Setup {
    receiver: Receiver,
    intel: synod_expert_sdk::ExpertHandle,
    orchestrator: TestOrchestrator,
    _secrets: TempDir,
}

impl Setup {
    /// The receiver answers `script` first; `allow` puts it on the allowlist.
    async fn start(script: &[u16], allow: bool) -> anyhow::Result<Setup> {
        let receiver = Receiver::start(script).await?;
        let intel = serve(intel_expert()).await?;
        let secrets = TempDir::new()?;
        std::fs::write(secrets.path().join("TICKET_TOKEN"), format!("{SECRET}\n"))?;
        let mut config = fast_config();
        config.static_experts = vec![intel.endpoint().to_owned()];
        if allow {
            config.allowed_destinations = vec![receiver.origin()];
        }
        config.secrets_dir = Some(secrets.path().to_owned());
        let orchestrator = TestOrchestrator::start_with(config).await?;
        Ok(Setup {
            receiver,
            intel,
            orchestrator,
            _secrets: secrets,
        })
    }

    async fn run(&self, iocs: Value) -> anyhow::Result<Finished> {
        let yaml = workflow(&self.receiver.origin());
        self.orchestrator.run(&yaml, json!({ "iocs": iocs })).await
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        self.orchestrator.shutdown().await?;
        self.intel.shutdown().await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_is_delivered_with_retries_one_idempotency_key_and_the_secret_only_in_its_header()
-> anyhow::Result<()> {
    let setup = Setup::start(&[503], true).await?;
    let run = setup
        .run(json!(["evil.example", "good.example", "evil-2.example"]))
        .await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);

    // The receiver saw the request twice (503, then 201), identically.
    let received = setup.receiver.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    let key = format!("{}-ticket", run.run_id);
    for request in &received {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.uri, "/api/queues/ioc-ticket/tickets?source=synod");
        assert_eq!(request.headers["idempotency-key"], key.as_str());
        assert_eq!(
            request.headers["authorization"],
            format!("Bearer {SECRET}").as_str()
        );
        assert_eq!(request.headers["x-total"], "3");
        assert_eq!(request.headers["content-type"], "application/json");
        assert_eq!(
            request.body,
            json!({ "summary": "malicious: evil.example, evil-2.example", "malicious": 2 })
        );
        // The secret is in no other header and not in the body.
        for (name, value) in &request.headers {
            if name != "authorization" {
                assert!(
                    !value.to_str().unwrap_or_default().contains(SECRET),
                    "{name}"
                );
            }
        }
        assert!(!request.body.to_string().contains(SECRET));
    }

    // Events: the fan-out, the skipped step, the delivery; never the secret.
    let kinds = &run.events;
    assert!(kinds.iter().any(|event| matches!(
        &event.kind,
        RunEventKind::StepFannedOut {
            items: 3,
            max_parallel: Some(2),
            ..
        }
    )));
    assert!(kinds.iter().any(|event| matches!(
        &event.kind,
        RunEventKind::StepSkipped { step, .. } if step.as_str() == "escalate"
    )));
    let attempts: Vec<Option<u16>> = kinds
        .iter()
        .filter_map(|event| match &event.kind {
            RunEventKind::BindingAttempt { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [Some(503), Some(201)]);
    assert!(kinds.iter().any(|event| matches!(
        &event.kind,
        RunEventKind::BindingDelivered { binding, status: 201, attempts: 2, .. } if binding == "ticket"
    )));
    assert_secret_absent(&run.events, SECRET);
    setup.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_outside_the_allowlist_fails_the_run_and_sends_nothing() -> anyhow::Result<()>
{
    let setup = Setup::start(&[], false).await?;
    let run = setup.run(json!(["evil.example"])).await?;
    assert_eq!(run.status(), RunStatus::Failed, "{:#?}", run.events);
    assert!(setup.receiver.received().is_empty());
    let error = run_error(&run.events).expect("RunFailed");
    assert!(error.starts_with("binding `ticket` failed:"), "{error}");
    assert!(error.contains("127.0.0.1"), "{error}");
    assert_secret_absent(&run.events, SECRET);
    setup.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_whose_condition_is_false_is_skipped() -> anyhow::Result<()> {
    let setup = Setup::start(&[], true).await?;
    let run = setup.run(json!(["good.example"])).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    assert!(setup.receiver.received().is_empty());
    assert!(run.events.iter().any(|event| matches!(
        &event.kind,
        RunEventKind::BindingSkipped { binding, .. } if binding == "ticket"
    )));
    setup.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_renders_every_binding_and_sends_nothing() -> anyhow::Result<()> {
    let setup = Setup::start(&[], true).await?;
    let manager = &setup.orchestrator.orchestrator().manager;
    let settings = synod_server::bindings::BindingSettings {
        allowed_destinations: vec![setup.receiver.origin()],
        secrets_dir: Some(setup._secrets.path().to_owned()),
    };
    let rendered = std::sync::Arc::new(synod_server::bindings::DryRunBindings::new(
        synod_server::bindings::HttpBindings::new(&settings)?,
    ));
    manager.set_deliverer(rendered.clone());
    manager.set_dry_run(true);

    let run = setup.run(json!(["evil.example"])).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    assert!(
        setup.receiver.received().is_empty(),
        "a dry run sent a request"
    );
    assert!(run.events.iter().any(|event| matches!(
        &event.kind,
        RunEventKind::BindingSkipped { binding, reason } if binding == "ticket" && reason.starts_with("dry run: rendered for ")
    )));
    let shown = rendered.take();
    assert_eq!(shown.len(), 1);
    let ticket = &shown[0];
    assert_eq!(ticket.method, "POST");
    assert_eq!(
        ticket.url,
        format!(
            "{}/api/queues/ioc-ticket/tickets?source=synod",
            setup.receiver.origin()
        )
    );
    assert!(ticket.destination_allowed);
    assert!(ticket.problems.is_empty(), "{:?}", ticket.problems);
    assert_eq!(
        ticket.body,
        Some(json!({ "summary": "malicious: evil.example", "malicious": 1 }))
    );
    let text = ticket.to_text();
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("authorization: ***"), "{text}");
    assert_secret_absent(&run.events, SECRET);
    setup.shutdown().await
}
