//! Planner tests: workflow → plan, catalog checks with positions, and
//! validation of plans built by code.

use serde_json::json;
use synod_types::{SkillRef, StepId};
use synod_workflow::{Diagnostics, ValueTemplate, codes, load};

use crate::{Plan, PlanProblem, PlanStep, SkillInfo, StaticCatalog, plan_workflow};

const WORKFLOW: &str = r#"name: ioc-triage
inputs:
  text: { type: string, required: true }
steps:
  report:
    uses: demo/summarise
    needs: [enrich]
    with: { verdicts: "${{ steps.enrich.output.verdicts }}", text: "${{ steps.extract.output.iocs }}" }
  extract:
    uses: demo/extract-iocs
    with: { text: "${{ inputs.text }}" }
  enrich:
    uses: demo/classify
    needs: [extract]
    with: { iocs: "${{ steps.extract.output.iocs }}" }
"#;

/// Each diagnostic's code, line and column.
fn positions(diagnostics: &Diagnostics) -> Vec<(&'static str, usize, usize)> {
    diagnostics
        .iter()
        .map(|d| (d.code, d.line, d.column))
        .collect()
}

fn skill(uses: &str, output_schema: serde_json::Value) -> SkillInfo {
    SkillInfo {
        uses: uses.parse().unwrap(),
        description: String::new(),
        consumes: Vec::new(),
        produces: "text".into(),
        input_schema: json!({}),
        output_schema,
        cost_hint: 1.0,
    }
}

fn catalog() -> StaticCatalog {
    StaticCatalog::new(vec![
        skill(
            "demo/extract-iocs",
            json!({"type": "object", "properties": {"iocs": {"type": "array"}}}),
        ),
        skill(
            "demo/classify",
            json!({"type": "object", "properties": {"verdicts": {}}, "additionalProperties": false}),
        ),
        skill("demo/summarise", json!({})),
        skill("knowledge/search", json!({})),
    ])
}

#[test]
fn workflow_becomes_a_plan_in_dependency_order() {
    let workflow = load(WORKFLOW, "ioc.yaml").unwrap();
    let catalog = catalog();
    let plan = plan_workflow(&workflow, Some(&catalog)).unwrap();
    assert_eq!(plan.name, "ioc-triage");
    let order: Vec<&str> = plan.steps_in_order().map(|s| s.id.as_str()).collect();
    assert_eq!(order, ["extract", "enrich", "report"]);
    let enrich = plan.step(&StepId::new("enrich")).unwrap();
    assert_eq!(enrich.needs, vec![StepId::new("extract")]);
    // Without a catalog only the graph is checked.
    assert_eq!(plan_workflow(&workflow, None).unwrap().len(), 3);
}

#[test]
fn catalog_problems_point_at_the_workflow() {
    let source = "\
name: t
steps:
  a:
    uses: demo/extract-ioc
  b:
    uses: knowlege/search
  c:
    uses: demo/classify
  d:
    uses: demo/summarise
    needs: [a, c]
    with:
      x: \"${{ steps.c.output.verdict }}\"
      y: \"${{ steps.c.output.verdicts }}\"
      z: \"${{ steps.a.output.anything }}\"
";
    let workflow = load(source, "t.yaml").unwrap();
    let catalog = catalog();
    let diagnostics = plan_workflow(&workflow, Some(&catalog)).unwrap_err();
    assert_eq!(
        positions(&diagnostics),
        [
            (codes::UNKNOWN_SKILL, 4, 11),
            (codes::UNKNOWN_EXPERT, 6, 11),
            (codes::UNKNOWN_OUTPUT_FIELD, 13, 30),
        ]
    );
    let d = &diagnostics.0;
    assert_eq!(
        d[0].message,
        "step `a` uses unknown skill `extract-ioc` of expert `demo`"
    );
    assert_eq!(
        d[0].help.as_deref(),
        Some(
            "did you mean `extract-iocs`? known skills of `demo`: `classify`, `extract-iocs`, `summarise`"
        )
    );
    assert_eq!(
        d[1].help.as_deref(),
        Some("did you mean `knowledge`? known experts: `demo`, `knowledge`")
    );
    assert_eq!(
        d[2].message,
        "step `d` reads `steps.c.output.verdict`, but the output of `demo/classify` has no field `verdict`"
    );
    assert_eq!(
        d[2].help.as_deref(),
        Some("did you mean `verdicts`? known fields: `verdicts`")
    );
    let rendered = diagnostics.render(source);
    assert!(
        rendered
            .contains("    uses: knowlege/search\n   |           ^^^^^^^^^^^^^^^ unknown expert"),
        "{rendered}"
    );
}

fn step(id: &str, uses: &str, needs: &[&str], input: serde_json::Value) -> PlanStep {
    PlanStep {
        id: StepId::new(id),
        uses: uses.parse::<SkillRef>().unwrap(),
        input: ValueTemplate::from_value(&input).unwrap(),
        needs: needs.iter().map(|n| StepId::new(*n)).collect(),
        timeout: None,
        retry: None,
    }
}

