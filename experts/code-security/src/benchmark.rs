//! OWASP Benchmark-style scoring: expected results in the Benchmark's CSV
//! format (`# test name, category, real vulnerability, cwe`), a finding
//! counts for a test case when it is in the case's file and has the case's
//! CWE; per category TPR, FPR and score = TPR - FPR, and their averages.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// One expected result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedCase {
    /// Test name (file stem), e.g. `BenchmarkTest00001`.
    pub name: String,
    /// Category (`sqli`, ...).
    pub category: String,
    /// Whether the case is a real vulnerability.
    pub real: bool,
    /// Expected CWE.
    pub cwe: u32,
}

/// A malformed expected-results line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected-results line {line}: {reason} (format: `name,category,true|false,cwe`)")]
pub struct CsvError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses the expected-results CSV (lines starting with `#` are comments).
///
/// # Errors
///
/// The first malformed line.
pub fn parse_expected(text: &str) -> Result<Vec<ExpectedCase>, CsvError> {
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < 4 {
            return Err(CsvError {
                line: line_no,
                reason: format!("{} fields, expected 4", fields.len()),
            });
        }
        let real = match fields[2] {
            "true" => true,
            "false" => false,
            other => {
                return Err(CsvError {
                    line: line_no,
                    reason: format!("`{other}` is not true or false"),
                });
            }
        };
        let cwe = fields[3].parse().map_err(|_| CsvError {
            line: line_no,
            reason: format!("CWE `{}` is not a number", fields[3]),
        })?;
        cases.push(ExpectedCase {
            name: fields[0].to_owned(),
            category: fields[1].to_owned(),
            real,
            cwe,
        });
    }
    Ok(cases)
}

/// Counts and rates of one category.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CategoryScore {
    /// Category.
    pub category: String,
    /// CWE.
    pub cwe: u32,
    /// Real vulnerabilities reported.
    pub tp: usize,
    /// Real vulnerabilities missed.
    pub fn_: usize,
    /// Safe cases reported.
    pub fp: usize,
    /// Safe cases not reported.
    pub tn: usize,
    /// TP / (TP + FN).
    pub tpr: f64,
    /// FP / (FP + TN).
    pub fpr: f64,
    /// TPR - FPR.
    pub score: f64,
}

/// The whole scorecard.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scorecard {
    /// Per category, sorted by name.
    pub categories: Vec<CategoryScore>,
    /// Mean TPR over categories.
    pub average_tpr: f64,
    /// Mean FPR over categories.
    pub average_fpr: f64,
    /// Mean score over categories.
    pub average_score: f64,
    /// Cases whose file was not found (not scored).
    pub missing: Vec<String>,
    /// Per case: (name, category, real, reported), for the report.
    pub cases: Vec<CaseOutcome>,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseOutcome {
    /// Test name.
    pub name: String,
    /// Category.
    pub category: String,
    /// Real vulnerability?
    pub real: bool,
    /// Reported with the expected CWE?
    pub reported: bool,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Scores the cases. `reported_cwes` maps a test name to the CWEs reported
/// in its file; a name absent from it is a missing file.
pub fn score(cases: &[ExpectedCase], reported_cwes: &BTreeMap<String, BTreeSet<u32>>) -> Scorecard {
    let mut by_category: BTreeMap<String, CategoryScore> = BTreeMap::new();
    let mut card = Scorecard::default();
    for case in cases {
        let Some(cwes) = reported_cwes.get(&case.name) else {
            card.missing.push(case.name.clone());
            continue;
        };
        let reported = cwes.contains(&case.cwe);
        let entry = by_category
            .entry(case.category.clone())
            .or_insert_with(|| CategoryScore {
                category: case.category.clone(),
                cwe: case.cwe,
                ..CategoryScore::default()
            });
        match (case.real, reported) {
            (true, true) => entry.tp += 1,
            (true, false) => entry.fn_ += 1,
            (false, true) => entry.fp += 1,
            (false, false) => entry.tn += 1,
        }
        card.cases.push(CaseOutcome {
            name: case.name.clone(),
            category: case.category.clone(),
            real: case.real,
            reported,
        });
    }
    for mut category in by_category.into_values() {
        category.tpr = ratio(category.tp, category.tp + category.fn_);
        category.fpr = ratio(category.fp, category.fp + category.tn);
        category.score = category.tpr - category.fpr;
        card.categories.push(category);
    }
    let n = card.categories.len().max(1) as f64;
    card.average_tpr = card.categories.iter().map(|c| c.tpr).sum::<f64>() / n;
    card.average_fpr = card.categories.iter().map(|c| c.fpr).sum::<f64>() / n;
    card.average_score = card.categories.iter().map(|c| c.score).sum::<f64>() / n;
    card
}

/// The benchmark files found under a directory: test name -> file. A file
/// counts when its stem is a case name (`BenchmarkTest00001.py`).
///
/// # Errors
///
/// When the directory cannot be listed.
pub fn case_files(
    dir: &std::path::Path,
    cases: &[ExpectedCase],
) -> Result<BTreeMap<String, std::path::PathBuf>, crate::InputError> {
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    let mut out = BTreeMap::new();
    for path in crate::collect_files(dir, usize::MAX - 1)? {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if names.contains(stem) {
            out.insert(stem.to_owned(), path);
        }
    }
    Ok(out)
}

/// Scans the case files (reporting progress after each) and returns the
/// CWEs reported per test name, for [`score`].
pub fn reported_cwes(
    scanner: &crate::Scanner,
    files: &BTreeMap<String, std::path::PathBuf>,
    progress: &dyn Fn(usize),
) -> BTreeMap<String, BTreeSet<u32>> {
    let mut out = BTreeMap::new();
    for (done, (name, path)) in files.iter().enumerate() {
        let cwes = crate::read_source(path)
            .ok()
            .and_then(|source| scanner.scan_source(&source.path, &source.content).ok())
            .map(|findings| findings.iter().map(|f| f.cwe).collect())
            .unwrap_or_default();
        out.insert(name.clone(), cwes);
        progress(done + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_scores() {
        let csv = "# test name, category, real vulnerability, cwe\nT1,sqli,true,89\nT2,sqli,false,89\nT3,xss,true,79\n";
        let cases = parse_expected(csv).unwrap();
        assert_eq!(cases.len(), 3);
        let mut reported = BTreeMap::new();
        reported.insert("T1".to_owned(), BTreeSet::from([89]));
        reported.insert("T2".to_owned(), BTreeSet::from([79]));
        let card = score(&cases, &reported);
        assert_eq!(card.missing, ["T3"]);
        assert_eq!(card.categories.len(), 1);
        assert_eq!(card.categories[0].tp, 1);
        assert_eq!(card.categories[0].tn, 1);
        assert!((card.average_score - 1.0).abs() < 1e-9);
        assert!(parse_expected("a,b,maybe,1").is_err());
    }
}
