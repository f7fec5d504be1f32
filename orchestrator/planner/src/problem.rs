//! [`PlanProblem`]: what can be wrong with a set of plan steps, checked all at
//! once by [`Plan::validate`] for plans built by code (e.g. the LLM planner)
//! rather than loaded from a workflow file, so they carry no spans.

use std::collections::{HashMap, HashSet};
use std::fmt;

use synod_types::{SkillRef, StepId};
use synod_workflow::codes;
use synod_workflow::graph::dependency_cycles;
use synod_workflow::suggest::unknown_name_help;

use crate::catalog::{SkillCatalog, SkillInfo};
use crate::plan::{Plan, PlanStep};

/// One problem with a set of plan steps.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanProblem {
    /// Two or more steps share an id.
    DuplicateStep {
        /// The repeated id.
        step: StepId,
    },
    /// A `needs` entry names no step of the plan.
    UnknownNeed {
        /// The step with the bad entry.
        step: StepId,
        /// The missing step.
        need: StepId,
        /// Suggestion and the known step ids.
        help: String,
    },
    /// Steps need each other in a cycle (one step for a self-need).
    Cycle {
        /// The cycle in order: each step needs the next, the last needs the first.
        steps: Vec<StepId>,
    },
    /// The input reads `steps.<id>` for a step that is not in the plan.
    UnknownReference {
        /// The step whose input has the reference.
        step: StepId,
        /// The missing step.
        referenced: StepId,
        /// Suggestion and the known step ids.
        help: String,
    },
    /// The input reads a step that is not listed in `needs`.
    UnlistedReference {
        /// The step whose input has the reference.
        step: StepId,
        /// The step read but not needed.
        referenced: StepId,
    },
    /// No expert of that name is in the catalog.
    UnknownExpert {
        /// The step using it.
        step: StepId,
        /// The unknown expert.
        expert: String,
        /// Suggestion and the known experts.
        help: String,
    },
    /// The expert exists but does not offer the skill.
    UnknownSkill {
        /// The step using it.
        step: StepId,
        /// The unknown skill.
        uses: SkillRef,
        /// Suggestion and the expert's skills.
        help: String,
    },
}

impl PlanProblem {
    /// The stable code (see [`synod_workflow::codes`]).
    pub fn code(&self) -> &'static str {
        match self {
            PlanProblem::DuplicateStep { .. } => codes::DUPLICATE_KEY,
            PlanProblem::UnknownNeed { .. } => codes::UNKNOWN_NEED,
            PlanProblem::Cycle { steps } if steps.len() == 1 => codes::SELF_NEED,
            PlanProblem::Cycle { .. } => codes::DEPENDENCY_CYCLE,
            PlanProblem::UnknownReference { .. } => codes::UNKNOWN_STEP_REF,
            PlanProblem::UnlistedReference { .. } => codes::UNLISTED_REFERENCE,
            PlanProblem::UnknownExpert { .. } => codes::UNKNOWN_EXPERT,
            PlanProblem::UnknownSkill { .. } => codes::UNKNOWN_SKILL,
        }
    }

    /// What is wrong, without the help text.
    pub fn message(&self) -> String {
        match self {
            PlanProblem::DuplicateStep { step } => {
                format!("step id `{step}` is used by more than one step")
            }
            PlanProblem::UnknownNeed { step, need, .. } => {
                format!("step `{step}` needs unknown step `{need}`")
            }
            PlanProblem::Cycle { steps } if steps.len() == 1 => {
                format!("step `{}` needs itself", steps[0])
            }
            PlanProblem::Cycle { steps } => {
                let mut links = Vec::new();
                for (position, step) in steps.iter().enumerate() {
                    let next = &steps[(position + 1) % steps.len()];
                    links.push(format!("`{step}` needs `{next}`"));
                }
                format!(
                    "dependency cycle through step `{}`: {}",
                    steps[0],
                    links.join(", ")
                )
            }
            PlanProblem::UnknownReference {
                step, referenced, ..
            } => format!("step `{step}` reads unknown step `{referenced}`"),
            PlanProblem::UnlistedReference { step, referenced } => {
                format!("step `{step}` reads step `{referenced}` without listing it in `needs`")
            }
            PlanProblem::UnknownExpert { step, expert, .. } => {
                format!("step `{step}` uses unknown expert `{expert}`")
            }
            PlanProblem::UnknownSkill { step, uses, .. } => {
                format!(
                    "step `{step}` uses unknown skill `{}` of expert `{}`",
                    uses.skill, uses.expert
                )
            }
        }
    }

    /// How to fix it.
    pub fn help(&self) -> String {
        match self {
            PlanProblem::DuplicateStep { .. } => "give every step a unique id".to_owned(),
            PlanProblem::UnknownNeed { help, .. }
            | PlanProblem::UnknownReference { help, .. }
            | PlanProblem::UnknownExpert { help, .. }
            | PlanProblem::UnknownSkill { help, .. } => help.clone(),
            PlanProblem::Cycle { .. } => "remove one of these needs".to_owned(),
            PlanProblem::UnlistedReference { referenced, .. } => {
                format!("add `{referenced}` to `needs`")
            }
        }
    }
}

