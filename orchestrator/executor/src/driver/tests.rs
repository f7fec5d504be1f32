//! Driver tests on a paused clock, with a scripted in-process invoker and a
//! [`MemoryStore`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use synod_planner::PlanStep;
use synod_store::{MemoryStore, RunRecord, RunStore, StoreError};
use synod_types::error::StepError;
use synod_types::{RunId, RunStatus};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{ExecutorError, RunOutcome, execute, resume};
use crate::config::ExecutorConfig;
use crate::invoke::{Invocation, Invoker, StepOutput};
use crate::test_support::{
    describe_event, fixed_retry, output, permanent, plan, step, step_with_input, transient,
};

/// What one scripted attempt does.
#[derive(Debug, Clone)]
enum Behaviour {
    /// Returns `{"echo": <input>}` after this long.
    SucceedAfter(Duration),
    /// Fails with this error after 10 ms.
    Fail(StepError),
    /// Never returns (ignores its deadline).
    Hang,
    /// Panics.
    Panic,
}

/// An invoker following a per-step script (then succeeding after 10 ms),
/// recording calls, concurrency and attempts dropped before they finished.
#[derive(Debug, Default)]
struct ScriptedInvoker {
    scripts: Mutex<HashMap<String, VecDeque<Behaviour>>>,
    calls: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    dropped_unfinished: AtomicUsize,
    hanging: Notify,
}

impl ScriptedInvoker {
    fn new() -> Arc<Self> {
        Arc::new(ScriptedInvoker::default())
    }

    fn script(self: &Arc<Self>, step: &str, behaviours: Vec<Behaviour>) -> Arc<Self> {
        self.scripts
            .lock()
            .unwrap()
            .insert(step.to_owned(), behaviours.into());
        Arc::clone(self)
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// Tracks one attempt: counts it running, and as dropped unless finished.
struct AttemptGuard<'a> {
    invoker: &'a ScriptedInvoker,
    finished: bool,
}

impl<'a> AttemptGuard<'a> {
    fn new(invoker: &'a ScriptedInvoker) -> Self {
        let now = invoker.running.fetch_add(1, Ordering::SeqCst) + 1;
        invoker.max_running.fetch_max(now, Ordering::SeqCst);
        AttemptGuard {
            invoker,
            finished: false,
        }
    }
}

impl Drop for AttemptGuard<'_> {
    fn drop(&mut self) {
        self.invoker.running.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            self.invoker
                .dropped_unfinished
                .fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait::async_trait]
impl Invoker for ScriptedInvoker {
    async fn invoke(&self, call: Invocation) -> Result<StepOutput, StepError> {
        let behaviour = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(call.step.as_str())
            .and_then(VecDeque::pop_front)
            .unwrap_or(Behaviour::SucceedAfter(Duration::from_millis(10)));
        self.calls
            .lock()
            .unwrap()
            .push(format!("{}#{}", call.step, call.attempt));
        let mut guard = AttemptGuard::new(self);
        let outcome = match behaviour {
            Behaviour::SucceedAfter(delay) => {
                tokio::time::sleep(delay).await;
                Ok(output(json!({ "echo": call.input })))
            }
            Behaviour::Fail(error) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Err(error)
            }
            Behaviour::Hang => {
                self.hanging.notify_one();
                std::future::pending().await
            }
            Behaviour::Panic => panic!("scripted invoker panic"),
        };
        guard.finished = true;
        outcome
    }
}

fn config() -> ExecutorConfig {
    ExecutorConfig {
        default_retry: fixed_retry(3),
        rng_seed: Some(3),
        ..ExecutorConfig::default()
    }
}

async fn create_run(store: &MemoryStore) -> RunId {
    let run_id = RunId::new();
    store
        .create_run(RunRecord::pending(run_id, "test", json!({})))
        .await
        .unwrap();
    run_id
}

/// A finished run: its outcome, its stored events described, and the store.
struct Finished {
    outcome: RunOutcome,
    events: Vec<String>,
    store: MemoryStore,
    run_id: RunId,
}

