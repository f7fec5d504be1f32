//! `GET /metrics`: Prometheus text exposition (format 0.0.4), hand-written.
//!
//! Counters and histograms are derived from the run events this orchestrator
//! appends: [`Metrics::observe_store`] wraps the run store so every appended
//! event is also folded into a [`Tally`] (pure, no I/O), which keeps the
//! executor free of metrics code. Gauges are read at scrape time from the
//! run manager (active runs) and the registry (instance health, circuit
//! breakers, calls in flight, latency).
//!
//! Labels are bounded: workflow names, `expert`, `skill`, outcomes, error
//! codes, event types and expert endpoints. Run ids are never labels.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use synod_proto::orchestrator as pb;
use synod_registry::Registry;
use synod_store::{RunStore, StoreError};
use synod_types::{RunEvent, RunEventKind, RunId, SkillRef};

use crate::runs::RunManager;

/// Upper bounds (seconds) of the step latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Every metric synod exposes, in exposition order: names live here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MetricName {
    /// Runs started, by workflow.
    RunsStarted,
    /// Runs ended, by workflow and outcome.
    RunsFinished,
    /// Steps ended for good, by expert, skill and outcome.
    StepsFinished,
    /// Failed step (or item) attempts, by expert, skill and error code.
    StepAttemptFailures,
    /// Retries scheduled, by expert and skill.
    StepRetries,
    /// Reflection rounds judged, by expert, skill and verdict.
    StepReflections,
    /// Latency of successful expert calls, by expert and skill.
    StepDuration,
    /// Binding deliveries ended, by outcome.
    Bindings,
    /// Approval decisions, by decision.
    Approvals,
    /// Run events appended, by CloudEvents type.
    Events,
    /// Runs this orchestrator is driving now.
    RunsActive,
    /// Steps with an attempt in flight.
    StepsRunning,
    /// Planned steps of unfinished runs waiting to start (the queue).
    StepsQueued,
    /// Bindings waiting for a human decision.
    ApprovalsPending,
    /// Registered expert instances, by expert and health.
    ExpertInstances,
    /// 1 when an instance's circuit breaker is open, by expert and instance.
    ExpertBreakerOpen,
    /// Calls in flight, by expert.
    ExpertOutstanding,
    /// Smoothed call latency, by expert and instance.
    ExpertLatencyEwma,
    /// Calls sent, by expert and instance.
    ExpertCalls,
    /// Calls that failed, by expert and instance.
    ExpertCallFailures,
}

