//! `for_each` steps: one attempt per item.
//!
//! Rules:
//! - When the step is about to start, its `for_each` list is evaluated once
//!   (`StepFannedOut` records how many items). The step is `Running` until
//!   every item has ended.
//! - Each item renders the step's `with` with `item` and `item_index` in
//!   scope and is invoked as its own attempt ([`Action::InvokeItem`]), with
//!   the step's `timeout`. Items start in index order; at most
//!   `max_parallel` items of the step are in flight, and every item counts
//!   against the run's [`ExecutorConfig::max_concurrency`](crate::ExecutorConfig).
//! - A failed item is retried under the step's retry policy, independently
//!   of the other items (its own attempt numbers from 1).
//! - Failure semantics: an item that fails for good does **not** stop the
//!   other items; once every item has ended, the step succeeds when all
//!   succeeded (output: the list of item outputs, in item order; confidence:
//!   the lowest item confidence; duration: the sum of the item attempts) and
//!   otherwise fails naming every failed item, which skips its dependents.
//! - An empty list succeeds at once with the output `[]`.

use serde_json::Value;
use synod_types::error::StepError;
use synod_types::{RunEventKind, StepId};
use synod_workflow::runtime::item_scope;

use super::{Action, RunMachine, expression_error, millis, retry_delay};
use crate::invoke::{StepOutput, Usage};

/// Where one item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemStatus {
    /// Not started yet.
    Pending,
    /// An attempt is in flight.
    Running,
    /// Waiting for its retry delay (`retry_due` once it passed).
    RetryScheduled,
    /// Ended with an output.
    Succeeded,
    /// Ended for good without one.
    Failed,
}

/// One item of a fanned-out step.
#[derive(Debug, Clone)]
pub(crate) struct ItemState {
    pub(crate) status: ItemStatus,
    /// Last started attempt (0 = none).
    pub(crate) attempt: u32,
    pub(crate) retry_due: bool,
    pub(crate) output: Option<StepOutput>,
    pub(crate) error: Option<StepError>,
}

/// A fanned-out step's items.
#[derive(Debug, Clone)]
pub(crate) struct FanOut {
    pub(crate) items: Vec<Value>,
    pub(crate) states: Vec<ItemState>,
    /// Most items in flight at once.
    pub(crate) max_parallel: usize,
    /// Items in flight now.
    pub(crate) running: usize,
}

impl FanOut {
    pub(crate) fn new(items: Vec<Value>, max_parallel: Option<u32>) -> FanOut {
        let states = vec![
            ItemState {
                status: ItemStatus::Pending,
                attempt: 0,
                retry_due: false,
                output: None,
                error: None,
            };
            items.len()
        ];
        FanOut {
            items,
            states,
            max_parallel: max_parallel.map_or(usize::MAX, |limit| (limit as usize).max(1)),
            running: 0,
        }
    }

    /// The first item that may start now.
    fn startable(&self) -> Option<usize> {
        if self.running >= self.max_parallel {
            return None;
        }
        self.states.iter().position(|state| {
            state.status == ItemStatus::Pending
                || (state.status == ItemStatus::RetryScheduled && state.retry_due)
        })
    }

    fn all_ended(&self) -> bool {
        self.states
            .iter()
            .all(|state| matches!(state.status, ItemStatus::Succeeded | ItemStatus::Failed))
    }
}

fn index(item: usize) -> u32 {
    u32::try_from(item).unwrap_or(u32::MAX)
}

impl RunMachine {
    /// `Pending -> Running` as a fan-out over `items`.
    pub(super) fn fan_out(
        &mut self,
        position: usize,
        items: Vec<Value>,
        max_parallel: Option<u32>,
    ) {
        let step = self.step_at(position).id.clone();
        self.actions.push(Action::Emit(RunEventKind::StepFannedOut {
            step,
            items: index(items.len()),
            max_parallel,
        }));
        self.enter_fan_out(position, items, max_parallel);
        self.conclude_fan_out(position);
    }

    /// Marks the step at `position` running as a fan-out over `items` (the
    /// caller records the event).
    pub(super) fn enter_fan_out(
        &mut self,
        position: usize,
        items: Vec<Value>,
        max_parallel: Option<u32>,
    ) {
        self.steps[position].status = synod_types::StepStatus::Running;
        self.steps[position].attempt = 1;
        self.fan_outs
            .insert(position, FanOut::new(items, max_parallel));
    }

    /// The first `(position, item)` that may start now, in topological order.
    pub(super) fn next_item(&self) -> Option<(usize, usize)> {
        self.fan_outs
            .iter()
            .find_map(|(position, fan)| Some((*position, fan.startable()?)))
    }

    /// Starts the next attempt of `item`, or fails it when its input does
    /// not render.
    pub(super) fn start_item(&mut self, position: usize, item: usize) {
        let plan = std::sync::Arc::clone(&self.plan);
        let step = &plan.graph()[plan.topological_order()[position]];
        let Some(fan) = self.fan_outs.get_mut(&position) else {
            return;
        };
        let scope = item_scope(&self.scope, &fan.items[item], item);
        let state = &mut fan.states[item];
        state.attempt += 1;
        state.retry_due = false;
        let attempt = state.attempt;
        let rendered = step.input.render(&scope);
        if rendered.is_ok() {
            state.status = ItemStatus::Running;
            fan.running += 1;
        }
        match rendered {
            Ok(input) => {
                self.in_flight += 1;
                self.actions
                    .push(Action::Emit(RunEventKind::StepItemStarted {
                        step: step.id.clone(),
                        item: index(item),
                        attempt,
                        input: self.redact(&input),
                    }));
                let call = self.invocation(position, attempt, input);
                self.actions.push(Action::InvokeItem {
                    item: index(item),
                    call,
                });
            }
            Err(render_error) => {
                let error = expression_error(format!(
                    "the input of item {item} of step `{}` cannot be rendered: {render_error}; fix the reference or the list",
                    step.id
                ));
                state.status = ItemStatus::Failed;
                state.error = Some(error.clone());
                self.actions
                    .push(Action::Emit(RunEventKind::StepItemFailed {
                        step: step.id.clone(),
                        item: index(item),
                        attempt,
                        error,
                        retry_in_ms: None,
                    }));
                self.conclude_fan_out(position);
            }
        }
    }

