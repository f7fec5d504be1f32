//! SARIF 2.1.0 output (written with serde_json; validated against the
//! official schema in the tests).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::finding::Finding;
use crate::rules::RuleSet;
use crate::scan::ScanReport;

/// SARIF version written.
pub const SARIF_VERSION: &str = "2.1.0";
/// The schema URI put in `$schema`.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// Tool name in `tool.driver.name`.
pub const TOOL_NAME: &str = "synod-code-security";

/// SARIF `level` of a severity.
pub(crate) fn level(severity: &str) -> &'static str {
    match severity {
        "high" | "critical" => "error",
        "medium" => "warning",
        _ => "note",
    }
}

/// GitHub-style `security-severity` score of a severity.
fn security_severity(severity: &str) -> &'static str {
    match severity {
        "high" => "8.0",
        "medium" => "5.0",
        _ => "3.0",
    }
}

/// Percent-encodes what may not appear in a URI reference.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for ch in path.replace('\\', "/").chars() {
        if ch.is_ascii_alphanumeric() || "-._~/:@!$&'()*+,;=".contains(ch) {
            out.push(ch);
        } else {
            let mut buf = [0u8; 4];
            for byte in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

fn location(
    finding: &Finding,
    artifact: usize,
    line: usize,
    column: usize,
    end: Option<(usize, usize)>,
) -> Value {
    let mut region = json!({ "startLine": line, "startColumn": column });
    if let Some((end_line, end_column)) = end {
        region["endLine"] = json!(end_line);
        region["endColumn"] = json!(end_column);
        region["snippet"] = json!({ "text": finding.snippet });
    }
    json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri(&finding.path), "index": artifact },
            "region": region,
        }
    })
}

/// The SARIF log of a scan.
pub fn to_sarif(report: &ScanReport, rules: &RuleSet, version: &str) -> Value {
    let descriptors = rules.rule_descriptors();
    let index: BTreeMap<&str, usize> = descriptors
        .iter()
        .enumerate()
        .map(|(i, (id, _, _))| (id.as_str(), i))
        .collect();
    let sarif_rules: Vec<Value> = descriptors
        .iter()
        .map(|(id, category, message)| {
            let (cwe, name, severity) = rules
                .category(category)
                .map(|c| (c.cwe, c.name.as_str(), c.severity.as_str()))
                .unwrap_or((0, category.as_str(), "low"));
            json!({
                "id": id,
                "name": name,
                "shortDescription": { "text": name },
                "fullDescription": { "text": message },
                "help": { "text": format!("{message} (CWE-{cwe})") },
                "defaultConfiguration": { "level": level(severity) },
                "properties": {
                    "tags": ["security", format!("external/cwe/cwe-{cwe}"), category],
                    "category": category,
                    "cwe": format!("CWE-{cwe}"),
                    "security-severity": security_severity(severity),
                }
            })
        })
        .collect();
    let mut artifacts: Vec<Value> = Vec::new();
    let mut artifact_index: BTreeMap<&str, usize> = BTreeMap::new();
    for file in report.files.iter().filter(|f| f.error.is_none()) {
        artifact_index.insert(file.path.as_str(), artifacts.len());
        let mut artifact = json!({ "location": { "uri": uri(&file.path) } });
        if let Some(language) = &file.language {
            artifact["sourceLanguage"] = json!(language);
        }
        artifacts.push(artifact);
    }
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let artifact = artifact_index.get(f.path.as_str()).copied().unwrap_or(0);
            let sink = location(
                f,
                artifact,
                f.start_line,
                f.start_column,
                Some((f.end_line, f.end_column)),
            );
            let mut result = json!({
                "ruleId": f.rule_id,
                "level": level(&f.severity),
                "message": { "text": f.message },
                "locations": [sink.clone()],
                "properties": {
                    "cwe": format!("CWE-{}", f.cwe),
                    "category": f.category,
                    "severity": f.severity,
                    "language": f.language,
                },
            });
            if let Some(i) = index.get(f.rule_id.as_str()) {
                result["ruleIndex"] = json!(i);
            }
            if let Some(source) = &f.source {
                let mut from = location(f, artifact, source.line, source.column, None);
                from["message"] = json!({ "text": format!("{}: {}", source.kind, source.text) });
                let mut to = sink;
                to["message"] = json!({ "text": "sink" });
                result["codeFlows"] = json!([{
                    "threadFlows": [{ "locations": [{ "location": from }, { "location": to }] }]
                }]);
            }
            result
        })
        .collect();
    let notifications: Vec<Value> = report
        .files
        .iter()
        .filter_map(|f| {
            f.error.as_ref().map(|e| {
                json!({
                    "level": "warning",
                    "message": { "text": e },
                    "locations": [{ "physicalLocation": { "artifactLocation": { "uri": uri(&f.path) } } }],
                })
            })
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {
                "driver": {
                    "name": TOOL_NAME,
                    "version": version,
                    "informationUri": "https://owasp.org/www-project-benchmark/",
                    "rules": sarif_rules,
                }
            },
            "artifacts": artifacts,
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded() {
        assert_eq!(uri("a b/c.py"), "a%20b/c.py");
        assert_eq!(uri("dir\\x.py"), "dir/x.py");
    }
}