/// Prometheus metric types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricName {
    /// The exposition name.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricName::RunsStarted => "synod_runs_started_total",
            MetricName::RunsFinished => "synod_runs_finished_total",
            MetricName::StepsFinished => "synod_steps_finished_total",
            MetricName::StepAttemptFailures => "synod_step_attempt_failures_total",
            MetricName::StepRetries => "synod_step_retries_total",
            MetricName::StepReflections => "synod_step_reflections_total",
            MetricName::StepDuration => "synod_step_duration_seconds",
            MetricName::Bindings => "synod_bindings_total",
            MetricName::Approvals => "synod_approvals_total",
            MetricName::Events => "synod_run_events_total",
            MetricName::RunsActive => "synod_runs_active",
            MetricName::StepsRunning => "synod_steps_running",
            MetricName::StepsQueued => "synod_steps_queued",
            MetricName::ApprovalsPending => "synod_approvals_pending",
            MetricName::ExpertInstances => "synod_expert_instances",
            MetricName::ExpertBreakerOpen => "synod_expert_breaker_open",
            MetricName::ExpertOutstanding => "synod_expert_outstanding_calls",
            MetricName::ExpertLatencyEwma => "synod_expert_latency_ewma_seconds",
            MetricName::ExpertCalls => "synod_expert_calls_total",
            MetricName::ExpertCallFailures => "synod_expert_call_failures_total",
        }
    }

    fn help(self) -> &'static str {
        match self {
            MetricName::RunsStarted => "Runs started, by workflow.",
            MetricName::RunsFinished => "Runs ended, by workflow and outcome.",
            MetricName::StepsFinished => "Steps ended for good, by expert, skill and outcome.",
            MetricName::StepAttemptFailures => {
                "Failed step attempts (for_each items included), by expert, skill and error code."
            }
            MetricName::StepRetries => "Step attempts retried, by expert and skill.",
            MetricName::StepReflections => {
                "Reflection rounds judged, by expert, skill and verdict (accept or revise)."
            }
            MetricName::StepDuration => {
                "Latency of successful expert calls (step or item attempts), by expert and skill."
            }
            MetricName::Bindings => "Binding deliveries ended, by outcome.",
            MetricName::Approvals => "Approval outcomes, by decision.",
            MetricName::Events => "Run events appended, by CloudEvents type.",
            MetricName::RunsActive => "Runs this orchestrator is driving now.",
            MetricName::StepsRunning => "Steps with an attempt in flight.",
            MetricName::StepsQueued => {
                "Planned steps of unfinished runs that have not started (or wait for a retry)."
            }
            MetricName::ApprovalsPending => "Bindings waiting for a human decision.",
            MetricName::ExpertInstances => "Registered expert instances, by expert and health.",
            MetricName::ExpertBreakerOpen => {
                "1 while an expert instance's circuit breaker is open, else 0."
            }
            MetricName::ExpertOutstanding => "Calls in flight, by expert.",
            MetricName::ExpertLatencyEwma => {
                "Exponentially weighted average call latency, by expert and instance."
            }
            MetricName::ExpertCalls => "Calls sent to an expert instance.",
            MetricName::ExpertCallFailures => "Calls to an expert instance that failed.",
        }
    }

    fn metric_type(self) -> MetricType {
        match self {
            MetricName::StepDuration => MetricType::Histogram,
            MetricName::RunsActive
            | MetricName::StepsRunning
            | MetricName::StepsQueued
            | MetricName::ApprovalsPending
            | MetricName::ExpertInstances
            | MetricName::ExpertBreakerOpen
            | MetricName::ExpertOutstanding
            | MetricName::ExpertLatencyEwma => MetricType::Gauge,
            _ => MetricType::Counter,
        }
    }
}

/// Label pairs of one series, in a fixed order.
type Labels = Vec<(&'static str, String)>;

/// One histogram series.
#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    /// Observations per bucket of [`LATENCY_BUCKETS`] (not cumulative).
    buckets: [u64; LATENCY_BUCKETS.len()],
    /// Sum of the observations, in seconds.
    sum: f64,
    /// Number of observations.
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(index) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Where a step of a run being tallied is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Queued,
    Running,
    Done,
}

/// What the tally remembers of an unfinished run.
#[derive(Debug, Clone, Default)]
struct RunTally {
    workflow: String,
    /// Step id → skill, from the plan and from attempts.
    uses: HashMap<String, SkillRef>,
    phases: HashMap<String, Phase>,
    /// `for_each` steps: their latency is counted per item.
    fanned_out: BTreeSet<String>,
    pending_approvals: BTreeSet<String>,
}

impl RunTally {
    fn skill(&self, step: &str) -> (String, String) {
        match self.uses.get(step) {
            Some(uses) => (uses.expert.clone(), uses.skill.clone()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        }
    }
}

/// Counters and histograms folded from run events, plus the per-run state
/// the gauges need. Pure: feed it events with [`Tally::observe`].
#[derive(Debug, Clone, Default)]
pub struct Tally {
    counters: BTreeMap<(MetricName, Labels), u64>,
    histograms: BTreeMap<(MetricName, Labels), Histogram>,
    runs: HashMap<RunId, RunTally>,
}

/// Values read at scrape time from outside the event stream.
#[derive(Debug, Clone, Default)]
pub struct LiveValues {
    /// Runs being driven by this orchestrator.
    pub active_runs: usize,
    /// The registry listing.
    pub experts: Vec<pb::ExpertInfo>,
}

impl Tally {
    /// True when the tally follows `run_id` (it saw its start or adopted it).
    pub fn knows(&self, run_id: RunId) -> bool {
        self.runs.contains_key(&run_id)
    }

    /// Follows a run whose start this tally did not see (a resumed run).
    pub fn adopt(&mut self, run_id: RunId, workflow: &str) {
        self.runs.entry(run_id).or_insert_with(|| RunTally {
            workflow: workflow.to_owned(),
            ..RunTally::default()
        });
    }

