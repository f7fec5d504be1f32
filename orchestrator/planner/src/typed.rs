//! The typed planner: chains skills through artifact types from what a task
//! gives (e.g. `events`) to its goal (e.g. `response_plan`), with no LLM.
//!
//! Every skill consumes artifact types and produces one. Planning is a
//! cheapest-derivation search over that AND-OR graph (Knuth's generalisation
//! of Dijkstra): a given type costs nothing; a skill's derivation costs its
//! weight plus the cost of deriving each type it consumes; a type costs its
//! cheapest derivation. A skill's weight is its declared cost hint plus its
//! observed latency (one second counts as one cost unit); skills with no
//! healthy instance are left out. Ties are broken by fewer steps, then by the
//! skill's name, so the same catalog always gives the same plan.
//!
//! The plan has one step per derived artifact type. A step's input object
//! holds one field per consumed type, named after the type; it is bound to
//! the run input that gives the type, or to the producing step's output field
//! of that name when its output schema has one (else its whole output).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};
use synod_types::{SkillRef, StepId};
use synod_workflow::ValueTemplate;

use crate::catalog::{SkillCatalog, SkillInfo};
use crate::plan::{Plan, PlanNote, PlanStep};

/// One second of observed latency weighs as much as one unit of cost hint.
const LATENCY_MS_PER_COST_UNIT: f64 = 1000.0;
/// Smallest weight of a skill, so that a longer chain never looks free.
const MIN_WEIGHT: f64 = 0.01;

/// What the registry observed about a skill's expert, for choosing between
/// skills that produce the same type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkillStats {
    /// Smoothed call latency of the expert's instances, if any call was seen.
    pub latency_ms: Option<f64>,
    /// False when no instance of the expert is healthy.
    pub healthy: bool,
}

impl Default for SkillStats {
    fn default() -> Self {
        SkillStats {
            latency_ms: None,
            healthy: true,
        }
    }
}

/// A task for the typed planner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedTask {
    /// Artifact type -> name of the run input that holds it.
    pub given: BTreeMap<String, String>,
    /// The artifact type to produce.
    pub goal: String,
    /// The task's words, recorded with the plan.
    pub text: String,
}

/// Why one step is in the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepChoice {
    /// The step.
    pub step: StepId,
    /// Its skill.
    pub uses: SkillRef,
    /// The artifact type it produces.
    pub produces: String,
    /// The artifact types it consumes.
    pub consumes: Vec<String>,
    /// Its weight (cost hint plus latency).
    pub weight: f64,
    /// Cost of the whole derivation of its output.
    pub cost: f64,
    /// Other skills that could produce the same type, with their derivation
    /// cost, cheapest first.
    pub alternatives: Vec<(SkillRef, f64)>,
    /// One sentence for people.
    pub reason: String,
}

/// A typed plan and why each step was chosen.
#[derive(Debug, Clone)]
pub struct TypedPlan {
    /// The plan, named `task`.
    pub plan: Plan,
    /// One choice per step, in plan order.
    pub choices: Vec<StepChoice>,
    /// Cost of the goal's derivation.
    pub cost: f64,
    /// Each step's input object before parsing (with its `${{ }}`
    /// references), by step: the plan in a form that can be stored and
    /// rebuilt.
    pub step_inputs: BTreeMap<StepId, Value>,
}

/// An artifact type the planner cannot derive, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreachable {
    /// The type.
    pub artifact: String,
    /// Skills that produce it, with the types they consume that cannot be
    /// derived; empty when no skill produces it at all.
    pub producers: Vec<(SkillRef, Vec<String>)>,
}

/// Why no plan was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypedPlanError {
    /// The task gives nothing and asks for a type that needs inputs.
    #[error("the goal `{goal}` is already given as input `{input}`; nothing to plan")]
    GoalGiven {
        /// The goal type.
        goal: String,
        /// The input that gives it.
        input: String,
    },
    /// The goal cannot be derived from what is given.
    #[error("{}", describe_unreachable(.goal, .given, .missing))]
    Unreachable {
        /// The goal type.
        goal: String,
        /// The given types.
        given: Vec<String>,
        /// Every type on the way that cannot be derived, the goal first.
        missing: Vec<Unreachable>,
    },
}

