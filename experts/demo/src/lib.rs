//! Demo experts that `synod up` starts in-process on loopback, so the
//! foundation demo runs a real diamond DAG before the reference experts
//! exist. Small and honest: plain algorithms, no models, no reputation data.
//!
//! | expert / skill | consumes → produces | what it does |
//! |---|---|---|
//! | `ioc/extract` | `text` → `iocs` | IPv4/IPv6, domains, URLs, emails, MD5/SHA-1/SHA-256, CVE ids from text, refanging `hxxp`, `[.]`, `(dot)`; deduplicated, with offsets |
//! | `ioc/classify-ips` | `iocs` → `findings` | special-purpose ranges (RFC 1918, 6598, 5737, 3849, 4193, …) |
//! | `ioc/classify-domains` | `iocs` → `findings` | reserved names, punycode, homoglyphs, typosquats, DGA-like entropy |
//! | `report/summarize` | `findings` → `report` | Markdown report with counts, indicators defanged |
//!
//! Every input and output has a strict JSON Schema (see the `*_schema`
//! functions), which the SDK enforces on every call.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use synod_expert_sdk::testing::TestExpert;
//!
//! let ioc = TestExpert::new(synod_expert_demo::ioc_expert())?;
//! let output = ioc
//!     .call("extract", serde_json::json!({ "text": "beacon to hxxp://c2[.]example/x from 10.0.0.5" }))
//!     .await?;
//! assert_eq!(output.output["counts"]["url"], 1);
//! # Ok(())
//! # }
//! ```
//!
//! Layout: [`extract`] (refanging and regexes), [`classify`] (IP ranges,
//! domain signals, punycode), [`report`] (Markdown), and this file (skills,
//! schemas, expert builders).
#![warn(missing_docs)]

pub mod classify;
pub mod extract;
pub mod report;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use synod_expert_sdk::{
    Evidence, ExpertServer, ExpertServerBuilder, Sensitivity, SkillDefinition, SkillError,
    SkillOutput, skill_fn,
};

use crate::classify::{Finding, SEVERITIES, classify_domain, classify_ip, parse_ip};
use crate::extract::{IOC_TYPES, MAX_TEXT_BYTES, extract_output};

/// Version reported on the demo experts' cards.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every verdict a classifier may give.
const VERDICTS: &[&str] = &[
    // IPs
    "unspecified",
    "broadcast",
    "reserved",
    "private",
    "shared",
    "loopback",
    "link-local",
    "documentation",
    "benchmarking",
    "multicast",
    "tunnel",
    "public",
    // domains
    "homoglyph",
    "impersonation",
    "dga-like",
    "long-label",
    "punycode",
    "no-signal",
];

/// Confidence of extraction: deterministic, but regexes miss unusual
/// obfuscation.
const EXTRACT_CONFIDENCE: f64 = 0.9;
/// Confidence of the classifiers: shape-based heuristics, no reputation.
const CLASSIFY_CONFIDENCE: f64 = 0.8;

/// The demo experts, ready to serve (add `.register_with(..)` and spawn).
pub fn demo_experts() -> Vec<ExpertServerBuilder> {
    vec![ioc_expert(), report_expert()]
}

