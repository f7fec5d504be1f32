//! State machine tests: a [`TestEnv`] applies inputs and the tests assert
//! the whole list of actions each input produces.

use std::time::Duration;

use serde_json::{Value, json};
use synod_planner::PlanStep;
use synod_types::error::{ErrorCode, StepError};
use synod_types::{RunEventKind, RunId, RunStatus, StepId, StepStatus};

use super::{Action, MachineInput, RunMachine};
use crate::config::ExecutorConfig;
use crate::invoke::Invocation;
use crate::test_support::{
    deadline, describe_event, fixed_retry, output, permanent, plan, step, step_with_input,
    transient,
};

/// Drives a [`RunMachine`] and keeps what it returned.
struct TestEnv {
    machine: RunMachine,
    /// Every action returned so far, in order.
    history: Vec<Action>,
    /// Most attempts in flight seen after any input.
    max_in_flight: usize,
}

impl TestEnv {
    /// Fixed retries (3 attempts, 1 s apart), a fixed seed, 64 slots.
    fn config() -> ExecutorConfig {
        ExecutorConfig {
            default_retry: fixed_retry(3),
            rng_seed: Some(7),
            ..ExecutorConfig::default()
        }
    }

    fn new(steps: Vec<PlanStep>) -> Self {
        Self::with_config(steps, Self::config())
    }

    fn with_config(steps: Vec<PlanStep>, config: ExecutorConfig) -> Self {
        Self::with_inputs(steps, config, json!({"host": "ws1"}))
    }

    fn with_inputs(steps: Vec<PlanStep>, config: ExecutorConfig, inputs: Value) -> Self {
        TestEnv {
            machine: RunMachine::new(RunId::new(), plan(steps), inputs, config),
            history: Vec::new(),
            max_in_flight: 0,
        }
    }

    /// Applies `input` and describes the actions, one line each.
    fn apply(&mut self, input: MachineInput) -> Vec<String> {
        let actions = self.machine.apply(input);
        self.max_in_flight = self.max_in_flight.max(self.machine.in_flight());
        let described = actions.iter().map(describe).collect();
        self.history.extend(actions);
        described
    }

    fn start(&mut self) -> Vec<String> {
        self.apply(MachineInput::Start)
    }

    /// Attempt `attempt` of `step` succeeds with `{"from": "<step>"}`.
    fn succeed(&mut self, step: &str, attempt: u32) -> Vec<String> {
        self.succeed_with(step, attempt, json!({ "from": step }))
    }

    fn succeed_with(&mut self, step: &str, attempt: u32, value: Value) -> Vec<String> {
        self.apply(MachineInput::AttemptFinished {
            step: StepId::new(step),
            attempt,
            outcome: Ok(output(value)),
        })
    }

    fn fail(&mut self, step: &str, attempt: u32, error: StepError) -> Vec<String> {
        self.apply(MachineInput::AttemptFinished {
            step: StepId::new(step),
            attempt,
            outcome: Err(error),
        })
    }

    fn retry_due(&mut self, step: &str, attempt: u32) -> Vec<String> {
        self.apply(MachineInput::RetryDue {
            step: StepId::new(step),
            attempt,
        })
    }

    fn cancel(&mut self) -> Vec<String> {
        self.apply(MachineInput::Cancel {
            reason: "operator stop".to_owned(),
        })
    }

    fn status(&self, step: &str) -> StepStatus {
        self.machine
            .step_status(&StepId::new(step))
            .expect("step is in the plan")
    }

    /// The last invocation of `step`.
    fn invocation(&self, step: &str) -> &Invocation {
        self.history
            .iter()
            .rev()
            .find_map(|action| match action {
                Action::Invoke(call) if call.step.as_str() == step => Some(call),
                _ => None,
            })
            .expect("step was invoked")
    }

