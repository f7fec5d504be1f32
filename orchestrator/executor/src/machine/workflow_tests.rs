//! Machine tests of the workflow features: `if`, `for_each` and bindings.

use std::sync::Arc;

use serde_json::{Value, json};
use synod_types::{RunEventKind, RunId, RunStatus, StepId};

use super::tests::describe;
use super::{Action, MachineInput, RunMachine};
use crate::binding::{BindingResult, DeliveryAttempt};
use crate::config::ExecutorConfig;
use crate::test_support::{ALL_FEATURES, fixed_retry, output, permanent, transient};

/// A machine for `source` (a workflow YAML) with `inputs`.
fn machine(source: &str, inputs: Value, max_concurrency: usize) -> RunMachine {
    let (workflow, plan) = synod_planner::compile_workflow(source, "test.yaml", None, ALL_FEATURES)
        .unwrap_or_else(|diagnostics| panic!("{}", diagnostics.render(source)));
    let config = ExecutorConfig {
        default_retry: fixed_retry(2),
        rng_seed: Some(1),
        max_concurrency,
        ..ExecutorConfig::default()
    };
    RunMachine::new(RunId::new(), Arc::new(plan), inputs, config).with_workflow(Arc::new(workflow))
}

fn lines(actions: &[Action]) -> Vec<String> {
    actions.iter().map(describe).collect()
}

fn item_done(step: &str, item: u32, attempt: u32, value: Value) -> MachineInput {
    MachineInput::ItemFinished {
        step: StepId::new(step),
        item,
        attempt,
        outcome: Ok(output(value)),
    }
}

fn step_done(step: &str, value: Value) -> MachineInput {
    MachineInput::AttemptFinished {
        step: StepId::new(step),
        attempt: 1,
        outcome: Ok(output(value)),
    }
}

fn finish(actions: &[Action]) -> Option<(RunStatus, Value)> {
    actions.iter().find_map(|action| match action {
        Action::Finish { status, result } => Some((*status, result.clone())),
        _ => None,
    })
}

const CONDITIONS: &str = r#"name: conditions
inputs:
  level: { type: integer }
steps:
  detect: { uses: demo/detect }
  escalate:
    uses: demo/escalate
    needs: [detect]
    if: "${{ inputs.level > 3 }}"
  notify: { uses: demo/notify, needs: [escalate] }
  report: { uses: demo/report, needs: [detect] }
"#;

#[test]
fn a_false_condition_skips_the_step_and_its_dependents_and_the_run_succeeds() {
    let mut machine = machine(CONDITIONS, json!({"level": 1}), 8);
    assert_eq!(
        lines(&machine.apply(MachineInput::Start)),
        [
            "run_started [detect,escalate,notify,report]",
            "started detect#1",
            "invoke detect#1"
        ]
    );
    let actions = machine.apply(step_done("detect", json!({})));
    assert_eq!(
        lines(&actions),
        [
            "succeeded detect#1",
            "skipped escalate: its condition `if: ${{ inputs.level > 3 }}` is false",
            "skipped notify: upstream step `escalate` was skipped",
            "started report#1",
            "invoke report#1",
        ]
    );
    let actions = machine.apply(step_done("report", json!({"ok": true})));
    let (status, result) = finish(&actions).unwrap();
    assert_eq!(status, RunStatus::Succeeded);
    assert_eq!(result, json!({"detect": {}, "report": {"ok": true}}));
}

#[test]
fn a_true_condition_runs_the_step_and_a_broken_one_fails_it() {
    let mut machine = machine(CONDITIONS, json!({"level": 5}), 8);
    machine.apply(MachineInput::Start);
    let actions = lines(&machine.apply(step_done("detect", json!({}))));
    assert!(
        actions.contains(&"invoke escalate#1".to_owned()),
        "{actions:?}"
    );

    // `level` is declared optional: null > 3 cannot be evaluated.
    let mut machine = machine_for_null();
    machine.apply(MachineInput::Start);
    let actions = machine.apply(step_done("detect", json!({})));
    let failed = actions.iter().find_map(|action| match action {
        Action::Emit(RunEventKind::StepFailed { step, error, .. })
            if step.as_str() == "escalate" =>
        {
            Some(error.message.clone())
        }
        _ => None,
    });
    let message = failed.expect("escalate failed");
    assert!(
        message.contains("the `if` of step `escalate` cannot be evaluated"),
        "{message}"
    );
}