/// Expert `ioc`: skills `extract`, `classify-ips`, `classify-domains`.
pub fn ioc_expert() -> ExpertServerBuilder {
    let extract = SkillDefinition::new("extract")
        .description("Extracts indicators of compromise (IPv4/IPv6 addresses, domains, URLs, email addresses, MD5/SHA-1/SHA-256 hashes, CVE ids) from free text, including defanged forms such as hxxp, [.] and (dot). Deduplicated, with every occurrence's offsets in code points.")
        .consumes(["text"])
        .produces("iocs")
        .input_schema(extract_input_schema())
        .output_schema(extract_output_schema())
        .max_sensitivity(Sensitivity::Confidential);
    let classify_ips = SkillDefinition::new("classify-ips")
        .description("Classifies IP addresses by special-purpose range (private RFC 1918, shared RFC 6598, documentation RFC 5737/3849, unique local RFC 4193, loopback, link-local, multicast, reserved, public), with the range and RFC as the reason. Other indicator types are ignored.")
        .consumes(["iocs"])
        .produces("findings")
        .input_schema(classify_input_schema())
        .output_schema(classify_output_schema())
        .max_sensitivity(Sensitivity::Confidential);
    let classify_domains = SkillDefinition::new("classify-domains")
        .description("Classifies domain names by shape: reserved names (RFC 2606/6761), punycode and homoglyphs (mixed scripts, confusable characters), brand typosquats (micros0ft), long labels and DGA-like randomness (Shannon entropy), with reasons. No reputation lookup.")
        .consumes(["iocs"])
        .produces("findings")
        .input_schema(classify_input_schema())
        .output_schema(classify_output_schema())
        .max_sensitivity(Sensitivity::Confidential);
    ExpertServer::builder("ioc", VERSION)
        .description("Indicator-of-compromise extraction and shape-based classification (demo expert; no threat-intelligence lookups).")
        .skill(skill_fn(extract, |_ctx, input| async move {
            let text = input["text"].as_str().unwrap_or_default();
            if text.len() > MAX_TEXT_BYTES {
                return Err(SkillError::invalid_input(
                    "/text",
                    format!(
                        "text is {} bytes; the limit is {MAX_TEXT_BYTES}: split it into smaller pieces",
                        text.len()
                    ),
                ));
            }
            Ok(SkillOutput::new(extract_output(text)).with_confidence(EXTRACT_CONFIDENCE))
        }))
        .skill(skill_fn(classify_ips, |_ctx, input| async move {
            classify_iocs(&input, &["ipv4", "ipv6"], |index, ioc_type, value| {
                let address = parse_ip(value).ok_or_else(|| {
                    SkillError::invalid_input(
                        format!("/iocs/{index}/value"),
                        format!("`{value}` has type `{ioc_type}` but is not an IP address; fix the value or its type"),
                    )
                })?;
                Ok(classify_ip(address))
            })
        }))
        .skill(skill_fn(classify_domains, |_ctx, input| async move {
            classify_iocs(&input, &["domain"], |index, _ioc_type, value| {
                check_domain(value).map_err(|problem| {
                    SkillError::invalid_input(
                        format!("/iocs/{index}/value"),
                        format!("`{value}` is not a domain name: {problem}"),
                    )
                })?;
                Ok(classify_domain(value))
            })
        }))
}

/// Expert `report`: skill `summarize`.
pub fn report_expert() -> ExpertServerBuilder {
    let summarize = SkillDefinition::new("summarize")
        .description("Merges findings (a list, or named lists from several classifiers) into a Markdown report, highest severity first, with counts by severity, verdict and indicator type. Indicators are defanged in the Markdown.")
        .consumes(["findings"])
        .produces("report")
        .input_schema(summarize_input_schema())
        .output_schema(summarize_output_schema())
        .max_sensitivity(Sensitivity::Confidential);
    ExpertServer::builder("report", VERSION)
        .description("Turns findings into a Markdown report for people (demo expert).")
        .skill(skill_fn(summarize, |_ctx, input| async move {
            Ok(SkillOutput::new(report::summarize(&input)))
        }))
}

/// Classifies the iocs of `types` with `classify`, deduplicated by value,
/// with evidence pointing at every finding of medium severity or more.
fn classify_iocs(
    input: &Value,
    types: &[&str],
    classify: impl Fn(usize, &str, &str) -> Result<Finding, SkillError>,
) -> Result<SkillOutput, SkillError> {
    let iocs = input["iocs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut findings = Vec::new();
    let mut evidence = Vec::new();
    let mut ignored = 0usize;
    for (index, ioc) in iocs.iter().enumerate() {
        let ioc_type = ioc["type"].as_str().unwrap_or_default();
        if !types.contains(&ioc_type) {
            ignored += 1;
            continue;
        }
        let value = ioc["value"].as_str().unwrap_or_default();
        let finding = classify(index, ioc_type, value)?;
        if !seen.insert(finding.indicator.clone()) {
            continue;
        }
        if finding.severity == "medium" || finding.severity == "high" {
            evidence.push(Evidence::new(
                format!("/iocs/{index}"),
                format!("{}: {}", finding.verdict, finding.reasons.join("; ")),
            ));
        }
        findings.push(finding.to_json());
    }
    let mut output = SkillOutput::new(json!({ "findings": findings, "ignored": ignored }))
        .with_confidence(CLASSIFY_CONFIDENCE);
    output.evidence = evidence;
    Ok(output)
}

fn check_domain(value: &str) -> Result<(), String> {
    let name = value.trim_end_matches('.');
    if name.chars().any(char::is_whitespace) {
        return Err("it contains whitespace".to_owned());
    }
    if !name.contains('.') {
        return Err("it has a single label; expected e.g. `evil.com`".to_owned());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (`..`)".to_owned());
        }
        if label.chars().count() > 63 {
            return Err(format!("label `{label}` is longer than 63 characters"));
        }
    }
    Ok(())
}

// === schemas ===

