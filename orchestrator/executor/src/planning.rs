//! The LLM planner loop: ask an expert's `plan` skill for a plan, validate
//! it ([`synod_planner::validate_llm_plan`]), and on failure send the
//! problems back as reflection feedback for another round, at most
//! `1 + max_repairs` requests. The caller falls back to the typed planner
//! when no plan was accepted; an invalid plan is never returned.

use std::time::Duration;

use serde_json::Value;
use synod_planner::{
    LlmPlan, LlmPlannerConfig, LlmTask, PlanAttempt, SkillCatalog, plan_request, validate_llm_plan,
};
use synod_types::{RunId, SkillRef, StepId};

use crate::invoke::{Feedback, Invocation, Invoker};

/// Who judges LLM plans in the feedback sent back to the planner.
pub const PLAN_CRITIC: &str = "planner:validate";

/// What the LLM planner loop produced.
#[derive(Debug, Clone)]
pub struct LlmPlanning {
    /// The accepted plan (`None`: every attempt was rejected or failed).
    pub plan: Option<LlmPlan>,
    /// Every request, in order, with its validation problems.
    pub attempts: Vec<PlanAttempt>,
}

/// Where and how to ask for a plan.
#[derive(Debug, Clone)]
pub struct PlannerCall<'a> {
    /// The skill asked (an expert's `plan` skill).
    pub planner: &'a SkillRef,
    /// The run the plan is for (sent with each request).
    pub run_id: RunId,
    /// Deadline of one request.
    pub deadline: Duration,
    /// Limits and repair rounds.
    pub config: &'a LlmPlannerConfig,
}

