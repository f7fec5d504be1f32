//! Typed planner tests over a catalog of test skills shaped like the
//! reference experts.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use synod_types::SkillRef;

use super::{SkillStats, TypedPlanError, TypedTask, goal_from_text, plan_typed};
use crate::catalog::{SkillCatalog, SkillInfo, StaticCatalog};

fn skill(uses: &str, consumes: &[&str], produces: &str, cost: f64) -> SkillInfo {
    let (expert, name) = uses.split_once('/').unwrap();
    SkillInfo {
        uses: SkillRef::new(expert, name),
        description: String::new(),
        consumes: consumes.iter().map(|t| (*t).to_owned()).collect(),
        produces: produces.to_owned(),
        input_schema: json!({}),
        output_schema: json!({ "properties": { produces: {} } }),
        cost_hint: cost,
    }
}

/// The reference experts' skills, plus a costly direct shortcut.
fn soc_skills() -> Vec<SkillInfo> {
    vec![
        skill("attack-detection/detect", &["events"], "alerts", 1.0),
        skill("tracing/trace", &["events", "alerts"], "attack_chain", 2.0),
        skill("knowledge/verify", &["attack_chain"], "knowledge", 0.5),
        skill(
            "disposition/plan",
            &["alerts", "attack_chain"],
            "response_plan",
            1.0,
        ),
        skill("llm/answer", &["question"], "answer", 5.0),
        skill("llm/respond", &["events"], "response_plan", 9.0),
    ]
}

