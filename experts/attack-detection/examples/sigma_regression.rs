//! SigmaHQ regression set: does the expected rule fire on each test EVTX?
//!
//! ```text
//! zstd -dc ../shared/datasets/sigma/sigma-rules-and-regression.tar.zst | tar -x -C /tmp/sigma
//! cargo run --release -p synod-expert-attack-detection --example sigma_regression -- \
//!     /tmp/sigma ../shared/datasets/sigma/regression_index.csv
//! ```
//!
//! Loads every rule of `rules*/` (except `rules-placeholder/`, whose
//! `%placeholders%` need a pipeline), runs the whole rule set over each
//! test file, and reports how many tests fire the expected rule, how many
//! also match the expected count, the misses, and the wall time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use synod_expert_attack_detection::{Detector, RuleSet, read_file};

/// Rule directories of the SigmaHQ repository loaded for the test.
const RULE_DIRS: [&str; 5] = [
    "rules",
    "rules-emerging-threats",
    "rules-threat-hunting",
    "rules-compliance",
    "rules-dfir",
];

/// Splits one CSV line, honouring double quotes.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("one field").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            other => fields.last_mut().expect("one field").push(other),
        }
    }
    fields
}

struct Test {
    rule_id: String,
    title: String,
    path: PathBuf,
    match_count: Option<usize>,
}

fn read_index(index: &Path, root: &Path) -> Result<Vec<Test>, String> {
    let text = std::fs::read_to_string(index).map_err(|e| format!("{}: {e}", index.display()))?;
    let mut lines = text.lines();
    let header = csv_fields(lines.next().ok_or("empty index")?);
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or(format!("{}: no column `{name}`", index.display()))
    };
    let (id, title, path, count) = (
        column("rule_id")?,
        column("title")?,
        column("test_path")?,
        column("match_count")?,
    );
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f = csv_fields(line);
            Test {
                rule_id: f[id].clone(),
                title: f[title].clone(),
                path: root.join(&f[path]),
                match_count: f[count].parse().ok(),
            }
        })
        .collect())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, index] = args.as_slice() else {
        eprintln!("usage: sigma_regression <extracted sigma dir> <regression_index.csv>");
        return ExitCode::from(2);
    };
    let root = Path::new(root);
    let started = Instant::now();
    let tests = match read_index(Path::new(index), root) {
        Ok(tests) => tests,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let dirs: Vec<PathBuf> = RULE_DIRS
        .iter()
        .map(|d| root.join(d))
        .filter(|d| d.is_dir())
        .collect();
    let mut rules = RuleSet::new();
    rules.load_paths(&dirs);
    let loaded_at = started.elapsed();

    let (mut fired, mut exact_count, mut counted, mut events, mut errors) = (0, 0, 0, 0usize, 0);
    let mut misses = Vec::new();
    for test in &tests {
        let mut detector = Detector::new(&rules, 0);
        if let Err(e) = read_file(&test.path, |r, e| detector.observe(r, &e)) {
            errors += 1;
            misses.push(format!("{} {}: {e}", test.rule_id, test.title));
            continue;
        }
        events += detector.events();
        let report = detector.finish();
        match report.fired(&test.rule_id) {
            Some(alert) => {
                fired += 1;
                if let Some(expected) = test.match_count {
                    counted += 1;
                    if alert.count == expected {
                        exact_count += 1;
                    } else {
                        println!(
                            "count differs: {} {}: {} matches, expected {expected}",
                            test.rule_id, test.title, alert.count
                        );
                    }
                }
            }
            None => misses.push(format!(
                "{} {} ({})",
                test.rule_id,
                test.title,
                test.path.display()
            )),
        }
    }
    let wall = started.elapsed();
    let detect_time = wall - loaded_at;

    let mut failure_reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for failure in rules.failures() {
        let reason = failure
            .reason
            .split(['`', ':'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        *failure_reasons.entry(reason).or_default() += 1;
    }
    for miss in &misses {
        println!("MISS {miss}");
    }
    println!(
        "rules loaded: {}, failed: {}, unmapped log source: {}",
        rules.rules().len(),
        rules.failures().len(),
        rules.unmapped().count()
    );
    for (reason, n) in &failure_reasons {
        println!("  failed {n:4} × {reason}");
    }
    for failure in rules.failures() {
        println!("  FAILED {failure}");
    }
    println!(
        "expected rule fired: {fired}/{} tests; expected match count: {exact_count}/{counted}; unreadable files: {errors}",
        tests.len()
    );
    println!(
        "events: {events}; wall {:.3} s (rules {:.3} s, detection {:.3} s, {:.0} events/s)",
        wall.as_secs_f64(),
        loaded_at.as_secs_f64(),
        detect_time.as_secs_f64(),
        events as f64 / detect_time.as_secs_f64().max(1e-9)
    );
    ExitCode::SUCCESS
}
