//! Dependency-graph checks shared by the loader and the planner.

use std::collections::{HashMap, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// One dependency cycle, as indices into the step list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyCycle {
    /// A shortest cycle through the earliest-declared member: `path[0]`
    /// needs `path[1]`, …, and the last needs `path[0]`. A self-loop is a
    /// path of one step.
    pub path: Vec<usize>,
    /// Every step of the strongly connected component holding the cycle,
    /// in declaration order (a superset of `path` when cycles overlap).
    pub members: Vec<usize>,
}

/// Every dependency cycle among steps `0..needs.len()`, where `needs[i]`
/// lists the indices step `i` needs (out-of-range indices are ignored).
/// Reports one cycle per strongly connected component (petgraph's Tarjan
/// SCC) of two or more steps, plus one per self-loop, ordered by their
/// earliest-declared step.
pub fn dependency_cycles(needs: &[Vec<usize>]) -> Vec<DependencyCycle> {
    let mut graph: DiGraph<(), ()> = DiGraph::with_capacity(needs.len(), needs.len());
    for _ in needs {
        graph.add_node(());
    }
    for (step, step_needs) in needs.iter().enumerate() {
        for need in step_needs {
            if *need < needs.len() {
                graph.update_edge(NodeIndex::new(step), NodeIndex::new(*need), ());
            }
        }
    }
    let mut cycles = Vec::new();
    for component in tarjan_scc(&graph) {
        let mut members: Vec<usize> = component.iter().map(|node| node.index()).collect();
        members.sort_unstable();
        if members.len() == 1 {
            let only = members[0];
            if needs[only].contains(&only) {
                cycles.push(DependencyCycle {
                    path: vec![only],
                    members,
                });
            }
            continue;
        }
        for member in &members {
            if needs[*member].contains(member) {
                cycles.push(DependencyCycle {
                    path: vec![*member],
                    members: vec![*member],
                });
            }
        }
        let path = shortest_cycle(needs, &members);
        cycles.push(DependencyCycle { path, members });
    }
    cycles.sort_by(|left, right| {
        (left.path[0], left.path.len()).cmp(&(right.path[0], right.path.len()))
    });
    cycles
}

/// Breadth-first search from the first member back to itself, staying inside
/// the component.
fn shortest_cycle(needs: &[Vec<usize>], members: &[usize]) -> Vec<usize> {
    let start = members[0];
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(current) = queue.pop_front() {
        for next in &needs[current] {
            let next = *next;
            if !members.contains(&next) || next == current {
                continue;
            }
            if next == start {
                let mut path = vec![current];
                let mut walk = current;
                while walk != start {
                    walk = parent[&walk];
                    path.push(walk);
                }
                path.reverse();
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = parent.entry(next) {
                slot.insert(current);
                queue.push_back(next);
            }
        }
    }
    // A strongly connected component always has a cycle through each member;
    // fall back to the member list should that ever not hold.
    members.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_cycle_in_need_order() {
        // 0 -> 1 -> 2 -> 0, 3 alone, 4 <-> 5, 6 needs itself.
        let needs = vec![
            vec![1],
            vec![2],
            vec![0],
            vec![0],
            vec![5],
            vec![4],
            vec![6],
        ];
        let cycles = dependency_cycles(&needs);
        let paths: Vec<_> = cycles.iter().map(|cycle| cycle.path.clone()).collect();
        assert_eq!(paths, vec![vec![0, 1, 2], vec![4, 5], vec![6]]);
        assert!(dependency_cycles(&[vec![], vec![0], vec![0, 1]]).is_empty());
    }

    #[test]
    fn picks_the_shortest_cycle_and_lists_the_component() {
        // 0 -> 1 -> 0 and 0 -> 2 -> 3 -> 0: one component, shortest path 0,1.
        let needs = vec![vec![2, 1], vec![0], vec![3], vec![0]];
        let cycles = dependency_cycles(&needs);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].path, vec![0, 1]);
        assert_eq!(cycles[0].members, vec![0, 1, 2, 3]);
    }
}