    /// Forgets the unfinished runs not in `active` (driven elsewhere now):
    /// their steps no longer count as running or queued here.
    pub fn retain_runs(&mut self, active: &[RunId]) {
        self.runs.retain(|run_id, _| active.contains(run_id));
    }

    fn count(&mut self, name: MetricName, labels: Labels) {
        *self.counters.entry((name, labels)).or_default() += 1;
    }

    /// Folds one appended event into the metrics.
    pub fn observe(&mut self, event: &RunEvent) {
        self.count(
            MetricName::Events,
            vec![("type", event.kind.cloud_event_type().to_owned())],
        );
        if let RunEventKind::RunStarted {
            workflow, steps, ..
        } = &event.kind
        {
            let mut run = RunTally {
                workflow: workflow.clone(),
                ..RunTally::default()
            };
            for step in steps {
                run.uses.insert(step.id.0.clone(), step.uses.clone());
                run.phases.insert(step.id.0.clone(), Phase::Queued);
            }
            self.runs.insert(event.run_id, run);
            self.count(
                MetricName::RunsStarted,
                vec![("workflow", workflow.clone())],
            );
            return;
        }
        let Some(mut run) = self.runs.remove(&event.run_id) else {
            return;
        };
        let finished = self.observe_in_run(&mut run, &event.kind);
        if let Some(outcome) = finished {
            self.count(
                MetricName::RunsFinished,
                vec![("workflow", run.workflow), ("outcome", outcome.to_owned())],
            );
        } else {
            self.runs.insert(event.run_id, run);
        }
    }

    /// Folds an event of a followed run; returns the run's outcome when the
    /// event ends it.
    fn observe_in_run(&mut self, run: &mut RunTally, kind: &RunEventKind) -> Option<&'static str> {
        let step_labels = |run: &RunTally, step: &str| {
            let (expert, skill) = run.skill(step);
            vec![("expert", expert), ("skill", skill)]
        };
        let finish = |this: &mut Tally, run: &mut RunTally, step: &str, outcome: &str| {
            run.phases.insert(step.to_owned(), Phase::Done);
            let mut labels = step_labels(run, step);
            labels.push(("outcome", outcome.to_owned()));
            this.count(MetricName::StepsFinished, labels);
        };
        match kind {
            RunEventKind::StepStarted { step, uses, .. } => {
                run.uses.insert(step.0.clone(), uses.clone());
                run.phases.insert(step.0.clone(), Phase::Running);
            }
            RunEventKind::StepFannedOut { step, .. } => {
                run.fanned_out.insert(step.0.clone());
            }
            RunEventKind::StepSucceeded {
                step, duration_ms, ..
            } => {
                if !run.fanned_out.contains(&step.0) {
                    self.observe_latency(step_labels(run, &step.0), *duration_ms);
                }
                finish(self, run, &step.0, "succeeded");
            }
            RunEventKind::StepItemSucceeded {
                step, duration_ms, ..
            } => self.observe_latency(step_labels(run, &step.0), *duration_ms),
            RunEventKind::StepFailed {
                step,
                error,
                will_retry,
                ..
            } => {
                let mut labels = step_labels(run, &step.0);
                labels.push(("code", error.code_text.clone()));
                self.count(MetricName::StepAttemptFailures, labels);
                if *will_retry {
                    run.phases.insert(step.0.clone(), Phase::Queued);
                } else {
                    let timed_out = error.code == synod_types::ErrorCode::DeadlineExceeded;
                    let outcome = if timed_out { "timed_out" } else { "failed" };
                    finish(self, run, &step.0, outcome);
                }
            }
            RunEventKind::StepItemFailed {
                step,
                error,
                retry_in_ms,
                ..
            } => {
                let mut labels = step_labels(run, &step.0);
                labels.push(("code", error.code_text.clone()));
                self.count(MetricName::StepAttemptFailures, labels);
                if retry_in_ms.is_some() {
                    self.count(MetricName::StepRetries, step_labels(run, &step.0));
                }
            }
            RunEventKind::StepRetryScheduled { step, .. } => {
                self.count(MetricName::StepRetries, step_labels(run, &step.0));
            }
            RunEventKind::StepReflected { step, verdict, .. } => {
                let mut labels = step_labels(run, &step.0);
                labels.push(("verdict", verdict.clone()));
                self.count(MetricName::StepReflections, labels);
            }
            RunEventKind::StepSkipped { step, .. } => finish(self, run, &step.0, "skipped"),
            RunEventKind::StepCancelled { step } => finish(self, run, &step.0, "cancelled"),
            RunEventKind::BindingDelivered { .. } => {
                self.count(MetricName::Bindings, vec![("outcome", "delivered".into())]);
            }
            RunEventKind::BindingFailed { .. } => {
                self.count(MetricName::Bindings, vec![("outcome", "failed".into())]);
            }
            RunEventKind::BindingSkipped { .. } => {
                self.count(MetricName::Bindings, vec![("outcome", "skipped".into())]);
            }
            RunEventKind::ApprovalRequested { binding, .. } => {
                run.pending_approvals.insert(binding.clone());
            }
            RunEventKind::ApprovalDecided {
                binding, approved, ..
            } => {
                run.pending_approvals.remove(binding);
                let decision = if *approved { "approved" } else { "rejected" };
                self.count(MetricName::Approvals, vec![("decision", decision.into())]);
            }
            RunEventKind::ApprovalTimedOut { binding, .. } => {
                run.pending_approvals.remove(binding);
                self.count(
                    MetricName::Approvals,
                    vec![("decision", "timed_out".into())],
                );
            }
            RunEventKind::RunSucceeded { .. } => return Some("succeeded"),
            RunEventKind::RunFailed { .. } => return Some("failed"),
            RunEventKind::RunCancelled { .. } => return Some("cancelled"),
            _ => {}
        }
        None
    }