fn describe_unreachable(goal: &str, given: &[String], missing: &[Unreachable]) -> String {
    let given = if given.is_empty() {
        "nothing".to_owned()
    } else {
        given
            .iter()
            .map(|artifact| format!("`{artifact}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!("cannot produce `{goal}` from {given}:");
    for gap in missing {
        if gap.producers.is_empty() {
            text.push_str(&format!(
                "\n  - no registered skill produces `{}`; register an expert with a skill that produces it, or give it as an input",
                gap.artifact
            ));
            continue;
        }
        let producers: Vec<String> = gap
            .producers
            .iter()
            .map(|(uses, lacking)| {
                let lacking: Vec<String> = lacking.iter().map(|t| format!("`{t}`")).collect();
                format!("{uses} (lacks {})", lacking.join(", "))
            })
            .collect();
        text.push_str(&format!(
            "\n  - `{}` could come from {}",
            gap.artifact,
            producers.join("; ")
        ));
    }
    text
}

/// Plans `task` over the skills of `catalog`; see the [module docs](self).
pub fn plan_typed(
    task: &TypedTask,
    catalog: &dyn SkillCatalog,
) -> Result<TypedPlan, TypedPlanError> {
    if let Some(input) = task.given.get(&task.goal) {
        return Err(TypedPlanError::GoalGiven {
            goal: task.goal.clone(),
            input: input.clone(),
        });
    }
    let mut skills: Vec<SkillInfo> = catalog
        .all_skills()
        .into_iter()
        .filter(|skill| catalog.skill_stats(&skill.uses).healthy)
        .collect();
    skills.sort_by_key(|skill| skill.uses.to_string());
    let weights: Vec<f64> = skills
        .iter()
        .map(|skill| weight(skill, catalog.skill_stats(&skill.uses)))
        .collect();
    let search = Search::run(task, &skills, &weights);
    let Some(goal_best) = search.best.get(&task.goal) else {
        return Err(TypedPlanError::Unreachable {
            goal: task.goal.clone(),
            given: task.given.keys().cloned().collect(),
            missing: search.unreachable_from(&task.goal, &skills),
        });
    };
    let cost = goal_best.key.cost;
    let mut builder = Extraction {
        task,
        skills: &skills,
        weights: &weights,
        search: &search,
        step_of: HashMap::new(),
        steps: Vec::new(),
        choices: Vec::new(),
        step_inputs: BTreeMap::new(),
        used_ids: BTreeSet::new(),
    };
    builder.derive(&task.goal);
    let Extraction {
        steps,
        choices,
        step_inputs,
        ..
    } = builder;
    let mut plan = Plan::from_checked_steps("task", steps)
        .expect("a typed plan has unique ids, known needs and no cycle by construction");
    plan.note = Some(PlanNote {
        planner: "typed".to_owned(),
        goal: task.goal.clone(),
        task: task.text.clone(),
        choices: serde_json::to_value(&choices).unwrap_or_default(),
        attempts: Value::Null,
    });
    Ok(TypedPlan {
        plan,
        choices,
        cost,
        step_inputs,
    })
}

fn weight(skill: &SkillInfo, stats: SkillStats) -> f64 {
    let hint = skill.declared_cost();
    let latency = stats
        .latency_ms
        .filter(|ms| ms.is_finite() && *ms > 0.0)
        .unwrap_or(0.0);
    (hint + latency / LATENCY_MS_PER_COST_UNIT).max(MIN_WEIGHT)
}

/// How good a derivation is: lower cost, then fewer steps, then the skill's
/// name (empty for given types).
#[derive(Debug, Clone, PartialEq)]
struct Key {
    cost: f64,
    steps: usize,
    skill: String,
}

impl Eq for Key {}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cost
            .total_cmp(&other.cost)
            .then(self.steps.cmp(&other.steps))
            .then_with(|| self.skill.cmp(&other.skill))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The best derivation of a type: its key and the skill (index) or `None`
/// for a given type.
#[derive(Debug, Clone)]
struct Best {
    key: Key,
    skill: Option<usize>,
}

#[derive(Debug)]
struct Search {
    best: HashMap<String, Best>,
    /// Derivation cost of every skill whose inputs were all derivable.
    skill_cost: HashMap<usize, Key>,
}

impl Search {
    fn run(task: &TypedTask, skills: &[SkillInfo], weights: &[f64]) -> Search {
        let mut best: HashMap<String, Best> = HashMap::new();
        let mut skill_cost = HashMap::new();
        let mut heap = BinaryHeap::new();
        // Each skill's distinct consumed types, skills by consumed type, and
        // how many distinct types each still lacks.
        let distinct: Vec<BTreeSet<&str>> = skills
            .iter()
            .map(|skill| skill.consumes.iter().map(String::as_str).collect())
            .collect();
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, types) in distinct.iter().enumerate() {
            for artifact in types {
                consumers.entry(artifact).or_default().push(index);
            }
        }
        let mut lacking: Vec<usize> = distinct.iter().map(BTreeSet::len).collect();
        for artifact in task.given.keys() {
            let key = Key {
                cost: 0.0,
                steps: 0,
                skill: String::new(),
            };
            best.insert(
                artifact.clone(),
                Best {
                    key: key.clone(),
                    skill: None,
                },
            );
            heap.push(std::cmp::Reverse((key, artifact.clone())));
        }
        let mut finalized: BTreeSet<String> = BTreeSet::new();
        let mut offer =
            |index: usize,
             best: &mut HashMap<String, Best>,
             heap: &mut BinaryHeap<std::cmp::Reverse<(Key, String)>>| {
                let skill = &skills[index];
                if task.given.contains_key(&skill.produces) {
                    return;
                }
                let mut cost = weights[index];
                let mut steps = 1;
                for &artifact in &distinct[index] {
                    let input = &best[artifact].key;
                    cost += input.cost;
                    steps += input.steps;
                }
                let key = Key {
                    cost,
                    steps,
                    skill: skill.uses.to_string(),
                };
                skill_cost.insert(index, key.clone());
                let better = best
                    .get(&skill.produces)
                    .is_none_or(|current| key < current.key);
                if better {
                    best.insert(
                        skill.produces.clone(),
                        Best {
                            key: key.clone(),
                            skill: Some(index),
                        },
                    );
                    heap.push(std::cmp::Reverse((key, skill.produces.clone())));
                }
            };
        for (index, lack) in lacking.iter().enumerate() {
            if *lack == 0 {
                offer(index, &mut best, &mut heap);
            }
        }
        while let Some(std::cmp::Reverse((key, artifact))) = heap.pop() {
            if finalized.contains(&artifact) || best[&artifact].key != key {
                continue; // stale entry
            }
            finalized.insert(artifact.clone());
            for &index in consumers.get(artifact.as_str()).into_iter().flatten() {
                lacking[index] -= 1;
                if lacking[index] == 0 {
                    offer(index, &mut best, &mut heap);
                }
            }
        }
        Search { best, skill_cost }
    }

    /// The underivable types on the way to `goal`, breadth first.
    fn unreachable_from(&self, goal: &str, skills: &[SkillInfo]) -> Vec<Unreachable> {
        let mut missing = Vec::new();
        let mut queue = std::collections::VecDeque::from([goal.to_owned()]);
        let mut seen = BTreeSet::from([goal.to_owned()]);
        while let Some(artifact) = queue.pop_front() {
            let mut producers = Vec::new();
            for skill in skills.iter().filter(|skill| skill.produces == artifact) {
                let mut lacking: Vec<String> = skill
                    .consumes
                    .iter()
                    .filter(|input| !self.best.contains_key(*input))
                    .cloned()
                    .collect();
                lacking.sort();
                lacking.dedup();
                for input in &lacking {
                    if seen.insert(input.clone()) {
                        queue.push_back(input.clone());
                    }
                }
                producers.push((skill.uses.clone(), lacking));
            }
            missing.push(Unreachable {
                artifact,
                producers,
            });
        }
        missing
    }
}

/// Turns the search result into steps, depth first from the goal.
struct Extraction<'a> {
    task: &'a TypedTask,
    skills: &'a [SkillInfo],
    weights: &'a [f64],
    search: &'a Search,
    /// Artifact type -> the step producing it.
    step_of: HashMap<String, StepId>,
    steps: Vec<PlanStep>,
    choices: Vec<StepChoice>,
    step_inputs: BTreeMap<StepId, Value>,
    used_ids: BTreeSet<String>,
}

impl Extraction<'_> {
    /// Adds the steps deriving `artifact` (once) and returns how to bind it.
    fn derive(&mut self, artifact: &str) -> Value {
        if let Some(input) = self.task.given.get(artifact) {
            return Value::String(format!("${{{{ inputs.{input} }}}}"));
        }
        if let Some(step) = self.step_of.get(artifact) {
            return self.bind_output(step.clone(), artifact);
        }
        let best = &self.search.best[artifact];
        let index = best.skill.expect("derived types have a producing skill");
        let skill = &self.skills[index];
        let mut input = Map::new();
        let mut needs = Vec::new();
        let mut consumes: Vec<String> = skill.consumes.clone();
        consumes.dedup();
        for consumed in &consumes {
            let binding = self.derive(consumed);
            if let Some(step) = self.step_of.get(consumed.as_str())
                && !needs.contains(step)
            {
                needs.push(step.clone());
            }
            input.insert(consumed.clone(), binding);
        }
        let id = self.fresh_id(&skill.uses);
        let input = Value::Object(input);
        let template = ValueTemplate::from_value(&input)
            .expect("typed plan bindings are well-formed references");
        self.step_inputs.insert(id.clone(), input);
        self.steps.push(PlanStep {
            id: id.clone(),
            uses: skill.uses.clone(),
            input: template,
            needs,
            timeout: None,
            retry: None,
        });
        self.choices.push(self.choice(&id, index, artifact));
        self.step_of.insert(artifact.to_owned(), id.clone());
        self.bind_output(id, artifact)
    }

    fn bind_output(&self, step: StepId, artifact: &str) -> Value {
        let producer = &self.skills[self.search.best[artifact]
            .skill
            .expect("derived types have a producing skill")];
        let has_field = producer
            .output_schema
            .get("properties")
            .and_then(|properties| properties.get(artifact))
            .is_some();
        if has_field {
            Value::String(format!("${{{{ steps.{step}.output.{artifact} }}}}"))
        } else {
            Value::String(format!("${{{{ steps.{step}.output }}}}"))
        }
    }

    /// The skill's name as the step id, or `expert_skill` when taken, with
    /// `-` turned into `_` so that ids are identifiers in expressions.
    fn fresh_id(&mut self, uses: &SkillRef) -> StepId {
        let skill = uses.skill.replace('-', "_");
        let expert = uses.expert.replace('-', "_");
        let mut candidates = vec![skill.clone(), format!("{expert}_{skill}")];
        for n in 2.. {
            if let Some(id) = candidates.iter().find(|id| !self.used_ids.contains(*id)) {
                let id = id.clone();
                self.used_ids.insert(id.clone());
                return StepId::new(id);
            }
            candidates = vec![format!("{expert}_{skill}_{n}")];
        }
        unreachable!("an unbounded range always yields a fresh id")
    }

    fn choice(&self, step: &StepId, index: usize, artifact: &str) -> StepChoice {
        let skill = &self.skills[index];
        let cost = self.search.best[artifact].key.cost;
        let mut alternatives: Vec<(SkillRef, f64)> = self
            .search
            .skill_cost
            .iter()
            .filter(|(other, _)| **other != index && self.skills[**other].produces == artifact)
            .map(|(other, key)| (self.skills[*other].uses.clone(), key.cost))
            .collect();
        alternatives.sort_by(|a, b| {
            a.1.total_cmp(&b.1)
                .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
        });
        let from = if skill.consumes.is_empty() {
            "nothing".to_owned()
        } else {
            skill
                .consumes
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        let mut reason = format!(
            "produces `{artifact}` from {from}; weight {:.2}, derivation cost {cost:.2}",
            self.weights[index]
        );
        let more = if alternatives.len() > 1 {
            format!(" and {} more", alternatives.len() - 1)
        } else {
            String::new()
        };
        match alternatives.first() {
            Some((other, other_cost)) if (other_cost - cost).abs() < 1e-9 => reason.push_str(
                &format!("; ties with {other}{more}, chosen by fewer steps, then name"),
            ),
            Some((other, other_cost)) => {
                reason.push_str(&format!("; cheaper than {other} ({other_cost:.2}){more}"));
            }
            None => reason.push_str("; the only skill that can"),
        }
        StepChoice {
            step: step.clone(),
            uses: skill.uses.clone(),
            produces: artifact.to_owned(),
            consumes: skill.consumes.clone(),
            weight: self.weights[index],
            cost,
            alternatives,
            reason,
        }
    }
}

impl fmt::Display for TypedPlan {
    /// The plan for people: one line per step with its reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plan ({} steps, cost {:.2}):",
            self.choices.len(),
            self.cost
        )?;
        for choice in &self.choices {
            writeln!(f, "  {} = {}: {}", choice.step, choice.uses, choice.reason)?;
        }
        Ok(())
    }
}

