//! Reflection loops: a step with `reflect:` is judged after each successful
//! round and sent back with the judgement until it is good enough.
//!
//! Rules:
//! - A round's output is judged first by the built-in rules, in order:
//!   `min_confidence` (the expert's confidence must reach it) and `until`
//!   (a CEL condition over the run scope plus `output`, `confidence` and
//!   `round`; one that cannot be evaluated, e.g. a missing field, fails).
//!   The first rule that fails gives the verdict `revise` with what failed
//!   as the feedback; no critic is asked.
//! - When the rules hold and the step has a `critic` skill, the critic is
//!   invoked ([`Action::InvokeCritic`]) with `{step, uses, output,
//!   confidence, round, feedback}`; its output's `verdict` (`accept` /
//!   `revise`, or a boolean `accept`) and `feedback` (or `issues`) are the
//!   judgement. A critic that fails does not fail the run: the round's
//!   output stands, with the failure as the stop reason.
//! - The loop stops (recorded as `stop` of `StepReflected`, and the step
//!   succeeds with the round's output) when the verdict is `accept`
//!   (`criterion met`), when `max_rounds` rounds have run, when a round's
//!   output equals the previous round's (`no new evidence`), or when the
//!   token or time budget is spent. Otherwise `StepReflected` without
//!   `stop` is recorded and the step runs again as the next round: the next
//!   attempt number, retries counted afresh, the feedback of every earlier
//!   round in its [`Invocation`].
//! - Strategies: `retry_with_feedback` is what the loop does;
//!   `second_opinion` and `replan` run the same loop for now (they need the
//!   LLM planner) and their rounds say so in the feedback.

use std::sync::Arc;

use serde_json::{Value, json};
use synod_types::error::StepError;
use synod_types::{RunEventKind, StepId, StepStatus};
use synod_workflow::runtime::reflect_until_holds;
use synod_workflow::{ReflectSpec, ReflectStrategy};

use super::{Action, RunMachine, millis};
use crate::invoke::{Feedback, Invocation, StepOutput};

/// Reflection state of one step.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reflection {
    /// The current round, from 0.
    pub(super) round: u32,
    /// The attempt number the current round started with (retries count
    /// from it).
    pub(super) first_attempt: u32,
    /// Judgements of the earlier rounds, sent with the next invocation.
    pub(super) feedback: Vec<Feedback>,
    /// The previous round's output (for "no new evidence").
    pub(super) previous_output: Option<Value>,
    /// Model tokens used over all rounds (the step's and its critic's).
    pub(super) tokens: u64,
    /// Wall time over all rounds, in milliseconds.
    pub(super) elapsed_ms: u64,
    /// The round's output while its critic judges it.
    pub(super) judging: Option<StepOutput>,
}

impl Default for Reflection {
    fn default() -> Self {
        Reflection {
            round: 0,
            first_attempt: 1,
            feedback: Vec::new(),
            previous_output: None,
            tokens: 0,
            elapsed_ms: 0,
            judging: None,
        }
    }
}

/// A judgement of one round.
struct Judgement {
    critic: String,
    accept: bool,
    feedback: String,
    /// Set when the loop must end whatever the verdict (a failed critic).
    forced_stop: Option<String>,
}

impl RunMachine {
    /// The `reflect:` of the step at `position`, if it has one.
    fn reflect_spec(&self, position: usize) -> Option<Arc<ReflectSpec>> {
        self.reflect_specs.get(&position).cloned()
    }

