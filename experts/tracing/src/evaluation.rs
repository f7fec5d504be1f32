//! Scoring helpers for evaluating the tracer on labelled data (pure; the
//! tests and examples do the reading).

use std::collections::{BTreeMap, BTreeSet};

use crate::attack::{AttackData, parent_technique};
use crate::attribution::Attributor;

/// The techniques of a `;`-separated label list (OTRF `index.csv`) that
/// leave host events: known to `attack` and not resource development
/// (building and staging a payload happens off the victim's hosts).
pub fn host_techniques(attack: &AttackData, techniques: &str) -> Vec<String> {
    techniques
        .split(';')
        .filter(|t| {
            attack
                .technique(t)
                .is_some_and(|x| x.tactics.iter().all(|t| t != "resource-development"))
        })
        .map(str::to_owned)
        .collect()
}

/// A labelled attribution case: techniques observed, groups that are right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributionCase {
    /// Name of the case (campaign, emulation plan).
    pub name: String,
    /// Observed technique ids.
    pub techniques: Vec<String>,
    /// Group ids that count as correct.
    pub groups: BTreeSet<String>,
}

/// Top-k accuracy over attribution cases.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionScore {
    /// Cases scored.
    pub cases: usize,
    /// Cases whose correct group ranked first.
    pub top1: usize,
    /// Cases whose correct group ranked in the first five.
    pub top5: usize,
    /// Mean reciprocal rank (0 when not in the first 50).
    pub mrr: f64,
    /// Rank of the correct group per case (`None`: not in the first 50).
    pub ranks: Vec<(String, Option<usize>)>,
}

/// Ranks the groups for every case and scores the ranking.
pub fn score_attribution(attributor: &Attributor, cases: &[AttributionCase]) -> AttributionScore {
    let mut score = AttributionScore {
        cases: cases.len(),
        top1: 0,
        top5: 0,
        mrr: 0.0,
        ranks: Vec::new(),
    };
    for case in cases {
        let ranked = attributor.rank(&case.techniques, 50);
        let rank = ranked
            .iter()
            .position(|c| case.groups.contains(&c.group_id))
            .map(|p| p + 1);
        if rank == Some(1) {
            score.top1 += 1;
        }
        if rank.is_some_and(|r| r <= 5) {
            score.top5 += 1;
        }
        score.mrr += rank.map_or(0.0, |r| 1.0 / r as f64);
        score.ranks.push((case.name.clone(), rank));
    }
    score.mrr /= cases.len().max(1) as f64;
    score
}

/// Cases from rows of (case name, technique id) and (case name, group id).
pub fn cases_from_rows(
    techniques: impl IntoIterator<Item = (String, String)>,
    truth: impl IntoIterator<Item = (String, String)>,
) -> Vec<AttributionCase> {
    let mut by_case: BTreeMap<String, AttributionCase> = BTreeMap::new();
    for (case, group) in truth {
        by_case
            .entry(case.clone())
            .or_insert_with(|| AttributionCase {
                name: case,
                techniques: Vec::new(),
                groups: BTreeSet::new(),
            })
            .groups
            .insert(group);
    }
    for (case, technique) in techniques {
        if let Some(entry) = by_case.get_mut(&case)
            && !entry.techniques.contains(&technique)
        {
            entry.techniques.push(technique);
        }
    }
    by_case
        .into_values()
        .filter(|c| !c.techniques.is_empty())
        .collect()
}

/// Share of `expected` techniques found in `found`, comparing at the
/// parent-technique level (`T1055.002` is found by `T1055`).
pub fn technique_recall(expected: &[String], found: &[String]) -> (usize, usize) {
    let parents: BTreeSet<&str> = found
        .iter()
        .map(|t| parent_technique(t).unwrap_or(t))
        .collect();
    let hits = expected
        .iter()
        .filter(|t| parents.contains(parent_technique(t).unwrap_or(t)))
        .count();
    (hits, expected.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::Group;

    #[test]
    fn scores_ranks() {
        let groups = [
            Group {
                id: "G1".into(),
                name: "one".into(),
                techniques: vec!["T1001".into(), "T1002".into()],
            },
            Group {
                id: "G2".into(),
                name: "two".into(),
                techniques: vec!["T1003".into()],
            },
        ];
        let attributor = Attributor::new(&groups);
        let cases = cases_from_rows(
            [
                ("c1".to_owned(), "T1001".to_owned()),
                ("c2".to_owned(), "T1003".to_owned()),
                ("c3".to_owned(), "T1003".to_owned()),
            ],
            [
                ("c1".to_owned(), "G1".to_owned()),
                ("c2".to_owned(), "G1".to_owned()),
                ("c3".to_owned(), "G2".to_owned()),
            ],
        );
        let score = score_attribution(&attributor, &cases);
        assert_eq!((score.cases, score.top1, score.top5), (3, 2, 2));
        assert!((score.mrr - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            technique_recall(&["T1055.002".into(), "T1041".into()], &["T1055".into()]),
            (1, 2)
        );
    }
}
