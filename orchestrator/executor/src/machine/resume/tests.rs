//! Resume tests: a run is simulated to its end, "crashed" after every prefix
//! of its event log, resumed from that prefix, and must end the same way
//! without invoking any step that had already succeeded.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
use synod_planner::{Plan, PlanStep};
use synod_types::{RunEvent, RunEventKind, RunId, RunStatus, StepId};

use super::ResumeError;
use crate::config::ExecutorConfig;
use crate::machine::{Action, MachineInput, RunMachine};
use crate::test_support::{
    ALL_FEATURES, fixed_retry, output, permanent, plan as plan_of, step, step_with_input, transient,
};

/// How the simulated experts answer: attempt `n` of a step fails
/// (transiently) while `n <= failures[step]`, fails permanently for steps in
/// `broken`, and otherwise echoes its input.
#[derive(Default, Clone)]
struct World {
    failures: HashMap<&'static str, u32>,
    broken: Vec<&'static str>,
}

impl World {
    /// The outcome of attempt `attempt` of step `name` with `input`.
    fn answer(
        &self,
        name: &str,
        attempt: u32,
        input: &Value,
    ) -> Result<crate::invoke::StepOutput, synod_types::error::StepError> {
        if self.broken.contains(&name) {
            Err(permanent("broken"))
        } else if attempt <= self.failures.get(name).copied().unwrap_or(0) {
            Err(transient("flaky"))
        } else {
            Ok(output(json!({ "step": name, "input": input })))
        }
    }
}

/// What a simulation produced.
#[derive(Debug)]
struct Simulated {
    /// Every emitted event, with sequence numbers continuing `prefix`.
    events: Vec<RunEvent>,
    /// `(step, attempt)` of every invocation, in order.
    invoked: Vec<(String, u32)>,
    status: RunStatus,
    result: Value,
}

fn config() -> ExecutorConfig {
    ExecutorConfig {
        default_retry: fixed_retry(3),
        rng_seed: Some(3),
        max_concurrency: 2,
        ..ExecutorConfig::default()
    }
}

/// Performs `actions` and everything they lead to, instantly, until the
/// machine finishes. Invocations complete in the order they were made.
fn simulate(
    run_id: RunId,
    mut machine: RunMachine,
    actions: Vec<Action>,
    world: &World,
    mut events: Vec<RunEvent>,
) -> Simulated {
    let mut queue: VecDeque<Action> = actions.into();
    let mut invoked = Vec::new();
    let mut inputs: VecDeque<MachineInput> = VecDeque::new();
    loop {
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Emit(kind) => events.push(RunEvent {
                    run_id,
                    seq: events.len() as u64 + 1,
                    time: Utc::now(),
                    kind,
                }),
                Action::Invoke(call) => {
                    invoked.push((call.step.0.clone(), call.attempt));
                    let name = call.step.as_str();
                    let outcome = world.answer(name, call.attempt, &call.input);
                    inputs.push_back(MachineInput::AttemptFinished {
                        step: call.step,
                        attempt: call.attempt,
                        outcome,
                    });
                }
                Action::ScheduleRetry { step, attempt, .. } => {
                    inputs.push_back(MachineInput::RetryDue { step, attempt });
                }
                Action::InvokeCritic(call) => {
                    panic!("these plans have no reflect step: {call:?}")
                }
                Action::InvokeItem { item, call } => {
                    let name = call.step.as_str();
                    invoked.push((format!("{name}[{item}]"), call.attempt));
                    let outcome = world.answer(name, call.attempt, &call.input);
                    inputs.push_back(MachineInput::ItemFinished {
                        step: call.step,
                        item,
                        attempt: call.attempt,
                        outcome,
                    });
                }
                Action::ScheduleItemRetry {
                    step,
                    item,
                    attempt,
                    ..
                } => {
                    inputs.push_back(MachineInput::ItemRetryDue {
                        step,
                        item,
                        attempt,
                    });
                }
                Action::ScheduleApprovalTimeout { binding, .. } => {
                    // The simulated approver approves at once.
                    inputs.push_back(MachineInput::ApprovalDecision {
                        binding,
                        approved: true,
                        comment: "ok".to_owned(),
                    });
                }
                Action::Deliver(call) => {
                    invoked.push((format!("binding:{}", call.binding), 1));
                    inputs.push_back(MachineInput::BindingFinished {
                        binding: call.binding,
                        result: crate::binding::BindingResult {
                            url: "https://tickets.example.org/api".to_owned(),
                            attempts: Vec::new(),
                            outcome: Ok(201),
                        },
                    });
                }
                Action::AbortInFlight => inputs.clear(),
                Action::Finish { status, result } => {
                    return Simulated {
                        events,
                        invoked,
                        status,
                        result,
                    };
                }
            }
        }
        let Some(input) = inputs.pop_front() else {
            let log: Vec<String> = events
                .iter()
                .map(|event| crate::test_support::describe_event(&event.kind))
                .collect();
            panic!("the machine neither finished nor had work in flight; events: {log:#?}");
        };
        queue.extend(machine.apply(input));
    }
}