    fn observe_latency(&mut self, labels: Labels, duration_ms: u64) {
        self.histograms
            .entry((MetricName::StepDuration, labels))
            .or_default()
            .observe(Duration::from_millis(duration_ms).as_secs_f64());
    }

    /// The value of a counter series (0 when it never moved), for tests and
    /// reports.
    pub fn counter(&self, name: MetricName, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .iter()
            .filter(|((series, series_labels), _)| {
                *series == name
                    && series_labels.len() == labels.len()
                    && series_labels.iter().zip(labels).all(
                        |((key, value), (want_key, want_value))| {
                            key == want_key && value == want_value
                        },
                    )
            })
            .map(|(_, value)| *value)
            .sum()
    }

    /// The whole exposition text: the tally's series plus gauges from `live`.
    pub fn render(&self, live: &LiveValues) -> String {
        let mut gauges: BTreeMap<(MetricName, Labels), f64> = BTreeMap::new();
        gauges.insert((MetricName::RunsActive, vec![]), live.active_runs as f64);
        let phase_count = |phase: Phase| {
            self.runs
                .values()
                .flat_map(|run| run.phases.values())
                .filter(|p| **p == phase)
                .count() as f64
        };
        gauges.insert(
            (MetricName::StepsRunning, vec![]),
            phase_count(Phase::Running),
        );
        gauges.insert(
            (MetricName::StepsQueued, vec![]),
            phase_count(Phase::Queued),
        );
        let pending: usize = self.runs.values().map(|r| r.pending_approvals.len()).sum();
        gauges.insert((MetricName::ApprovalsPending, vec![]), pending as f64);
        let mut expert_counters: BTreeMap<(MetricName, Labels), u64> = BTreeMap::new();
        for expert in &live.experts {
            let name = expert
                .card
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let mut outstanding = 0.0;
            for instance in &expert.instances {
                let health = crate::http::health_name(instance.health);
                *gauges
                    .entry((
                        MetricName::ExpertInstances,
                        vec![("expert", name.clone()), ("health", health.to_owned())],
                    ))
                    .or_default() += 1.0;
                let per_instance = vec![
                    ("expert", name.clone()),
                    ("instance", instance.endpoint.clone()),
                ];
                let open = instance.health == pb::InstanceHealth::Broken as i32;
                gauges.insert(
                    (MetricName::ExpertBreakerOpen, per_instance.clone()),
                    if open { 1.0 } else { 0.0 },
                );
                gauges.insert(
                    (MetricName::ExpertLatencyEwma, per_instance.clone()),
                    instance.latency_ewma_ms / 1000.0,
                );
                expert_counters.insert(
                    (MetricName::ExpertCalls, per_instance.clone()),
                    instance.calls,
                );
                expert_counters.insert(
                    (MetricName::ExpertCallFailures, per_instance),
                    instance.failures,
                );
                outstanding += f64::from(instance.outstanding);
            }
            gauges.insert(
                (MetricName::ExpertOutstanding, vec![("expert", name)]),
                outstanding,
            );
        }

        let mut series: BTreeMap<MetricName, Vec<String>> = BTreeMap::new();
        for ((name, labels), value) in self.counters.iter().chain(&expert_counters) {
            series.entry(*name).or_default().push(format!(
                "{}{} {value}",
                name.as_str(),
                label_text(labels, None)
            ));
        }
        for ((name, labels), value) in &gauges {
            series.entry(*name).or_default().push(format!(
                "{}{} {}",
                name.as_str(),
                label_text(labels, None),
                number(*value)
            ));
        }
        for ((name, labels), histogram) in &self.histograms {
            let lines = series.entry(*name).or_default();
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let le = number(*bound);
                lines.push(format!(
                    "{}_bucket{} {cumulative}",
                    name.as_str(),
                    label_text(labels, Some(&le))
                ));
            }
            lines.push(format!(
                "{}_bucket{} {}",
                name.as_str(),
                label_text(labels, Some("+Inf")),
                histogram.count
            ));
            let base = label_text(labels, None);
            lines.push(format!(
                "{}_sum{base} {}",
                name.as_str(),
                number(histogram.sum)
            ));
            lines.push(format!("{}_count{base} {}", name.as_str(), histogram.count));
        }

