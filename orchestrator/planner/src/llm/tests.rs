//! LLM plan validation over a catalog shaped like the demo experts plus the
//! `llm` expert offering the `plan` skill.

use serde_json::{Value, json};
use synod_types::SkillRef;

use super::{LlmPlannerConfig, LlmTask, plan_request, validate_llm_plan};
use crate::catalog::{SkillInfo, StaticCatalog};

fn skill(uses: &str, consumes: &[&str], produces: &str, input: Value, output: Value) -> SkillInfo {
    SkillInfo {
        uses: uses.parse().unwrap(),
        description: format!("{uses} skill"),
        consumes: consumes.iter().map(|t| (*t).to_owned()).collect(),
        produces: produces.to_owned(),
        input_schema: input,
        output_schema: output,
        cost_hint: 1.0,
    }
}

fn closed(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
}

fn catalog() -> StaticCatalog {
    StaticCatalog::new(vec![
        skill(
            "ioc/extract",
            &["text"],
            "iocs",
            closed(json!({ "text": { "type": "string" } }), &["text"]),
            closed(
                json!({ "iocs": { "type": "array" }, "counts": { "type": "object" } }),
                &["iocs"],
            ),
        ),
        skill(
            "ioc/classify-ips",
            &["iocs"],
            "findings",
            closed(json!({ "iocs": { "type": "array" } }), &["iocs"]),
            closed(json!({ "findings": { "type": "array" } }), &["findings"]),
        ),
        skill(
            "report/summarize",
            &["findings"],
            "report",
            closed(
                json!({ "findings": { "type": "array" }, "title": { "type": "string" } }),
                &["findings"],
            ),
            closed(json!({ "markdown": { "type": "string" } }), &["markdown"]),
        ),
        skill("llm/plan", &[], "", json!({}), json!({})),
    ])
}

fn planner() -> SkillRef {
    SkillRef::new("llm", "plan")
}

fn task() -> LlmTask {
    LlmTask::new(
        "write a report on this note",
        "report",
        &json!({ "text": "beacon to 185.220.101.47" }),
    )
}

fn step(id: &str, uses: &str, with: Value, needs: &[&str]) -> Value {
    json!({ "id": id, "uses": uses, "with": with, "needs": needs, "rationale": format!("{id} because") })
}

fn valid_reply() -> Value {
    json!({ "rationale": "extract, classify, report", "steps": [
        step("extract", "ioc/extract", json!({ "text": "${{ inputs.text }}" }), &[]),
        step("classify", "ioc/classify-ips", json!({ "iocs": "${{ steps.extract.output.iocs }}" }), &["extract"]),
        step("report", "report/summarize", json!({ "findings": "${{ steps.classify.output.findings }}", "title": "IOC report" }), &["classify"]),
    ]})
}

fn problems_of(reply: &Value, config: &LlmPlannerConfig) -> Vec<String> {
    validate_llm_plan(reply, &task(), &catalog(), &planner(), config).unwrap_err()
}