fn fresh(steps: Vec<PlanStep>, world: &World) -> (Arc<Plan>, Simulated) {
    let plan = plan_of(steps);
    let run_id = RunId::new();
    let mut machine = RunMachine::new(run_id, Arc::clone(&plan), json!({"host": "ws1"}), config());
    let actions = machine.apply(MachineInput::Start);
    (plan, simulate(run_id, machine, actions, world, Vec::new()))
}

fn resumed(plan: &Arc<Plan>, prefix: &[RunEvent], world: &World) -> Simulated {
    let run_id = prefix.first().map_or_else(RunId::new, |event| event.run_id);
    let (machine, actions) = RunMachine::resume(
        run_id,
        Arc::clone(plan),
        json!({"host": "ws1"}),
        config(),
        prefix,
        &HashMap::new(),
    )
    .expect("a prefix of a real log resumes");
    simulate(run_id, machine, actions, world, prefix.to_vec())
}

fn succeeded_steps(events: &[RunEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            RunEventKind::StepSucceeded { step, .. } => Some(step.0.clone()),
            _ => None,
        })
        .collect()
}

fn diamond_with_tail() -> Vec<PlanStep> {
    vec![
        step_with_input("a", &[], json!({ "host": "${{ inputs.host }}" })),
        step_with_input(
            "b",
            &["a"],
            json!({ "from_a": "${{ steps.a.output.input.host }}" }),
        ),
        step("c", &["a"]),
        step_with_input(
            "d",
            &["b", "c"],
            json!({ "b": "${{ steps.b.output.input }}", "c": "${{ steps.c.output.step }}" }),
        ),
        step("e", &["d"]),
    ]
}

/// Crash after every prefix of the log; the resumed run must end exactly as
/// the uninterrupted one, and never invoke a step that had succeeded.
fn assert_resumes_from_every_prefix(steps: Vec<PlanStep>, world: &World) {
    let (plan, whole) = fresh(steps, world);
    assert!(whole.events.last().unwrap().kind.is_terminal());
    for cut in 0..whole.events.len() {
        let prefix = &whole.events[..cut];
        let done_before = succeeded_steps(prefix);
        let after = resumed(&plan, prefix, world);
        assert_eq!(
            after.status, whole.status,
            "status after a crash at event #{cut}"
        );
        assert_eq!(
            after.result, whole.result,
            "result after a crash at event #{cut}"
        );
        for (step, attempt) in &after.invoked {
            assert!(
                !done_before.contains(step),
                "crash at #{cut}: step `{step}` had succeeded but was invoked again (attempt {attempt})"
            );
        }
        // The combined log: gap-free, one terminal event, each step succeeded once at most.
        for (index, event) in after.events.iter().enumerate() {
            assert_eq!(event.seq, index as u64 + 1, "crash at #{cut}: sequence gap");
        }
        let terminal = after.events.iter().filter(|event| event.kind.is_terminal());
        assert_eq!(terminal.count(), 1, "crash at #{cut}: one terminal event");
        let mut succeeded = succeeded_steps(&after.events);
        let total = succeeded.len();
        succeeded.sort();
        succeeded.dedup();
        assert_eq!(
            succeeded.len(),
            total,
            "crash at #{cut}: a step succeeded twice"
        );
        if cut > 0 {
            assert!(
                after.events[cut..]
                    .iter()
                    .any(|event| matches!(event.kind, RunEventKind::RunResumed { .. })),
                "crash at #{cut}: RunResumed recorded"
            );
        }
    }
}

#[test]
fn a_successful_run_resumes_from_any_point_to_the_same_result() {
    assert_resumes_from_every_prefix(diamond_with_tail(), &World::default());
}

#[test]
fn retries_resume_without_repeating_finished_steps() {
    let world = World {
        failures: HashMap::from([("b", 2), ("e", 1)]),
        ..World::default()
    };
    assert_resumes_from_every_prefix(diamond_with_tail(), &world);
}

