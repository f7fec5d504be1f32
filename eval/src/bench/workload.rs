//! The benchmark's graph shapes, declared exactly as the LangGraph peer
//! benchmark declares them (`../shared/bench/bench.py spec`), and their
//! unrolling into the executions a DAG executor runs. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Names of the shapes, in report order.
pub const SHAPES: [&str; 4] = ["chain6", "diamond6", "layered100", "reflect_loop"];
/// Times the critic of `reflect_loop` sends the draft back.
pub const LOOP_MAX_REVISIONS: usize = 3;
/// Virtual source of edges.
const START: &str = "__start__";
/// Virtual sink of edges.
const END: &str = "__end__";

/// A shape as `bench.py spec` prints it: nodes, edges (`[[sources…], target]`,
/// several sources = wait for all), an optional loop rule and the layers a
/// hand-written run executes in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Shape name.
    pub name: String,
    /// Node names.
    pub nodes: Vec<String>,
    /// `(sources, target)`; `__start__` / `__end__` are virtual.
    pub edges: Vec<(Vec<String>, String)>,
    /// The conditional back edge, for `reflect_loop`.
    #[serde(rename = "loop")]
    pub loop_rule: Option<LoopRule>,
    /// Node names per superstep, as executed.
    pub layers: Vec<Vec<String>>,
    /// Node executions per run.
    pub node_executions: usize,
    /// Supersteps on the critical path.
    pub critical_path: usize,
}

/// `after <node>: go back to <back_to> while critiques <= max_revisions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopRule {
    /// The node whose end decides.
    pub node: String,
    /// Where the loop goes back to.
    pub back_to: String,
    /// Times the loop is taken (the critic always rejects).
    pub max_revisions: usize,
    /// The rule in words.
    pub rule: String,
}

/// One node execution of an unrolled run: a step of the executed DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// Step id and output key (`n3`, `L2N7`, `generate2`, …).
    pub id: String,
    /// The node (expert call) it executes (`generate` for `generate2`).
    pub node: String,
    /// Step ids that must finish first.
    pub needs: Vec<String>,
    /// Outputs available when it starts (LangGraph's `len(state["outputs"])`).
    pub n_inputs: usize,
    /// Superstep, from 0.
    pub layer: usize,
}

impl Workload {
    /// The shape called `name`, or an error listing the known ones.
    pub fn builtin(name: &str) -> Result<Workload, String> {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        match name {
            "chain6" => {
                let nodes: Vec<String> = (0..6).map(|i| format!("n{i}")).collect();
                let mut edges = vec![(strings(&[START]), nodes[0].clone())];
                for pair in nodes.windows(2) {
                    edges.push((vec![pair[0].clone()], pair[1].clone()));
                }
                edges.push((vec![nodes[5].clone()], END.to_owned()));
                let layers = nodes.iter().map(|n| vec![n.clone()]).collect();
                Ok(Workload::dag(name, nodes, edges, layers))
            }
            "diamond6" => {
                let mids: Vec<String> = (0..4).map(|i| format!("b{i}")).collect();
                let mut nodes = strings(&["a"]);
                nodes.extend(mids.iter().cloned());
                nodes.push("join".to_owned());
                let mut edges = vec![(strings(&[START]), "a".to_owned())];
                edges.extend(mids.iter().map(|m| (strings(&["a"]), m.clone())));
                edges.push((mids.clone(), "join".to_owned()));
                edges.push((strings(&["join"]), END.to_owned()));
                let layers = vec![strings(&["a"]), mids, strings(&["join"])];
                Ok(Workload::dag(name, nodes, edges, layers))
            }
            "layered100" => {
                let layers: Vec<Vec<String>> = (0..10)
                    .map(|l| (0..10).map(|i| format!("L{l}N{i}")).collect())
                    .collect();
                let nodes = layers.concat();
                let mut edges: Vec<(Vec<String>, String)> = layers[0]
                    .iter()
                    .map(|n| (strings(&[START]), n.clone()))
                    .collect();
                for pair in layers.windows(2) {
                    edges.extend(pair[1].iter().map(|n| (pair[0].clone(), n.clone())));
                }
                edges.extend(layers[9].iter().map(|n| (vec![n.clone()], END.to_owned())));
                Ok(Workload::dag(name, nodes, edges, layers))
            }
            "reflect_loop" => {
                let k = LOOP_MAX_REVISIONS;
                let layers = (0..=k)
                    .flat_map(|_| [strings(&["generate"]), strings(&["critic"])])
                    .collect();
                Ok(Workload {
                    name: name.to_owned(),
                    nodes: strings(&["generate", "critic"]),
                    edges: vec![
                        (strings(&[START]), "generate".to_owned()),
                        (strings(&["generate"]), "critic".to_owned()),
                    ],
                    loop_rule: Some(LoopRule {
                        node: "critic".to_owned(),
                        back_to: "generate".to_owned(),
                        max_revisions: k,
                        rule: "after critic: if critiques <= max_revisions go back to generate, \
                               else __end__; the critic always rejects, so the loop is taken \
                               max_revisions times"
                            .to_owned(),
                    }),
                    layers,
                    node_executions: 2 * (k + 1),
                    critical_path: 2 * (k + 1),
                })
            }
            other => Err(format!(
                "unknown workload `{other}`; known workloads: {}",
                SHAPES.join(", ")
            )),
        }
    }

    fn dag(
        name: &str,
        nodes: Vec<String>,
        edges: Vec<(Vec<String>, String)>,
        layers: Vec<Vec<String>>,
    ) -> Workload {
        Workload {
            name: name.to_owned(),
            node_executions: nodes.len(),
            critical_path: layers.len(),
            nodes,
            edges,
            loop_rule: None,
            layers,
        }
    }

