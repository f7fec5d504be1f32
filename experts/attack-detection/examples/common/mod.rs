//! Shared by the evaluation examples: CSV reading and rule loading.

use std::path::{Path, PathBuf};

use synod_expert_attack_detection::RuleSet;

/// Rule directories of the SigmaHQ repository loaded for evaluation
/// (`rules-placeholder/` is left out: its `%placeholders%` need a pipeline).
const RULE_DIRS: [&str; 5] = [
    "rules",
    "rules-emerging-threats",
    "rules-threat-hunting",
    "rules-compliance",
    "rules-dfir",
];

/// Loads the SigmaHQ rule directories under `root`.
pub(crate) fn load_sigma(root: &Path) -> RuleSet {
    let dirs: Vec<PathBuf> = RULE_DIRS
        .iter()
        .map(|d| root.join(d))
        .filter(|d| d.is_dir())
        .collect();
    let mut rules = RuleSet::new();
    rules.load_paths(&dirs);
    rules
}

/// Splits one CSV line, honouring double quotes.
pub(crate) fn csv_fields(line: &str) -> Vec<String> {
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

/// The rows of a CSV file as maps from column name to value.
pub(crate) fn read_csv(
    path: &Path,
) -> Result<Vec<std::collections::HashMap<String, String>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header = csv_fields(lines.next().ok_or(format!("{}: empty", path.display()))?);
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| header.iter().cloned().zip(csv_fields(line)).collect())
        .collect())
}

/// Threads to use: all available cores.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