/// Intent rules mapping a task's text to a goal artifact type: the first
/// rule with a keyword in the (lowercased) text wins.
pub const GOAL_RULES: &[(&str, &[&str])] = &[
    (
        "response_plan",
        &[
            "contain",
            "respond",
            "response",
            "remediat",
            "mitigat",
            "recommend",
            "block",
            "isolate",
            "playbook",
            "disposition",
        ],
    ),
    (
        "attribution",
        &["attribut", "which group", "threat actor", "who is behind"],
    ),
    (
        "attack_chain",
        &[
            "trace",
            "root cause",
            "attack chain",
            "attack path",
            "kill chain",
            "timeline",
        ],
    ),
    (
        "sensitive_data",
        &[
            "pii",
            "personal data",
            "sensitive",
            "secret",
            "dlp",
            "leak",
            "redact",
        ],
    ),
    ("findings", &["code", "vulnerab", "sast", "review", "cwe"]),
    (
        "alerts",
        &["detect", "alert", "sigma", "hunt", "suspicious"],
    ),
    ("report", &["report", "summar", "brief"]),
    (
        "answer",
        &["what is", "explain", "how does", "question", "?"],
    ),
];

/// The goal type for a task's text by [`GOAL_RULES`], with the keyword that
/// matched; `None` when no rule matches (ask for `--goal`).
pub fn goal_from_text(text: &str) -> Option<(&'static str, &'static str)> {
    let lower = text.to_lowercase();
    GOAL_RULES.iter().find_map(|(goal, keywords)| {
        keywords
            .iter()
            .find(|keyword| lower.contains(*keyword))
            .map(|keyword| (*goal, *keyword))
    })
}

#[cfg(test)]
mod tests;