    /// Dependency edges between real nodes (joins count every source).
    pub fn dependency_edges(&self) -> usize {
        self.edges
            .iter()
            .filter(|(sources, target)| target != END && sources.as_slice() != [START])
            .map(|(sources, _)| sources.len())
            .sum()
    }

    /// The executions of one run as a DAG.
    ///
    /// A loop is unrolled: synod's executor runs DAGs, and the loop rule is
    /// fixed (the critic always rejects), so the loop body (the nodes from
    /// `back_to` to `node`) runs `max_revisions + 1` times, each round
    /// needing the previous round's loop node. Step ids are `<node><round>`
    /// from 1, the output keys LangGraph's loop writes (`generate1`,
    /// `critic1`, …).
    pub fn executions(&self) -> Vec<Execution> {
        let needs_of = self.needs_by_node();
        let rounds = self.loop_rule.as_ref().map_or(1, |l| l.max_revisions + 1);
        let key = |node: &str, round: usize| match self.loop_rule {
            Some(_) => format!("{node}{round}"),
            None => node.to_owned(),
        };
        let mut out: Vec<Execution> = Vec::with_capacity(self.nodes.len() * rounds);
        for round in 1..=rounds {
            let round_start = out.len();
            for node in self.nodes_in_layer_order() {
                let mut needs: Vec<String> = needs_of[node].iter().map(|n| key(n, round)).collect();
                if let Some(rule) = &self.loop_rule
                    && round > 1
                    && node == rule.back_to
                {
                    needs.push(key(&rule.node, round - 1));
                }
                let layer = needs
                    .iter()
                    .filter_map(|need| out.iter().find(|e| &e.id == need))
                    .map(|e| e.layer + 1)
                    .max()
                    .unwrap_or(0);
                out.push(Execution {
                    id: key(node, round),
                    node: node.to_owned(),
                    needs,
                    n_inputs: 0,
                    layer,
                });
            }
            debug_assert!(out.len() - round_start == self.nodes.len());
        }
        // Outputs available at a node's start = executions of earlier layers.
        let mut per_layer: BTreeMap<usize, usize> = BTreeMap::new();
        for e in &out {
            *per_layer.entry(e.layer).or_default() += 1;
        }
        for e in &mut out {
            e.n_inputs = per_layer.range(..e.layer).map(|(_, n)| n).sum();
        }
        out
    }

    /// Real sources of each node's incoming edges.
    fn needs_by_node(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut needs: BTreeMap<&str, Vec<&str>> = self
            .nodes
            .iter()
            .map(|n| (n.as_str(), Vec::new()))
            .collect();
        for (sources, target) in &self.edges {
            if let Some(list) = needs.get_mut(target.as_str()) {
                list.extend(sources.iter().map(String::as_str).filter(|s| *s != START));
            }
        }
        needs
    }

    /// Nodes ordered by their first layer (dependencies first).
    fn nodes_in_layer_order(&self) -> Vec<&str> {
        let mut order: Vec<&str> = Vec::with_capacity(self.nodes.len());
        for node in self.layers.iter().flatten() {
            if !order.contains(&node.as_str()) {
                order.push(node);
            }
        }
        order
    }
}

/// Executions grouped by superstep (what `direct` mode awaits together).
pub fn layers_of(executions: &[Execution]) -> Vec<Vec<&Execution>> {
    let mut layers: Vec<Vec<&Execution>> = Vec::new();
    for e in executions {
        if layers.len() <= e.layer {
            layers.resize_with(e.layer + 1, Vec::new);
        }
        layers[e.layer].push(e);
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `eval/bench/workloads.json` is a copy of the peer benchmark's
    /// `bench.py spec` output: the built-in shapes must equal it.
    #[test]
    fn builtin_shapes_equal_the_peer_spec() {
        let spec: serde_json::Value =
            serde_json::from_str(include_str!("../../bench/workloads.json")).unwrap();
        for name in SHAPES {
            let theirs: Workload = serde_json::from_value(spec["workloads"][name].clone()).unwrap();
            assert_eq!(Workload::builtin(name).unwrap(), theirs, "{name}");
        }
    }

    #[test]
    fn executions_match_node_executions_and_critical_path() {
        for name in SHAPES {
            let w = Workload::builtin(name).unwrap();
            let executions = w.executions();
            assert_eq!(executions.len(), w.node_executions, "{name}");
            assert_eq!(layers_of(&executions).len(), w.critical_path, "{name}");
        }
        assert_eq!(
            Workload::builtin("layered100").unwrap().dependency_edges(),
            900
        );
    }

    #[test]
    fn loop_is_unrolled_into_rounds() {
        let executions = Workload::builtin("reflect_loop").unwrap().executions();
        let ids: Vec<&str> = executions.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "generate1",
                "critic1",
                "generate2",
                "critic2",
                "generate3",
                "critic3",
                "generate4",
                "critic4"
            ]
        );
        assert_eq!(executions[2].needs, ["critic1"]);
        assert_eq!(executions[3].n_inputs, 3);
    }

    #[test]
    fn joins_wait_for_every_source() {
        let executions = Workload::builtin("diamond6").unwrap().executions();
        let join = executions.iter().find(|e| e.id == "join").unwrap();
        assert_eq!(join.needs, ["b0", "b1", "b2", "b3"]);
        assert_eq!((join.n_inputs, join.layer), (5, 2));
        assert!(Workload::builtin("star").unwrap_err().contains("chain6"));
    }
}
