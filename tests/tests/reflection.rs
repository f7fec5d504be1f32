//! Reflection loops over real gRPC: a step with `reflect` is judged by its
//! rules and a critic expert and sent back with the feedback until the
//! critic accepts; each round is a `StepReflected` event and the expert sees
//! the round number and every earlier judgement.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use synod_expert_sdk::{ExpertServer, SkillDefinition, SkillOutput, skill_fn};
use synod_integration_tests::TestOrchestrator;
use synod_integration_tests::events::reflections;
use synod_integration_tests::experts::{object_schema, serve};
use synod_proto::orchestrator::RunStatus;
use synod_types::RunEventKind;

/// What the analyst saw in each round: (round, feedback messages).
type Seen = Arc<Mutex<Vec<(u32, Vec<String>)>>>;

/// Expert `analyst`: skill `assess` answers with as many findings as it has
/// had feedback, and a confidence that grows with them.
fn analyst(seen: Seen) -> synod_expert_sdk::ExpertServerBuilder {
    let assess = SkillDefinition::new("assess").output_schema(object_schema(json!({
        "findings": { "type": "array", "items": { "type": "string" } },
    })));
    ExpertServer::builder("analyst", "0.1.0").skill(skill_fn(assess, move |ctx, _input| {
        let seen = Arc::clone(&seen);
        async move {
            let feedback: Vec<String> = ctx.feedback().iter().map(|f| f.message.clone()).collect();
            seen.lock().unwrap().push((ctx.round(), feedback.clone()));
            let findings: Vec<String> = (0..=feedback.len())
                .map(|i| format!("finding {i}"))
                .collect();
            let confidence = 0.5 + 0.2 * feedback.len() as f64;
            Ok(SkillOutput::new(json!({ "findings": findings }))
                .with_confidence(confidence.min(1.0)))
        }
    }))
}

/// Expert `reviewer`: skill `critique` accepts three findings or more.
fn reviewer() -> synod_expert_sdk::ExpertServerBuilder {
    let critique = SkillDefinition::new("critique").output_schema(object_schema(json!({
        "verdict": { "enum": ["accept", "revise"] },
        "feedback": { "type": "string" },
    })));
    ExpertServer::builder("reviewer", "0.1.0").skill(skill_fn(critique, |_ctx, input: Value| async move {
        let found = input["output"]["findings"].as_array().map_or(0, Vec::len);
        Ok(SkillOutput::new(if found >= 3 {
            json!({ "verdict": "accept", "feedback": "" })
        } else {
            json!({ "verdict": "revise", "feedback": format!("only {found} findings; look for lateral movement") })
        }))
    }))
}

const WORKFLOW: &str = r#"
name: reflective
steps:
  assess:
    uses: analyst/assess
    reflect:
      min_confidence: 0.6
      critic: reviewer/critique
      max_rounds: 5
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critic_sends_the_step_back_with_feedback_until_it_accepts() -> anyhow::Result<()> {
    let seen: Seen = Arc::default();
    let analyst = serve(analyst(Arc::clone(&seen))).await?;
    let reviewer = serve(reviewer()).await?;
    let orchestrator = TestOrchestrator::start(&[analyst.endpoint(), reviewer.endpoint()]).await?;
    let finished = orchestrator.run(WORKFLOW, Value::Null).await?;
    assert_eq!(
        finished.status(),
        RunStatus::Succeeded,
        "{:?}",
        finished.events
    );

    let rounds: Vec<(u32, String, String, Option<String>)> = reflections(&finished.events);
    // Round 0: confidence 0.5 < 0.6 (rule); round 1: two findings (critic);
    // round 2: three findings, accepted.
    assert_eq!(
        rounds,
        [
            (
                0,
                "rule:min_confidence".to_owned(),
                "revise".to_owned(),
                None
            ),
            (1, "reviewer/critique".to_owned(), "revise".to_owned(), None),
            (
                2,
                "reviewer/critique".to_owned(),
                "accept".to_owned(),
                Some("criterion met".to_owned())
            ),
        ]
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "one call per round: {seen:?}");
    assert_eq!(seen[0], (0, vec![]));
    assert_eq!(seen[2].0, 2);
    assert_eq!(
        seen[2].1.len(),
        2,
        "every earlier judgement is sent: {seen:?}"
    );
    assert!(
        seen[2].1[1].contains("look for lateral movement"),
        "{seen:?}"
    );
    let succeeded = finished.events.iter().find_map(|event| match &event.kind {
        RunEventKind::StepSucceeded { output, .. } => Some(output.clone()),
        _ => None,
    });
    let findings = succeeded
        .as_ref()
        .and_then(|o| o["findings"].as_array())
        .map(Vec::len);
    assert_eq!(
        findings,
        Some(3),
        "the accepted round's output is the step's"
    );
    orchestrator.shutdown().await?;
    Ok(())
}