    /// The last event matching `wanted`.
    fn event(&self, wanted: impl Fn(&RunEventKind) -> bool) -> &RunEventKind {
        self.history
            .iter()
            .rev()
            .find_map(|action| match action {
                Action::Emit(kind) if wanted(kind) => Some(kind),
                _ => None,
            })
            .expect("event was emitted")
    }

    /// Status and result of the `Finish` action.
    fn finish(&self) -> (RunStatus, &Value) {
        self.history
            .iter()
            .find_map(|action| match action {
                Action::Finish { status, result } => Some((*status, result)),
                _ => None,
            })
            .expect("the run finished")
    }
}

pub(super) fn describe(action: &Action) -> String {
    match action {
        Action::Emit(kind) => describe_event(kind),
        Action::Invoke(call) => format!("invoke {}#{}", call.step, call.attempt),
        Action::ScheduleRetry {
            step,
            attempt,
            delay,
        } => format!("schedule_retry {step}#{attempt} after {delay:?}"),
        Action::InvokeItem { item, call } => {
            format!("invoke {}[{item}]#{}", call.step, call.attempt)
        }
        Action::ScheduleItemRetry {
            step,
            item,
            attempt,
            delay,
        } => format!("schedule_retry {step}[{item}]#{attempt} after {delay:?}"),
        Action::InvokeCritic(call) => {
            format!(
                "critic {} judges {} round {}",
                call.uses, call.step, call.round
            )
        }
        Action::Deliver(call) => format!("deliver {}", call.binding),
        Action::ScheduleApprovalTimeout { binding, delay } => {
            format!("approval_timeout {binding} after {delay:?}")
        }
        Action::AbortInFlight => "abort_in_flight".to_owned(),
        Action::Finish { status, .. } => format!("finish {}", status.as_str()),
    }
}

fn diamond() -> Vec<PlanStep> {
    vec![
        step("a", &[]),
        step_with_input("b", &["a"], json!({ "a": "${{ steps.a.output.from }}" })),
        step_with_input("c", &["a"], json!({ "host": "${{ inputs.host }}" })),
        step_with_input(
            "join",
            &["b", "c"],
            json!({
                "b": "${{ steps.b.output }}",
                "label": "${{ steps.c.output.from }} on ${{ inputs.host }}",
            }),
        ),
    ]
}

#[test]
fn diamond_runs_dependencies_first_and_renders_inputs_from_the_scope() {
    let mut env = TestEnv::new(diamond());
    assert_eq!(
        env.start(),
        ["run_started [a,b,c,join]", "started a#1", "invoke a#1"]
    );
    assert_eq!(env.invocation("a").input, json!({"step": "a"}));
    assert_eq!(
        env.succeed("a", 1),
        [
            "succeeded a#1",
            "started b#1",
            "invoke b#1",
            "started c#1",
            "invoke c#1"
        ]
    );
    assert_eq!(env.invocation("b").input, json!({"a": "a"}));
    assert_eq!(env.invocation("c").input, json!({"host": "ws1"}));
    assert_eq!(env.succeed("c", 1), ["succeeded c#1"]);
    assert_eq!(env.status("join"), StepStatus::Pending);
    assert_eq!(
        env.succeed("b", 1),
        ["succeeded b#1", "started join#1", "invoke join#1"]
    );
    assert_eq!(
        env.invocation("join").input,
        json!({"b": {"from": "b"}, "label": "c on ws1"})
    );
    assert_eq!(
        env.succeed_with("join", 1, json!({"verdict": "benign"})),
        ["succeeded join#1", "run_succeeded", "finish succeeded"]
    );
    let expected = json!({
        "a": {"from": "a"},
        "b": {"from": "b"},
        "c": {"from": "c"},
        "join": {"verdict": "benign"},
    });
    assert_eq!(env.finish(), (RunStatus::Succeeded, &expected));
    let RunEventKind::RunSucceeded { result } =
        env.event(|kind| matches!(kind, RunEventKind::RunSucceeded { .. }))
    else {
        unreachable!("matched above");
    };
    assert_eq!(result, &expected);
    assert!(env.machine.is_finished());
}