#[test]
fn the_request_carries_the_cards_inputs_and_budget_but_not_the_planner_or_input_data() {
    let request = plan_request(
        &task(),
        &catalog(),
        &planner(),
        &LlmPlannerConfig::default(),
    );
    let uses: Vec<&str> = request["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|card| card["uses"].as_str().unwrap())
        .collect();
    assert_eq!(
        uses,
        ["ioc/classify-ips", "ioc/extract", "report/summarize"]
    );
    assert_eq!(request["catalog"][1]["consumes"], json!(["text"]));
    assert_eq!(request["catalog"][1]["produces"], "iocs");
    assert_eq!(request["catalog"][1]["cost"], 1.0);
    assert!(request["catalog"][1]["input_schema"]["properties"]["text"].is_object());
    assert_eq!(
        request["inputs"],
        json!({ "text": { "artifact_type": "text", "json_type": "string" } })
    );
    assert_eq!(request["max_steps"], 12);
    let goal = request["goal"].as_str().unwrap();
    assert!(goal.starts_with("write a report on this note"), "{goal}");
    assert!(goal.contains("`report`"), "{goal}");
    assert!(!request.to_string().contains("185.220.101.47"));
}

#[test]
fn a_valid_plan_becomes_an_llm_plan_with_reasons() {
    let plan = validate_llm_plan(
        &valid_reply(),
        &task(),
        &catalog(),
        &planner(),
        &LlmPlannerConfig::default(),
    )
    .unwrap();
    let order: Vec<&str> = plan.plan.steps_in_order().map(|s| s.id.as_str()).collect();
    assert_eq!(order, ["extract", "classify", "report"]);
    let note = plan.plan.note.as_ref().unwrap();
    assert_eq!(
        (note.planner.as_str(), note.goal.as_str()),
        ("llm", "report")
    );
    assert_eq!(note.choices[2]["produces"], "report");
    assert_eq!(note.choices[0]["reason"], "extract because");
    assert_eq!(plan.cost, 3.0);
    assert_eq!(plan.rationale, "extract, classify, report");
    assert_eq!(
        plan.step_inputs[&synod_types::StepId::new("classify")],
        json!({ "iocs": "${{ steps.extract.output.iocs }}" })
    );
}

#[test]
fn every_binding_and_type_problem_is_reported() {
    let reply = json!({ "rationale": "r", "steps": [
        // `iocs` bound to the text input: wrong artifact type.
        step("classify", "ioc/classify-ips", json!({ "iocs": "${{ inputs.text }}" }), &[]),
        // Missing required `findings`, an unknown field, an unknown input.
        step("report", "report/summarize", json!({ "title": "${{ inputs.note }}", "colour": "red" }), &["classify"]),
        // A field the producer does not output; the planner itself.
        step("again", "llm/plan", json!({ "goal": "${{ steps.classify.output.alerts }}" }), &["classify"]),
    ]});
    let problems = problems_of(&reply, &LlmPlannerConfig::default());
    let expected = [
        "step `classify` binds `iocs` (artifact type `iocs` of `ioc/classify-ips`) to run input `text`, which is of artifact type `text`",
        "step `report` does not set `findings`, which the input of `report/summarize` requires",
        "step `report` sets `colour`, which is not a field of the input of `report/summarize`; fields: findings, title",
        "step `report` reads run input `note`, which does not exist; inputs: text",
        "step `again` uses `llm/plan`, which is not offered for planning",
        "step `again` reads `alerts` from the output of step `classify`, which `ioc/classify-ips` does not produce; its output fields: findings",
    ];
    for want in expected {
        assert!(
            problems.iter().any(|problem| problem.starts_with(want)),
            "missing {want:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}

#[test]
fn json_types_must_match_the_input_schema() {
    let reply = json!({ "rationale": "r", "steps": [
        step("extract", "ioc/extract", json!({ "text": "${{ inputs.text }}" }), &[]),
        step("classify", "ioc/classify-ips", json!({ "iocs": "${{ steps.extract.output.iocs }}" }), &["extract"]),
        step("report", "report/summarize", json!({ "findings": "${{ steps.classify.output.findings }}", "title": "${{ steps.extract.output.counts }}" }), &["classify", "extract"]),
    ]});
    let problems = problems_of(&reply, &LlmPlannerConfig::default());
    assert_eq!(
        problems,
        [
            "step `report` binds `title` to `counts` of step `extract`, a JSON object; the input of `report/summarize` wants string"
        ]
    );
}

#[test]
fn graph_problems_unknown_skills_and_the_goal_are_reported() {
    let reply = json!({ "rationale": "r", "steps": [
        step("a", "ioc/extract", json!({ "text": "${{ inputs.text }}" }), &["b"]),
        step("b", "ioc/classify-ips", json!({ "iocs": "${{ steps.a.output.iocs }}" }), &["a"]),
        step("c", "ioc/classify-domainz", json!({}), &[]),
        step("d", "firewall/block", json!({}), &[]),
    ]});
    let problems = problems_of(&reply, &LlmPlannerConfig::default());
    let joined = problems.join("\n");
    assert!(
        joined.contains("dependency cycle through step `a`"),
        "{joined}"
    );
    assert!(
        joined.contains("step `c` uses unknown skill `classify-domainz` of expert `ioc`"),
        "{joined}"
    );
    assert!(
        joined.contains("step `d` uses unknown expert `firewall`"),
        "{joined}"
    );
    assert!(
        joined.contains(
            "no step produces the goal type `report`; skills that produce it: `report/summarize`"
        ),
        "{joined}"
    );
}

#[test]
fn the_budget_limits_steps_and_cost() {
    let config = LlmPlannerConfig {
        max_repairs: 2,
        max_steps: 2,
        max_cost: 2.5,
    };
    let problems = problems_of(&valid_reply(), &config);
    assert_eq!(
        problems,
        ["the plan has 3 steps; the budget allows at most 2"]
    );
    let config = LlmPlannerConfig {
        max_steps: 5,
        ..config
    };
    let problems = problems_of(&valid_reply(), &config);
    assert_eq!(
        problems,
        ["the plan's declared cost is 3.00, over the budget of 2.50; use fewer or cheaper steps"]
    );
}

#[test]
fn malformed_replies_are_explained() {
    let problems = problems_of(&json!({ "plan": [] }), &LlmPlannerConfig::default());
    assert!(problems[0].contains("no `steps` array"), "{problems:?}");
    let reply = json!({ "rationale": "r", "steps": [
        { "id": "Bad-Id", "uses": "nope", "with": [], "needs": [1] },
        step("x", "ioc/extract", json!({ "text": "${{ inputs.text + }}" }), &[]),
    ]});
    let problems = problems_of(&reply, &LlmPlannerConfig::default());
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems[0].contains("`/steps/0/id` must be a lowercase identifier"));
    assert!(problems[1].contains("`/steps/0/uses` must be `expert/skill`, got `nope`"));
    assert!(problems[2].contains("`/steps/0/with` must be an object"));
    assert!(problems[3].contains("`/steps/0/needs` must list step ids"));
    assert!(problems[4].contains("`/steps/1/with` has an invalid"));
}
