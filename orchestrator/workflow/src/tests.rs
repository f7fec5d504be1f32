//! Loader tests: one good workflow, each problem class with its position,
//! several problems at once, rendering snapshots, and property tests.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;
use synod_types::{RetryPolicy, SkillRef, StepId};

use crate::{Diagnostics, InputType, Severity, load};

const GOOD: &str = r#"name: ioc-triage            # required
description: "find and classify iocs"
inputs:
  text: { type: string, description: "free text", required: true }
  limit: { type: integer, default: 10 }
steps:
  extract:
    uses: demo/extract-iocs
    with: { text: "${{ inputs.text }}", limit: "${{ inputs.limit }}" }
  enrich:
    needs: [extract]
    uses: demo/classify
    with: { iocs: "${{ steps.extract.output.iocs }}" }
    timeout: 30s
    retry: { policy: exponential, initial_interval: 200ms, max_attempts: 4 }
  report:
    uses: demo/summarise
    needs: enrich
    with:
      title: "iocs in ${{ inputs.text }}"
      classified: ${{ steps.enrich.output }}
"#;

/// `(code, line, column)` of every diagnostic.
fn positions(diagnostics: &Diagnostics) -> Vec<(&'static str, usize, usize)> {
    diagnostics
        .iter()
        .map(|d| (d.code, d.line, d.column))
        .collect()
}

fn load_err(source: &str) -> Diagnostics {
    match load(source, "test.yaml") {
        Ok(workflow) => panic!("expected errors, loaded {workflow:?}"),
        Err(diagnostics) => diagnostics,
    }
}

/// The single error of `source`: its code, line, column and message.
fn single(source: &str) -> (&'static str, usize, usize, String) {
    let diagnostics = load_err(source);
    assert_eq!(diagnostics.len(), 1, "{diagnostics}");
    let d = &diagnostics.0[0];
    (d.code, d.line, d.column, d.message.clone())
}

/// A workflow with one step `a` whose body is `step_body` (indented 4).
fn one_step(step_body: &str) -> String {
    format!("name: t\nsteps:\n  a:\n{step_body}")
}

#[test]
fn good_workflow_loads_with_everything_resolved() {
    let workflow = load(GOOD, "flows/ioc.yaml").unwrap();
    assert_eq!(workflow.name, "ioc-triage");
    assert_eq!(
        workflow.description.as_deref(),
        Some("find and classify iocs")
    );
    assert_eq!(workflow.file, "flows/ioc.yaml");
    assert!(workflow.warnings.is_empty());

    assert_eq!(workflow.inputs.len(), 2);
    assert_eq!(workflow.inputs[0].name, "text");
    assert_eq!(workflow.inputs[0].ty, InputType::String);
    assert!(workflow.inputs[0].required);
    assert_eq!(workflow.inputs[1].default, Some(json!(10)));
    assert!(!workflow.inputs[1].required);

    let ids: Vec<&str> = workflow.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["extract", "enrich", "report"]);
    let enrich = workflow.step("enrich").unwrap();
    assert_eq!(enrich.uses, Some(SkillRef::new("demo", "classify")));
    assert_eq!(enrich.needs, vec![StepId::new("extract")]);
    assert_eq!(enrich.timeout, Some(Duration::from_secs(30)));
    assert!(matches!(
        enrich.retry,
        Some(RetryPolicy::Exponential {
            max_attempts: 4,
            ..
        })
    ));
    assert_eq!((enrich.spans.id.line, enrich.spans.id.column), (10, 3));
    assert_eq!((enrich.spans.uses.line, enrich.spans.uses.column), (12, 11));
    assert_eq!(
        (enrich.spans.needs[0].line, enrich.spans.needs[0].column),
        (11, 13)
    );

    // `report` reads `enrich` (which reads `extract`) through `needs: enrich`.
    let report = workflow.step("report").unwrap();
    assert_eq!(report.needs, vec![StepId::new("enrich")]);
    assert_eq!(report.expressions.len(), 2);
    let site = &report.expressions[1];
    assert_eq!(site.key_path, "with.classified");
    assert_eq!(&GOOD[site.span.range()], "steps.enrich.output");
    assert_eq!((site.span.line, site.span.column), (21, 23));

    // The `with` template renders against a run scope.
    let scope = json!({
        "inputs": {"text": "t", "limit": 3},
        "steps": {"extract": {"output": {"iocs": ["1.2.3.4"]}}}
    });
    let rendered = workflow
        .step("extract")
        .unwrap()
        .with
        .render(&scope)
        .unwrap();
    assert_eq!(rendered, json!({"text": "t", "limit": 3}));
    let rendered = enrich.with.render(&scope).unwrap();
    assert_eq!(rendered, json!({"iocs": ["1.2.3.4"]}));
}

