//! `report/summarize`: findings from one or more classifiers merged into a
//! Markdown report with counts. Indicators are defanged in the Markdown
//! (`evil[.]com`, `hxxp`) so nobody clicks them by accident.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::classify::SEVERITIES;

/// One finding as the report reads it (the classifiers' output items).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    source: String,
    indicator: String,
    indicator_type: String,
    verdict: String,
    severity: String,
    score: f64,
    reasons: Vec<String>,
}

fn severity_rank(severity: &str) -> usize {
    SEVERITIES.iter().position(|s| *s == severity).unwrap_or(0)
}

fn rows_from(source: &str, findings: &[Value]) -> Vec<Row> {
    let text = |finding: &Value, key: &str| finding[key].as_str().unwrap_or_default().to_owned();
    findings
        .iter()
        .map(|finding| Row {
            source: source.to_owned(),
            indicator: text(finding, "indicator"),
            indicator_type: text(finding, "indicator_type"),
            verdict: text(finding, "verdict"),
            severity: text(finding, "severity"),
            score: finding["score"].as_f64().unwrap_or(0.0),
            reasons: finding["reasons"]
                .as_array()
                .map(|reasons| {
                    reasons
                        .iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Defangs an indicator for display: dots of names and IPv4 addresses
/// become `[.]`, `http` becomes `hxxp`.
pub fn defang(indicator: &str, indicator_type: &str) -> String {
    match indicator_type {
        "domain" | "ipv4" | "email" => indicator.replace('.', "[.]"),
        "url" => indicator
            .replacen("http", "hxxp", 1)
            .replacen("://", "[://]", 1),
        _ => indicator.to_owned(),
    }
}

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Builds the skill output from the input object (`title`, `findings`,
/// `finding_sets`), already validated against the input schema.
pub fn summarize(input: &Value) -> Value {
    let title = input["title"]
        .as_str()
        .filter(|title| !title.trim().is_empty())
        .unwrap_or("IOC triage report")
        .to_owned();
    let mut rows = Vec::new();
    let mut sources: Vec<(String, usize)> = Vec::new();
    if let Some(findings) = input["findings"].as_array() {
        sources.push(("findings".to_owned(), findings.len()));
        rows.extend(rows_from("findings", findings));
    }
    if let Some(sets) = input["finding_sets"].as_object() {
        for (name, findings) in sets {
            let findings = findings.as_array().map(Vec::as_slice).unwrap_or_default();
            sources.push((name.clone(), findings.len()));
            rows.extend(rows_from(name, findings));
        }
    }
    // Highest severity first, then higher score, then as given.
    rows.sort_by(|a, b| {
        severity_rank(&b.severity)
            .cmp(&severity_rank(&a.severity))
            .then(b.score.total_cmp(&a.score))
    });

    let mut by_severity = Map::new();
    for severity in SEVERITIES {
        let count = rows.iter().filter(|row| row.severity == severity).count();
        by_severity.insert(severity.to_owned(), Value::from(count));
    }
    let mut by_verdict: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for row in &rows {
        *by_verdict.entry(row.verdict.clone()).or_default() += 1;
        *by_type.entry(row.indicator_type.clone()).or_default() += 1;
    }
    let highest = rows.first().map(|row| row.severity.clone());

    let mut markdown = String::new();
    let _ = writeln!(markdown, "# {}\n", escape_cell(&title));
    if rows.is_empty() {
        markdown.push_str("No findings: the classifiers had nothing to report.\n");
    } else {
        let _ = writeln!(
            markdown,
            "**{} findings**: {} high, {} medium, {} low, {} info. Highest severity: **{}**.\n",
            rows.len(),
            by_severity["high"],
            by_severity["medium"],
            by_severity["low"],
            by_severity["info"],
            highest.as_deref().unwrap_or("none"),
        );
        markdown.push_str("Indicators are defanged. Verdicts come from the indicators' shape only; no reputation source was consulted.\n\n");
        markdown.push_str("| Severity | Indicator | Type | Verdict | Why |\n");
        markdown.push_str("|---|---|---|---|---|\n");
        for row in &rows {
            let _ = writeln!(
                markdown,
                "| {} | `{}` | {} | {} | {} |",
                row.severity,
                escape_cell(&defang(&row.indicator, &row.indicator_type)),
                escape_cell(&row.indicator_type),
                escape_cell(&row.verdict),
                escape_cell(&row.reasons.join("; ")),
            );
        }
        markdown.push_str("\n## Verdicts\n\n");
        for (verdict, count) in &by_verdict {
            let _ = writeln!(markdown, "- {}: {count}", escape_cell(verdict));
        }
        let urgent: Vec<&Row> = rows
            .iter()
            .filter(|row| severity_rank(&row.severity) >= severity_rank("medium"))
            .collect();
        if !urgent.is_empty() {
            markdown.push_str("\n## Next steps\n\n");
            for row in urgent {
                let action = match (row.indicator_type.as_str(), row.verdict.as_str()) {
                    ("domain", "homoglyph" | "impersonation") => {
                        "block the name at the mail gateway and DNS resolver; search mail logs for it"
                    }
                    ("domain", _) => {
                        "check DNS logs for lookups of the name and which hosts made them"
                    }
                    (_, "public") => "check firewall and proxy logs for connections to the address",
                    _ => "check which hosts talked to it",
                };
                let _ = writeln!(
                    markdown,
                    "- `{}`: {action}.",
                    escape_cell(&defang(&row.indicator, &row.indicator_type))
                );
            }
        }
    }
    markdown.push_str("\n## Sources\n\n");
    for (name, count) in &sources {
        let _ = writeln!(markdown, "- {}: {count} findings", escape_cell(name));
    }

    json!({
        "report": {
            "title": title,
            "markdown": markdown,
            "highest_severity": highest,
            "counts": {
                "total": rows.len(),
                "by_severity": by_severity,
                "by_verdict": by_verdict,
                "by_type": by_type,
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(
        indicator: &str,
        indicator_type: &str,
        verdict: &str,
        severity: &str,
        score: f64,
    ) -> Value {
        json!({
            "indicator": indicator,
            "indicator_type": indicator_type,
            "verdict": verdict,
            "severity": severity,
            "score": score,
            "reasons": [format!("because {indicator} | reasons")],
            "details": {},
        })
    }

    #[test]
    fn merges_sets_sorts_by_severity_and_counts() {
        let input = json!({
            "title": "Phishing triage",
            "finding_sets": {
                "ips": [
                    finding("10.0.0.5", "ipv4", "private", "low", 0.2),
                    finding("185.220.101.47", "ipv4", "public", "medium", 0.5),
                ],
                "domains": [finding("login-micros0ft.com", "domain", "impersonation", "high", 0.85)],
            }
        });
        let output = summarize(&input);
        let report = &output["report"];
        assert_eq!(report["title"], "Phishing triage");
        assert_eq!(report["highest_severity"], "high");
        assert_eq!(report["counts"]["total"], 3);
        assert_eq!(report["counts"]["by_severity"]["medium"], 1);
        assert_eq!(report["counts"]["by_severity"]["info"], 0);
        assert_eq!(report["counts"]["by_verdict"]["public"], 1);
        assert_eq!(report["counts"]["by_type"]["ipv4"], 2);
        let markdown = report["markdown"].as_str().unwrap();
        assert!(markdown.starts_with("# Phishing triage\n"));
        assert!(markdown.contains("**3 findings**: 1 high, 1 medium, 1 low, 0 info."));
        let high = markdown.find("login-micros0ft[.]com").unwrap();
        let medium = markdown.find("| medium | `185[.]220[.]101[.]47`").unwrap();
        let low = markdown.find("10[.]0[.]0[.]5").unwrap();
        assert!(high < medium && medium < low, "{markdown}");
        assert!(
            markdown.contains("because 10.0.0.5 \\| reasons"),
            "pipes escaped"
        );
        assert!(markdown.contains("## Next steps"));
        assert!(markdown.contains("- domains: 1 findings"));
    }

    #[test]
    fn reports_no_findings_plainly() {
        let output = summarize(&json!({ "findings": [] }));
        assert_eq!(output["report"]["title"], "IOC triage report");
        assert_eq!(output["report"]["highest_severity"], Value::Null);
        assert!(
            output["report"]["markdown"]
                .as_str()
                .unwrap()
                .contains("No findings")
        );
    }

    #[test]
    fn defangs_for_display() {
        assert_eq!(defang("evil.com", "domain"), "evil[.]com");
        assert_eq!(defang("https://evil.com/a", "url"), "hxxps[://]evil.com/a");
        assert_eq!(defang("2001:db8::1", "ipv6"), "2001:db8::1");
    }
}