#[test]
fn validate_reports_every_problem_of_a_built_plan() {
    let steps = vec![
        step("a", "demo/classify", &["c"], json!({})),
        step("b", "demo/classify", &["a"], json!({})),
        step("c", "demo/classify", &["b"], json!({})),
        step("d", "demo/classify", &["e"], json!({})),
        step("e", "demo/classify", &["d"], json!({})),
        step("f", "demo/classify", &["f", "nope"], json!({})),
        step(
            "g",
            "demo/nothing",
            &[],
            json!({"x": "${{ steps.a.output }}", "y": "${{ steps.zz.output }}"}),
        ),
        step("a", "nobody/classify", &[], json!({})),
    ];
    let catalog = catalog();
    let problems = Plan::validate(&steps, Some(&catalog));
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let codes_found: Vec<&str> = problems.iter().map(PlanProblem::code).collect();
    assert_eq!(
        codes_found,
        [
            codes::DUPLICATE_KEY,
            codes::UNKNOWN_NEED,
            codes::UNLISTED_REFERENCE,
            codes::UNKNOWN_STEP_REF,
            codes::UNKNOWN_SKILL,
            codes::UNKNOWN_EXPERT,
            codes::DEPENDENCY_CYCLE,
            codes::DEPENDENCY_CYCLE,
            codes::SELF_NEED,
        ],
        "{messages:#?}"
    );
    assert_eq!(
        messages[6],
        "dependency cycle through step `a`: `a` needs `c`, `c` needs `b`, `b` needs `a`; remove one of these needs"
    );
    assert_eq!(
        messages[7],
        "dependency cycle through step `d`: `d` needs `e`, `e` needs `d`; remove one of these needs"
    );
    assert_eq!(
        messages[8],
        "step `f` needs itself; remove one of these needs"
    );
    assert_eq!(
        messages[2],
        "step `g` reads step `a` without listing it in `needs`; add `a` to `needs`"
    );
    assert!(Plan::try_from_steps("bad", steps, None).is_err());
}

#[test]
fn try_from_steps_builds_valid_plans() {
    let steps = vec![
        step(
            "b",
            "demo/classify",
            &["a"],
            json!({"v": "${{ steps.a.output.iocs }}"}),
        ),
        step("a", "demo/extract-iocs", &[], json!({})),
    ];
    let catalog = catalog();
    let plan = Plan::try_from_steps("built", steps, Some(&catalog)).unwrap();
    let order: Vec<&str> = plan.steps_in_order().map(|s| s.id.as_str()).collect();
    assert_eq!(order, ["a", "b"]);
}

#[test]
fn unsupported_features_and_critics_are_reported() {
    let source = "\
name: t
steps:
  a:
    uses: demo/extract-iocs
    if: \"${{ true }}\"
    reflect: { critic: knowledge/serch }
bindings:
  b:
    http: { url: \"https://h.example.org/x\" }
";
    let workflow = load(source, "t.yaml").unwrap();
    let catalog = catalog();
    let diagnostics = plan_workflow(&workflow, Some(&catalog)).unwrap_err();
    assert_eq!(
        positions(&diagnostics),
        [
            (codes::NOT_EXECUTABLE_YET, 3, 3),
            (codes::NOT_EXECUTABLE_YET, 5, 14),
            (codes::UNKNOWN_SKILL, 6, 24),
            (codes::NOT_EXECUTABLE_YET, 8, 3),
        ]
    );
    assert_eq!(
        diagnostics.0[2].help.as_deref(),
        Some("did you mean `search`? known skills of `knowledge`: `search`")
    );
    // An executor that runs these features plans the workflow.
    let everything = crate::Executable {
        conditions: true,
        for_each: true,
        reflect: true,
        bindings: true,
    };
    let plan = crate::plan_workflow_for(&workflow, None, everything).unwrap();
    assert_eq!(plan.len(), 1);
}

#[test]
fn compile_reports_loader_and_catalog_problems_together() {
    let source = "\
name: t
steps:
  a:
    uses: demo/extract-iocs
    needs: [zz]
  b:
    uses: nope/tag
  c:
    uses: demo/classify
    needs: [a]
    with: { v: \"${{ steps.a.output.ioc }}\" }
";
    let catalog = catalog();
    let diagnostics =
        crate::compile_workflow(source, "t.yaml", Some(&catalog), Default::default()).unwrap_err();
    assert_eq!(
        positions(&diagnostics),
        [
            (codes::UNKNOWN_NEED, 5, 13),
            (codes::UNKNOWN_EXPERT, 7, 11),
            (codes::UNKNOWN_OUTPUT_FIELD, 11, 36),
        ]
    );
    let (workflow, plan) =
        crate::compile_workflow(WORKFLOW, "ioc.yaml", Some(&catalog), Default::default()).unwrap();
    assert_eq!(workflow.name, "ioc-triage");
    assert_eq!(plan.len(), 3);
}