#[test]
fn a_step_without_with_gets_an_empty_object() {
    let workflow = load(&one_step("    uses: demo/echo\n"), "t.yaml").unwrap();
    let step = &workflow.steps[0];
    assert_eq!(step.with.render(&json!({})).unwrap(), json!({}));
    assert!(step.needs.is_empty());
}

#[test]
fn yaml_syntax_error_has_its_position() {
    let (code, line, column, message) = single("name: t\nsteps:\n  a: { uses: x/y\n");
    assert_eq!(code, crate::codes::YAML_SYNTAX);
    assert_eq!((line, column), (4, 1));
    assert!(message.starts_with("invalid yaml: "), "{message}");

    let (code, line, column, _) = single("name: t\nsteps: *anchor\n");
    assert_eq!((code, line, column), (crate::codes::YAML_SYNTAX, 2, 8));
    let (code, _, _, message) = single("- just\n- a list\n");
    assert_eq!(code, crate::codes::YAML_SYNTAX);
    assert!(message.contains("mapping"), "{message}");
}

#[test]
fn duplicate_keys_are_reported_and_checking_goes_on() {
    let source = "name: t\nsteps:\n  a: { uses: x/y }\n  a: { uses: x/z }\n  b: { needs: [nope], uses: x/y }\n";
    let diagnostics = load_err(source);
    assert_eq!(
        positions(&diagnostics),
        [
            (crate::codes::DUPLICATE_KEY, 4, 3),
            (crate::codes::UNKNOWN_NEED, 5, 16)
        ]
    );
    assert_eq!(diagnostics.0[0].labels[0].line, 3);
}

#[test]
fn missing_and_unknown_fields_list_the_valid_ones() {
    let diagnostics = load_err("description: x\nstep:\n  a: {}\n");
    assert_eq!(
        positions(&diagnostics),
        [
            (crate::codes::MISSING_FIELD, 1, 1),
            (crate::codes::MISSING_FIELD, 1, 1),
            (crate::codes::UNKNOWN_FIELD, 2, 1),
        ]
    );
    let unknown = &diagnostics.0[2];
    assert_eq!(unknown.message, "unknown field `step` in the workflow");
    assert_eq!(
        unknown.help.as_deref(),
        Some(
            "did you mean `steps`? valid fields: `name`, `description`, `on`, `env`, `secrets`, `inputs`, `steps`, `outputs`, `bindings`"
        )
    );

    let (code, line, column, message) = single(&one_step("    uses: x/y\n    neds: [b]\n"));
    assert_eq!((code, line, column), (crate::codes::UNKNOWN_FIELD, 5, 5));
    assert_eq!(message, "unknown field `neds` in step `a`");

    let (code, line, column, message) =
        single(&one_step("    uses: x/y\n    fi: \"${{ true }}\"\n"));
    assert_eq!((code, line, column), (crate::codes::UNKNOWN_FIELD, 5, 5));
    assert_eq!(message, "unknown field `fi` in step `a`");

    let (code, line, column, message) = single(&one_step("    with: {}\n"));
    assert_eq!((code, line, column), (crate::codes::MISSING_FIELD, 3, 3));
    assert_eq!(message, "step `a` has no `uses`");
}