fn task(given: &[(&str, &str)], goal: &str) -> TypedTask {
    TypedTask {
        given: given
            .iter()
            .map(|(artifact, input)| ((*artifact).to_owned(), (*input).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        goal: goal.to_owned(),
        text: format!("produce {goal}"),
    }
}

/// A step's input rendered against a scope where input `x` is `"input x"`
/// and step `detect` output `{"alerts": "ALERTS", "matches": 1}`.
fn rendered_input(plan: &super::TypedPlan, step: &str) -> Value {
    let scope = json!({
        "inputs": { "events": "input events", "ev": "input ev" },
        "steps": { "detect": { "output": { "alerts": "ALERTS", "matches": 1 } } },
        "run": { "id": "r" },
    });
    plan.plan
        .step(&step.into())
        .unwrap()
        .input
        .render(&scope)
        .unwrap()
}

fn uses_of(plan: &super::TypedPlan) -> Vec<String> {
    plan.plan
        .steps_in_order()
        .map(|s| s.uses.to_string())
        .collect()
}

#[test]
fn chains_events_to_a_response_plan_through_the_cheapest_derivation() {
    let catalog = StaticCatalog::new(soc_skills());
    let planned = plan_typed(&task(&[("events", "events")], "response_plan"), &catalog).unwrap();
    assert_eq!(
        uses_of(&planned),
        [
            "attack-detection/detect",
            "tracing/trace",
            "disposition/plan"
        ]
    );
    // detect once, shared by trace and plan: one step per artifact type.
    let plan_step = planned.plan.step(&"plan".into()).unwrap();
    assert_eq!(plan_step.needs, ["detect".into(), "trace".into()]);
    assert_eq!(
        rendered_input(&planned, "trace"),
        json!({ "events": "input events", "alerts": "ALERTS" })
    );
    // Cost: detect 1 + trace (2 + 0 + 1) + plan (1 + 1 + 3) = 5 < llm/respond 9.
    assert!((planned.cost - 5.0).abs() < 1e-9, "{}", planned.cost);
    let last = planned.choices.last().unwrap();
    assert_eq!(last.alternatives, [(SkillRef::new("llm", "respond"), 9.0)]);
    assert!(
        last.reason.contains("cheaper than llm/respond"),
        "{}",
        last.reason
    );
    assert!(
        planned.to_string().contains("plan = disposition/plan"),
        "{planned}"
    );
    let note = planned.plan.note.as_ref().unwrap();
    assert_eq!(
        (note.planner.as_str(), note.goal.as_str()),
        ("typed", "response_plan")
    );
    assert_eq!(note.choices[2]["uses"], "disposition/plan");
}

#[test]
fn a_cheaper_path_wins_and_ties_break_by_steps_then_name() {
    let mut skills = soc_skills();
    skills.push(skill("fast/respond", &["events"], "response_plan", 4.0));
    let catalog = StaticCatalog::new(skills.clone());
    let planned = plan_typed(&task(&[("events", "e")], "response_plan"), &catalog).unwrap();
    assert_eq!(uses_of(&planned), ["fast/respond"]);

    // Same cost as the 3-step chain (5): the 1-step plan wins.
    skills.pop();
    skills.push(skill("fast/respond", &["events"], "response_plan", 5.0));
    let catalog = StaticCatalog::new(skills.clone());
    let planned = plan_typed(&task(&[("events", "e")], "response_plan"), &catalog).unwrap();
    assert_eq!(uses_of(&planned), ["fast/respond"]);

    // Same cost and steps: the smaller name wins, whatever the catalog order.
    let mut twins = vec![
        skill("zeta/detect", &["events"], "alerts", 1.0),
        skill("alpha/detect", &["events"], "alerts", 1.0),
    ];
    for _ in 0..2 {
        let planned = plan_typed(
            &task(&[("events", "e")], "alerts"),
            &StaticCatalog::new(twins.clone()),
        )
        .unwrap();
        assert_eq!(uses_of(&planned), ["alpha/detect"]);
        twins.reverse();
    }
}

/// A catalog with observed latency and health.
struct Observed {
    inner: StaticCatalog,
    stats: HashMap<String, SkillStats>,
}

impl SkillCatalog for Observed {
    fn skill(&self, uses: &SkillRef) -> Option<SkillInfo> {
        self.inner.skill(uses)
    }
    fn expert_names(&self) -> Vec<String> {
        self.inner.expert_names()
    }
    fn skill_names(&self, expert: &str) -> Vec<String> {
        self.inner.skill_names(expert)
    }
    fn skill_stats(&self, uses: &SkillRef) -> SkillStats {
        self.stats.get(&uses.expert).copied().unwrap_or_default()
    }
}

#[test]
fn observed_latency_and_health_steer_the_choice() {
    let skills = vec![
        skill("slow/detect", &["events"], "alerts", 1.0),
        skill("quick/detect", &["events"], "alerts", 1.2),
    ];
    let catalog = |stats: Vec<(&str, SkillStats)>| Observed {
        inner: StaticCatalog::new(skills.clone()),
        stats: stats
            .into_iter()
            .map(|(expert, stats)| (expert.to_owned(), stats))
            .collect(),
    };
    let goal = task(&[("events", "e")], "alerts");
    let no_stats = plan_typed(&goal, &catalog(vec![])).unwrap();
    assert_eq!(uses_of(&no_stats), ["slow/detect"]);

    let slow = SkillStats {
        latency_ms: Some(800.0),
        healthy: true,
    };
    let measured = plan_typed(&goal, &catalog(vec![("slow", slow)])).unwrap();
    assert_eq!(uses_of(&measured), ["quick/detect"], "1.0 + 0.8 > 1.2");

    let down = SkillStats {
        latency_ms: None,
        healthy: false,
    };
    let planned = plan_typed(&goal, &catalog(vec![("quick", down), ("slow", slow)])).unwrap();
    assert_eq!(
        uses_of(&planned),
        ["slow/detect"],
        "unhealthy experts are left out"
    );
}

#[test]
fn an_unreachable_goal_names_the_missing_types_and_who_could_produce_them() {
    let skills: Vec<SkillInfo> = soc_skills()
        .into_iter()
        .filter(|s| s.uses.expert != "tracing" && s.uses.expert != "llm")
        .collect();
    let error = plan_typed(
        &task(&[("events", "events")], "response_plan"),
        &StaticCatalog::new(skills),
    )
    .unwrap_err();
    let TypedPlanError::Unreachable { missing, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(missing[0].artifact, "response_plan");
    assert_eq!(
        missing[0].producers,
        [(
            SkillRef::new("disposition", "plan"),
            vec!["attack_chain".to_owned()]
        )]
    );
    assert_eq!(missing[1].artifact, "attack_chain");
    assert!(missing[1].producers.is_empty());
    let message = error.to_string();
    assert!(
        message.contains("cannot produce `response_plan` from `events`"),
        "{message}"
    );
    assert!(
        message.contains("no registered skill produces `attack_chain`"),
        "{message}"
    );
    assert!(
        message.contains("disposition/plan (lacks `attack_chain`)"),
        "{message}"
    );

    let given = plan_typed(
        &task(&[("alerts", "a")], "alerts"),
        &StaticCatalog::new(soc_skills()),
    )
    .unwrap_err();
    assert!(given.to_string().contains("already given"), "{given}");
}

#[test]
fn whole_outputs_are_bound_when_the_producer_has_no_field_of_the_type() {
    let mut skills = soc_skills();
    skills[0].output_schema = json!({ "properties": { "matches": {} } });
    let planned = plan_typed(
        &task(&[("events", "ev")], "alerts"),
        &StaticCatalog::new(skills.clone()),
    )
    .unwrap();
    assert_eq!(
        rendered_input(&planned, "detect"),
        json!({ "events": "input ev" })
    );
    let planned = plan_typed(
        &task(&[("events", "ev")], "attack_chain"),
        &StaticCatalog::new(skills),
    )
    .unwrap();
    assert_eq!(
        rendered_input(&planned, "trace")["alerts"],
        json!({ "alerts": "ALERTS", "matches": 1 })
    );
}

#[test]
fn goal_text_maps_to_a_goal_type_by_intent_rules() {
    assert_eq!(
        goal_from_text("investigate these logs and recommend containment"),
        Some(("response_plan", "contain"))
    );
    assert_eq!(
        goal_from_text("Which threat actor is this?"),
        Some(("attribution", "threat actor"))
    );
    assert_eq!(
        goal_from_text("find the root cause"),
        Some(("attack_chain", "root cause"))
    );
    assert_eq!(
        goal_from_text("scan for PII"),
        Some(("sensitive_data", "pii"))
    );
    assert_eq!(goal_from_text("hello"), None);
}