#[test]
fn ready_steps_wait_for_a_free_slot_and_start_in_declaration_order() {
    let steps = vec![
        step("s1", &[]),
        step("s2", &[]),
        step("s3", &[]),
        step("s4", &[]),
        step("s5", &["s1"]),
    ];
    let config = ExecutorConfig {
        max_concurrency: 2,
        ..TestEnv::config()
    };
    let mut env = TestEnv::with_config(steps, config);
    assert_eq!(
        env.start(),
        [
            "run_started [s1,s2,s3,s4,s5]",
            "started s1#1",
            "invoke s1#1",
            "started s2#1",
            "invoke s2#1"
        ]
    );
    assert_eq!(env.status("s3"), StepStatus::Pending);
    // s5 became ready after s3 and s4, which are earlier in topological order.
    assert_eq!(
        env.succeed("s1", 1),
        ["succeeded s1#1", "started s3#1", "invoke s3#1"]
    );
    assert_eq!(
        env.succeed("s2", 1),
        ["succeeded s2#1", "started s4#1", "invoke s4#1"]
    );
    assert_eq!(
        env.succeed("s4", 1),
        ["succeeded s4#1", "started s5#1", "invoke s5#1"]
    );
    assert_eq!(env.succeed("s3", 1), ["succeeded s3#1"]);
    assert_eq!(
        env.succeed("s5", 1),
        ["succeeded s5#1", "run_succeeded", "finish succeeded"]
    );
    assert_eq!(env.max_in_flight, 2);
}

#[test]
fn zero_concurrency_is_treated_as_one() {
    let config = ExecutorConfig {
        max_concurrency: 0,
        ..TestEnv::config()
    };
    let mut env = TestEnv::with_config(vec![step("a", &[]), step("b", &[])], config);
    assert_eq!(
        env.start(),
        ["run_started [a,b]", "started a#1", "invoke a#1"]
    );
    assert_eq!(
        env.succeed("a", 1),
        ["succeeded a#1", "started b#1", "invoke b#1"]
    );
}

#[test]
fn retryable_failures_are_retried_until_success() {
    let mut env = TestEnv::new(vec![step("a", &[]), step("b", &["a"])]);
    env.start();
    assert_eq!(
        env.fail("a", 1, transient("unavailable")),
        [
            "failed a#1 SYN-R0003 will_retry=true",
            "retry_scheduled a#2 in 1000ms",
            "schedule_retry a#2 after 1s"
        ]
    );
    assert_eq!(env.status("a"), StepStatus::RetryScheduled);
    assert_eq!(env.retry_due("a", 2), ["started a#2", "invoke a#2"]);
    assert_eq!(
        env.fail("a", 2, transient("unavailable")),
        [
            "failed a#2 SYN-R0003 will_retry=true",
            "retry_scheduled a#3 in 1000ms",
            "schedule_retry a#3 after 1s"
        ]
    );
    assert_eq!(env.retry_due("a", 3), ["started a#3", "invoke a#3"]);
    assert_eq!(
        env.succeed("a", 3),
        ["succeeded a#3", "started b#1", "invoke b#1"]
    );
    assert_eq!(
        env.succeed("b", 1),
        ["succeeded b#1", "run_succeeded", "finish succeeded"]
    );
}