#[test]
fn wrong_types_point_at_the_value() {
    let (code, line, column, message) = single("name: t\nsteps: [a, b]\n");
    assert_eq!((code, line, column), (crate::codes::WRONG_TYPE, 2, 8));
    assert_eq!(message, "`steps` must be a mapping, found a list");

    let (code, line, column, _) = single(&one_step("    uses: x/y\n    needs: { b: 1 }\n"));
    assert_eq!((code, line, column), (crate::codes::WRONG_TYPE, 5, 12));
    let (code, line, column, _) = single(&one_step("    uses: [x, y]\n"));
    assert_eq!((code, line, column), (crate::codes::WRONG_TYPE, 4, 11));
    let (code, line, column, _) = single(&one_step("    uses: x/y\n    with: [1]\n"));
    assert_eq!((code, line, column), (crate::codes::WRONG_TYPE, 5, 11));
    let (code, line, column, message) = single(
        "name: t\ninputs:\n  x: { type: string, required: yes }\nsteps:\n  a: { uses: x/y }\n",
    );
    assert_eq!((code, line, column), (crate::codes::WRONG_TYPE, 3, 32));
    assert!(message.contains("`true` or `false`"), "{message}");
}

#[test]
fn bad_names_and_uses() {
    let (code, line, column, _) = single("name: IOC_triage\nsteps:\n  a: { uses: x/y }\n");
    assert_eq!((code, line, column), (crate::codes::INVALID_NAME, 1, 7));
    let (code, line, column, _) = single("name: t\nsteps:\n  9a: { uses: x/y }\n");
    assert_eq!((code, line, column), (crate::codes::INVALID_NAME, 3, 3));
    let (code, line, column, message) = single(&one_step("    uses: detect\n"));
    assert_eq!((code, line, column), (crate::codes::INVALID_USES, 4, 11));
    assert!(message.contains("write `expert/skill`"), "{message}");
}

#[test]
fn unknown_need_suggests_and_lists_steps() {
    let source = "name: t\nsteps:\n  extract: { uses: x/y }\n  enrich:\n    uses: x/z\n    needs: [extrct]\n";
    let diagnostics = load_err(source);
    assert_eq!(
        positions(&diagnostics),
        [(crate::codes::UNKNOWN_NEED, 6, 13)]
    );
    let d = &diagnostics.0[0];
    assert_eq!(d.message, "step `enrich` needs unknown step `extrct`");
    assert_eq!(
        d.help.as_deref(),
        Some("did you mean `extract`? known steps: `extract`, `enrich`")
    );
    assert_eq!(&source[d.span.clone()], "extrct");
}

#[test]
fn self_needs_are_errors_both_ways() {
    let (code, line, column, message) = single(&one_step("    uses: x/y\n    needs: [a]\n"));
    assert_eq!((code, line, column), (crate::codes::SELF_NEED, 5, 13));
    assert_eq!(message, "step `a` needs itself");
    let (code, line, column, _) = single(&one_step(
        "    uses: x/y\n    with: { v: \"${{ steps.a.output }}\" }\n",
    ));
    assert_eq!((code, line, column), (crate::codes::SELF_NEED, 5, 21));
}