impl fmt::Display for PlanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.message(), self.help())
    }
}

impl std::error::Error for PlanProblem {}

/// Looks `uses` up in the catalog: the skill, or why it is not there.
pub fn check_uses(
    step: &StepId,
    uses: &SkillRef,
    catalog: &dyn SkillCatalog,
) -> Result<SkillInfo, PlanProblem> {
    if let Some(info) = catalog.skill(uses) {
        return Ok(info);
    }
    let experts = catalog.expert_names();
    let expert_names: Vec<&str> = experts.iter().map(String::as_str).collect();
    if !expert_names.contains(&uses.expert.as_str()) {
        return Err(PlanProblem::UnknownExpert {
            step: step.clone(),
            expert: uses.expert.clone(),
            help: unknown_name_help(&uses.expert, &expert_names, "experts"),
        });
    }
    let skills = catalog.skill_names(&uses.expert);
    let skill_names: Vec<&str> = skills.iter().map(String::as_str).collect();
    let kind = format!("skills of `{}`", uses.expert);
    Err(PlanProblem::UnknownSkill {
        step: step.clone(),
        uses: uses.clone(),
        help: unknown_name_help(&uses.skill, &skill_names, &kind),
    })
}

impl Plan {
    /// Checks steps built by code and reports every problem at once:
    /// duplicate ids, unknown needs, input references to unknown or unlisted
    /// steps, every dependency cycle (self-needs included) and, with a
    /// catalog, unknown experts and skills. Empty when
    /// [`Plan::from_checked_steps`] will succeed.
    pub fn validate(steps: &[PlanStep], catalog: Option<&dyn SkillCatalog>) -> Vec<PlanProblem> {
        let mut problems = Vec::new();
        let mut index_of: HashMap<&str, usize> = HashMap::new();
        let mut reported_duplicates = HashSet::new();
        for (index, step) in steps.iter().enumerate() {
            // The first step with an id is the one `needs` refer to.
            let first = *index_of.entry(step.id.as_str()).or_insert(index);
            if first != index && reported_duplicates.insert(step.id.as_str()) {
                problems.push(PlanProblem::DuplicateStep {
                    step: step.id.clone(),
                });
            }
        }
        let mut ids: Vec<&str> = Vec::new();
        for step in steps {
            if !ids.contains(&step.id.as_str()) {
                ids.push(step.id.as_str());
            }
        }

        let mut needs_by_index: Vec<Vec<usize>> = Vec::with_capacity(steps.len());
        for step in steps {
            let mut list = Vec::new();
            for need in &step.needs {
                match index_of.get(need.as_str()) {
                    Some(index) => list.push(*index),
                    None => problems.push(PlanProblem::UnknownNeed {
                        step: step.id.clone(),
                        need: need.clone(),
                        help: unknown_name_help(need.as_str(), &ids, "steps"),
                    }),
                }
            }
            needs_by_index.push(list);

            for expression in step.input.expressions() {
                let Some(referenced) = expression.referenced_step() else {
                    continue;
                };
                if !index_of.contains_key(referenced) {
                    problems.push(PlanProblem::UnknownReference {
                        step: step.id.clone(),
                        referenced: StepId::new(referenced),
                        help: unknown_name_help(referenced, &ids, "steps"),
                    });
                } else if !step.needs.iter().any(|need| need.as_str() == referenced) {
                    problems.push(PlanProblem::UnlistedReference {
                        step: step.id.clone(),
                        referenced: StepId::new(referenced),
                    });
                }
            }

            if let Some(catalog) = catalog
                && let Err(problem) = check_uses(&step.id, &step.uses, catalog)
            {
                problems.push(problem);
            }
        }

        for cycle in dependency_cycles(&needs_by_index) {
            let mut names = Vec::with_capacity(cycle.path.len());
            for index in cycle.path {
                names.push(steps[index].id.clone());
            }
            problems.push(PlanProblem::Cycle { steps: names });
        }
        problems
    }

    /// Builds a plan, or returns every problem found by [`Plan::validate`].
    ///
    /// # Panics
    ///
    /// If [`Plan::validate`] accepts steps that [`Plan::from_checked_steps`]
    /// rejects: the two must check the same invariants.
    pub fn try_from_steps(
        name: impl Into<String>,
        steps: Vec<PlanStep>,
        catalog: Option<&dyn SkillCatalog>,
    ) -> Result<Plan, Vec<PlanProblem>> {
        let problems = Plan::validate(&steps, catalog);
        if !problems.is_empty() {
            return Err(problems);
        }
        let plan = Plan::from_checked_steps(name, steps)
            .expect("Plan::validate checks every invariant of Plan::from_checked_steps");
        Ok(plan)
    }
}