    /// Judges a successful round of the step at `position` (in `Running`).
    /// Gives `output` back when the step has no `reflect` (the caller records
    /// the success); `None` when reflection took the output over.
    pub(super) fn judge(&mut self, position: usize, output: StepOutput) -> Option<StepOutput> {
        let Some(spec) = self.reflect_spec(position) else {
            return Some(output);
        };
        let reflection = &mut self.steps[position].reflection;
        reflection.tokens += output.usage.input_tokens + output.usage.output_tokens;
        reflection.elapsed_ms += output.duration_ms;
        let round = reflection.round;
        if let Some(failed) = self.failed_rule(&spec, &output, round) {
            self.conclude_round(position, &spec, output, failed);
            return None;
        }
        let Some(critic) = spec.critic.clone() else {
            let judgement = Judgement {
                critic: "rule".to_owned(),
                accept: true,
                feedback: String::new(),
                forced_stop: None,
            };
            self.conclude_round(position, &spec, output, judgement);
            return None;
        };
        let step = self.step_at(position);
        let (id, deadline) = (
            step.id.clone(),
            step.timeout.unwrap_or(self.config.default_timeout),
        );
        let input = json!({
            "step": id.as_str(),
            "uses": step.uses.to_string(),
            "output": output.output,
            "confidence": output.confidence,
            "round": round,
            "feedback": self.steps[position].reflection.feedback,
        });
        let call = Invocation {
            run_id: self.run_id,
            step: id,
            attempt: 1,
            round,
            feedback: Vec::new(),
            uses: critic,
            input,
            deadline,
        };
        self.steps[position].reflection.judging = Some(output);
        self.in_flight += 1;
        self.actions.push(Action::InvokeCritic(call));
        None
    }

    /// The first built-in rule of `spec` the round's `output` fails.
    fn failed_rule(
        &self,
        spec: &ReflectSpec,
        output: &StepOutput,
        round: u32,
    ) -> Option<Judgement> {
        let revise = |critic: &str, feedback: String| Judgement {
            critic: critic.to_owned(),
            accept: false,
            feedback,
            forced_stop: None,
        };
        if let Some(minimum) = spec.min_confidence
            && output.confidence < minimum
        {
            return Some(revise(
                "rule:min_confidence",
                format!(
                    "confidence {:.2} is below the required {minimum:.2}; gather more evidence or explain the uncertainty",
                    output.confidence
                ),
            ));
        }
        let until = spec.until.as_ref()?;
        let source = &until.expression.source;
        match reflect_until_holds(until, &self.scope, &output.output, output.confidence, round) {
            Ok(true) => None,
            Ok(false) => Some(revise(
                "rule:until",
                format!("the output does not satisfy `{source}`"),
            )),
            // E.g. a field the condition reads is missing: the expert is
            // told and may add it in the next round.
            Err(error) => Some(revise(
                "rule:until",
                format!("`{source}` cannot be evaluated on the output: {error}"),
            )),
        }
    }

    /// The critic of the step `step` answered for `round`.
    pub(super) fn critic_finished(
        &mut self,
        step: &StepId,
        round: u32,
        outcome: Result<StepOutput, StepError>,
    ) {
        let Some(position) = self.position(step) else {
            return;
        };
        let state = &mut self.steps[position];
        if state.status != StepStatus::Running || state.reflection.round != round {
            return; // not the critique awaited
        }
        let Some(output) = state.reflection.judging.take() else {
            return;
        };
        self.in_flight -= 1;
        let Some(spec) = self.reflect_spec(position) else {
            return;
        };
        let critic = spec
            .critic
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let judgement = match outcome {
            Ok(critique) => {
                let reflection = &mut self.steps[position].reflection;
                reflection.tokens += critique.usage.input_tokens + critique.usage.output_tokens;
                reflection.elapsed_ms += critique.duration_ms;
                read_critique(critic, &critique.output)
            }
            Err(error) => Judgement {
                forced_stop: Some(format!(
                    "critic `{critic}` failed: {error}; the last output stands"
                )),
                critic,
                accept: false,
                feedback: String::new(),
            },
        };
        self.conclude_round(position, &spec, output, judgement);
        self.start_ready_steps();
        self.finish_if_done();
    }

