//! Scoring against the shared datasets (pure: callers read the files).
//!
//! - Nosey Parker examples (`examples.csv`: `rule_id,rule_name,label,index,text`):
//!   a positive is found when a secret or identifier finding is reported,
//!   a negative is flagged when one is. Per-rule figures (does the
//!   expected rule itself fire) are kept as well: many negatives of one
//!   rule are real secrets of another kind (a Slack user token is a
//!   negative of the Slack bot-token rule), which any-rule counting flags.
//! - Presidio synthetic set (`synth_dataset_v2.json`): per entity type,
//!   recall (gold spans overlapped by a finding of the same type) and
//!   precision (findings overlapping a gold span of the same type), on
//!   character offsets as Presidio's are.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::rule::Category;
use crate::scanner::Scanner;

/// One example of the Nosey Parker set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretExample {
    /// The upstream rule the example belongs to.
    pub rule_id: String,
    /// Positive (a secret) or negative.
    pub positive: bool,
    /// Index within the rule's examples.
    pub index: usize,
    /// The example text.
    pub text: String,
}

/// Parses RFC 4180 CSV (quoted fields may hold commas, quotes, newlines).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Reads `examples.csv`.
///
/// # Errors
///
/// When the header or a row does not have the expected shape (the message
/// names the row).
pub fn read_secret_examples(csv: &str) -> Result<Vec<SecretExample>, String> {
    let rows = parse_csv(csv);
    let Some((header, rows)) = rows.split_first() else {
        return Err("examples.csv is empty".to_owned());
    };
    if header != &["rule_id", "rule_name", "label", "index", "text"] {
        return Err(format!(
            "examples.csv header is {header:?}; expected rule_id,rule_name,label,index,text"
        ));
    }
    let mut examples = Vec::with_capacity(rows.len());
    for (n, row) in rows.iter().enumerate() {
        let [rule_id, _, label, index, text] = row.as_slice() else {
            return Err(format!(
                "examples.csv row {}: {} fields, expected 5",
                n + 2,
                row.len()
            ));
        };
        let positive = match label.as_str() {
            "positive" => true,
            "negative" => false,
            other => return Err(format!("examples.csv row {}: label `{other}`", n + 2)),
        };
        examples.push(SecretExample {
            rule_id: rule_id.clone(),
            positive,
            index: index
                .parse()
                .map_err(|_| format!("examples.csv row {}: index `{index}`", n + 2))?,
            text: text.clone(),
        });
    }
    Ok(examples)
}

/// Figures for one upstream rule's examples.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleFigures {
    /// Positive examples.
    pub positives: usize,
    /// Positives with any secret/identifier finding.
    pub found: usize,
    /// Positives on which this very rule fired.
    pub found_by_rule: usize,
    /// Negative examples.
    pub negatives: usize,
    /// Negatives with any secret/identifier finding.
    pub flagged: usize,
    /// Negatives on which this very rule fired (Nosey Parker's own test).
    pub flagged_by_rule: usize,
}

/// Result on the Nosey Parker examples.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SecretScore {
    /// Totals over all rules.
    pub total: RuleFigures,
    /// Per upstream rule id.
    pub per_rule: BTreeMap<String, RuleFigures>,
    /// Missed positives: `rule_id#index`.
    pub missed: Vec<String>,
    /// Flagged negatives: `rule_id#index` and the rules that fired.
    pub flagged: Vec<(String, Vec<String>)>,
}

/// Scores `scanner` on the Nosey Parker examples.
pub fn score_secret_examples(scanner: &Scanner, examples: &[SecretExample]) -> SecretScore {
    let mut score = SecretScore::default();
    for example in examples {
        let findings = scanner.scan_candidates(&example.text);
        let secret_rules: Vec<String> = findings
            .iter()
            .filter(|f| f.category != Category::Pii)
            .map(|f| f.rule_id.clone())
            .collect();
        let any = !secret_rules.is_empty();
        let by_rule = secret_rules.contains(&example.rule_id);
        let name = format!("{}#{}", example.rule_id, example.index);
        for figures in [
            &mut score.total,
            score.per_rule.entry(example.rule_id.clone()).or_default(),
        ] {
            if example.positive {
                figures.positives += 1;
                figures.found += usize::from(any);
                figures.found_by_rule += usize::from(by_rule);
            } else {
                figures.negatives += 1;
                figures.flagged += usize::from(any);
                figures.flagged_by_rule += usize::from(by_rule);
            }
        }
        if example.positive && !any {
            score.missed.push(name);
        } else if !example.positive && any {
            let mut rules = secret_rules;
            rules.dedup();
            score.flagged.push((name, rules));
        }
    }
    score
}

