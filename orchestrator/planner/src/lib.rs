//! synod plans: the DAG of steps a run executes, built from a loaded
//! workflow ([`plan_workflow`]) or by code ([`Plan::try_from_steps`]), and
//! checked against the skills experts offer. Pure: no I/O.
//!
//! Layout:
//! - [`plan`]: [`Plan`] (petgraph DAG of [`PlanStep`]s) and its construction.
//! - [`from_workflow`]: [`plan_workflow`], workflow → plan with located diagnostics.
//! - [`problem`]: [`PlanProblem`] and [`Plan::validate`] for plans built by code.
//! - [`catalog`]: [`SkillCatalog`], the skills available to plan with.
//! - [`typed`]: [`plan_typed`], the typed planner chaining skills through
//!   artifact types from a task's inputs to its goal.
//! - [`llm`]: the LLM planner's request ([`plan_request`]) and the
//!   validation of the plan a model returns ([`validate_llm_plan`]).

pub mod catalog;
pub mod from_workflow;
pub mod llm;
pub mod plan;
pub mod problem;
pub mod typed;

pub use catalog::{SkillCatalog, SkillInfo, StaticCatalog};
pub use from_workflow::{Executable, compile_workflow, plan_workflow, plan_workflow_for};
pub use llm::{
    LlmPlan, LlmPlannerConfig, LlmTask, PlanAttempt, plan_request, plannable_skills,
    record_attempts, validate_llm_plan,
};
pub use plan::{Plan, PlanNote, PlanStep};
pub use problem::{PlanProblem, check_uses};
pub use typed::{
    GOAL_RULES, SkillStats, StepChoice, TypedPlan, TypedPlanError, TypedTask, goal_from_text,
    plan_typed,
};

#[cfg(test)]
mod tests;