#[test]
fn retry_delays_use_the_step_policy_and_seeded_jitter() {
    let delays_with_seed = |seed: u64| {
        let config = ExecutorConfig {
            default_retry: synod_types::RetryPolicy::default(),
            rng_seed: Some(seed),
            ..ExecutorConfig::default()
        };
        let mut env = TestEnv::with_config(vec![step("a", &[])], config);
        env.start();
        env.fail("a", 1, transient("busy"));
        env.retry_due("a", 2);
        env.fail("a", 2, transient("busy"));
        let mut delays = Vec::new();
        for action in &env.history {
            if let Action::ScheduleRetry { delay, .. } = action {
                delays.push(*delay);
            }
        }
        delays
    };
    let first = delays_with_seed(11);
    assert_eq!(first, delays_with_seed(11));
    assert_eq!(first.len(), 2);
    // Equal jitter: 100 ms then 200 ms, each at least half fixed.
    assert!(first[0] >= Duration::from_millis(50) && first[0] <= Duration::from_millis(100));
    assert!(first[1] >= Duration::from_millis(100) && first[1] <= Duration::from_millis(200));

    // A step's own policy wins over the default.
    let mut own = step("a", &[]);
    own.retry = Some(synod_types::RetryPolicy::None);
    let mut env = TestEnv::new(vec![own]);
    env.start();
    assert_eq!(
        env.fail("a", 1, transient("busy")),
        [
            "failed a#1 SYN-R0003 will_retry=false",
            "run_failed [a]",
            "finish failed"
        ]
    );
}

#[test]
fn permanent_failure_skips_dependents_and_lets_independent_branches_finish() {
    let steps = vec![
        step("a", &[]),
        step("b", &["a"]),
        step("c", &["b"]),
        step("d", &[]),
        step("e", &["d"]),
    ];
    let mut env = TestEnv::new(steps);
    assert_eq!(
        env.start(),
        [
            "run_started [a,b,c,d,e]",
            "started a#1",
            "invoke a#1",
            "started d#1",
            "invoke d#1"
        ]
    );
    assert_eq!(
        env.fail("a", 1, permanent("model crashed")),
        [
            "failed a#1 SYN-R0004 will_retry=false",
            "skipped b: upstream step `a` failed",
            "skipped c: upstream step `a` failed"
        ]
    );
    assert_eq!(env.status("a"), StepStatus::Failed);
    assert_eq!(env.status("c"), StepStatus::Skipped);
    assert_eq!(
        env.succeed("d", 1),
        ["succeeded d#1", "started e#1", "invoke e#1"]
    );
    assert_eq!(
        env.succeed("e", 1),
        ["succeeded e#1", "run_failed [a]", "finish failed"]
    );
    assert_eq!(
        env.finish(),
        (
            RunStatus::Failed,
            &json!({"d": {"from": "d"}, "e": {"from": "e"}})
        )
    );
    let RunEventKind::RunFailed { error, .. } =
        env.event(|kind| matches!(kind, RunEventKind::RunFailed { .. }))
    else {
        unreachable!("matched above");
    };
    assert_eq!(error, "step `a` failed: SYN-R0004: model crashed");
}

#[test]
fn a_retryable_error_marked_not_retryable_is_not_retried() {
    let mut env = TestEnv::new(vec![step("a", &[])]);
    env.start();
    let mut error = transient("quota exhausted for today");
    error.retryable = false;
    assert_eq!(
        env.fail("a", 1, error),
        [
            "failed a#1 SYN-R0003 will_retry=false",
            "run_failed [a]",
            "finish failed"
        ]
    );
}

#[test]
fn deadline_failures_time_out_then_fail_when_retries_run_out() {
    let mut slow = step("a", &[]);
    slow.timeout = Some(Duration::from_secs(2));
    let mut env = TestEnv::new(vec![slow, step("b", &[])]);
    env.start();
    assert_eq!(env.invocation("a").deadline, Duration::from_secs(2));
    assert_eq!(
        env.invocation("b").deadline,
        ExecutorConfig::default().default_timeout
    );
    env.succeed("b", 1);
    for attempt in 1..=2 {
        assert_eq!(
            env.fail("a", attempt, deadline("too slow")),
            [
                format!("failed a#{attempt} SYN-R0002 will_retry=true"),
                format!("retry_scheduled a#{} in 1000ms", attempt + 1),
                format!("schedule_retry a#{} after 1s", attempt + 1),
            ]
        );
        env.retry_due("a", attempt + 1);
    }
    assert_eq!(
        env.fail("a", 3, deadline("too slow")),
        [
            "failed a#3 SYN-R0002 will_retry=false",
            "run_failed [a]",
            "finish failed"
        ]
    );
    assert_eq!(env.status("a"), StepStatus::Failed);
    assert_eq!(
        env.finish(),
        (RunStatus::Failed, &json!({"b": {"from": "b"}}))
    );
}

