//! Scoring the engine on labelled public datasets (used by `synod-eval
//! detection` and the examples; pure of any dataset location).
//!
//! - **Sigma regression set** (SigmaHQ `regression_data/`): each test names a
//!   rule that must fire on an EVTX file, usually with the expected number of
//!   matches ([`read_regression_index`], [`score_regression`]).
//! - **EVTX-to-MITRE-Attack**: each file is labelled with an ATT&CK technique
//!   that should be among the fired rules' tags, compared at parent level
//!   ([`read_technique_labels`], [`score_techniques`]).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::engine::RuleSet;
use crate::scan::FileScan;

/// SigmaHQ rule directories loaded for evaluation. `rules-placeholder/` is
/// left out: its `%placeholders%` need a processing pipeline.
pub const SIGMA_RULE_DIRS: [&str; 5] = [
    "rules",
    "rules-emerging-threats",
    "rules-threat-hunting",
    "rules-compliance",
    "rules-dfir",
];

/// Loads the SigmaHQ rule directories ([`SIGMA_RULE_DIRS`]) under `root`.
pub fn load_sigma_rules(root: &Path) -> RuleSet {
    let dirs: Vec<PathBuf> = SIGMA_RULE_DIRS
        .iter()
        .map(|d| root.join(d))
        .filter(|d| d.is_dir())
        .collect();
    let mut rules = RuleSet::new();
    rules.load_paths(&dirs);
    rules
}

/// Splits one CSV line, honouring double quotes (`""` inside quotes is `"`).
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("at least one field");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            other => field.push(other),
        }
    }
    fields
}

/// CSV text with a header line as maps from column name to value.
pub fn csv_rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut lines = text.lines();
    let header = lines.next().map(csv_fields).unwrap_or_default();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| header.iter().cloned().zip(csv_fields(line)).collect())
        .collect()
}

fn column<'a>(row: &'a HashMap<String, String>, name: &str) -> Result<&'a str, String> {
    row.get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("missing column `{name}`"))
}

/// One regression test: `rule_id` must fire on `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegressionCase {
    /// The rule expected to fire.
    pub rule_id: String,
    /// Its title.
    pub title: String,
    /// The EVTX file.
    pub path: PathBuf,
    /// The expected number of matching events, when recorded.
    pub match_count: Option<usize>,
}

/// Reads `regression_index.csv` (columns `rule_id`, `title`, `test_path`,
/// `match_count`); test paths are relative to `root`.
pub fn read_regression_index(csv: &str, root: &Path) -> Result<Vec<RegressionCase>, String> {
    csv_rows(csv)
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let at = |e: String| format!("regression index row {}: {e}", i + 2);
            Ok(RegressionCase {
                rule_id: column(row, "rule_id").map_err(at)?.to_owned(),
                title: column(row, "title").map_err(at)?.to_owned(),
                path: root.join(column(row, "test_path").map_err(at)?),
                match_count: column(row, "match_count").map_err(at)?.parse().ok(),
            })
        })
        .collect()
}

/// What happened on one regression test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegressionOutcome {
    /// The test.
    pub case: RegressionCase,
    /// Matches of the expected rule (0 = it did not fire).
    pub count: usize,
    /// Events in the file.
    pub events: usize,
    /// Why the file could not be read, if so.
    pub error: Option<String>,
}

impl RegressionOutcome {
    /// Whether the expected rule fired.
    pub fn fired(&self) -> bool {
        self.count > 0
    }

    /// Whether the count matches the expectation (`None` when none is recorded).
    pub fn count_ok(&self) -> Option<bool> {
        self.case.match_count.map(|n| n == self.count)
    }
}

/// Scores scans (one per case, same order) of the regression set.
pub fn score_regression(cases: &[RegressionCase], scans: &[FileScan]) -> Vec<RegressionOutcome> {
    cases
        .iter()
        .zip(scans)
        .map(|(case, scan)| match &scan.result {
            Ok((report, stats)) => RegressionOutcome {
                case: case.clone(),
                count: report.fired(&case.rule_id).map_or(0, |a| a.count),
                events: stats.events,
                error: None,
            },
            Err(e) => RegressionOutcome {
                case: case.clone(),
                count: 0,
                events: 0,
                error: Some(e.to_string()),
            },
        })
        .collect()
}

/// One technique-labelled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechniqueCase {
    /// The EVTX file.
    pub path: PathBuf,
    /// The labelled technique, e.g. `T1003` or `T1003.001`.
    pub technique: String,
}

