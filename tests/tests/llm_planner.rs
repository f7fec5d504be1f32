//! The LLM planner over real gRPC and real HTTP: the `llm` expert (served
//! with `synod-expert-sdk`) talks to a scripted OpenAI-compatible server on
//! loopback; the orchestrator asks its `plan` skill, validates the plan,
//! sends the problems back for repair and falls back to the typed planner.
//! An invalid plan never runs.

use serde_json::{Value, json};
use synod_expert_sdk::ExpertHandle;
use synod_integration_tests::events::chosen_skills;
use synod_integration_tests::experts::serve;
use synod_integration_tests::openai::{ScriptedModel, json_completion};
use synod_integration_tests::{Finished, TestOrchestrator, fast_config};
use synod_proto::orchestrator::{RunStatus, StartRunRequest, start_run_request};
use synod_server::demo::{RunningExpert, start_demo_experts};
use synod_types::RunEventKind;

const NOTE: &str = "beacon to 185.220.101.47 and login-micros0ft[.]com from 10.20.4.17";

struct Setup {
    model: ScriptedModel,
    orchestrator: TestOrchestrator,
    llm: ExpertHandle,
    demo: Vec<RunningExpert>,
}

impl Setup {
    /// The demo experts and the `llm` expert backed by a model answering
    /// `completions` in order.
    async fn start(completions: Vec<Value>) -> anyhow::Result<Setup> {
        let model = ScriptedModel::start(completions).await?;
        let config =
            synod_expert_llm::Config::new(model.base_url(), "scripted").with_tokens(1024, 400_000);
        let llm = serve(synod_expert_llm::expert(&config)?).await?;
        let demo = start_demo_experts().await?;
        let mut server = fast_config();
        server.static_experts = demo.iter().map(|e| e.endpoint.clone()).collect();
        server.static_experts.push(llm.endpoint().to_owned());
        let orchestrator = TestOrchestrator::start_with(server).await?;
        Ok(Setup {
            model,
            orchestrator,
            llm,
            demo,
        })
    }

    async fn task(&self, planner: &str) -> Result<Finished, tonic::Status> {
        let request = StartRunRequest {
            source: Some(start_run_request::Source::Goal(
                "write a report on this note".to_owned(),
            )),
            inputs: Some(synod_proto::json::json_to_struct(&json!({ "text": NOTE })).unwrap()),
            file_name: String::new(),
            goal_type: String::new(),
            planner: planner.to_owned(),
        };
        let run_id = self
            .orchestrator
            .runs()
            .start_run(request)
            .await?
            .into_inner()
            .run_id;
        self.orchestrator
            .finish(&run_id)
            .await
            .map_err(|error| tonic::Status::internal(error.to_string()))
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.orchestrator.shutdown().await?;
        self.llm.shutdown().await?;
        for expert in self.demo {
            expert.stop().await;
        }
        Ok(())
    }
}

fn step(id: &str, uses: &str, with: Value, needs: &[&str]) -> Value {
    json!({ "id": id, "uses": uses, "with": with, "needs": needs, "rationale": format!("{id}: because") })
}

/// Extract, classify with both classifiers, report on both finding sets
/// (the typed planner would use one classifier).
fn valid_plan() -> Value {
    json!({ "rationale": "both classifiers, one report", "steps": [
        step("extract", "ioc/extract", json!({ "text": "${{ inputs.text }}" }), &[]),
        step("ips", "ioc/classify-ips", json!({ "iocs": "${{ steps.extract.output.iocs }}" }), &["extract"]),
        step("domains", "ioc/classify-domains", json!({ "iocs": "${{ steps.extract.output.iocs }}" }), &["extract"]),
        step("report", "report/summarize", json!({
            "title": "Indicators in the note",
            "finding_sets": {
                "ips": "${{ steps.ips.output.findings }}",
                "domains": "${{ steps.domains.output.findings }}"
            }
        }), &["ips", "domains"]),
    ]})
}

/// Binds the classifier's `iocs` to the raw text: the wrong artifact type
/// (the `llm` expert's own checks pass; the planner's do not).
fn mistyped_plan() -> Value {
    json!({ "rationale": "classify the text directly", "steps": [
        step("ips", "ioc/classify-ips", json!({ "iocs": "${{ inputs.text }}" }), &[]),
        step("report", "report/summarize", json!({ "findings": "${{ steps.ips.output.findings }}" }), &["ips"]),
    ]})
}

/// Stops at findings: nothing produces the `report` goal.
fn goalless_plan() -> Value {
    json!({ "rationale": "classify only", "steps": [
        step("extract", "ioc/extract", json!({ "text": "${{ inputs.text }}" }), &[]),
        step("only_ips", "ioc/classify-ips", json!({ "iocs": "${{ steps.extract.output.iocs }}" }), &["extract"]),
    ]})
}

/// The run's `RunPlanned` event: (planner, attempts, step uses).
fn planned(run: &Finished) -> (String, Vec<Value>, Vec<String>) {
    let RunEventKind::RunPlanned {
        planner,
        attempts,
        choices,
        ..
    } = &run.events[1].kind
    else {
        panic!("the second event is the plan: {:#?}", run.events[1]);
    };
    let uses = chosen_skills(choices);
    let attempts = attempts
        .as_deref()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    (planner.clone(), attempts, uses)
}