#[test]
fn an_input_that_does_not_render_fails_the_step_without_retry() {
    let steps = vec![
        step_with_input("a", &[], json!({ "user": "${{ inputs.user }}" })),
        step("b", &["a"]),
        step_with_input("c", &[], json!({ "host": "${{ inputs.host }}" })),
        step_with_input("d", &["c"], json!({ "x": "${{ steps.c.output.missing }}" })),
    ];
    let mut env = TestEnv::new(steps);
    assert_eq!(
        env.start(),
        [
            "run_started [a,b,c,d]",
            "failed a#1 SYN-R0008 will_retry=false",
            "skipped b: upstream step `a` failed",
            "started c#1",
            "invoke c#1"
        ]
    );
    let RunEventKind::StepFailed { error, .. } = env.event(
        |kind| matches!(kind, RunEventKind::StepFailed { step, .. } if step.as_str() == "a"),
    ) else {
        unreachable!("matched above");
    };
    assert_eq!(error.code, ErrorCode::BindingError);
    assert!(!error.retryable);
    assert_eq!(
        error.message,
        "the input of step `a` cannot be rendered: `inputs.user`: `inputs.user` is not present; available keys: `host`; fix the reference or add the missing input"
    );
    assert_eq!(
        env.succeed("c", 1),
        [
            "succeeded c#1",
            "failed d#1 SYN-R0008 will_retry=false",
            "run_failed [a,d]",
            "finish failed"
        ]
    );
    let RunEventKind::RunFailed { error, .. } =
        env.event(|kind| matches!(kind, RunEventKind::RunFailed { .. }))
    else {
        unreachable!("matched above");
    };
    assert!(error.starts_with("step `a` failed: SYN-R0008: "), "{error}");
    assert!(error.contains("; step `d` failed: SYN-R0008: "), "{error}");
}

#[test]
fn cancel_cancels_running_pending_and_retrying_steps_then_ignores_late_inputs() {
    let steps = vec![
        step("a", &[]),
        step("b", &["a"]),
        step("r", &[]),
        step("done", &[]),
        step("broken", &[]),
        step("after_broken", &["broken"]),
    ];
    let mut env = TestEnv::new(steps);
    env.start();
    env.succeed("done", 1);
    env.fail("broken", 1, permanent("no"));
    env.fail("r", 1, transient("busy"));
    assert_eq!(env.status("r"), StepStatus::RetryScheduled);
    assert_eq!(
        env.cancel(),
        [
            "abort_in_flight",
            "cancelled a",
            "cancelled b",
            "cancelled r",
            "run_cancelled: operator stop",
            "finish cancelled"
        ]
    );
    assert_eq!(env.status("a"), StepStatus::Cancelled);
    assert_eq!(env.status("done"), StepStatus::Succeeded);
    assert_eq!(env.status("broken"), StepStatus::Failed);
    assert_eq!(env.status("after_broken"), StepStatus::Skipped);
    assert_eq!(
        env.finish(),
        (RunStatus::Cancelled, &json!({"done": {"from": "done"}}))
    );
    assert_eq!(env.machine.in_flight(), 0);
    // Late results, timers and cancels change nothing.
    assert!(env.succeed("a", 1).is_empty());
    assert!(env.retry_due("r", 2).is_empty());
    assert!(env.cancel().is_empty());
    assert!(env.start().is_empty());
    assert_eq!(env.status("a"), StepStatus::Cancelled);
}