/// Reads `labels.csv` of EVTX-to-MITRE-Attack (columns `path`,
/// `technique_id`), keeping rows with a technique; paths are relative to `root`.
pub fn read_technique_labels(csv: &str, root: &Path) -> Result<Vec<TechniqueCase>, String> {
    let mut cases = Vec::new();
    for (i, row) in csv_rows(csv).iter().enumerate() {
        let at = |e: String| format!("labels row {}: {e}", i + 2);
        let technique = column(row, "technique_id").map_err(at)?;
        if technique.is_empty() {
            continue;
        }
        cases.push(TechniqueCase {
            path: root.join(column(row, "path").map_err(at)?),
            technique: technique.to_ascii_uppercase(),
        });
    }
    Ok(cases)
}

/// The parent technique: `T1003.001` -> `T1003`.
pub fn parent_technique(technique: &str) -> &str {
    technique.split('.').next().unwrap_or(technique)
}

/// What happened on one technique-labelled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechniqueOutcome {
    /// The file and label.
    pub case: TechniqueCase,
    /// Parent techniques tagged on the alerts.
    pub techniques: BTreeSet<String>,
    /// Rules that fired.
    pub alerts: usize,
    /// Events in the file.
    pub events: usize,
    /// Why the file could not be read, if so.
    pub error: Option<String>,
}

impl TechniqueOutcome {
    /// Whether the labelled technique (parent level) is among the alerts' tags.
    pub fn hit(&self) -> bool {
        self.techniques
            .contains(parent_technique(&self.case.technique))
    }
}

/// Scores scans (one per case, same order) of a technique-labelled set.
pub fn score_techniques(cases: &[TechniqueCase], scans: &[FileScan]) -> Vec<TechniqueOutcome> {
    cases
        .iter()
        .zip(scans)
        .map(|(case, scan)| match &scan.result {
            Ok((report, stats)) => TechniqueOutcome {
                case: case.clone(),
                techniques: report
                    .alerts
                    .iter()
                    .flat_map(|a| a.rule.techniques())
                    .map(|t| parent_technique(&t).to_owned())
                    .collect(),
                alerts: report.alerts.len(),
                events: stats.events,
                error: None,
            },
            Err(e) => TechniqueOutcome {
                case: case.clone(),
                techniques: BTreeSet::new(),
                alerts: 0,
                events: 0,
                error: Some(e.to_string()),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::scan_files;

    #[test]
    fn csv() {
        assert_eq!(
            csv_fields(r#"a,"b,c","say ""hi""",,"#),
            vec!["a", "b,c", "say \"hi\"", "", ""]
        );
        let rows = csv_rows("x,y\n1,2\n\n3,4\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["y"], "4");
    }

    #[test]
    fn scores_both_sets() {
        let dir = std::env::temp_dir().join(format!("synod-ad-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("cleared.json"),
            r#"{"Channel": "Security", "EventID": 1102, "Provider_Name": "Microsoft-Windows-Eventlog"}"#,
        )
        .unwrap();
        let index = "rule_id,title,test_path,match_count\nb67bf485-05fd-4d3c-8e80-0805c873e89d,Cleared,cleared.json,1\nnope,Other,cleared.json,\nx,Missing,missing.evtx,2\n";
        let cases = read_regression_index(index, &dir).unwrap();
        let labels = "path,technique_id\ncleared.json,T1070.001\ncleared.json,T1003\nother.evtx,\n";
        let techniques = read_technique_labels(labels, &dir).unwrap();
        assert_eq!(techniques.len(), 2);

        let rules = RuleSet::builtin();
        let paths: Vec<PathBuf> = cases.iter().map(|c| c.path.clone()).collect();
        let regression = score_regression(&cases, &scan_files(&rules, &paths, 2, 0));
        let paths: Vec<PathBuf> = techniques.iter().map(|c| c.path.clone()).collect();
        let labelled = score_techniques(&techniques, &scan_files(&rules, &paths, 2, 0));
        std::fs::remove_dir_all(&dir).ok();

        assert!(regression[0].fired());
        assert_eq!(regression[0].count_ok(), Some(true));
        assert!(!regression[1].fired());
        assert_eq!(regression[1].count_ok(), None);
        assert!(regression[2].error.is_some());
        assert!(labelled[0].hit());
        assert!(!labelled[1].hit());
        assert!(
            read_regression_index("rule_id\nx\n", &dir)
                .unwrap_err()
                .contains("row 2")
        );
    }
}
