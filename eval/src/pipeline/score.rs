//! Scoring of one alert-triage run against a case's labels (pure: no I/O).
//!
//! - **Techniques**: the techniques the pipeline found (the alerts' ATT&CK
//!   tags and the tracer's chain steps) against the labelled ones, as
//!   precision and recall, exactly (`T1003.001` ≠ `T1003`) and at parent
//!   level (`T1003.001` → `T1003`).
//! - **Root cause** ([`root_cause_found`]): the tracer named an entry point
//!   *and* its chain explains the labelled activity (the labelled objective
//!   technique, parent level, is a step of the chain).

use std::collections::{BTreeMap, BTreeSet};

use synod_expert_attack_detection::evaluation::parent_technique;

/// True positives, found and labelled counts at one level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Found techniques that are labelled.
    pub true_positives: usize,
    /// Distinct techniques found.
    pub found: usize,
    /// Distinct techniques labelled.
    pub labelled: usize,
}

impl Counts {
    /// Share of found techniques that are labelled (`None` when none was found).
    pub fn precision(&self) -> Option<f64> {
        (self.found > 0).then(|| self.true_positives as f64 / self.found as f64)
    }

    /// Share of labelled techniques that were found (`None` without labels).
    pub fn recall(&self) -> Option<f64> {
        (self.labelled > 0).then(|| self.true_positives as f64 / self.labelled as f64)
    }

    /// Adds another case's counts (micro-averaging).
    pub fn add(&mut self, other: Counts) {
        self.true_positives += other.true_positives;
        self.found += other.found;
        self.labelled += other.labelled;
    }
}

/// Upper-cased, deduplicated technique ids, at parent level when `parent`.
fn normalise<'a>(ids: impl IntoIterator<Item = &'a String>, parent: bool) -> BTreeSet<String> {
    ids.into_iter()
        .map(|t| {
            let t = t.trim().to_ascii_uppercase();
            if parent {
                parent_technique(&t).to_owned()
            } else {
                t
            }
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// Found vs labelled techniques, exactly or at parent level.
pub fn technique_counts(found: &[String], labelled: &[String], parent: bool) -> Counts {
    let found = normalise(found, parent);
    let labelled = normalise(labelled, parent);
    Counts {
        true_positives: found.intersection(&labelled).count(),
        found: found.len(),
        labelled: labelled.len(),
    }
}

/// Whether the root cause was found (`None` when the case has no labelled
/// objective to check against).
///
/// The rule: the tracer reported a root cause (an entry point: the process,
/// logon or file the detected activity descends from) and the chain it
/// reconstructed from that entry point contains the case's objective
/// technique at parent level: for a technique-labelled EVTX file its
/// label, for the OTRF LSASS campaigns credential dumping of LSASS
/// (`T1003.001`, so `T1003` at parent level).
pub fn root_cause_found(
    has_root_cause: bool,
    chain_techniques: &[String],
    objective: Option<&str>,
) -> Option<bool> {
    let objective = objective?;
    let chain = normalise(chain_techniques, true);
    Some(has_root_cause && chain.contains(parent_technique(&objective.to_ascii_uppercase())))
}

/// Recall per labelled technique (parent level) over cases given as
/// (found, labelled): technique → (cases where found, cases labelled).
pub fn per_technique_recall<'a>(
    cases: impl IntoIterator<Item = (&'a [String], &'a [String])>,
) -> BTreeMap<String, (usize, usize)> {
    let mut recall: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (found, labelled) in cases {
        let found = normalise(found, true);
        for technique in normalise(labelled, true) {
            let entry = recall.entry(technique.clone()).or_default();
            entry.1 += 1;
            if found.contains(&technique) {
                entry.0 += 1;
            }
        }
    }
    recall
}

/// The `p`-quantile (0..1, nearest rank) of `values`; `None` when empty.
pub fn quantile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn precision_and_recall_exact_and_parent() {
        let found = ids(&["T1003.001", "t1059.001", "T1059.003", "T1082"]);
        let labelled = ids(&["T1003", "T1059.001", "T1134.001"]);
        let exact = technique_counts(&found, &labelled, false);
        assert_eq!(
            exact,
            Counts {
                true_positives: 1,
                found: 4,
                labelled: 3
            }
        );
        assert_eq!(exact.precision(), Some(0.25));
        // parents: found {T1003, T1059, T1082}, labelled {T1003, T1059, T1134}
        let parent = technique_counts(&found, &labelled, true);
        assert_eq!(
            parent,
            Counts {
                true_positives: 2,
                found: 3,
                labelled: 3
            }
        );
        assert!((parent.recall().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn empty_sets_have_no_ratio_and_micro_average_adds() {
        let none = technique_counts(&[], &ids(&["T1003"]), true);
        assert_eq!(none.precision(), None);
        assert_eq!(none.recall(), Some(0.0));
        assert_eq!(technique_counts(&ids(&["T1003"]), &[], true).recall(), None);
        let mut total = none;
        total.add(technique_counts(&ids(&["T1003"]), &ids(&["T1003"]), true));
        assert_eq!(total.recall(), Some(0.5));
        assert_eq!(total.precision(), Some(1.0));
    }

    #[test]
    fn root_cause_needs_an_entry_point_and_the_objective_in_the_chain() {
        let chain = ids(&["T1204.002", "T1055.002", "T1003.001"]);
        assert_eq!(
            root_cause_found(true, &chain, Some("T1003.001")),
            Some(true)
        );
        // parent level: the label T1003 is met by T1003.001
        assert_eq!(root_cause_found(true, &chain, Some("t1003")), Some(true));
        assert_eq!(
            root_cause_found(false, &chain, Some("T1003.001")),
            Some(false)
        );
        assert_eq!(root_cause_found(true, &chain, Some("T1021")), Some(false));
        assert_eq!(root_cause_found(true, &chain, None), None);
    }

    #[test]
    fn recall_per_technique_and_quantiles() {
        let a = (ids(&["T1003.001"]), ids(&["T1003"]));
        let b = (ids(&["T1082"]), ids(&["T1003.002", "T1082"]));
        let recall = per_technique_recall([
            (a.0.as_slice(), a.1.as_slice()),
            (b.0.as_slice(), b.1.as_slice()),
        ]);
        assert_eq!(recall["T1003"], (1, 2));
        assert_eq!(recall["T1082"], (1, 1));
        assert_eq!(quantile(&[3.0, 1.0, 2.0, 4.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[3.0, 1.0, 2.0, 4.0], 0.99), Some(4.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