    /// Records the round's `StepReflected` and either ends the loop (the
    /// step succeeds with `output`) or queues the next round.
    fn conclude_round(
        &mut self,
        position: usize,
        spec: &ReflectSpec,
        output: StepOutput,
        judgement: Judgement,
    ) {
        let reflection = &self.steps[position].reflection;
        let round = reflection.round;
        let stop = judgement
            .forced_stop
            .or_else(|| judgement.accept.then(|| "criterion met".to_owned()))
            .or_else(|| {
                (round + 1 >= spec.max_rounds)
                    .then(|| format!("max_rounds ({}) reached", spec.max_rounds))
            })
            .or_else(|| {
                (reflection.previous_output.as_ref() == Some(&output.output)).then(|| {
                    "no new evidence: the output did not change since the last round".to_owned()
                })
            })
            .or_else(|| {
                spec.budget_tokens
                    .filter(|budget| reflection.tokens >= *budget)
                    .map(|budget| {
                        format!(
                            "token budget spent ({} of {budget} tokens)",
                            reflection.tokens
                        )
                    })
            })
            .or_else(|| {
                spec.budget_duration
                    .map(millis)
                    .filter(|budget| reflection.elapsed_ms >= *budget)
                    .map(|budget| {
                        format!(
                            "time budget spent ({} ms of {budget} ms)",
                            reflection.elapsed_ms
                        )
                    })
            });
        let stopped = stop.is_some();
        let mut feedback = judgement.feedback;
        if !stopped && spec.strategy != ReflectStrategy::RetryWithFeedback {
            let strategy = spec.strategy.as_str();
            feedback.push_str(&format!(
                " (strategy {strategy} runs as retry_with_feedback in this version)"
            ));
        }
        self.actions.push(Action::Emit(RunEventKind::StepReflected {
            step: self.step_at(position).id.clone(),
            round,
            critic: judgement.critic.clone(),
            verdict: if judgement.accept { "accept" } else { "revise" }.to_owned(),
            feedback: feedback.clone(),
            confidence: output.confidence,
            stop,
        }));
        if stopped {
            self.succeed(position, output);
            return;
        }
        let state = &mut self.steps[position];
        state.reflection.previous_output = Some(output.output);
        state
            .reflection
            .start_next_round(judgement.critic, feedback, state.attempt);
        state.status = StepStatus::RetryScheduled;
        state.retry_due = true;
        self.ready.insert(position);
    }

    /// Replays a `StepReflected` without `stop`: the step waits for its
    /// next round (started at once by the resume).
    pub(super) fn replay_reflected(&mut self, position: usize, kind: &RunEventKind) {
        let RunEventKind::StepReflected {
            critic,
            feedback,
            stop: None,
            ..
        } = kind
        else {
            return;
        };
        let state = &mut self.steps[position];
        state
            .reflection
            .start_next_round(critic.clone(), feedback.clone(), state.attempt);
        state.status = StepStatus::RetryScheduled;
    }
}

impl Reflection {
    /// Moves to the next round after a `revise` from `critic`, the last
    /// attempt having been `attempt`.
    fn start_next_round(&mut self, critic: String, message: String, attempt: u32) {
        self.feedback.push(Feedback {
            critic,
            message,
            round: self.round,
        });
        self.round += 1;
        self.first_attempt = attempt + 1;
    }
}

/// Reads a critic's output: `verdict` (`accept`/`accepted`/`pass` accept,
/// anything else revises) or a boolean `accept`; `feedback`, else `issues`
/// joined, else the whole output as the feedback.
fn read_critique(critic: String, output: &Value) -> Judgement {
    let accept = match (output.get("verdict"), output.get("accept")) {
        (Some(Value::String(verdict)), _) => {
            matches!(
                verdict.to_ascii_lowercase().as_str(),
                "accept" | "accepted" | "pass"
            )
        }
        (_, Some(Value::Bool(accept))) => *accept,
        _ => false,
    };
    let feedback = match (output.get("feedback"), output.get("issues")) {
        (Some(Value::String(text)), _) if !text.is_empty() => text.clone(),
        (_, Some(Value::Array(issues))) if !issues.is_empty() => issues
            .iter()
            .map(|issue| match issue {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => output.to_string(),
    };
    Judgement {
        critic,
        accept,
        feedback,
        forced_stop: None,
    }
}