fn machine_for_null() -> RunMachine {
    machine(CONDITIONS, json!({}), 8)
}

const FAN_OUT: &str = r#"name: fan-out
inputs:
  hosts: { type: array }
steps:
  scan:
    uses: demo/scan
    for_each: "${{ inputs.hosts }}"
    max_parallel: 2
    with: { host: "${{ item }}", index: "${{ item_index }}" }
  report:
    uses: demo/report
    needs: [scan]
    with: { scans: "${{ steps.scan.output }}" }
"#;

#[test]
fn for_each_runs_one_attempt_per_item_within_max_parallel_and_keeps_item_order() {
    let mut machine = machine(FAN_OUT, json!({"hosts": ["a", "b", "c"]}), 8);
    let started = machine.apply(MachineInput::Start);
    let invoked: Vec<Value> = started
        .iter()
        .filter_map(|action| match action {
            Action::InvokeItem { call, .. } => Some(call.input.clone()),
            _ => None,
        })
        .collect();
    // At most two items at once.
    assert_eq!(
        invoked,
        [
            json!({"host": "a", "index": 0}),
            json!({"host": "b", "index": 1})
        ]
    );
    assert!(lines(&started).contains(
        &"StepFannedOut { step: StepId(\"scan\"), items: 3, max_parallel: Some(2) }".to_owned()
    ));
    // Item 1 ends first; item 2 starts in its slot.
    let actions = lines(&machine.apply(item_done("scan", 1, 1, json!({"host": "b"}))));
    assert_eq!(actions.last().unwrap(), "invoke scan[2]#1");
    assert_eq!(machine.in_flight(), 2);
    machine.apply(item_done("scan", 2, 1, json!({"host": "c"})));
    let actions = machine.apply(item_done("scan", 0, 1, json!({"host": "a"})));
    let report = actions
        .iter()
        .find_map(|action| match action {
            Action::Invoke(call) => Some(call.input.clone()),
            _ => None,
        })
        .expect("report starts");
    assert_eq!(
        report,
        json!({"scans": [{"host": "a"}, {"host": "b"}, {"host": "c"}]})
    );
}

