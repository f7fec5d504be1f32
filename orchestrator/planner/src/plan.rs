//! [`Plan`]: a validated DAG of steps.

use std::collections::HashMap;
use std::time::Duration;

use petgraph::graph::{DiGraph, NodeIndex};
use synod_types::{RetryPolicy, SkillRef, StepId};
use synod_workflow::ValueTemplate;

/// One step of a plan: invoke `uses` with `input` once every step in
/// `needs` has succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanStep {
    /// Unique within the plan.
    pub id: StepId,
    /// The skill to invoke.
    pub uses: SkillRef,
    /// The input object, rendered against the run scope when the step starts.
    pub input: ValueTemplate,
    /// Steps that must succeed first (explicit `needs` plus every step the
    /// input references).
    pub needs: Vec<StepId>,
    /// Deadline of one attempt; `None` = the executor's default.
    pub timeout: Option<Duration>,
    /// Retry policy; `None` = the executor's default.
    pub retry: Option<RetryPolicy>,
}

/// A DAG of steps. Edges point from a step to the steps that need it.
/// Invariants (checked by the constructors): step ids are unique, every
/// `needs` entry names a step of the plan, and the graph is acyclic.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name of the workflow (or `task`) the plan came from.
    pub name: String,
    graph: DiGraph<PlanStep, ()>,
    index: HashMap<StepId, NodeIndex>,
    /// Step indices in a topological order (ties broken by declaration order).
    order: Vec<NodeIndex>,
    /// How a planner made the plan (`None` for workflows and code).
    pub note: Option<PlanNote>,
}

/// How a planner made a plan; recorded as the run's `RunPlanned` event.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanNote {
    /// `typed` or `llm`.
    pub planner: String,
    /// The artifact type the plan produces.
    pub goal: String,
    /// The task's text.
    pub task: String,
    /// Why each step was chosen (a JSON array of choices).
    pub choices: serde_json::Value,
    /// The LLM planner's requests and their validation (a JSON array of
    /// `PlanAttempt`s; `null` when no LLM planner was asked).
    pub attempts: serde_json::Value,
}

impl Plan {
    /// Builds a plan from steps whose invariants were already checked.
    /// Returns `None` if an invariant does not hold (duplicate id, unknown
    /// need, cycle); use the planner's validating constructors for
    /// user-facing diagnostics.
    pub fn from_checked_steps(name: impl Into<String>, steps: Vec<PlanStep>) -> Option<Plan> {
        let mut graph = DiGraph::with_capacity(steps.len(), steps.len());
        let mut index = HashMap::with_capacity(steps.len());
        for step in steps {
            let id = step.id.clone();
            let node = graph.add_node(step);
            if index.insert(id, node).is_some() {
                return None;
            }
        }
        let nodes: Vec<NodeIndex> = graph.node_indices().collect();
        for node in nodes {
            let needs = graph[node].needs.clone();
            for need in needs {
                let from = *index.get(&need)?;
                graph.update_edge(from, node, ());
            }
        }
        let order = stable_topological_order(&graph)?;
        Some(Plan {
            name: name.into(),
            graph,
            index,
            order,
            note: None,
        })
    }

    /// The underlying graph (edges: dependency -> dependent).
    pub fn graph(&self) -> &DiGraph<PlanStep, ()> {
        &self.graph
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// True when the plan has no step.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The step with this id.
    pub fn step(&self, id: &StepId) -> Option<&PlanStep> {
        self.index.get(id).map(|node| &self.graph[*node])
    }

    /// The graph node of a step.
    pub fn node(&self, id: &StepId) -> Option<NodeIndex> {
        self.index.get(id).copied()
    }

    /// Steps in topological order (dependencies first; ties in declaration order).
    pub fn steps_in_order(&self) -> impl Iterator<Item = &PlanStep> {
        self.order.iter().map(|node| &self.graph[*node])
    }

    /// Node indices in topological order.
    pub fn topological_order(&self) -> &[NodeIndex] {
        &self.order
    }

    /// Steps that need `node` (its direct dependents).
    pub fn dependents(&self, node: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph
            .neighbors_directed(node, petgraph::Direction::Outgoing)
    }

    /// Steps `node` needs (its direct dependencies).
    pub fn dependencies(&self, node: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph
            .neighbors_directed(node, petgraph::Direction::Incoming)
    }
}

/// Kahn's algorithm, always taking the ready node declared first, so the
/// order is deterministic. `None` when the graph has a cycle.
fn stable_topological_order(graph: &DiGraph<PlanStep, ()>) -> Option<Vec<NodeIndex>> {
    let mut in_degree: Vec<usize> = graph
        .node_indices()
        .map(|node| {
            graph
                .neighbors_directed(node, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: std::collections::BTreeSet<NodeIndex> = graph
        .node_indices()
        .filter(|node| in_degree[node.index()] == 0)
        .collect();
    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(node) = ready.pop_first() {
        order.push(node);
        for next in graph.neighbors_directed(node, petgraph::Direction::Outgoing) {
            in_degree[next.index()] -= 1;
            if in_degree[next.index()] == 0 {
                ready.insert(next);
            }
        }
    }
    (order.len() == graph.node_count()).then_some(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(id: &str, needs: &[&str]) -> PlanStep {
        PlanStep {
            id: StepId::new(id),
            uses: SkillRef::new("demo", "echo"),
            input: ValueTemplate::Literal(json!({})),
            needs: needs.iter().map(|n| StepId::new(*n)).collect(),
            timeout: None,
            retry: None,
        }
    }

    #[test]
    fn diamond_orders_dependencies_first() {
        let plan = Plan::from_checked_steps(
            "diamond",
            vec![
                step("join", &["b", "c"]),
                step("a", &[]),
                step("b", &["a"]),
                step("c", &["a"]),
            ],
        )
        .unwrap();
        let order: Vec<_> = plan.steps_in_order().map(|s| s.id.as_str()).collect();
        assert_eq!(order, ["a", "b", "c", "join"]);
    }

    #[test]
    fn rejects_cycles_duplicates_and_unknown_needs() {
        assert!(
            Plan::from_checked_steps("c", vec![step("a", &["b"]), step("b", &["a"])]).is_none()
        );
        assert!(Plan::from_checked_steps("d", vec![step("a", &[]), step("a", &[])]).is_none());
        assert!(Plan::from_checked_steps("u", vec![step("a", &["zz"])]).is_none());
    }
}