/// Asks `call.planner` for a plan of `task` over `catalog`, repairing
/// rejected plans with feedback; see the [module docs](self).
pub async fn plan_with_llm(
    invoker: &dyn Invoker,
    call: PlannerCall<'_>,
    task: &LlmTask,
    catalog: &(dyn SkillCatalog + Sync),
) -> LlmPlanning {
    let input = plan_request(task, catalog, call.planner, call.config);
    let mut attempts = Vec::new();
    let mut feedback: Vec<Feedback> = Vec::new();
    for attempt in 1..=call.config.max_repairs.saturating_add(1) {
        let invocation = Invocation {
            run_id: call.run_id,
            step: StepId::new("plan"),
            attempt: 1,
            round: attempt - 1,
            feedback: feedback.clone(),
            uses: call.planner.clone(),
            input: input.clone(),
            deadline: call.deadline,
        };
        let reply: Result<Value, Vec<String>> = match invoker.invoke(invocation).await {
            Ok(output) => Ok(output.output),
            Err(error) => Err(vec![format!("the planner call failed: {error}")]),
        };
        let validated = reply
            .and_then(|reply| validate_llm_plan(&reply, task, catalog, call.planner, call.config));
        match validated {
            Ok(plan) => {
                tracing::info!(attempt, planner = %call.planner, "llm plan accepted");
                attempts.push(PlanAttempt {
                    attempt,
                    uses: call.planner.to_string(),
                    accepted: true,
                    problems: Vec::new(),
                });
                return LlmPlanning {
                    plan: Some(plan),
                    attempts,
                };
            }
            Err(problems) => {
                tracing::info!(
                    attempt,
                    planner = %call.planner,
                    problems = problems.len(),
                    "llm plan rejected"
                );
                feedback.push(Feedback {
                    critic: PLAN_CRITIC.to_owned(),
                    message: format!(
                        "the plan was rejected and will not run; fix every problem and reply with the whole corrected plan:\n- {}",
                        problems.join("\n- ")
                    ),
                    round: attempt - 1,
                });
                attempts.push(PlanAttempt {
                    attempt,
                    uses: call.planner.to_string(),
                    accepted: false,
                    problems,
                });
            }
        }
    }
    LlmPlanning {
        plan: None,
        attempts,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use serde_json::json;
    use synod_planner::{SkillInfo, StaticCatalog};
    use synod_types::error::{ErrorCode, StepError};

    use super::*;
    use crate::invoke::StepOutput;
    use crate::test_support::output;

    /// Answers with scripted outputs in order and records every call.
    struct Scripted {
        replies: Mutex<VecDeque<Result<StepOutput, StepError>>>,
        calls: Mutex<Vec<Invocation>>,
    }

    #[async_trait::async_trait]
    impl Invoker for Scripted {
        async fn invoke(&self, call: Invocation) -> Result<StepOutput, StepError> {
            self.calls.lock().unwrap().push(call);
            self.replies
                .lock()
                .unwrap()
                .pop_front()
                .expect("a scripted reply per call")
        }
    }

    fn scripted(replies: Vec<Result<StepOutput, StepError>>) -> Scripted {
        Scripted {
            replies: Mutex::new(replies.into()),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn catalog() -> StaticCatalog {
        let skill = |uses: &str, consumes: &str, produces: &str| SkillInfo {
            uses: uses.parse().unwrap(),
            description: String::new(),
            consumes: vec![consumes.to_owned()],
            produces: produces.to_owned(),
            input_schema: json!({ "required": [consumes] }),
            output_schema: json!({}),
            cost_hint: 1.0,
        };
        StaticCatalog::new(vec![
            skill("ioc/extract", "text", "iocs"),
            skill("report/summarize", "iocs", "report"),
        ])
    }

    fn plan_reply(report_input: &str) -> Result<StepOutput, StepError> {
        Ok(output(json!({ "rationale": "r", "steps": [
            { "id": "extract", "uses": "ioc/extract", "with": { "text": "${{ inputs.text }}" }, "needs": [], "rationale": "a" },
            { "id": "report", "uses": "report/summarize", "with": { "iocs": report_input }, "needs": ["extract"], "rationale": "b" },
        ]})))
    }

    async fn run(invoker: &Scripted) -> LlmPlanning {
        let planner = SkillRef::new("llm", "plan");
        let config = LlmPlannerConfig::default();
        let task = LlmTask::new("report", "report", &json!({ "text": "t" }));
        let call = PlannerCall {
            planner: &planner,
            run_id: RunId::new(),
            deadline: Duration::from_secs(5),
            config: &config,
        };
        plan_with_llm(invoker, call, &task, &catalog()).await
    }

    #[tokio::test]
    async fn a_rejected_plan_is_repaired_with_the_problems_as_feedback() {
        let invoker = scripted(vec![
            plan_reply("${{ inputs.text }}"),
            plan_reply("${{ steps.extract.output }}"),
        ]);
        let planning = run(&invoker).await;
        assert!(planning.plan.is_some());
        let accepted: Vec<bool> = planning.attempts.iter().map(|a| a.accepted).collect();
        assert_eq!(accepted, [false, true]);
        assert!(planning.attempts[0].problems[0].contains("artifact type `text`"));
        let calls = invoker.calls.lock().unwrap();
        assert_eq!(calls[0].round, 0);
        assert!(calls[0].feedback.is_empty());
        assert_eq!(calls[1].round, 1);
        assert_eq!(calls[1].feedback[0].critic, PLAN_CRITIC);
        assert!(
            calls[1].feedback[0]
                .message
                .contains("artifact type `text`")
        );
        assert_eq!(calls[0].input, calls[1].input);
    }

    #[tokio::test]
    async fn gives_up_after_the_repair_rounds_counting_failed_calls() {
        let invoker = scripted(vec![
            plan_reply("${{ inputs.text }}"),
            Err(StepError::new(ErrorCode::ExpertUnavailable, "model down")),
            plan_reply("${{ inputs.text }}"),
        ]);
        let planning = run(&invoker).await;
        assert!(planning.plan.is_none());
        assert_eq!(planning.attempts.len(), 3);
        assert!(planning.attempts.iter().all(|attempt| !attempt.accepted));
        assert!(
            planning.attempts[1].problems[0].contains("the planner call failed"),
            "{:?}",
            planning.attempts[1]
        );
        assert_eq!(invoker.calls.lock().unwrap().len(), 3);
    }
}