    pub(super) fn item_finished(
        &mut self,
        step: &StepId,
        item: u32,
        attempt: u32,
        outcome: Result<StepOutput, StepError>,
    ) {
        let Some(position) = self.position(step) else {
            return;
        };
        let plan = std::sync::Arc::clone(&self.plan);
        let spec = &plan.graph()[plan.topological_order()[position]];
        let shown = outcome
            .as_ref()
            .map(|output| self.redact(&output.output))
            .unwrap_or_default();
        let Some(fan) = self.fan_outs.get_mut(&position) else {
            return; // not fanned out (any more)
        };
        let Some(state) = fan.states.get_mut(item as usize) else {
            return;
        };
        if state.status != ItemStatus::Running || state.attempt != attempt {
            return; // stale
        }
        fan.running -= 1;
        self.in_flight -= 1;
        match outcome {
            Ok(output) => {
                self.actions
                    .push(Action::Emit(RunEventKind::StepItemSucceeded {
                        step: step.clone(),
                        item,
                        attempt,
                        output: shown,
                        confidence: output.confidence,
                        duration_ms: output.duration_ms,
                        instance: output.instance.clone(),
                    }));
                state.status = ItemStatus::Succeeded;
                state.output = Some(output);
            }
            Err(error) => {
                let delay = retry_delay(
                    spec,
                    &self.config.default_retry,
                    &mut self.rng,
                    attempt,
                    &error,
                );
                let retry_in_ms = delay.map(millis);
                state.status = if delay.is_some() {
                    ItemStatus::RetryScheduled
                } else {
                    ItemStatus::Failed
                };
                if delay.is_none() {
                    state.error = Some(error.clone());
                }
                self.actions
                    .push(Action::Emit(RunEventKind::StepItemFailed {
                        step: step.clone(),
                        item,
                        attempt,
                        error,
                        retry_in_ms,
                    }));
                if let Some(delay) = delay {
                    self.actions.push(Action::ScheduleItemRetry {
                        step: step.clone(),
                        item,
                        attempt: attempt + 1,
                        delay,
                    });
                }
            }
        }
        self.conclude_fan_out(position);
        self.start_ready_steps();
        self.finish_if_done();
    }

    pub(super) fn item_retry_due(&mut self, step: &StepId, item: u32, attempt: u32) {
        let Some(position) = self.position(step) else {
            return;
        };
        let Some(state) = self
            .fan_outs
            .get_mut(&position)
            .and_then(|fan| fan.states.get_mut(item as usize))
        else {
            return;
        };
        if state.status == ItemStatus::RetryScheduled
            && !state.retry_due
            && attempt == state.attempt + 1
        {
            state.retry_due = true;
            self.start_ready_steps();
        }
    }

    /// Ends the fanned-out step at `position` once every item has ended.
    pub(super) fn conclude_fan_out(&mut self, position: usize) {
        if !self.fan_outs.get(&position).is_some_and(FanOut::all_ended) {
            return;
        }
        let Some(fan) = self.fan_outs.remove(&position) else {
            return;
        };
        let id = self.step_at(position).id.clone();
        let failed: Vec<(usize, StepError)> = fan
            .states
            .iter()
            .enumerate()
            .filter_map(|(item, state)| Some((item, state.error.clone()?)))
            .collect();
        if let Some((_, first)) = failed.first() {
            let details: Vec<String> = failed
                .iter()
                .map(|(item, error)| format!("item {item}: {}", error.message))
                .collect();
            let mut error = StepError::new(
                first.code,
                format!(
                    "{} of {} items of step `{id}` failed: {}",
                    failed.len(),
                    fan.items.len(),
                    details.join("; ")
                ),
            );
            error.retryable = false;
            self.fail_for_good(position, error);
            return;
        }
        let mut outputs = Vec::with_capacity(fan.states.len());
        let mut confidence: f64 = 1.0;
        let mut duration_ms: u64 = 0;
        let mut usage = Usage::default();
        // The guard's redactions over every item, recorded once for the step.
        let mut guard: Option<crate::invoke::GuardReport> = None;
        for state in fan.states {
            let output = state.output.unwrap_or_else(|| StepOutput {
                output: Value::Null,
                confidence: 0.0,
                instance: String::new(),
                duration_ms: 0,
                needs: Vec::new(),
                usage: Usage::default(),
                guard: None,
            });
            if let Some(item_guard) = output.guard {
                let merged = guard.get_or_insert_with(|| crate::invoke::GuardReport {
                    expert: item_guard.expert.clone(),
                    ..Default::default()
                });
                for (kind, count) in item_guard.redacted {
                    *merged.redacted.entry(kind).or_default() += count;
                }
            }
            confidence = confidence.min(output.confidence);
            duration_ms = duration_ms.saturating_add(output.duration_ms);
            usage.input_tokens += output.usage.input_tokens;
            usage.output_tokens += output.usage.output_tokens;
            outputs.push(output.output);
        }
        self.succeed(
            position,
            StepOutput {
                output: Value::Array(outputs),
                confidence,
                instance: String::new(),
                duration_ms,
                needs: Vec::new(),
                usage,
                guard,
            },
        );
    }
}