#[test]
fn a_failed_item_is_retried_alone_and_fails_the_step_after_every_item_ended() {
    let mut machine = machine(FAN_OUT, json!({"hosts": ["a", "b"]}), 8);
    machine.apply(MachineInput::Start);
    // Item 0 fails transiently: retried under the step policy (2 attempts).
    let actions = lines(&machine.apply(MachineInput::ItemFinished {
        step: StepId::new("scan"),
        item: 0,
        attempt: 1,
        outcome: Err(transient("busy")),
    }));
    assert!(
        actions
            .iter()
            .any(|line| line.starts_with("schedule_retry scan[0]#2")),
        "{actions:?}"
    );
    let actions = lines(&machine.apply(MachineInput::ItemRetryDue {
        step: StepId::new("scan"),
        item: 0,
        attempt: 2,
    }));
    assert_eq!(actions.last().unwrap(), "invoke scan[0]#2");
    // Item 1 fails for good; item 0 is still in flight, so the step waits.
    let actions = machine.apply(MachineInput::ItemFinished {
        step: StepId::new("scan"),
        item: 1,
        attempt: 1,
        outcome: Err(permanent("no such host")),
    });
    assert!(finish(&actions).is_none());
    assert_eq!(
        machine.step_status(&StepId::new("scan")),
        Some(synod_types::StepStatus::Running)
    );
    let actions = machine.apply(item_done("scan", 0, 2, json!({"host": "a"})));
    let described = lines(&actions);
    assert!(
        described.contains(&"skipped report: upstream step `scan` failed".to_owned()),
        "{described:?}"
    );
    let error = actions
        .iter()
        .find_map(|action| match action {
            Action::Emit(RunEventKind::StepFailed { error, .. }) => Some(error.message.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        error,
        "1 of 2 items of step `scan` failed: item 1: no such host"
    );
    assert_eq!(finish(&actions).unwrap().0, RunStatus::Failed);
}

#[test]
fn an_empty_list_succeeds_at_once_with_an_empty_output() {
    let mut machine = machine(FAN_OUT, json!({"hosts": []}), 8);
    let actions = machine.apply(MachineInput::Start);
    let report = actions
        .iter()
        .find_map(|action| match action {
            Action::Invoke(call) => Some(call.input.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(report, json!({"scans": []}));
}

#[test]
fn items_count_against_the_run_concurrency() {
    let mut machine = machine(FAN_OUT, json!({"hosts": ["a", "b", "c"]}), 1);
    let actions = machine.apply(MachineInput::Start);
    let items = actions
        .iter()
        .filter(|action| matches!(action, Action::InvokeItem { .. }))
        .count();
    assert_eq!(items, 1);
}

const BINDINGS: &str = r#"name: deliver
inputs:
  alert: { type: boolean }
steps:
  detect: { uses: demo/detect }
bindings:
  ticket:
    needs: [detect]
    if: "${{ inputs.alert }}"
    http:
      method: POST
      url: "https://tickets.example.org/api/${{ run.workflow }}"
      body: { found: "${{ steps.detect.output }}" }
  page:
    when: on_failure
    http: { method: POST, url: "https://pager.example.org/page" }
  audit:
    when: always
    http: { method: PUT, url: "https://audit.example.org/log" }
"#;

fn delivered(binding: &str) -> MachineInput {
    MachineInput::BindingFinished {
        binding: binding.to_owned(),
        result: BindingResult {
            url: "https://tickets.example.org/api/deliver".to_owned(),
            attempts: vec![
                DeliveryAttempt {
                    attempt: 1,
                    status: Some(503),
                    duration_ms: 3,
                    error: Some("503 Service Unavailable".to_owned()),
                    retry_in_ms: Some(100),
                },
                DeliveryAttempt {
                    attempt: 2,
                    status: Some(201),
                    duration_ms: 2,
                    error: None,
                    retry_in_ms: None,
                },
            ],
            outcome: Ok(201),
        },
    }
}

#[test]
fn bindings_are_delivered_in_order_after_the_steps() {
    let mut machine = machine(BINDINGS, json!({"alert": true}), 8);
    machine.apply(MachineInput::Start);
    let actions = machine.apply(step_done("detect", json!({"n": 1})));
    let call = actions
        .iter()
        .find_map(|action| match action {
            Action::Deliver(call) => Some(call.clone()),
            _ => None,
        })
        .expect("ticket is delivered");
    assert_eq!(call.binding, "ticket");
    assert_eq!(call.scope["steps"]["detect"]["output"], json!({"n": 1}));
    assert_eq!(call.scope["run"]["workflow"], json!("deliver"));
    assert!(finish(&actions).is_none(), "the run waits for the delivery");
    let actions = machine.apply(delivered("ticket"));
    assert_eq!(
        lines(&actions)[..3],
        [
            "BindingAttempt { binding: \"ticket\", attempt: 1, status: Some(503), duration_ms: 3, error: Some(\"503 Service Unavailable\"), retry_in_ms: Some(100) }",
            "BindingAttempt { binding: \"ticket\", attempt: 2, status: Some(201), duration_ms: 2, error: None, retry_in_ms: None }",
            "BindingDelivered { binding: \"ticket\", url: \"https://tickets.example.org/api/deliver\", status: 201, attempts: 2 }",
        ]
    );
    assert!(lines(&actions).contains(
        &"BindingSkipped { binding: \"page\", reason: \"the run did not fail (`when: on_failure`)\" }"
            .to_owned()
    ));
    assert_eq!(lines(&actions).last().unwrap(), "deliver audit");
    let actions = machine.apply(delivered("audit"));
    assert_eq!(finish(&actions).unwrap().0, RunStatus::Succeeded);
}

#[test]
fn a_failed_binding_fails_the_run_and_on_failure_bindings_then_run() {
    let mut machine = machine(BINDINGS, json!({"alert": true}), 8);
    machine.apply(MachineInput::Start);
    machine.apply(step_done("detect", json!({})));
    let actions = machine.apply(MachineInput::BindingFinished {
        binding: "ticket".to_owned(),
        result: BindingResult::not_sent("", "destination not allowed"),
    });
    let described = lines(&actions);
    assert_eq!(described.last().unwrap(), "deliver page", "{described:?}");
    machine.apply(delivered("page"));
    let actions = machine.apply(delivered("audit"));
    let failure = actions
        .iter()
        .find_map(|action| match action {
            Action::Emit(RunEventKind::RunFailed {
                error,
                failed_steps,
            }) => Some((error.clone(), failed_steps.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        failure.0,
        "binding `ticket` failed: destination not allowed"
    );
    assert!(failure.1.is_empty());
    assert_eq!(finish(&actions).unwrap().0, RunStatus::Failed);
}

#[test]
fn a_false_binding_condition_skips_it() {
    let mut machine = machine(BINDINGS, json!({"alert": false}), 8);
    machine.apply(MachineInput::Start);
    let actions = lines(&machine.apply(step_done("detect", json!({}))));
    assert!(actions.contains(&"BindingSkipped { binding: \"ticket\", reason: \"its condition `if: ${{ inputs.alert }}` is false\" }".to_owned()), "{actions:?}");
    assert_eq!(actions.last().unwrap(), "deliver audit");
}

const GATED: &str = r#"name: gated
steps:
  detect: { uses: demo/detect }
bindings:
  block:
    http: { method: POST, url: "https://firewall.example.org/block" }
    approval: { roles: [soc-lead], timeout: 30m }
"#;

/// A [`GATED`] run whose steps are done: the binding awaits approval.
fn awaiting_approval() -> RunMachine {
    let mut machine = machine(GATED, json!({}), 8);
    machine.apply(MachineInput::Start);
    let actions = lines(&machine.apply(step_done("detect", json!({}))));
    assert_eq!(
        actions[1..],
        [
            "ApprovalRequested { binding: \"block\", roles: [\"soc-lead\"], timeout_ms: Some(1800000) }",
            "approval_timeout block after 1800s",
        ]
    );
    assert!(machine.awaiting_approval());
    machine
}

fn decide(approved: bool) -> MachineInput {
    MachineInput::ApprovalDecision {
        binding: "block".to_owned(),
        approved,
        comment: "checked the host".to_owned(),
    }
}

#[test]
fn an_approved_binding_is_delivered() {
    let mut machine = awaiting_approval();
    let actions = lines(&machine.apply(decide(true)));
    assert_eq!(
        actions,
        [
            "ApprovalDecided { binding: \"block\", approved: true, comment: \"checked the host\" }",
            "BindingStarted { binding: \"block\", method: \"POST\", origin: \"https://firewall.example.org\" }",
            "deliver block",
        ]
    );
    // A second decision, or a late timeout, changes nothing.
    assert!(machine.apply(decide(false)).is_empty());
    assert!(
        machine
            .apply(MachineInput::ApprovalTimeout {
                binding: "block".to_owned()
            })
            .is_empty()
    );
    let actions = machine.apply(delivered("block"));
    assert_eq!(finish(&actions).unwrap().0, RunStatus::Succeeded);
}

#[test]
fn a_rejected_binding_is_never_sent_and_fails_the_run() {
    let mut machine = awaiting_approval();
    let actions = machine.apply(decide(false));
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::Deliver(_)))
    );
    let described = lines(&actions);
    assert_eq!(
        described[1],
        "BindingFailed { binding: \"block\", error: \"the approval was rejected: checked the host; it was not sent\", attempts: 0 }"
    );
    assert_eq!(finish(&actions).unwrap().0, RunStatus::Failed);
}

#[test]
fn an_approval_that_times_out_is_never_sent_and_fails_the_run() {
    let mut machine = awaiting_approval();
    let actions = machine.apply(MachineInput::ApprovalTimeout {
        binding: "block".to_owned(),
    });
    let described = lines(&actions);
    assert_eq!(
        described[0],
        "ApprovalTimedOut { binding: \"block\", after_ms: 1800000 }"
    );
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::Deliver(_)))
    );
    assert_eq!(finish(&actions).unwrap().0, RunStatus::Failed);
    // A decision after the timeout is not taken.
    assert!(machine.apply(decide(true)).is_empty());
}

#[test]
fn cancelling_during_a_fan_out_or_delivery_aborts_it() {
    let mut machine = machine(FAN_OUT, json!({"hosts": ["a", "b"]}), 8);
    machine.apply(MachineInput::Start);
    let actions = lines(&machine.apply(MachineInput::Cancel {
        reason: "stop".to_owned(),
    }));
    assert_eq!(actions[0], "abort_in_flight");
    assert!(actions.contains(&"cancelled scan".to_owned()));

    let mut machine = machine_bindings();
    machine.apply(MachineInput::Start);
    machine.apply(step_done("detect", json!({})));
    let actions = lines(&machine.apply(MachineInput::Cancel {
        reason: "stop".to_owned(),
    }));
    assert_eq!(actions[0], "abort_in_flight");
    assert_eq!(actions.last().unwrap(), "finish cancelled");
}

fn machine_bindings() -> RunMachine {
    machine(BINDINGS, json!({"alert": true}), 8)
}

#[test]
fn a_dry_run_asks_no_approval_and_records_rendered_bindings_as_skipped() {
    let mut machine = machine(GATED, json!({}), 8).with_dry_run();
    machine.apply(MachineInput::Start);
    let actions = lines(&machine.apply(step_done("detect", json!({}))));
    assert_eq!(actions.last().unwrap(), "deliver block", "{actions:?}");
    let actions = machine.apply(MachineInput::BindingFinished {
        binding: "block".to_owned(),
        result: BindingResult {
            url: "https://firewall.example.org/block".to_owned(),
            attempts: Vec::new(),
            outcome: Ok(0),
        },
    });
    assert_eq!(
        lines(&actions)[0],
        "BindingSkipped { binding: \"block\", reason: \"dry run: rendered for https://firewall.example.org/block, not sent\" }"
    );
    assert_eq!(finish(&actions).unwrap().0, RunStatus::Succeeded);
}

#[test]
fn values_of_secret_named_inputs_are_masked_wherever_they_reach_events() {
    let source = r#"name: token-flow
inputs:
  api_token: { type: string }
  hosts: { type: array }
steps:
  call:
    uses: demo/call
    for_each: "${{ inputs.hosts }}"
    with: { header: "Bearer ${{ inputs.api_token }}", host: "${{ item }}" }
"#;
    let mut machine = machine(
        source,
        json!({"api_token": "tok-3f9a1c", "hosts": ["a"]}),
        8,
    );
    let started = machine.apply(MachineInput::Start);
    let done = machine.apply(item_done("call", 0, 1, json!({"echo": "tok-3f9a1c"})));
    for action in started.iter().chain(&done) {
        if let Action::Emit(kind) = action {
            let json = serde_json::to_string(kind).unwrap();
            assert!(!json.contains("tok-3f9a1c"), "{json}");
        }
    }
    // The expert still gets the real value.
    let sent = started
        .iter()
        .find_map(|action| match action {
            Action::InvokeItem { call, .. } => Some(call.input.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(sent["header"], "Bearer tok-3f9a1c");
}

const REFLECT: &str = r#"name: reflect
steps:
  draft:
    uses: demo/draft
    reflect:
      min_confidence: 0.8
      until: "${{ output.complete == true }}"
      critic: demo/critic
      max_rounds: 3
  publish:
    uses: demo/publish
    needs: [draft]
    with: { text: "${{ steps.draft.output.text }}" }
"#;

fn attempt_done(step: &str, attempt: u32, value: Value, confidence: f64) -> MachineInput {
    let mut out = output(value);
    out.confidence = confidence;
    MachineInput::AttemptFinished {
        step: StepId::new(step),
        attempt,
        outcome: Ok(out),
    }
}

fn critique(step: &str, round: u32, value: Value) -> MachineInput {
    MachineInput::CriticFinished {
        step: StepId::new(step),
        round,
        outcome: Ok(output(value)),
    }
}

/// The feedback and round of the invocation of `step` among `actions`.
fn invoked_round(actions: &[Action], step: &str) -> Option<(u32, Vec<String>)> {
    actions.iter().find_map(|action| match action {
        Action::Invoke(call) if call.step.as_str() == step => Some((
            call.round,
            call.feedback.iter().map(|f| f.message.clone()).collect(),
        )),
        _ => None,
    })
}

#[test]
fn reflection_sends_the_step_back_with_feedback_until_rules_and_critic_accept() {
    let mut machine = machine(REFLECT, json!({}), 8);
    machine.apply(MachineInput::Start);

    // Round 0: confidence too low; the critic is not asked.
    let actions = machine.apply(attempt_done("draft", 1, json!({"text": "a"}), 0.5));
    assert_eq!(
        lines(&actions),
        [
            "reflected draft round 0 revise by rule:min_confidence",
            "started draft#2",
            "invoke draft#2"
        ]
    );
    let (round, feedback) = invoked_round(&actions, "draft").unwrap();
    assert_eq!(round, 1);
    assert!(
        feedback[0].contains("confidence 0.50 is below"),
        "{feedback:?}"
    );

    // Round 1: confident but `until` fails.
    let actions = machine.apply(attempt_done("draft", 2, json!({"text": "b"}), 0.9));
    assert_eq!(
        lines(&actions)[0],
        "reflected draft round 1 revise by rule:until"
    );
    assert_eq!(invoked_round(&actions, "draft").unwrap().1.len(), 2);

    // Round 2: the rules hold; the critic judges (and accepts).
    let actions = machine.apply(attempt_done(
        "draft",
        3,
        json!({"text": "c", "complete": true}),
        0.9,
    ));
    assert_eq!(lines(&actions), ["critic demo/critic judges draft round 2"]);
    let Some(Action::InvokeCritic(call)) = actions.first() else {
        unreachable!()
    };
    assert_eq!(call.input["output"]["text"], "c");
    let actions = machine.apply(critique("draft", 2, json!({"verdict": "accept"})));
    assert_eq!(
        lines(&actions),
        [
            "reflected draft round 2 accept by demo/critic, stop: criterion met",
            "succeeded draft#3",
            "started publish#1",
            "invoke publish#1"
        ]
    );
    let actions = machine.apply(step_done("publish", json!({})));
    assert_eq!(finish(&actions).unwrap().0, RunStatus::Succeeded);
}

#[test]
fn reflection_stops_on_max_rounds_on_no_new_evidence_and_on_a_failed_critic() {
    // The critic always revises: three rounds, then the last output stands.
    let mut m = machine(REFLECT, json!({}), 8);
    m.apply(MachineInput::Start);
    for round in 0..3u32 {
        let text = format!("v{round}");
        m.apply(attempt_done(
            "draft",
            round + 1,
            json!({"text": text, "complete": true}),
            0.9,
        ));
        let actions = m.apply(critique(
            "draft",
            round,
            json!({"verdict": "revise", "issues": ["cite the event ids"]}),
        ));
        let first = lines(&actions)[0].clone();
        if round < 2 {
            assert_eq!(
                first,
                format!("reflected draft round {round} revise by demo/critic")
            );
            let (_, feedback) = invoked_round(&actions, "draft").unwrap();
            assert_eq!(feedback.last().unwrap(), "cite the event ids");
        } else {
            assert_eq!(
                first,
                "reflected draft round 2 revise by demo/critic, stop: max_rounds (3) reached"
            );
            assert_eq!(lines(&actions)[1], "succeeded draft#3");
        }
    }

    // The same output twice: no new evidence.
    let mut m = machine(REFLECT, json!({}), 8);
    m.apply(MachineInput::Start);
    let same = json!({"text": "same", "complete": true});
    m.apply(attempt_done("draft", 1, same.clone(), 0.9));
    m.apply(critique(
        "draft",
        0,
        json!({"verdict": "revise", "feedback": "more"}),
    ));
    m.apply(attempt_done("draft", 2, same, 0.9));
    let actions = m.apply(critique(
        "draft",
        1,
        json!({"verdict": "revise", "feedback": "more"}),
    ));
    assert_eq!(
        lines(&actions)[0],
        "reflected draft round 1 revise by demo/critic, stop: no new evidence: the output did not change since the last round"
    );

    // A critic that fails does not fail the step.
    let mut m = machine(REFLECT, json!({}), 8);
    m.apply(MachineInput::Start);
    m.apply(attempt_done(
        "draft",
        1,
        json!({"text": "x", "complete": true}),
        0.9,
    ));
    let actions = m.apply(MachineInput::CriticFinished {
        step: StepId::new("draft"),
        round: 0,
        outcome: Err(permanent("critic crashed")),
    });
    let lines = lines(&actions);
    assert!(
        lines[0].starts_with(
            "reflected draft round 0 revise by demo/critic, stop: critic `demo/critic` failed"
        ),
        "{lines:?}"
    );
    assert_eq!(lines[1], "succeeded draft#1");
}

#[test]
fn a_resumed_reflection_continues_with_the_next_round_and_its_feedback() {
    let mut first = machine(REFLECT, json!({}), 8);
    let mut events = Vec::new();
    let record = |actions: Vec<Action>, events: &mut Vec<synod_types::RunEvent>| {
        for action in actions {
            if let Action::Emit(kind) = action {
                events.push(synod_types::RunEvent {
                    run_id: machine_run_id(),
                    seq: events.len() as u64 + 1,
                    time: chrono::Utc::now(),
                    kind,
                });
            }
        }
    };
    record(first.apply(MachineInput::Start), &mut events);
    record(
        first.apply(attempt_done("draft", 1, json!({"text": "a"}), 0.5)),
        &mut events,
    );
    // Crash after round 1 started: resume from the log.
    let (workflow, plan) =
        synod_planner::compile_workflow(REFLECT, "test.yaml", None, ALL_FEATURES)
            .unwrap_or_else(|diagnostics| panic!("{}", diagnostics.render(REFLECT)));
    let resumed = RunMachine::new(
        machine_run_id(),
        Arc::new(plan),
        json!({}),
        ExecutorConfig::default(),
    )
    .with_workflow(Arc::new(workflow));
    let (_, actions) = resumed
        .replay(&events, &std::collections::HashMap::new())
        .unwrap();
    let (round, feedback) = invoked_round(&actions, "draft").expect("draft runs again");
    assert_eq!(round, 1);
    assert_eq!(feedback.len(), 1);
    assert!(
        lines(&actions).contains(&"invoke draft#3".to_owned()),
        "{:?}",
        lines(&actions)
    );
}

fn machine_run_id() -> RunId {
    "00000000-0000-4000-8000-000000000001".parse().unwrap()
}

const WITH_OUTPUTS: &str = r#"name: with-outputs
inputs:
  hosts: { type: array }
steps:
  scan:
    uses: demo/scan
    for_each: "${{ inputs.hosts }}"
    with: { host: "${{ item }}" }
outputs:
  flagged: "${{ steps.scan.output.filter(s, s.open > 0).map(s, s.host) }}"
  count: "${{ size(steps.scan.output) }}"
"#;

#[test]
fn declared_outputs_are_the_run_result() {
    let mut machine = machine(WITH_OUTPUTS, json!({"hosts": ["a", "b"]}), 8);
    machine.apply(MachineInput::Start);
    machine.apply(item_done("scan", 0, 1, json!({"host": "a", "open": 0})));
    let actions = machine.apply(item_done("scan", 1, 1, json!({"host": "b", "open": 3})));
    assert_eq!(
        finish(&actions),
        Some((RunStatus::Succeeded, json!({"flagged": ["b"], "count": 2})))
    );
    assert!(actions.iter().any(|action| matches!(
        action,
        Action::Emit(RunEventKind::RunSucceeded { result }) if result["count"] == 2
    )));
}

#[test]
fn an_output_that_cannot_be_computed_fails_the_run_naming_it() {
    let mut machine = machine(WITH_OUTPUTS, json!({"hosts": ["a"]}), 8);
    machine.apply(MachineInput::Start);
    // `open` is missing: the output expression fails.
    let actions = machine.apply(item_done("scan", 0, 1, json!({"host": "a"})));
    let (status, _) = finish(&actions).expect("the run ends");
    assert_eq!(status, RunStatus::Failed);
    let error = actions
        .iter()
        .find_map(|action| match action {
            Action::Emit(RunEventKind::RunFailed { error, .. }) => Some(error.clone()),
            _ => None,
        })
        .expect("run_failed");
    assert!(
        error.contains("outputs cannot be computed") && error.contains("s.open > 0"),
        "{error}"
    );
}