#[test]
fn expression_errors_point_inside_the_string() {
    // Plain, double-quoted, single-quoted and block strings.
    let (code, line, column, message) = single(&one_step(
        "    uses: x/y\n    with:\n      v: x ${{ inputs..a }}\n",
    ));
    assert_eq!(
        (code, line, column),
        (crate::codes::EXPRESSION_SYNTAX, 6, 23)
    );
    assert!(message.contains("unexpected `..`"), "{message}");

    let (_, line, column, _) = single(&one_step(
        "    uses: x/y\n    with: { v: \"a ${{ bogus.x }}\" }\n",
    ));
    assert_eq!((line, column), (5, 23));
    let (_, line, column, _) = single(&one_step(
        "    uses: x/y\n    with: { v: 'it''s ${{ nope }}' }\n",
    ));
    assert_eq!((line, column), (5, 27));
    let (_, line, column, _) = single(&one_step(
        "    uses: x/y\n    with:\n      v: |\n        first line\n        then ${{ inputs.x y }}\n",
    ));
    assert_eq!((line, column), (8, 27));
    let (_, line, column, message) = single(&one_step(
        "    uses: x/y\n    with: { v: \"${{ inputs.x\" }\n",
    ));
    assert_eq!((line, column), (5, 17));
    assert!(message.contains("closing"), "{message}");
}

#[test]
fn references_to_unknown_inputs_and_steps() {
    let source = "name: t\ninputs:\n  text: { type: string }\nsteps:\n  extract:\n    uses: x/y\n    with:\n      a: \"${{ inputs.txt }}\"\n      b: \"${{ steps.extrct.output.iocs }}\"\n      c: \"${{ steps.extract }}\"\n";
    let diagnostics = load_err(source);
    assert_eq!(
        positions(&diagnostics),
        [
            (crate::codes::UNKNOWN_INPUT_REF, 8, 15),
            (crate::codes::UNKNOWN_STEP_REF, 9, 15),
            (crate::codes::SELF_NEED, 10, 15),
        ]
    );
    assert_eq!(
        diagnostics.0[0].help.as_deref(),
        Some("did you mean `text`? known inputs: `text`")
    );
    assert_eq!(
        diagnostics.0[1].message,
        "step `extract` reads unknown step `extrct`"
    );
    assert_eq!(
        &source[diagnostics.0[1].span.clone()],
        "steps.extrct.output.iocs"
    );

    let source = "name: t\nsteps:\n  a: { uses: x/y }\n  b: { uses: x/y, with: { v: \"${{ steps.a.result }}\" } }\n";
    let (code, line, column, message) = single(source);
    assert_eq!(
        (code, line, column),
        (crate::codes::UNKNOWN_STEP_REF, 4, 35)
    );
    assert!(message.contains("through `.output`"), "{message}");
}

#[test]
fn bad_durations_and_retry_policies() {
    let (code, line, column, message) =
        single(&one_step("    uses: x/y\n    timeout: 30 seconds\n"));
    assert_eq!(
        (code, line, column),
        (crate::codes::INVALID_DURATION, 5, 14)
    );
    assert!(message.contains("`timeout` of step `a`"), "{message}");

    let (code, line, column, _) = single(&one_step(
        "    uses: x/y\n    retry: { policy: exponential, initial_interval: soon, max_attempts: 2 }\n",
    ));
    assert_eq!(
        (code, line, column),
        (crate::codes::INVALID_DURATION, 5, 53)
    );

    let (code, line, column, message) = single(&one_step(
        "    uses: x/y\n    retry: { policy: exponentail }\n",
    ));
    assert_eq!((code, line, column), (crate::codes::INVALID_RETRY, 5, 22));
    assert!(message.contains("`exponentail`"), "{message}");

    let (code, line, column, _) = single(&one_step(
        "    uses: x/y\n    retry: { policy: fixed, interval: 1s, max_attempts: 2, factor: 2 }\n",
    ));
    assert_eq!((code, line, column), (crate::codes::UNKNOWN_FIELD, 5, 60));

    let (code, line, column, message) = single(&one_step(
        "    uses: x/y\n    retry:\n      policy: fixed\n      interval: 1s\n      max_attempts: 0\n",
    ));
    assert_eq!((code, line, column), (crate::codes::INVALID_RETRY, 6, 7));
    assert!(
        message.contains("`max_attempts` must be at least 1"),
        "{message}"
    );

    let (code, _, _, message) = single(&one_step(
        "    uses: x/y\n    retry: { policy: fixed, interval: 1s }\n",
    ));
    assert_eq!(code, crate::codes::INVALID_RETRY);
    assert!(message.contains("max_attempts"), "{message}");
}

