//! The `data-protection` expert on `synod-expert-sdk`: skills `scan` (text
//! or JSON -> findings + classification) and `redact` (-> redacted text or
//! JSON + findings). Outputs never contain a raw finding value, only masked
//! previews, because outputs are recorded in run events.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use synod_expert_sdk::{
    Evidence, ExpertServer, ExpertServerBuilder, Sensitivity, SkillDefinition, SkillError,
    SkillOutput, skill_fn,
};

use crate::classify::{Level, classify};
use crate::redact::{Redaction, RedactionKey};
use crate::rule::{Category, RuleErrors};
use crate::scanner::{Finding, Scanner, mask_preview};

/// Version reported on the expert card.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Largest text accepted per call (bytes, over all strings).
const MAX_INPUT_BYTES: usize = 64 << 20;
/// Most findings listed in one output (all are counted).
const MAX_LISTED_FINDINGS: usize = 1000;

/// How the expert is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Extra rule files (YAML, format in the crate README).
    pub rule_paths: Vec<PathBuf>,
    /// Whether to load the embedded rules too.
    pub builtin_rules: bool,
    /// Key for `hash` and `token` redaction; without one only `mask` works.
    pub redaction_key: Option<RedactionKey>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rule_paths: Vec::new(),
            builtin_rules: true,
            redaction_key: None,
        }
    }
}

/// Why the expert cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExpertError {
    /// A rule file is invalid.
    #[error(transparent)]
    Rules(#[from] RuleErrors),
    /// Neither builtin rules nor rule files.
    #[error("no rules: enable the builtin rules or give rule files")]
    NoRules,
}

/// Builds the `data-protection` expert (add `.register_with(..)` and serve).
///
/// # Errors
///
/// When a rule file is invalid or no rule is configured.
pub fn expert(config: &Config) -> Result<ExpertServerBuilder, ExpertError> {
    let scanner = Scanner::from_files(&config.rule_paths, config.builtin_rules)?;
    if scanner.rules().is_empty() {
        return Err(ExpertError::NoRules);
    }
    Ok(expert_with_scanner(
        Arc::new(scanner),
        config.redaction_key.clone(),
    ))
}

/// Builds the expert around an existing scanner (e.g. the one the
/// orchestrator's guard uses).
pub fn expert_with_scanner(
    scanner: Arc<Scanner>,
    key: Option<RedactionKey>,
) -> ExpertServerBuilder {
    let scan_definition = SkillDefinition::new("scan")
        .description("Finds personal data (email, phone, payment card, IBAN, IP, US SSN, Chinese resident id) and secrets (API keys, tokens, private keys, passwords, connection strings) in text or in every string of a JSON value, with validators (Luhn, IBAN mod 97, checksums), and classifies the data as public, internal, confidential or restricted. Values are never returned, only masked previews.")
        .consumes(["text"])
        .produces("sensitive_data")
        .input_schema(input_schema(false))
        .output_schema(scan_output_schema())
        .cost_hint(0.2)
        .max_sensitivity(Sensitivity::Restricted);
    let redact_definition = SkillDefinition::new("redact")
        .description("Redacts personal data and secrets in text or in every string of a JSON value: mask (same length), hash (keyed HMAC-SHA256 prefix) or token (AES-GCM, reversible with the key). Returns the redacted data, the findings and, for text, the mapping from original to redacted byte spans.")
        .consumes(["text"])
        .produces("text")
        .input_schema(input_schema(true))
        .output_schema(redact_output_schema())
        .cost_hint(0.2)
        .max_sensitivity(Sensitivity::Restricted);
    let description = format!(
        "PII and secret detection with validators, classification and redaction ({} rules).",
        scanner.rules().len()
    );
    let scan_scanner = Arc::clone(&scanner);
    ExpertServer::builder("data-protection", VERSION)
        .description(description)
        .skill(skill_fn(scan_definition, move |_ctx, input| {
            let scanner = Arc::clone(&scan_scanner);
            async move {
                tokio::task::spawn_blocking(move || scan_skill(&scanner, &input))
                    .await
                    .map_err(|e| SkillError::internal(format!("scan task failed: {e}")))?
            }
        }))
        .skill(skill_fn(redact_definition, move |_ctx, input| {
            let scanner = Arc::clone(&scanner);
            let key = key.clone();
            async move {
                tokio::task::spawn_blocking(move || redact_skill(&scanner, key.as_ref(), &input))
                    .await
                    .map_err(|e| SkillError::internal(format!("redact task failed: {e}")))?
            }
        }))
}