        let mut out = String::new();
        for (name, lines) in series {
            let kind = match name.metric_type() {
                MetricType::Counter => "counter",
                MetricType::Gauge => "gauge",
                MetricType::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {} {}", name.as_str(), name.help());
            let _ = writeln!(out, "# TYPE {} {kind}", name.as_str());
            for line in lines {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

/// `{a="x",b="y"}` (empty when there are no labels), with `le` last when given.
fn label_text(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", escape_label(value)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Escapes a label value as the text format requires (`\\`, `\"`, `\n`).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, `+Inf`/`NaN` spelt out.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

// === impl Metrics ===

/// The orchestrator's metrics: a shared [`Tally`] fed by the run store.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    tally: Arc<Mutex<Tally>>,
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, Tally> {
        // Every update is a few map operations on owned data: a poisoned
        // lock still holds consistent counters.
        self.tally
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of the current tally.
    pub fn snapshot(&self) -> Tally {
        self.lock().clone()
    }

    /// Wraps `store` so that every event appended through it is counted.
    pub fn observe_store(&self, store: Arc<dyn RunStore>) -> Arc<dyn RunStore> {
        Arc::new(ObservedStore {
            inner: store,
            metrics: self.clone(),
        })
    }

    /// Counts an appended event; a run first seen mid-way (resumed after a
    /// restart) is adopted with its workflow name from the store.
    async fn record(&self, store: &dyn RunStore, event: &RunEvent) {
        let starts = matches!(event.kind, RunEventKind::RunStarted { .. });
        if !starts && !self.lock().knows(event.run_id) {
            let workflow = match store.get_run(event.run_id).await {
                Ok(Some(record)) => record.workflow,
                _ => "unknown".to_owned(),
            };
            self.lock().adopt(event.run_id, &workflow);
        }
        self.lock().observe(event);
    }
}

/// State of the `/metrics` handler.
#[derive(Debug, Clone)]
pub struct MetricsState {
    /// The event-derived metrics.
    pub metrics: Metrics,
    /// Active runs.
    pub manager: RunManager,
    /// Expert instances, health and breakers.
    pub registry: Registry,
}

/// The `/metrics` router.
pub fn router(state: MetricsState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

async fn scrape(State(state): State<MetricsState>) -> impl IntoResponse {
    let experts = state.registry.list();
    let text = {
        let mut tally = state.metrics.lock();
        // Read under the tally's lock: a run is marked active before its
        // first event is counted, so every run in the tally that is not
        // active now has ended or moved to another replica (lost lease).
        let active = state.manager.active_run_ids();
        tally.retain_runs(&active);
        let live = LiveValues {
            active_runs: active.len(),
            experts,
        };
        tally.render(&live)
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

// === impl ObservedStore ===

/// A run store that counts every event appended through it.
struct ObservedStore {
    inner: Arc<dyn RunStore>,
    metrics: Metrics,
}

impl std::fmt::Debug for ObservedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedStore").finish_non_exhaustive()
    }
}

impl ObservedStore {
    /// Appends through `inner`, then counts the event.
    async fn append_event(
        &self,
        run_id: RunId,
        owner: Option<&str>,
        kind: RunEventKind,
    ) -> Result<RunEvent, StoreError> {
        let appended = match owner {
            Some(owner) => self.inner.append_leased(run_id, owner, kind).await,
            None => self.inner.append(run_id, kind).await,
        };
        if let Ok(event) = &appended {
            self.metrics.record(self.inner.as_ref(), event).await;
        }
        appended
    }
}

crate::store_layer::store_layer!(ObservedStore);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::Value;
    use synod_types::error::StepError;
    use synod_types::event::PlannedStep;
    use synod_types::{ErrorCode, StepId};

    fn event(run_id: RunId, seq: u64, kind: RunEventKind) -> RunEvent {
        RunEvent {
            run_id,
            seq,
            time: Utc::now(),
            kind,
        }
    }

    /// A run of `a -> b`: `a` fails once and is retried, `b` is skipped.
    fn retried_then_skipped(run_id: RunId) -> Vec<RunEvent> {
        let a = StepId::new("a");
        let uses = SkillRef::new("ioc", "extract");
        let kinds = vec![
            RunEventKind::RunStarted {
                workflow: "triage \"x\"".into(),
                inputs: Value::Null,
                steps: vec![
                    PlannedStep {
                        id: a.clone(),
                        uses: uses.clone(),
                        needs: vec![],
                    },
                    PlannedStep {
                        id: StepId::new("b"),
                        uses: SkillRef::new("report", "summarize"),
                        needs: vec![a.clone()],
                    },
                ],
            },
            RunEventKind::StepStarted {
                step: a.clone(),
                attempt: 1,
                uses: uses.clone(),
                input: Value::Null,
            },
            RunEventKind::StepFailed {
                step: a.clone(),
                attempt: 1,
                error: StepError::new(ErrorCode::ExpertTransient, "try again"),
                will_retry: true,
            },
            RunEventKind::StepRetryScheduled {
                step: a.clone(),
                next_attempt: 2,
                delay_ms: 10,
            },
            RunEventKind::StepStarted {
                step: a.clone(),
                attempt: 2,
                uses,
                input: Value::Null,
            },
            RunEventKind::StepSucceeded {
                step: a,
                attempt: 2,
                output: Value::Null,
                confidence: 1.0,
                duration_ms: 30,
                instance: "i".into(),
            },
            RunEventKind::StepSkipped {
                step: StepId::new("b"),
                reason: "no".into(),
            },
            RunEventKind::RunSucceeded {
                result: Value::Null,
            },
        ];
        kinds
            .into_iter()
            .enumerate()
            .map(|(index, kind)| event(run_id, index as u64 + 1, kind))
            .collect()
    }

    #[test]
    fn events_move_runs_steps_retries_and_latency() {
        let mut tally = Tally::default();
        let run_id = RunId::new();
        let events = retried_then_skipped(run_id);
        // Mid-run: one step queued (b), none running after `a` succeeded.
        for event in &events[..6] {
            tally.observe(event);
        }
        let text = tally.render(&LiveValues::default());
        assert!(text.contains("synod_steps_queued 1\n"), "{text}");
        assert!(text.contains("synod_steps_running 0\n"), "{text}");
        for event in &events[6..] {
            tally.observe(event);
        }
        let workflow = "triage \"x\"";
        assert_eq!(
            tally.counter(MetricName::RunsStarted, &[("workflow", workflow)]),
            1
        );
        assert_eq!(
            tally.counter(
                MetricName::RunsFinished,
                &[("workflow", workflow), ("outcome", "succeeded")]
            ),
            1
        );
        let extract = [("expert", "ioc"), ("skill", "extract")];
        assert_eq!(tally.counter(MetricName::StepRetries, &extract), 1);
        assert_eq!(
            tally.counter(
                MetricName::StepAttemptFailures,
                &[
                    ("expert", "ioc"),
                    ("skill", "extract"),
                    ("code", "SYN-R0003")
                ]
            ),
            1
        );
        assert_eq!(
            tally.counter(
                MetricName::StepsFinished,
                &[
                    ("expert", "report"),
                    ("skill", "summarize"),
                    ("outcome", "skipped")
                ]
            ),
            1
        );
        assert!(!tally.knows(run_id), "a finished run is forgotten");

        let text = tally.render(&LiveValues::default());
        assert!(!text.contains(&run_id.to_string()), "{text}");
        // Quotes in label values are escaped.
        assert!(
            text.contains(r#"synod_runs_started_total{workflow="triage \"x\""} 1"#),
            "{text}"
        );
        // 30 ms lands in the 0.05 bucket; buckets are cumulative.
        let series = r#"synod_step_duration_seconds_bucket{expert="ioc",skill="extract""#;
        assert!(
            text.contains(&format!("{series},le=\"0.025\"}} 0\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{series},le=\"0.05\"}} 1\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{series},le=\"+Inf\"}} 1\n")),
            "{text}"
        );
        assert!(text.contains("# TYPE synod_step_duration_seconds histogram\n"));
        assert!(text.contains("synod_steps_queued 0\n"), "{text}");
    }

    #[test]
    fn runs_driven_elsewhere_stop_counting_as_queued() {
        let mut tally = Tally::default();
        let run_id = RunId::new();
        tally.observe(&retried_then_skipped(run_id)[0]);
        tally.retain_runs(&[run_id]);
        let text = tally.render(&LiveValues::default());
        assert!(text.contains("synod_steps_queued 2\n"), "{text}");
        tally.retain_runs(&[]);
        let text = tally.render(&LiveValues::default());
        assert!(text.contains("synod_steps_queued 0\n"), "{text}");
    }

    #[test]
    fn a_resumed_run_is_adopted_and_counted() {
        let mut tally = Tally::default();
        let run_id = RunId::new();
        let events = retried_then_skipped(run_id);
        tally.adopt(run_id, "resumed-flow");
        for event in &events[1..] {
            tally.observe(event);
        }
        assert_eq!(
            tally.counter(
                MetricName::RunsFinished,
                &[("workflow", "resumed-flow"), ("outcome", "succeeded")]
            ),
            1
        );
        assert_eq!(tally.counter(MetricName::RunsStarted, &[]), 0);
    }

    #[test]
    fn breaker_state_and_instances_come_from_the_registry_listing() {
        let instance = |endpoint: &str, health: pb::InstanceHealth| pb::InstanceInfo {
            instance_id: endpoint.into(),
            endpoint: endpoint.into(),
            health: health as i32,
            outstanding: 2,
            latency_ewma_ms: 250.0,
            calls: 7,
            failures: 3,
            r#static: true,
        };
        let live = LiveValues {
            active_runs: 3,
            experts: vec![pb::ExpertInfo {
                card: Some(synod_proto::expert::ExpertCard {
                    name: "ioc".into(),
                    ..Default::default()
                }),
                instances: vec![
                    instance("http://a:1", pb::InstanceHealth::Healthy),
                    instance("http://b:2", pb::InstanceHealth::Broken),
                ],
            }],
        };
        let text = Tally::default().render(&live);
        for line in [
            "synod_runs_active 3",
            r#"synod_expert_breaker_open{expert="ioc",instance="http://a:1"} 0"#,
            r#"synod_expert_breaker_open{expert="ioc",instance="http://b:2"} 1"#,
            r#"synod_expert_instances{expert="ioc",health="broken"} 1"#,
            r#"synod_expert_outstanding_calls{expert="ioc"} 4"#,
            r#"synod_expert_latency_ewma_seconds{expert="ioc",instance="http://a:1"} 0.25"#,
            r#"synod_expert_call_failures_total{expert="ioc",instance="http://b:2"} 3"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} not in\n{text}");
        }
    }
}