#[test]
fn bad_input_declarations() {
    let source = "name: t\ninputs:\n  a: { type: strng }\n  b: { type: integer, default: ten }\n  c: { required: true }\nsteps:\n  s: { uses: x/y }\n";
    let diagnostics = load_err(source);
    assert_eq!(
        positions(&diagnostics),
        [
            (crate::codes::INVALID_INPUT, 3, 14),
            (crate::codes::INVALID_INPUT, 4, 32),
            (crate::codes::MISSING_FIELD, 5, 3),
        ]
    );
    assert!(
        diagnostics.0[0]
            .help
            .as_deref()
            .unwrap()
            .contains("did you mean `string`?")
    );
}

#[test]
fn empty_steps_and_duplicate_need_warning() {
    let (code, line, column, _) = single("name: t\nsteps: {}\n");
    assert_eq!((code, line, column), (crate::codes::NO_STEPS, 2, 1));

    let source = "name: t\nsteps:\n  a: { uses: x/y }\n  b: { uses: x/y, needs: [a, a] }\n";
    let workflow = load(source, "t.yaml").unwrap();
    assert_eq!(workflow.warnings.len(), 1);
    let warning = &workflow.warnings[0];
    assert_eq!(warning.severity, Severity::Warning);
    assert_eq!(
        (warning.code, warning.line, warning.column),
        (crate::codes::DUPLICATE_NEED, 4, 30)
    );
    assert_eq!(workflow.steps[1].needs, vec![StepId::new("a")]);
}