/// The input: text or JSON, plus options.
enum Payload<'a> {
    Text(&'a str),
    Json(&'a Value),
}

fn payload(input: &Value) -> Result<Payload<'_>, SkillError> {
    let size = match (input.get("text"), input.get("json")) {
        (Some(Value::String(text)), None) => text.len(),
        (None, Some(json)) => string_bytes(json),
        _ => {
            return Err(SkillError::invalid_input(
                "",
                "give exactly one of `text` (a string) or `json` (any JSON value)",
            ));
        }
    };
    if size > MAX_INPUT_BYTES {
        return Err(SkillError::invalid_input(
            "",
            format!(
                "{size} bytes of text; the limit per call is {MAX_INPUT_BYTES}: split the input"
            ),
        ));
    }
    Ok(match input.get("text").and_then(Value::as_str) {
        Some(text) => Payload::Text(text),
        None => Payload::Json(&input["json"]),
    })
}

fn string_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(string_bytes).sum(),
        Value::Object(map) => map.iter().map(|(k, v)| k.len() + string_bytes(v)).sum(),
        _ => 0,
    }
}

fn min_confidence(input: &Value) -> f64 {
    input["min_confidence"].as_f64().unwrap_or(0.0)
}

/// A finding as skill output: offsets and a masked preview, no value.
fn finding_json(finding: &Finding, text: &str, pointer: Option<&str>) -> Value {
    let mut out = json!({
        "entity_type": finding.entity_type,
        "category": finding.category.as_str(),
        "rule_id": finding.rule_id,
        "rule_name": finding.rule_name,
        "start": finding.span.start,
        "end": finding.span.end,
        "char_start": finding.char_span.start,
        "char_end": finding.char_span.end,
        "confidence": finding.confidence,
        "validator": finding.validator,
        "level": finding.level.as_str(),
        "preview": mask_preview(finding.value(text)),
    });
    if let Some(pointer) = pointer {
        out["pointer"] = json!(pointer);
    }
    out
}