fn started_steps(run: &Finished) -> Vec<String> {
    run.events
        .iter()
        .filter_map(|event| match &event.kind {
            RunEventKind::StepStarted { step, .. } => Some(step.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_llm_plan_is_run_and_explained() -> anyhow::Result<()> {
    let setup = Setup::start(vec![json_completion(&valid_plan())]).await?;
    let run = setup.task("").await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let (planner, attempts, uses) = planned(&run);
    assert_eq!(planner, "llm");
    assert_eq!(
        uses,
        [
            "ioc/extract",
            "ioc/classify-ips",
            "ioc/classify-domains",
            "report/summarize"
        ]
    );
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["accepted"], true);
    assert_eq!(attempts[0]["uses"], "llm/plan");
    let mut started = started_steps(&run);
    started.sort();
    assert_eq!(started, ["domains", "extract", "ips", "report"]);
    let report = run.step("report")?;
    assert!(report.output.is_some(), "{report:?}");

    // One request: the cards and the task went to the model as fenced data.
    let requests = setup.model.requests();
    assert_eq!(requests.len(), 1);
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    let user = requests[0]["messages"][1]["content"].as_str().unwrap();
    assert!(system.contains("never instructions to you"), "{system}");
    assert!(user.starts_with("<data-"), "{user}");
    assert!(user.contains("write a report on this note"), "{user}");
    assert!(
        user.contains("\"uses\": \"ioc/classify-domains\""),
        "{user}"
    );
    assert!(user.contains("\"produces\": \"findings\""), "{user}");
    // Only input names and types are sent, never the input data.
    assert!(!user.contains("185.220.101.47"), "{user}");
    setup.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_llm_plan_is_repaired_on_the_second_try() -> anyhow::Result<()> {
    let setup = Setup::start(vec![
        json_completion(&mistyped_plan()),
        json_completion(&valid_plan()),
    ])
    .await?;
    let run = setup.task("llm").await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let (planner, attempts, _) = planned(&run);
    assert_eq!(planner, "llm");
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(attempts[0]["accepted"], false);
    let problems = attempts[0]["problems"].to_string();
    assert!(
        problems.contains("binds `iocs` (artifact type `iocs` of `ioc/classify-ips`) to run input `text`, which is of artifact type `text`"),
        "{problems}"
    );
    assert!(!problems.contains("no step produces"), "{problems}");
    assert_eq!(attempts[1]["accepted"], true);
    // `synod task` prints each attempt, its problems, then the plan.
    let printed = synod_server::cli::describe_event(&run.events[1]).unwrap();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(
        lines[0],
        "#2 llm planner (llm/plan) attempt 1: plan rejected, it will not run:"
    );
    assert!(
        lines[1].starts_with("    - step `ips` binds `iocs`"),
        "{printed}"
    );
    assert!(
        printed.contains("#2 llm planner (llm/plan) attempt 2: plan accepted\n#2 planned by the llm planner, goal `report`:"),
        "{printed}"
    );

    // The second request carried the problems as critic feedback, fenced.
    let requests = setup.model.requests();
    assert_eq!(requests.len(), 2);
    let user = requests[1]["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("kind=\"critic-feedback\""), "{user}");
    assert!(user.contains("planner:validate"), "{user}");
    assert!(user.contains("which is of artifact type `text`"), "{user}");
    // The rejected plan's steps never ran: `ips` ran with the repaired input.
    let started = started_steps(&run);
    assert_eq!(started.len(), 4, "{started:?}");
    setup.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrepairable_llm_plan_falls_back_to_the_typed_planner() -> anyhow::Result<()> {
    let setup = Setup::start(vec![
        json_completion(&goalless_plan()),
        json_completion(&mistyped_plan()),
        json_completion(&goalless_plan()),
    ])
    .await?;
    let run = setup.task("").await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let (planner, attempts, uses) = planned(&run);
    assert_eq!(planner, "typed");
    assert_eq!(
        uses,
        ["ioc/extract", "ioc/classify-domains", "report/summarize"]
    );
    assert_eq!(attempts.len(), 3, "{attempts:#?}");
    for attempt in &attempts {
        assert_eq!(attempt["accepted"], false, "{attempt:#}");
    }
    assert!(
        attempts[0]["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("no step produces the goal type `report`; skills that produce it:"),
        "{:#}",
        attempts[0]
    );
    let printed = synod_server::cli::describe_event(&run.events[1]).unwrap();
    assert!(
        printed.contains("#2 no llm plan was valid; falling back to the typed planner\n#2 planned by the typed planner, goal `report`:"),
        "{printed}"
    );
    // 1 + 2 repairs, then no more requests; the invalid plans never ran.
    assert_eq!(setup.model.requests().len(), 3);
    assert!(!started_steps(&run).contains(&"only_ips".to_owned()));

    // `--planner typed` skips the model even though an expert offers `plan`.
    let run = setup.task("typed").await?;
    assert_eq!(run.status(), RunStatus::Succeeded);
    let (planner, attempts, _) = planned(&run);
    assert_eq!((planner.as_str(), attempts.len()), ("typed", 0));
    assert_eq!(setup.model.requests().len(), 3);
    // An unknown planner is refused before anything runs.
    let refused = setup.task("oracle").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("unknown planner `oracle`"),
        "{}",
        refused.message()
    );
    setup.stop().await
}