#[test]
fn every_cycle_is_named_in_order() {
    let source = "\
name: t
steps:
  a: { uses: x/y, needs: [c] }
  b: { uses: x/y, needs: [a] }
  c: { uses: x/y, needs: [b] }
  d: { uses: x/y }
  e: { uses: x/y, needs: [f], with: { v: \"${{ steps.f.output }}\" } }
  f: { uses: x/y, needs: [e] }
";
    let diagnostics = load_err(source);
    assert_eq!(
        positions(&diagnostics),
        [
            (crate::codes::DEPENDENCY_CYCLE, 3, 27),
            (crate::codes::DEPENDENCY_CYCLE, 7, 27),
        ]
    );
    assert_eq!(
        diagnostics.0[0].message,
        "dependency cycle through step `a`: `a` needs `c`, `c` needs `b`, `b` needs `a`"
    );
    assert_eq!(diagnostics.0[0].labels.len(), 2);
    assert_eq!(
        diagnostics.0[1].message,
        "dependency cycle through step `e`: `e` needs `f`, `f` needs `e`"
    );
}

const MANY_ERRORS: &str = r#"name: ioc-triage
inputs:
  text: { type: string, required: true }
steps:
  extract:
    uses: demo/extract-iocs
    with: { text: "${{ inputs.txt }}" }
  enrich:
    needs: [extrct, report]
    uses: demo
    with: { iocs: "${{ steps.extract.output.iocs | first }}" }
    timeout: 30 secs
    retry: { policy: exponential, initial_interval: 2s, max_interval: 1s, max_attempts: 3 }
    reflect: { max_rounds: 2 }
  report:
    uses: demo/summarise
    needs: [enrich]
    with: { text: "${{ steps.enrich.output }}" }
"#;

#[test]
fn several_errors_are_all_reported_in_source_order() {
    let diagnostics = load_err(MANY_ERRORS);
    assert_eq!(
        positions(&diagnostics),
        [
            (crate::codes::UNKNOWN_INPUT_REF, 7, 24),
            (crate::codes::UNKNOWN_NEED, 9, 13),
            (crate::codes::DEPENDENCY_CYCLE, 9, 21),
            (crate::codes::INVALID_USES, 10, 11),
            (crate::codes::EXPRESSION_SYNTAX, 11, 50),
            (crate::codes::INVALID_DURATION, 12, 14),
            (crate::codes::INVALID_RETRY, 13, 12),
            (crate::codes::MISSING_FIELD, 14, 5),
        ]
    );
}

#[test]
fn rendered_diagnostics_snapshot() {
    let diagnostics = load_err(MANY_ERRORS);
    insta::assert_snapshot!(diagnostics.render(MANY_ERRORS));
}

#[test]
fn json_diagnostics_snapshot() {
    let diagnostics = load_err("name: t\nsteps:\n  a: { uses: x/y, needs: [b] }\n");
    insta::assert_json_snapshot!(diagnostics);
}

#[test]
fn check_inputs_applies_defaults_and_reports_everything() {
    let workflow = load(GOOD, "flows/ioc.yaml").unwrap();
    let checked = workflow.check_inputs(&json!({"text": "hello"})).unwrap();
    assert_eq!(checked, json!({"text": "hello", "limit": 10}));

    let problems = workflow
        .check_inputs(&json!({"limit": 1.5, "txt": "x"}))
        .unwrap_err();
    assert_eq!(
        problems,
        [
            "unknown input `txt`; declared inputs: `text`, `limit`",
            "missing required input `text` (string); give it with the run's inputs",
            "input `limit` must be an integer, found a number",
        ]
    );
    assert!(workflow.check_inputs(&json!([1])).is_err());
}

// === property tests ===

fn assert_well_located(source: &str) {
    if let Err(diagnostics) = load(source, "p.yaml") {
        assert!(!diagnostics.is_empty());
        for diagnostic in diagnostics.iter() {
            assert!(diagnostic.line >= 1, "{diagnostic}");
            assert!(diagnostic.column >= 1, "{diagnostic}");
            assert!(diagnostic.span.start <= diagnostic.span.end);
            assert!(diagnostic.span.end <= source.len());
            let _ = diagnostic.render(source);
        }
    }
}

/// `base` with each `(position, removed, inserted)` edit applied in turn:
/// `removed` bytes at `position` (moved to char boundaries) replaced by
/// `inserted`.
fn mutated(base: &str, edits: Vec<(prop::sample::Index, usize, String)>) -> String {
    let mut source = base.to_owned();
    for (position, removed, inserted) in edits {
        let mut at = position.index(source.len() + 1);
        while !source.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + removed).min(source.len());
        while !source.is_char_boundary(end) {
            end += 1;
        }
        source.replace_range(at..end, &inserted);
    }
    source
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn load_never_panics_on_arbitrary_text(source in "\\PC{0,200}") {
        assert_well_located(&source);
    }

    #[test]
    fn load_never_panics_on_yaml_like_text(
        source in "([a-z${}:\\[\\],. \"'|>#&*!-]|\n  |\n    ){0,300}"
    ) {
        assert_well_located(&source);
    }

    #[test]
    fn load_never_panics_on_mutated_workflows(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4, "\\PC{0,3}"), 1..6)
    ) {
        assert_well_located(&mutated(GOOD, edits));
    }
}

// === property tests: the expression engine ===

const FULL: &str = include_str!("../tests/valid/alert-triage.yaml");