async fn run(
    steps: Vec<PlanStep>,
    invoker: &Arc<ScriptedInvoker>,
    config: ExecutorConfig,
) -> Finished {
    let store = MemoryStore::new();
    let run_id = create_run(&store).await;
    let outcome = execute(
        run_id,
        plan(steps),
        json!({"host": "ws1"}),
        config,
        Arc::clone(invoker) as Arc<dyn Invoker>,
        Arc::new(store.clone()),
        CancellationToken::new(),
    )
    .await
    .expect("the run reaches a recorded end");
    let events = stored_events(&store, run_id).await;
    Finished {
        outcome,
        events,
        store,
        run_id,
    }
}

/// The stored events, described; asserts their seqs are 1, 2, 3, ….
async fn stored_events(store: &MemoryStore, run_id: RunId) -> Vec<String> {
    let events = store.events(run_id, 0).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(seqs, expected, "event seqs are gap-free from 1");
    events
        .iter()
        .map(|event| describe_event(&event.kind))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn diamond_run_records_every_event_in_order_and_returns_every_output() {
    let steps = vec![
        step("a", &[]),
        step_with_input(
            "b",
            &["a"],
            json!({ "from_a": "${{ steps.a.output.echo }}" }),
        ),
        step_with_input("c", &["a"], json!({ "host": "${{ inputs.host }}" })),
        step_with_input(
            "join",
            &["b", "c"],
            json!({ "b": "${{ steps.b.output.echo.from_a.step }}", "run": "${{ run.id }}" }),
        ),
    ];
    let invoker = ScriptedInvoker::new().script(
        "c",
        vec![Behaviour::SucceedAfter(Duration::from_millis(20))],
    );
    let finished = run(steps, &invoker, config()).await;
    assert_eq!(
        finished.events,
        [
            "run_started [a,b,c,join]",
            "started a#1",
            "succeeded a#1",
            "started b#1",
            "started c#1",
            "succeeded b#1",
            "succeeded c#1",
            "started join#1",
            "succeeded join#1",
            "run_succeeded",
        ]
    );
    let run_id = finished.run_id.to_string();
    let expected = json!({
        "a": {"echo": {"step": "a"}},
        "b": {"echo": {"from_a": {"step": "a"}}},
        "c": {"echo": {"host": "ws1"}},
        "join": {"echo": {"b": "a", "run": run_id}},
    });
    assert_eq!(
        finished.outcome,
        RunOutcome {
            status: RunStatus::Succeeded,
            result: expected.clone()
        }
    );
    let record = finished
        .store
        .get_run(finished.run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(record.result, Some(expected));
    assert_eq!(record.last_seq, 10);
}

#[tokio::test(start_paused = true)]
async fn attempts_in_flight_never_exceed_the_concurrency_bound() {
    let steps: Vec<PlanStep> = (0..6).map(|n| step(&format!("s{n}"), &[])).collect();
    let invoker = ScriptedInvoker::new();
    let config = ExecutorConfig {
        max_concurrency: 2,
        ..config()
    };
    let finished = run(steps, &invoker, config).await;
    assert_eq!(finished.outcome.status, RunStatus::Succeeded);
    assert_eq!(invoker.calls().len(), 6);
    assert_eq!(invoker.max_running.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn two_retryable_failures_then_success_take_three_attempts() {
    let invoker = ScriptedInvoker::new().script(
        "a",
        vec![
            Behaviour::Fail(transient("unavailable")),
            Behaviour::Fail(transient("unavailable")),
        ],
    );
    let finished = run(vec![step("a", &[]), step("b", &["a"])], &invoker, config()).await;
    assert_eq!(invoker.calls(), ["a#1", "a#2", "a#3", "b#1"]);
    assert_eq!(
        finished.events,
        [
            "run_started [a,b]",
            "started a#1",
            "failed a#1 SYN-R0003 will_retry=true",
            "retry_scheduled a#2 in 1000ms",
            "started a#2",
            "failed a#2 SYN-R0003 will_retry=true",
            "retry_scheduled a#3 in 1000ms",
            "started a#3",
            "succeeded a#3",
            "started b#1",
            "succeeded b#1",
            "run_succeeded",
        ]
    );
    assert_eq!(finished.outcome.status, RunStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_skips_dependents_while_independent_steps_finish() {
    let invoker = ScriptedInvoker::new().script("a", vec![Behaviour::Fail(permanent("bad rule"))]);
    let steps = vec![
        step("a", &[]),
        step("b", &["a"]),
        step("c", &[]),
        step("d", &["b", "c"]),
    ];
    let finished = run(steps, &invoker, config()).await;
    assert_eq!(invoker.calls(), ["a#1", "c#1"]);
    assert_eq!(
        finished.events,
        [
            "run_started [a,b,c,d]",
            "started a#1",
            "started c#1",
            "failed a#1 SYN-R0004 will_retry=false",
            "skipped b: upstream step `a` failed",
            "skipped d: upstream step `a` failed",
            "succeeded c#1",
            "run_failed [a]",
        ]
    );
    assert_eq!(
        finished.outcome,
        RunOutcome {
            status: RunStatus::Failed,
            result: json!({"c": {"echo": {"step": "c"}}}),
        }
    );
    let record = finished
        .store
        .get_run(finished.run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(
        record.error.as_deref(),
        Some("step `a` failed: SYN-R0004: bad rule")
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_invoker_is_stopped_by_the_backstop_until_retries_run_out() {
    let invoker =
        ScriptedInvoker::new().script("a", vec![Behaviour::Hang, Behaviour::Hang, Behaviour::Hang]);
    let mut slow = step("a", &[]);
    slow.timeout = Some(Duration::from_secs(1));
    let finished = run(vec![slow, step("b", &["a"])], &invoker, config()).await;
    assert_eq!(
        finished.events,
        [
            "run_started [a,b]",
            "started a#1",
            "failed a#1 SYN-R0002 will_retry=true",
            "retry_scheduled a#2 in 1000ms",
            "started a#2",
            "failed a#2 SYN-R0002 will_retry=true",
            "retry_scheduled a#3 in 1000ms",
            "started a#3",
            "failed a#3 SYN-R0002 will_retry=false",
            "skipped b: upstream step `a` failed",
            "run_failed [a]",
        ]
    );
    assert_eq!(finished.outcome.status, RunStatus::Failed);
    assert_eq!(invoker.dropped_unfinished.load(Ordering::SeqCst), 3);
    let events = finished.store.events(finished.run_id, 0).await.unwrap();
    let Some(synod_types::RunEventKind::StepFailed { error, .. }) =
        events.iter().map(|event| &event.kind).nth(2)
    else {
        panic!("the third event is a step failure");
    };
    assert!(
        error.message.contains("within its deadline of 1s"),
        "{}",
        error.message
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_aborts_in_flight_attempts_and_records_the_cancel() {
    let invoker = ScriptedInvoker::new().script("slow", vec![Behaviour::Hang]);
    let steps = vec![
        step("fast", &[]),
        step("slow", &[]),
        step("after", &["fast", "slow"]),
    ];
    let store = MemoryStore::new();
    let run_id = create_run(&store).await;
    let cancel = CancellationToken::new();
    let execution = tokio::spawn(execute(
        run_id,
        plan(steps),
        json!({}),
        config(),
        Arc::clone(&invoker) as Arc<dyn Invoker>,
        Arc::new(store.clone()),
        cancel.clone(),
    ));
    invoker.hanging.notified().await;
    // Let `fast` finish (10 ms) while `slow` hangs, then cancel.
    tokio::time::sleep(Duration::from_millis(50)).await;
    cancel.cancel();
    let outcome = execution.await.unwrap().unwrap();
    assert_eq!(
        outcome,
        RunOutcome {
            status: RunStatus::Cancelled,
            result: json!({"fast": {"echo": {"step": "fast"}}}),
        }
    );
    assert_eq!(
        stored_events(&store, run_id).await,
        [
            "run_started [fast,slow,after]",
            "started fast#1",
            "started slow#1",
            "succeeded fast#1",
            "cancelled slow",
            "cancelled after",
            "run_cancelled: cancellation requested",
        ]
    );
    // The hanging attempt was dropped before `execute` returned.
    assert_eq!(invoker.dropped_unfinished.load(Ordering::SeqCst), 1);
    assert_eq!(invoker.running.load(Ordering::SeqCst), 0);
    let record = store.get_run(run_id).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn a_store_failure_aborts_the_run_with_an_error() {
    let store = MemoryStore::new();
    let run_id = RunId::new(); // never created
    let error = execute(
        run_id,
        plan(vec![step("a", &[])]),
        json!({}),
        config(),
        ScriptedInvoker::new() as Arc<dyn Invoker>,
        Arc::new(store),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &error,
            ExecutorError::Store { run_id: failed, source: StoreError::RunNotFound(_) } if *failed == run_id
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("check the store"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_invoker_fails_the_step_without_retry() {
    let invoker = ScriptedInvoker::new().script("a", vec![Behaviour::Panic]);
    let finished = run(vec![step("a", &[]), step("b", &[])], &invoker, config()).await;
    assert_eq!(invoker.calls(), ["a#1", "b#1"]);
    assert_eq!(
        finished.events,
        [
            "run_started [a,b]",
            "started a#1",
            "started b#1",
            "failed a#1 SYN-R0010 will_retry=false",
            "succeeded b#1",
            "run_failed [a]",
        ]
    );
    assert_eq!(
        finished.outcome.result,
        json!({"b": {"echo": {"step": "b"}}}) as Value
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_abandoned_mid_flight_resumes_from_the_store_without_repeating_steps() {
    let steps = vec![
        step("a", &[]),
        step_with_input("b", &["a"], json!({ "a": "${{ steps.a.output.echo }}" })),
        step("c", &["b"]),
    ];
    let store = MemoryStore::new();
    let run_id = create_run(&store).await;
    let first = ScriptedInvoker::new().script("b", vec![Behaviour::Hang]);
    let crashed = tokio::spawn(execute(
        run_id,
        plan(steps.clone()),
        json!({"host": "ws1"}),
        config(),
        Arc::clone(&first) as Arc<dyn Invoker>,
        Arc::new(store.clone()),
        CancellationToken::new(),
    ));
    first.hanging.notified().await;
    // The process driving the run dies: nothing more is recorded.
    crashed.abort();
    assert!(crashed.await.unwrap_err().is_cancelled());
    assert_eq!(first.calls(), ["a#1", "b#1"]);

    let second = ScriptedInvoker::new();
    let outcome = resume(
        run_id,
        plan(steps),
        json!({"host": "ws1"}),
        config(),
        Arc::clone(&second) as Arc<dyn Invoker>,
        Arc::new(store.clone()),
        CancellationToken::new(),
    )
    .await
    .expect("the run resumes to a recorded end");
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(second.calls(), ["b#2", "c#1"], "a is not invoked again");
    assert_eq!(outcome.result["b"]["echo"]["a"]["step"], "a");
    let events = stored_events(&store, run_id).await;
    assert_eq!(
        events,
        [
            "run_started [a,b,c]",
            "started a#1",
            "succeeded a#1",
            "started b#1",
            "run_resumed, again: [b]",
            "started b#2",
            "succeeded b#2",
            "started c#1",
            "succeeded c#1",
            "run_succeeded",
        ]
    );

    // Resuming an ended run is refused and records nothing.
    let again = resume(
        run_id,
        plan(vec![step("a", &[]), step("b", &["a"]), step("c", &["b"])]),
        json!({}),
        config(),
        Arc::clone(&second) as Arc<dyn Invoker>,
        Arc::new(store.clone()),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(again.to_string().contains("already ended"), "{again}");
    assert_eq!(stored_events(&store, run_id).await.len(), events.len());
}

/// The spans of a run abandoned mid-flight and resumed: each execution is
/// a trace of its own (the resumed one marked so), attempts are children
/// of their execution's run span, and attributes use the constant keys.
#[tokio::test(start_paused = true)]
async fn a_resumed_run_is_a_new_trace_marked_resumed_with_attempts_under_it() {
    use opentelemetry::Value as OtelValue;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use synod_types::telemetry::{attr, outcome, span};

    use crate::machine::RunMachine;
    use crate::telemetry::Tracer;
    use crate::{Services, execute_machine, resume_machine};

    fn attribute(data: &SpanData, key: &str) -> Option<OtelValue> {
        data.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = Tracer::new(opentelemetry::trace::TracerProvider::tracer(
        &provider, "test",
    ));
    let steps = vec![step("a", &[]), step("b", &["a"])];
    let store = MemoryStore::new();
    let run_id = create_run(&store).await;
    let services = |invoker: &Arc<ScriptedInvoker>| Services {
        invoker: Arc::clone(invoker) as Arc<dyn Invoker>,
        store: Arc::new(store.clone()),
        deliverer: None,
        decisions: None,
        tracer: Some(tracer.clone()),
    };
    let machine = || RunMachine::new(run_id, plan(steps.clone()), json!({}), config());
    let first = ScriptedInvoker::new().script("b", vec![Behaviour::Hang]);
    let crashed = tokio::spawn(execute_machine(
        machine(),
        services(&first),
        CancellationToken::new(),
    ));
    first.hanging.notified().await;
    crashed.abort();
    assert!(crashed.await.unwrap_err().is_cancelled());
    let second = ScriptedInvoker::new();
    let outcome = resume_machine(machine(), services(&second), CancellationToken::new())
        .await
        .expect("the run resumes to a recorded end");
    assert_eq!(outcome.status, RunStatus::Succeeded);

    let spans = exporter.get_finished_spans().unwrap();
    let runs: Vec<&SpanData> = spans.iter().filter(|s| s.name == span::RUN).collect();
    assert_eq!(runs.len(), 2, "one run span per execution: {spans:#?}");
    let (before, after) = (runs[0], runs[1]);
    for run in &runs {
        assert_eq!(
            attribute(run, attr::RUN_ID),
            Some(OtelValue::from(run_id.to_string()))
        );
        assert_eq!(run.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    }
    assert_eq!(attribute(before, attr::RUN_RESUMED), Some(false.into()));
    assert_eq!(attribute(after, attr::RUN_RESUMED), Some(true.into()));
    assert_eq!(
        attribute(after, attr::OUTCOME),
        Some(outcome::SUCCEEDED.into())
    );
    assert_ne!(
        before.span_context.trace_id(),
        after.span_context.trace_id(),
        "the resumed execution is a new trace"
    );

    let attempts: Vec<(String, i64, &SpanData)> = spans
        .iter()
        .filter(|s| s.name == span::STEP_ATTEMPT)
        .map(|s| {
            let step = attribute(s, attr::STEP_ID).unwrap().to_string();
            let attempt = match attribute(s, attr::STEP_ATTEMPT) {
                Some(OtelValue::I64(n)) => n,
                other => panic!("attempt attribute {other:?}"),
            };
            (step, attempt, s)
        })
        .collect();
    let under = |run: &SpanData| -> Vec<(String, i64)> {
        let mut found: Vec<(String, i64)> = attempts
            .iter()
            .filter(|(_, _, s)| {
                s.parent_span_id == run.span_context.span_id()
                    && s.span_context.trace_id() == run.span_context.trace_id()
            })
            .map(|(step, attempt, _)| (step.clone(), *attempt))
            .collect();
        found.sort();
        found
    };
    // b#1 was in flight when the first driver died: its span ended
    // without an outcome; b#2 ran under the resumed execution.
    assert_eq!(under(before), [("a".to_owned(), 1), ("b".to_owned(), 1)]);
    assert_eq!(under(after), [("b".to_owned(), 2)]);
    let b2 = attempts
        .iter()
        .find(|(step, attempt, _)| step == "b" && *attempt == 2)
        .unwrap()
        .2;
    assert_eq!(
        attribute(b2, attr::OUTCOME),
        Some(outcome::SUCCEEDED.into())
    );
    provider.shutdown().unwrap();
}