#[test]
fn cancel_before_start_records_only_the_cancel() {
    let mut env = TestEnv::new(vec![step("a", &[])]);
    assert_eq!(
        env.cancel(),
        ["run_cancelled: operator stop", "finish cancelled"]
    );
    assert_eq!(env.finish(), (RunStatus::Cancelled, &json!({})));
    assert!(env.start().is_empty(), "a cancelled run cannot start");
    assert_eq!(env.status("a"), StepStatus::Pending);
}

#[test]
fn cancel_aborts_retry_timers_even_with_no_attempt_in_flight() {
    let mut env = TestEnv::new(vec![step("a", &[])]);
    env.start();
    env.fail("a", 1, transient("busy"));
    assert_eq!(env.machine.in_flight(), 0);
    assert_eq!(
        env.cancel(),
        [
            "abort_in_flight",
            "cancelled a",
            "run_cancelled: operator stop",
            "finish cancelled"
        ]
    );
}

#[test]
fn stale_and_unknown_inputs_are_ignored() {
    let mut env = TestEnv::new(vec![step("a", &[]), step("b", &[])]);
    env.start();
    env.fail("a", 1, transient("busy"));
    // The failed attempt reports again, the retry is not yet due, a step
    // that does not exist reports, the timer of another attempt fires.
    assert!(env.succeed("a", 1).is_empty());
    assert!(env.succeed("nope", 1).is_empty());
    assert!(env.retry_due("a", 3).is_empty());
    assert!(env.retry_due("b", 2).is_empty());
    assert_eq!(env.retry_due("a", 2), ["started a#2", "invoke a#2"]);
    assert!(env.retry_due("a", 2).is_empty(), "a duplicate timer");
    assert!(env.fail("a", 1, permanent("late")).is_empty());
    assert_eq!(env.status("a"), StepStatus::Running);
    assert!(env.succeed("b", 2).is_empty(), "b has no attempt 2");
    assert_eq!(env.succeed("b", 1), ["succeeded b#1"]);
    assert_eq!(
        env.succeed("a", 2),
        ["succeeded a#2", "run_succeeded", "finish succeeded"]
    );
}

#[test]
fn an_empty_plan_succeeds_at_once() {
    let mut env = TestEnv::new(Vec::new());
    assert_eq!(
        env.start(),
        ["run_started []", "run_succeeded", "finish succeeded"]
    );
    assert_eq!(env.finish(), (RunStatus::Succeeded, &json!({})));
}

#[test]
fn events_are_redacted_but_invocations_and_results_are_not() {
    let steps = vec![step_with_input(
        "login",
        &[],
        json!({ "user": "${{ inputs.user }}", "api_key": "${{ inputs.api_key }}" }),
    )];
    let inputs = json!({"user": "alice", "api_key": "k-123"});
    let mut env = TestEnv::with_inputs(steps, TestEnv::config(), inputs);
    env.start();
    let RunEventKind::RunStarted { inputs, .. } =
        env.event(|kind| matches!(kind, RunEventKind::RunStarted { .. }))
    else {
        unreachable!("matched above");
    };
    assert_eq!(inputs, &json!({"user": "alice", "api_key": "[REDACTED]"}));
    let RunEventKind::StepStarted { input, .. } =
        env.event(|kind| matches!(kind, RunEventKind::StepStarted { .. }))
    else {
        unreachable!("matched above");
    };
    assert_eq!(input, &json!({"user": "alice", "api_key": "[REDACTED]"}));
    assert_eq!(
        env.invocation("login").input,
        json!({"user": "alice", "api_key": "k-123"})
    );
    env.succeed_with("login", 1, json!({"session_token": "t-9"}));
    let RunEventKind::StepSucceeded { output, .. } =
        env.event(|kind| matches!(kind, RunEventKind::StepSucceeded { .. }))
    else {
        unreachable!("matched above");
    };
    assert_eq!(output, &json!({"session_token": "[REDACTED]"}));
    assert_eq!(
        env.finish(),
        (
            RunStatus::Succeeded,
            &json!({"login": {"session_token": "t-9"}})
        )
    );
}