fn assert_expression_errors_located(text: &str) {
    match crate::Expression::parse(text) {
        Ok(expression) => {
            for reference in &expression.references {
                assert!(reference.range.start <= reference.range.end, "{text:?}");
                assert!(reference.range.end <= expression.source.len(), "{text:?}");
            }
            let scope = json!({
                "inputs": {"n": 2, "s": "x", "list": [1, 2], "map": {"k": "v"}},
                "steps": {"a": {"output": {"items": [{"k": 1}]}}},
                "run": {"id": "r"},
            });
            // Evaluation may fail, but must not panic.
            let _ = expression.evaluate(&scope);
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "{text:?}");
            for error in errors {
                assert!(!error.message.is_empty(), "{text:?}");
                assert!(error.range.start <= error.range.end, "{text:?}");
                assert!(error.range.end <= text.len(), "{text:?}: {error:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn expressions_never_panic_on_arbitrary_text(text in "\\PC{0,120}") {
        assert_expression_errors_located(&text);
    }

    #[test]
    fn expressions_never_panic_on_cel_like_text(
        text in "([a-z_.]|inputs|steps|\\.output|size|\\(|\\)|\\[|\\]|\\{|\\}|[0-9]|'|\"|\\+|-|\\*|/|%|==|<|>|&&|\\|\\||!|\\?|:|,| |\\.exists\\(x, |\\.map\\(y, |has\\(){0,60}"
    ) {
        assert_expression_errors_located(&text);
    }

    #[test]
    fn load_never_panics_on_mutated_full_workflows(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..6, "[${}:\\[\\],.'\" a-z|&-]{0,4}"), 1..5)
    ) {
        assert_well_located(&mutated(FULL, edits));
    }
}

#[test]
fn deeply_nested_expressions_are_rejected_not_overflowing() {
    for text in [
        format!("{}1{}", "(".repeat(500), ")".repeat(500)),
        format!("{}]", "[".repeat(500)),
        "f(".repeat(300),
        vec!["1"; 2000].join("+"),
    ] {
        assert_expression_errors_located(&text);
        assert!(crate::Expression::parse(&text).is_err());
    }
}

#[test]
fn unused_secrets_are_warnings() {
    let source = "name: t\nsecrets:\n  USED:\n  SPARE: { description: x }\nsteps:\n  a: { uses: x/y }\nbindings:\n  b:\n    http:\n      url: https://h.example.org/x\n      headers: { Authorization: \"${{ secrets.USED }}\" }\n";
    let workflow = load(source, "t.yaml").unwrap();
    assert_eq!(workflow.warnings.len(), 1, "{:?}", workflow.warnings);
    let warning = &workflow.warnings[0];
    assert_eq!(
        (warning.code, warning.line, warning.column),
        (crate::codes::UNUSED_SECRET, 4, 3)
    );
    assert_eq!(workflow.bindings[0].http.origin, "https://h.example.org");
    let path = workflow.bindings[0].http.path.render(&json!({})).unwrap();
    assert_eq!(path, json!("/x"));
}

#[test]
fn reference_errors_point_inside_every_scalar_style() {
    let bodies = [
        "    with: { v: \"${{ inputs.txt }}\" }\n",
        "    with: { v: 'a ${{ inputs.txt }}' }\n",
        "    with:\n      v: ${{ inputs.txt }}\n",
        "    with:\n      v: |\n        first line\n        then ${{ 1 + inputs.txt }}\n",
        "    with:\n      v: >\n        folded\n        ${{ size(inputs.txt) }}\n",
        "    with:\n      v: \"esc\\\"aped ${{ inputs.txt }}\"\n",
    ];
    for body in bodies {
        let source = format!(
            "name: t\ninputs:\n  text: {{ type: string }}\nsteps:\n  a:\n    uses: x/y\n{body}"
        );
        let diagnostics = load_err(&source);
        let d = &diagnostics.0[0];
        assert_eq!(d.code, crate::codes::UNKNOWN_INPUT_REF, "{source}");
        assert_eq!(&source[d.span.clone()], "inputs.txt", "{source}");
        let at = crate::source::SourceMap::new(&source).span(d.span.start, d.span.end);
        assert_eq!((d.line, d.column), (at.line, at.column), "{source}");
    }
}

#[test]
fn deeply_nested_yaml_is_rejected_or_loaded_without_overflow() {
    for depth in [200, 5_000] {
        let source = format!(
            "name: t\nsteps:\n  a: {{ uses: x/y, with: {{ v: {}1{} }} }}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_well_located(&source);
    }
}