/// All findings of a payload, each with its string and pointer.
fn collect(
    scanner: &Scanner,
    value: &Value,
    pointer: &mut String,
    out: &mut Vec<(String, String, Finding)>,
) {
    match value {
        Value::String(text) => {
            for finding in scanner.scan(text) {
                out.push((pointer.clone(), text.clone(), finding));
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{index}"));
                collect(scanner, item, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                collect(scanner, item, pointer, out);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

fn summary(findings: &[Finding]) -> (Value, Value) {
    let classification = classify(findings);
    let mut by_type = serde_json::Map::new();
    for finding in findings {
        let entry = by_type
            .entry(finding.entity_type.clone())
            .or_insert(json!(0));
        *entry = json!(entry.as_u64().unwrap_or(0) + 1);
    }
    (
        json!({
            "level": classification.level.as_str(),
            "reason": classification.reason,
            "counts": classification.counts,
        }),
        Value::Object(by_type),
    )
}

fn confidence_of(findings: &[Finding]) -> f64 {
    // Confidence in the classification: the strongest finding decides it.
    findings
        .iter()
        .map(|f| f.confidence)
        .fold(None, |acc: Option<f64>, c| {
            Some(acc.map_or(c, |a| a.max(c)))
        })
        .unwrap_or(0.9)
}

/// The `scan` skill.
fn scan_skill(scanner: &Scanner, input: &Value) -> Result<SkillOutput, SkillError> {
    let threshold = min_confidence(input);
    let mut listed = Vec::new();
    let mut findings = Vec::new();
    match payload(input)? {
        Payload::Text(text) => {
            for finding in scanner
                .scan(text)
                .into_iter()
                .filter(|f| f.confidence >= threshold)
            {
                if listed.len() < MAX_LISTED_FINDINGS {
                    listed.push(finding_json(&finding, text, None));
                }
                findings.push(finding);
            }
        }
        Payload::Json(value) => {
            let mut all = Vec::new();
            collect(scanner, value, &mut String::new(), &mut all);
            for (pointer, text, finding) in all
                .into_iter()
                .filter(|(_, _, f)| f.confidence >= threshold)
            {
                if listed.len() < MAX_LISTED_FINDINGS {
                    listed.push(finding_json(&finding, &text, Some(&pointer)));
                }
                findings.push(finding);
            }
        }
    }
    let (classification, by_type) = summary(&findings);
    let mut value = json!({
        "findings": listed,
        "total_findings": findings.len(),
        "counts_by_type": by_type,
        "classification": classification,
    });
    echo_name(input, &mut value);
    let mut output = SkillOutput::new(value).with_confidence(confidence_of(&findings));
    if let Some(first) = findings.iter().find(|f| f.level == Level::Restricted) {
        output = output.with_evidence(Evidence::new(
            if input.get("text").is_some() {
                "/text"
            } else {
                "/json"
            },
            format!("{} ({})", first.rule_name, first.category.as_str()),
        ));
    }
    Ok(output)
}

/// The `redact` skill.
fn redact_skill(
    scanner: &Scanner,
    key: Option<&RedactionKey>,
    input: &Value,
) -> Result<SkillOutput, SkillError> {
    let mode = input["mode"].as_str().unwrap_or("mask");
    let redaction = match (mode, key) {
        ("mask", _) => Redaction::mask(),
        ("hash", Some(key)) => Redaction::hash(key.clone()),
        ("token", Some(key)) => Redaction::token(key.clone()),
        (_, None) => {
            return Err(SkillError::invalid_input(
                "/mode",
                format!("mode `{mode}` needs a redaction key, and this expert has none; use `mask` or start the expert with a key"),
            ));
        }
        _ => {
            return Err(SkillError::invalid_input(
                "/mode",
                format!("unknown mode `{mode}`; use mask, hash or token"),
            ));
        }
    }
    .with_min_confidence(min_confidence(input));
    let mut value = json!({ "mode": redaction.mode_name() });
    let findings: Vec<Finding>;
    let mut listed = Vec::new();
    match payload(input)? {
        Payload::Text(text) => {
            let redacted = scanner.redact(text, &redaction);
            for finding in redacted.findings.iter().take(MAX_LISTED_FINDINGS) {
                listed.push(finding_json(finding, text, None));
            }
            value["text"] = json!(redacted.text);
            value["mappings"] = json!(
                redacted
                    .mappings
                    .iter()
                    .map(|m| json!({
                        "entity_type": m.entity_type,
                        "original_start": m.original.start,
                        "original_end": m.original.end,
                        "redacted_start": m.redacted.start,
                        "redacted_end": m.redacted.end,
                    }))
                    .collect::<Vec<_>>()
            );
            value["redacted_count"] = json!(redacted.mappings.len());
            findings = redacted.findings;
        }
        Payload::Json(json_value) => {
            let redacted = scanner.redact_json(json_value, &redaction);
            let mut all = Vec::new();
            collect(scanner, json_value, &mut String::new(), &mut all);
            for (pointer, text, finding) in all.iter().take(MAX_LISTED_FINDINGS) {
                listed.push(finding_json(finding, text, Some(pointer)));
            }
            value["json"] = redacted.value.clone();
            value["redacted_count"] = json!(redacted.redacted_count());
            findings = redacted.findings.into_iter().map(|f| f.finding).collect();
        }
    }
    let (classification, by_type) = summary(&findings);
    value["findings"] = Value::Array(listed);
    value["counts_by_type"] = by_type;
    value["classification"] = classification;
    echo_name(input, &mut value);
    Ok(SkillOutput::new(value).with_confidence(confidence_of(&findings)))
}

/// Copies the input's optional `name` into the output.
fn echo_name(input: &Value, output: &mut Value) {
    if let Some(name) = input.get("name") {
        output["name"] = name.clone();
    }
}

fn input_schema(redact: bool) -> Value {
    let mut properties = json!({
        "text": { "type": "string", "description": "Text to scan." },
        "json": { "description": "Any JSON value: every string in it is scanned (object keys are not)." },
        "min_confidence": { "type": "number", "minimum": 0, "maximum": 1, "description": "Ignore findings below this confidence (default 0)." },
        "name": { "type": "string", "maxLength": 512, "description": "Name of the payload (file name, ticket id): not scanned, echoed in the output so the results of a fan-out stay attributable." }
    });
    if redact {
        properties["mode"] = json!({
            "enum": ["mask", "hash", "token"],
            "description": "mask: `*` per character (default); hash: [[TYPE#hmac-prefix]]; token: [[TOKEN:TYPE:..]] reversible with the expert's key."
        });
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "oneOf": [{ "required": ["text"] }, { "required": ["json"] }],
        "properties": properties
    })
}

fn finding_schema() -> Value {
    let categories = [Category::Pii, Category::Secret, Category::Identifier].map(Category::as_str);
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["entity_type", "category", "rule_id", "rule_name", "start", "end", "char_start", "char_end", "confidence", "validator", "level", "preview"],
        "properties": {
            "entity_type": { "type": "string" },
            "category": { "enum": categories },
            "rule_id": { "type": "string" },
            "rule_name": { "type": "string" },
            "start": { "type": "integer", "minimum": 0, "description": "byte offset in the string" },
            "end": { "type": "integer", "minimum": 0 },
            "char_start": { "type": "integer", "minimum": 0, "description": "character offset in the string" },
            "char_end": { "type": "integer", "minimum": 0 },
            "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
            "validator": { "type": ["string", "null"] },
            "level": { "enum": Level::ALL.map(Level::as_str) },
            "preview": { "type": "string", "description": "masked: a short prefix then `*`" },
            "pointer": { "type": "string", "description": "JSON Pointer of the string (JSON input)" }
        }
    })
}

fn classification_schema() -> Value {
    json!({
        "type": "object",
        "required": ["level", "reason", "counts"],
        "properties": {
            "level": { "enum": Level::ALL.map(Level::as_str) },
            "reason": { "type": "string" },
            "counts": { "type": "object", "additionalProperties": { "type": "integer" } }
        }
    })
}

fn scan_output_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["findings", "total_findings", "counts_by_type", "classification"],
        "properties": {
            "name": { "type": "string", "description": "the input's `name`" },
            "findings": { "type": "array", "items": finding_schema() },
            "total_findings": { "type": "integer", "minimum": 0 },
            "counts_by_type": { "type": "object", "additionalProperties": { "type": "integer" } },
            "classification": classification_schema()
        }
    })
}

fn redact_output_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["mode", "redacted_count", "findings", "counts_by_type", "classification"],
        "properties": {
            "name": { "type": "string", "description": "the input's `name`" },
            "mode": { "enum": ["mask", "hash", "token"] },
            "text": { "type": "string" },
            "json": {},
            "mappings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["entity_type", "original_start", "original_end", "redacted_start", "redacted_end"],
                    "properties": {
                        "entity_type": { "type": "string" },
                        "original_start": { "type": "integer", "minimum": 0 },
                        "original_end": { "type": "integer", "minimum": 0 },
                        "redacted_start": { "type": "integer", "minimum": 0 },
                        "redacted_end": { "type": "integer", "minimum": 0 }
                    }
                }
            },
            "redacted_count": { "type": "integer", "minimum": 0 },
            "findings": { "type": "array", "items": finding_schema() },
            "counts_by_type": { "type": "object", "additionalProperties": { "type": "integer" } },
            "classification": classification_schema()
        }
    })
}
