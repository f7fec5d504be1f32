//! Reflection with the `llm` expert as the critic (`critic: llm/critique`),
//! its model a scripted OpenAI-compatible server on loopback: a loop that
//! converges once the confidence rule holds and the model accepts, and one
//! that stops when its token budget is spent.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use synod_expert_sdk::{ExpertServer, ExpertServerBuilder, SkillDefinition, SkillOutput, skill_fn};
use synod_integration_tests::events::reflections;
use synod_integration_tests::experts::{object_schema, serve};
use synod_integration_tests::openai::{ScriptedModel, json_completion};
use synod_integration_tests::{Finished, TestOrchestrator};
use synod_proto::orchestrator::RunStatus;

/// Feedback messages the analyst received, per call.
type Seen = Arc<Mutex<Vec<Vec<String>>>>;

/// Expert `analyst`: skill `assess` answers with one more finding per
/// judgement it has had, its confidence growing from 0.5 by 0.2 each.
fn analyst(seen: Seen) -> ExpertServerBuilder {
    let assess = SkillDefinition::new("assess").output_schema(object_schema(json!({
        "findings": { "type": "array", "items": { "type": "string" } },
    })));
    ExpertServer::builder("analyst", "0.1.0").skill(skill_fn(assess, move |ctx, _input| {
        let seen = Arc::clone(&seen);
        async move {
            let feedback: Vec<String> = ctx.feedback().iter().map(|f| f.message.clone()).collect();
            seen.lock().unwrap().push(feedback.clone());
            let findings: Vec<String> = (0..=feedback.len())
                .map(|i| format!("finding {i}"))
                .collect();
            let confidence = (0.5 + 0.2 * feedback.len() as f64).min(1.0);
            Ok(SkillOutput::new(json!({ "findings": findings })).with_confidence(confidence))
        }
    }))
}

fn critique(verdict: &str, feedback: &str) -> Value {
    let issues = if verdict == "revise" {
        json!([{ "description": feedback, "severity": "medium" }])
    } else {
        json!([])
    };
    json_completion(&json!({
        "verdict": verdict, "issues": issues, "feedback": feedback, "confidence": 0.8
    }))
}

async fn run_with_critic(
    workflow: &str,
    completions: Vec<Value>,
) -> anyhow::Result<(Finished, ScriptedModel, Seen)> {
    let model = ScriptedModel::start(completions).await?;
    let config =
        synod_expert_llm::Config::new(model.base_url(), "scripted").with_tokens(512, 100_000);
    let llm = serve(synod_expert_llm::expert(&config)?).await?;
    let seen: Seen = Arc::default();
    let analyst = serve(analyst(Arc::clone(&seen))).await?;
    let orchestrator = TestOrchestrator::start(&[analyst.endpoint(), llm.endpoint()]).await?;
    let run = orchestrator.run(workflow, Value::Null).await?;
    orchestrator.shutdown().await?;
    llm.shutdown().await?;
    analyst.shutdown().await?;
    Ok((run, model, seen))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_converges_on_confidence_with_the_llm_critic() -> anyhow::Result<()> {
    const WORKFLOW: &str = r#"
name: llm-critic
steps:
  assess:
    uses: analyst/assess
    reflect:
      min_confidence: 0.6
      critic: llm/critique
      max_rounds: 5
"#;
    let (run, model, seen) = run_with_critic(
        WORKFLOW,
        vec![
            critique("revise", "two findings do not cover the lateral movement"),
            critique("accept", "covers the chain"),
        ],
    )
    .await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    // Round 0: confidence 0.5 < 0.6, the rule revises without the model;
    // round 1: 0.7, the model revises; round 2: 0.9, the model accepts.
    assert_eq!(
        reflections(&run.events),
        [
            (
                0,
                "rule:min_confidence".to_owned(),
                "revise".to_owned(),
                None
            ),
            (1, "llm/critique".to_owned(), "revise".to_owned(), None),
            (
                2,
                "llm/critique".to_owned(),
                "accept".to_owned(),
                Some("criterion met".to_owned())
            ),
        ]
    );
    let requests = model.requests();
    assert_eq!(
        requests.len(),
        2,
        "the model judges only rounds the rules pass"
    );
    // The critic saw the round's output and the earlier judgements, fenced.
    let user = requests[1]["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("finding 2"), "{user}");
    assert!(user.contains("lateral movement"), "{user}");
    // The analyst got the model's feedback in the next round.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(seen[2][1].contains("lateral movement"), "{seen:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_stops_when_the_token_budget_is_spent() -> anyhow::Result<()> {
    // Each scripted critique reports 250 tokens (200 prompt + 50 completion).
    const WORKFLOW: &str = r#"
name: llm-critic-budget
steps:
  assess:
    uses: analyst/assess
    reflect:
      critic: llm/critique
      max_rounds: 10
      budget: { tokens: 500 }
"#;
    let (run, model, _seen) = run_with_critic(
        WORKFLOW,
        vec![
            critique("revise", "not enough evidence"),
            critique("revise", "still not enough evidence"),
            critique("revise", "never enough"),
        ],
    )
    .await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let rounds = reflections(&run.events);
    assert_eq!(rounds.len(), 2, "{rounds:#?}");
    assert_eq!(rounds[0].3, None);
    let stop = rounds[1].3.clone().unwrap_or_default();
    assert!(
        stop.contains("token budget spent (500 of 500 tokens)"),
        "{stop}"
    );
    assert_eq!(model.requests().len(), 2);
    assert_eq!(model.remaining(), 1);
    Ok(())
}