#[test]
fn a_failed_branch_resumes_to_the_same_failure_and_skips() {
    let world = World {
        broken: vec!["c"],
        ..World::default()
    };
    let steps = diamond_with_tail();
    assert_resumes_from_every_prefix(steps.clone(), &world);
    let (plan, whole) = fresh(steps, &world);
    assert_eq!(whole.status, RunStatus::Failed);
    // Crash right after c's final failure: the skips of d and e were cut off.
    let cut = whole
        .events
        .iter()
        .position(|event| {
            matches!(&event.kind, RunEventKind::StepFailed { step, will_retry: false, .. } if step.as_str() == "c")
        })
        .unwrap()
        + 1;
    let after = resumed(&plan, &whole.events[..cut], &world);
    let skipped: Vec<&str> = after.events[cut..]
        .iter()
        .filter_map(|event| match &event.kind {
            RunEventKind::StepSkipped { step, .. } => Some(step.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(skipped, ["d", "e"]);
}

#[test]
fn an_interrupted_attempt_runs_again_as_the_next_attempt() {
    let (plan, whole) = fresh(diamond_with_tail(), &World::default());
    // Crash right after `a` started: its attempt 1 was lost in flight.
    let cut = 2;
    assert!(matches!(
        &whole.events[cut - 1].kind,
        RunEventKind::StepStarted { step, attempt: 1, .. } if step.as_str() == "a"
    ));
    let after = resumed(&plan, &whole.events[..cut], &World::default());
    assert_eq!(after.invoked[0], ("a".to_owned(), 2));
    match &after.events[cut].kind {
        RunEventKind::RunResumed {
            interrupted_steps,
            completed_steps,
        } => {
            assert_eq!(interrupted_steps, &[StepId::new("a")]);
            assert!(completed_steps.is_empty());
        }
        other => panic!("expected RunResumed, got {other:?}"),
    }
}

#[test]
fn unredacted_outputs_given_by_the_store_win_over_the_events() {
    let (plan, whole) = fresh(diamond_with_tail(), &World::default());
    // Crash after `a` succeeded; the store hands back a's real output.
    let cut = whole
        .events
        .iter()
        .position(|event| matches!(&event.kind, RunEventKind::StepSucceeded { step, .. } if step.as_str() == "a"))
        .unwrap()
        + 1;
    let real = json!({ "step": "a", "input": { "host": "real-host" } });
    let (machine, actions) = RunMachine::resume(
        whole.events[0].run_id,
        Arc::clone(&plan),
        json!({"host": "ws1"}),
        config(),
        &whole.events[..cut],
        &HashMap::from([(StepId::new("a"), real)]),
    )
    .unwrap();
    let after = simulate(
        whole.events[0].run_id,
        machine,
        actions,
        &World::default(),
        whole.events[..cut].to_vec(),
    );
    assert_eq!(after.result["b"]["input"]["from_a"], "real-host");
}

#[test]
fn ended_unknown_and_inconsistent_logs_are_refused_with_the_reason() {
    let (plan, whole) = fresh(diamond_with_tail(), &World::default());
    let run_id = whole.events[0].run_id;
    let attempt = |events: &[RunEvent], plan: &Arc<Plan>| {
        RunMachine::resume(
            run_id,
            Arc::clone(plan),
            json!({}),
            config(),
            events,
            &HashMap::new(),
        )
        .map(|_| ())
        .unwrap_err()
    };
    let ended = attempt(&whole.events, &plan);
    assert!(matches!(ended, ResumeError::AlreadyEnded { .. }), "{ended}");

    let without_e = diamond_with_tail()
        .into_iter()
        .filter(|step| step.id.as_str() != "e")
        .collect();
    let other_plan = plan_of(without_e);
    let unknown = attempt(&whole.events[..whole.events.len() - 1], &other_plan);
    assert!(
        matches!(&unknown, ResumeError::UnknownStep { step, .. } if step.as_str() == "e"),
        "{unknown}"
    );

    let gap = vec![whole.events[0].clone(), whole.events[2].clone()];
    let inconsistent = attempt(&gap, &plan);
    assert!(
        inconsistent
            .to_string()
            .contains("expected sequence number 2"),
        "{inconsistent}"
    );
}

// --- workflow runs: `if`, `for_each`, bindings ---

const WORKFLOW: &str = r#"name: resumable
inputs:
  hosts: { type: array }
steps:
  scan:
    uses: demo/scan
    for_each: "${{ inputs.hosts }}"
    max_parallel: 2
    with: { host: "${{ item }}" }
  escalate:
    uses: demo/escalate
    needs: [scan]
    if: "${{ size(steps.scan.output) > 10 }}"
  notify: { uses: demo/notify, needs: [escalate] }
  report:
    uses: demo/report
    needs: [scan]
    with: { scans: "${{ steps.scan.output }}" }
bindings:
  ticket:
    needs: [report]
    http:
      method: POST
      url: "https://tickets.example.org/api/issues"
      body: { report: "${{ steps.report.output }}" }
    approval: { roles: [soc-lead], timeout: 30m }
  audit:
    when: always
    http: { method: PUT, url: "https://audit.example.org/log" }
"#;

/// An unstarted machine of [`WORKFLOW`] as run `run_id`.
fn workflow_machine(run_id: RunId) -> RunMachine {
    let (workflow, plan) =
        synod_planner::compile_workflow(WORKFLOW, "resumable.yaml", None, ALL_FEATURES)
            .expect("the test workflow compiles");
    RunMachine::new(
        run_id,
        Arc::new(plan),
        json!({"hosts": ["a", "b", "c"]}),
        config(),
    )
    .with_workflow(Arc::new(workflow))
}

/// What must never happen again after a crash: items that succeeded and
/// bindings that were delivered.
fn finished_work(events: &[RunEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            RunEventKind::StepSucceeded { step, .. } => Some(step.0.clone()),
            RunEventKind::StepItemSucceeded { step, item, .. } => Some(format!("{step}[{item}]")),
            RunEventKind::BindingDelivered { binding, .. } => Some(format!("binding:{binding}")),
            _ => None,
        })
        .collect()
}

fn assert_workflow_resumes_from_every_prefix(world: &World) -> Simulated {
    let run_id = RunId::new();
    let mut machine = workflow_machine(run_id);
    let actions = machine.apply(MachineInput::Start);
    let whole = simulate(run_id, machine, actions, world, Vec::new());
    for cut in 0..whole.events.len() {
        let prefix = &whole.events[..cut];
        let done_before = finished_work(prefix);
        let (machine, actions) = workflow_machine(run_id)
            .replay(prefix, &HashMap::new())
            .unwrap_or_else(|error| panic!("crash at #{cut}: {error}"));
        let after = simulate(run_id, machine, actions, world, prefix.to_vec());
        assert_eq!(after.status, whole.status, "status after a crash at #{cut}");
        assert_eq!(after.result, whole.result, "result after a crash at #{cut}");
        for (work, _) in &after.invoked {
            assert!(
                !done_before.contains(work),
                "crash at #{cut}: `{work}` had finished but ran again"
            );
        }
        let mut finished = finished_work(&after.events);
        let total = finished.len();
        finished.sort();
        finished.dedup();
        assert_eq!(
            finished.len(),
            total,
            "crash at #{cut}: something finished twice"
        );
        let terminal = after.events.iter().filter(|event| event.kind.is_terminal());
        assert_eq!(terminal.count(), 1, "crash at #{cut}: one terminal event");
        let skipped = after.events.iter().filter(|event| {
            matches!(&event.kind, RunEventKind::StepSkipped { step, .. } if step.as_str() == "notify")
        });
        assert_eq!(skipped.count(), 1, "crash at #{cut}: notify skipped once");
    }
    whole
}

#[test]
fn a_workflow_run_with_fan_out_conditions_and_bindings_resumes_from_any_point() {
    let whole = assert_workflow_resumes_from_every_prefix(&World::default());
    assert_eq!(whole.status, RunStatus::Succeeded);
    let delivered: Vec<&str> = whole
        .events
        .iter()
        .filter_map(|event| match &event.kind {
            RunEventKind::BindingDelivered { binding, .. } => Some(binding.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, ["ticket", "audit"]);
    assert_eq!(whole.result["scan"].as_array().map(Vec::len), Some(3));
}

#[test]
fn item_retries_and_failed_fan_outs_resume_to_the_same_end() {
    let flaky = World {
        failures: HashMap::from([("scan", 1)]),
        ..World::default()
    };
    assert_eq!(
        assert_workflow_resumes_from_every_prefix(&flaky).status,
        RunStatus::Succeeded
    );
    let broken = World {
        broken: vec!["scan"],
        ..World::default()
    };
    let whole = assert_workflow_resumes_from_every_prefix(&broken);
    assert_eq!(whole.status, RunStatus::Failed);
}

#[test]
fn a_fan_out_whose_list_changed_is_refused() {
    let run_id = RunId::new();
    let mut machine = workflow_machine(run_id);
    let actions = machine.apply(MachineInput::Start);
    let whole = simulate(run_id, machine, actions, &World::default(), Vec::new());
    let (workflow, plan) =
        synod_planner::compile_workflow(WORKFLOW, "resumable.yaml", None, ALL_FEATURES).unwrap();
    let other_inputs = RunMachine::new(run_id, Arc::new(plan), json!({"hosts": ["a"]}), config())
        .with_workflow(Arc::new(workflow));
    let error = other_inputs
        .replay(&whole.events[..3], &HashMap::new())
        .map(|_| ())
        .unwrap_err();
    assert!(
        error.to_string().contains("fanned out over 3 items"),
        "{error}"
    );
}
