//! The data-protection guard: an expert whose card says `external` receives
//! its input with secrets and PII masked, the run records what was masked
//! (counts per type, never values), and experts that are not external get
//! the input as it is.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use synod_expert_sdk::{ExpertServer, SkillDefinition, SkillOutput, skill_fn};
use synod_integration_tests::TestOrchestrator;
use synod_integration_tests::experts::serve;
use synod_proto::orchestrator::RunStatus;
use synod_types::RunEventKind;

/// Expert `name` (external or not) whose skill `read` records its input.
fn recorder(
    name: &'static str,
    external: bool,
    seen: Arc<Mutex<Vec<Value>>>,
) -> synod_expert_sdk::ExpertServerBuilder {
    ExpertServer::builder(name, "0.1.0")
        .external(external)
        .skill(skill_fn(
            SkillDefinition::new("read"),
            move |_ctx, input| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().unwrap().push(input);
                    Ok(SkillOutput::new(json!({ "read": true })))
                }
            },
        ))
}

const WORKFLOW: &str = r#"
name: guarded
inputs:
  note: { type: string }
steps:
  inside:
    uses: inside/read
    with: { note: "${{ inputs.note }}" }
  outside:
    uses: hosted/read
    with: { note: "${{ inputs.note }}" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_experts_get_masked_inputs_and_the_run_records_what_was_masked()
-> anyhow::Result<()> {
    let inside_seen = Arc::new(Mutex::new(Vec::new()));
    let outside_seen = Arc::new(Mutex::new(Vec::new()));
    let inside = serve(recorder("inside", false, Arc::clone(&inside_seen))).await?;
    let outside = serve(recorder("hosted", true, Arc::clone(&outside_seen))).await?;
    let orchestrator = TestOrchestrator::start(&[inside.endpoint(), outside.endpoint()]).await?;
    let note = "escalate to jane.doe@example.org; leaked token ghp_4GmJ8xT2LqN9vR5sW1kZ7yB3cD6fH0aE2pUo on 10.20.30.40";
    let finished = orchestrator.run(WORKFLOW, json!({ "note": note })).await?;
    assert_eq!(
        finished.status(),
        RunStatus::Succeeded,
        "{:?}",
        finished.events
    );

    assert_eq!(
        inside_seen.lock().unwrap()[0]["note"],
        note,
        "not external: as is"
    );
    let sent = outside_seen.lock().unwrap()[0]["note"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!sent.contains("jane.doe@example.org"), "{sent}");
    assert!(
        !sent.contains("ghp_4GmJ8xT2LqN9vR5sW1kZ7yB3cD6fH0aE2pUo"),
        "{sent}"
    );
    assert!(
        sent.starts_with("escalate to "),
        "text around findings is kept: {sent}"
    );
    assert_eq!(sent.len(), note.len(), "masking keeps offsets: {sent}");

    let recorded: Vec<_> = finished
        .events
        .iter()
        .filter_map(|event| match &event.kind {
            RunEventKind::StepInputRedacted {
                step,
                expert,
                redacted,
                ..
            } => Some((step.as_str().to_owned(), expert.clone(), redacted.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].0, "outside");
    assert_eq!(recorded[0].1, "hosted");
    assert!(recorded[0].2.values().sum::<u64>() >= 2, "{recorded:?}");
    let events = serde_json::to_string(&finished.events)?;
    assert!(
        !events.contains("ghp_4GmJ8xT2LqN9vR5sW1kZ7yB3cD6fH0aE2pUo"),
        "the secret never reaches the events: {events}"
    );
    orchestrator.shutdown().await?;
    Ok(())
}