/// One record of Presidio's synthetic set.
#[derive(Debug, Clone, Deserialize)]
pub struct PresidioRecord {
    /// The text.
    pub full_text: String,
    /// Gold spans.
    pub spans: Vec<PresidioSpan>,
}

/// A gold span (character offsets).
#[derive(Debug, Clone, Deserialize)]
pub struct PresidioSpan {
    /// Presidio entity type.
    pub entity_type: String,
    /// First character.
    pub start_position: usize,
    /// One past the last character.
    pub end_position: usize,
}

/// Recall and precision of one entity type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EntityFigures {
    /// Gold spans.
    pub gold: usize,
    /// Gold spans overlapped by a finding of the same type.
    pub found: usize,
    /// Findings of this type.
    pub predicted: usize,
    /// Findings overlapping a gold span of the same type.
    pub correct: usize,
}

/// Scores `scanner` on Presidio records for the entity types it reports.
/// Types only in the gold data (PERSON, ...) are listed with 0 found.
pub fn score_presidio(
    scanner: &Scanner,
    records: &[PresidioRecord],
) -> BTreeMap<String, EntityFigures> {
    let mut figures: BTreeMap<String, EntityFigures> = BTreeMap::new();
    let overlaps = |a: &Range<usize>, b: &Range<usize>| a.start < b.end && b.start < a.end;
    for record in records {
        let findings = scanner.scan(&record.full_text);
        for span in &record.spans {
            let gold = span.start_position..span.end_position;
            let entry = figures.entry(span.entity_type.clone()).or_default();
            entry.gold += 1;
            if findings
                .iter()
                .any(|f| f.entity_type == span.entity_type && overlaps(&f.char_span, &gold))
            {
                entry.found += 1;
            }
        }
        for finding in &findings {
            let entry = figures.entry(finding.entity_type.clone()).or_default();
            entry.predicted += 1;
            if record.spans.iter().any(|s| {
                s.entity_type == finding.entity_type
                    && overlaps(&finding.char_span, &(s.start_position..s.end_position))
            }) {
                entry.correct += 1;
            }
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes_commas_and_newlines() {
        let rows = parse_csv("a,b\n\"x, \"\"y\"\"\nz\",2\n");
        assert_eq!(rows, vec![vec!["a", "b"], vec!["x, \"y\"\nz", "2"]]);
    }

    #[test]
    fn examples_are_read_and_scored() {
        let csv = "rule_id,rule_name,label,index,text\nnp.aws.1,AWS API Key,positive,0,AKIADEADBEEFDEADBEEF\nnp.aws.1,AWS API Key,negative,0,\"======\"\n";
        let examples = read_secret_examples(csv).unwrap();
        assert_eq!(examples.len(), 2);
        let score = score_secret_examples(&Scanner::builtin(), &examples);
        assert_eq!(score.total.found, 1);
        assert_eq!(score.total.found_by_rule, 1);
        assert_eq!(score.total.flagged, 0);
        assert!(
            read_secret_examples("x,y\n")
                .unwrap_err()
                .contains("header")
        );
    }

    #[test]
    fn presidio_overlap_scoring() {
        let records: Vec<PresidioRecord> = serde_json::from_str(
            r#"[{"full_text": "mail é jane@example.org now", "spans": [{"entity_type": "EMAIL_ADDRESS", "start_position": 7, "end_position": 23}, {"entity_type": "PERSON", "start_position": 0, "end_position": 4}]}]"#,
        )
        .unwrap();
        let figures = score_presidio(&Scanner::builtin(), &records);
        assert_eq!(
            figures["EMAIL_ADDRESS"],
            EntityFigures {
                gold: 1,
                found: 1,
                predicted: 1,
                correct: 1
            }
        );
        assert_eq!(figures["PERSON"].found, 0);
    }
}