fn string_enum(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

/// Input of `ioc/extract`.
pub fn extract_input_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["text"],
        "properties": {
            "text": {
                "type": "string",
                "maxLength": MAX_TEXT_BYTES,
                "description": "Free text: an incident note, an email, a report."
            }
        }
    })
}

fn ioc_schema(strict: bool) -> Value {
    let required: &[&str] = if strict {
        &["type", "value", "defanged", "occurrences"]
    } else {
        &["type", "value"]
    };
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": {
            "type": string_enum(&IOC_TYPES),
            "value": { "type": "string", "minLength": 1 },
            "defanged": { "type": "boolean" },
            "occurrences": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["start", "end", "raw"],
                    "properties": {
                        "start": { "type": "integer", "minimum": 0 },
                        "end": { "type": "integer", "minimum": 0 },
                        "raw": { "type": "string" }
                    }
                }
            }
        }
    })
}

/// Output of `ioc/extract`.
pub fn extract_output_schema() -> Value {
    let mut counts = serde_json::Map::new();
    for ioc_type in IOC_TYPES {
        counts.insert(
            ioc_type.to_owned(),
            json!({ "type": "integer", "minimum": 0 }),
        );
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["iocs", "counts"],
        "properties": {
            "iocs": { "type": "array", "items": ioc_schema(true) },
            "counts": {
                "type": "object",
                "additionalProperties": false,
                "required": IOC_TYPES,
                "properties": counts
            }
        }
    })
}

/// Input of `ioc/classify-ips` and `ioc/classify-domains`: the `iocs` of
/// `ioc/extract` (only `type` and `value` are required).
pub fn classify_input_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["iocs"],
        "properties": {
            "iocs": { "type": "array", "items": ioc_schema(false) }
        }
    })
}

/// One finding of a classifier.
pub fn finding_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["indicator", "indicator_type", "verdict", "severity", "score", "reasons", "details"],
        "properties": {
            "indicator": { "type": "string", "minLength": 1 },
            "indicator_type": string_enum(&["ipv4", "ipv6", "domain"]),
            "verdict": string_enum(VERDICTS),
            "severity": string_enum(&SEVERITIES),
            "score": { "type": "number", "minimum": 0, "maximum": 1 },
            "reasons": { "type": "array", "minItems": 1, "items": { "type": "string" } },
            "details": { "type": "object" }
        }
    })
}

/// Output of `ioc/classify-ips` and `ioc/classify-domains`.
pub fn classify_output_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["findings", "ignored"],
        "properties": {
            "findings": { "type": "array", "items": finding_schema() },
            "ignored": {
                "type": "integer",
                "minimum": 0,
                "description": "Indicators of other types, skipped."
            }
        }
    })
}

/// Input of `report/summarize`: `findings`, or `finding_sets` (named lists,
/// e.g. one per classifier), or both.
pub fn summarize_input_schema() -> Value {
    let findings = json!({ "type": "array", "items": finding_schema() });
    json!({
        "type": "object",
        "additionalProperties": false,
        "anyOf": [{ "required": ["findings"] }, { "required": ["finding_sets"] }],
        "properties": {
            "title": { "type": "string", "maxLength": 200 },
            "findings": findings,
            "finding_sets": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": findings
            }
        }
    })
}

/// Output of `report/summarize`.
pub fn summarize_output_schema() -> Value {
    let mut by_severity = serde_json::Map::new();
    for severity in SEVERITIES {
        by_severity.insert(
            severity.to_owned(),
            json!({ "type": "integer", "minimum": 0 }),
        );
    }
    let mut highest: Vec<Value> = SEVERITIES.iter().map(|s| Value::from(*s)).collect();
    highest.push(Value::Null);
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["report"],
        "properties": {
            "report": {
                "type": "object",
                "additionalProperties": false,
                "required": ["title", "markdown", "highest_severity", "counts"],
                "properties": {
                    "title": { "type": "string" },
                    "markdown": { "type": "string" },
                    "highest_severity": { "enum": highest },
                    "counts": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["total", "by_severity", "by_verdict", "by_type"],
                        "properties": {
                            "total": { "type": "integer", "minimum": 0 },
                            "by_severity": {
                                "type": "object",
                                "additionalProperties": false,
                                "required": SEVERITIES,
                                "properties": by_severity
                            },
                            "by_verdict": {
                                "type": "object",
                                "additionalProperties": { "type": "integer", "minimum": 1 }
                            },
                            "by_type": {
                                "type": "object",
                                "additionalProperties": { "type": "integer", "minimum": 1 }
                            }
                        }
                    }
                }
            }
        }
    })
}
