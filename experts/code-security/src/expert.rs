//! The `code-security` expert on `synod-expert-sdk`: skill `scan`
//! (`source_code` -> `findings`), output `{sarif, summary}`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use synod_expert_sdk::{
    Evidence, ExpertServer, ExpertServerBuilder, Sensitivity, SkillDefinition, SkillError,
    SkillOutput, skill_fn,
};

use crate::input::{collect_files, read_source};
use crate::rules::{RuleError, RuleSet};
use crate::sarif::to_sarif;
use crate::scan::{ScanReport, Scanner, SourceFile};

/// Version reported on the expert card and in SARIF.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Confidence of the output: taint findings are heuristic (intra-procedural).
const CONFIDENCE: f64 = 0.7;
/// Most findings listed as evidence.
const MAX_EVIDENCE: usize = 20;
/// Severities, most severe first.
const SEVERITIES: [&str; 3] = ["high", "medium", "low"];

/// How the expert is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Extra rule files (`<language>.json`) replacing the builtin rules of
    /// their language.
    pub rule_files: Vec<PathBuf>,
    /// Whether the skill may read `paths` (files or directories on the
    /// expert's host).
    pub allow_file_input: bool,
    /// Most files per call (inline and from `paths` together).
    pub max_files: usize,
    /// Largest file scanned, in bytes (larger ones are reported, not scanned).
    pub max_file_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rule_files: Vec::new(),
            allow_file_input: false,
            max_files: 10_000,
            max_file_bytes: 2 * 1024 * 1024,
        }
    }
}

/// Why the expert cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExpertError {
    /// A rule file is invalid.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// A rule file cannot be read.
    #[error("cannot read rule file `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Builds the `code-security` expert (add `.register_with(..)` and serve).
///
/// # Errors
///
/// When a configured rule file cannot be read or is invalid.
pub fn expert(config: &Config) -> Result<ExpertServerBuilder, ExpertError> {
    let mut rules = RuleSet::builtin()?;
    for path in &config.rule_files {
        let text = std::fs::read_to_string(path).map_err(|source| ExpertError::Io {
            path: path.clone(),
            source,
        })?;
        rules.add_json(&path.display().to_string(), &text)?;
    }
    let scanner = Scanner::new(rules);
    let definition = SkillDefinition::new("scan")
        .description("Static analysis of Python, Java, JavaScript and Go source (tree-sitter): intra-procedural taint tracking from request/env sources to injection, path, redirect, deserialisation, XXE and XSS sinks with sanitizer awareness, plus weak crypto/random, insecure cookie and hard-coded secret patterns. Returns a SARIF 2.1.0 log and a summary by CWE, severity and language.")
        .consumes(["source_code"])
        .produces("findings")
        .input_schema(scan_input_schema())
        .output_schema(scan_output_schema())
        .cost_hint(1.0)
        .max_sensitivity(Sensitivity::Confidential);
    let config = config.clone();
    Ok(ExpertServer::builder("code-security", VERSION)
        .description("Code-security expert: tree-sitter taint analysis for Python, Java, JavaScript and Go, findings in SARIF 2.1.0 with CWE ids.")
        .skill(skill_fn(definition, move |_ctx, input| {
            let scanner = scanner.clone();
            let config = config.clone();
            async move {
                tokio::task::spawn_blocking(move || scan(&scanner, &input, &config))
                    .await
                    .map_err(|e| SkillError::internal(format!("scan task failed: {e}")))?
            }
        })))
}

/// The `scan` skill: reads the inputs, scans, and builds the output.
fn scan(scanner: &Scanner, input: &Value, config: &Config) -> Result<SkillOutput, SkillError> {
    let mut files = Vec::new();
    for (i, file) in input["files"].as_array().into_iter().flatten().enumerate() {
        let (Some(path), Some(content)) = (file["path"].as_str(), file["content"].as_str()) else {
            return Err(SkillError::invalid_input(
                format!("/files/{i}"),
                "each file needs `path` and `content` strings",
            ));
        };
        files.push(SourceFile {
            path: path.to_owned(),
            content: content.to_owned(),
        });
    }
    let paths: Vec<&str> = input["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !paths.is_empty() && !config.allow_file_input {
        return Err(SkillError::invalid_input(
            "/paths",
            "this expert does not read files (start it with file input allowed, or send the sources inline in `files`)",
        ));
    }
    for (i, path) in paths.iter().enumerate() {
        let found = collect_files(Path::new(path), config.max_files)
            .map_err(|e| SkillError::invalid_input(format!("/paths/{i}"), e.to_string()))?;
        for file in found {
            let source = read_source(&file)
                .map_err(|e| SkillError::invalid_input(format!("/paths/{i}"), e.to_string()))?;
            files.push(source);
        }
    }
    if files.len() > config.max_files {
        return Err(SkillError::invalid_input(
            "/files",
            format!(
                "{} files; the limit per call is {}: split the input",
                files.len(),
                config.max_files
            ),
        ));
    }
    let (small, large): (Vec<SourceFile>, Vec<SourceFile>) = files
        .into_iter()
        .partition(|f| f.content.len() <= config.max_file_bytes);
    let mut report = scanner.scan_files(&small);
    for file in large {
        report.files.push(crate::scan::FileOutcome {
            path: file.path,
            language: None,
            findings: 0,
            syntax_errors: false,
            error: Some(format!(
                "larger than {} bytes; not scanned",
                config.max_file_bytes
            )),
        });
    }
    if let Some(min) = input["min_severity"].as_str() {
        let rank = |s: &str| {
            SEVERITIES
                .iter()
                .position(|x| *x == s)
                .unwrap_or(SEVERITIES.len())
        };
        report.findings.retain(|f| rank(&f.severity) <= rank(min));
    }
    Ok(output(scanner, &report))
}

fn output(scanner: &Scanner, report: &ScanReport) -> SkillOutput {
    let value = json!({
        "sarif": to_sarif(report, scanner.rules(), VERSION),
        "summary": report.summary(),
    });
    let mut output = SkillOutput::new(value).with_confidence(CONFIDENCE);
    for (i, finding) in report.findings.iter().take(MAX_EVIDENCE).enumerate() {
        output = output.with_evidence(Evidence::new(
            format!("/sarif/runs/0/results/{i}"),
            format!(
                "{}:{} CWE-{} {}",
                finding.path, finding.start_line, finding.cwe, finding.rule_id
            ),
        ));
    }
    output
}

/// Input of `code-security/scan`.
pub fn scan_input_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "anyOf": [{ "required": ["files"] }, { "required": ["paths"] }],
        "properties": {
            "files": {
                "type": "array",
                "description": "Source files inline; the language comes from the extension (.py, .java, .js, .go).",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["path", "content"],
                    "properties": {
                        "path": { "type": "string", "minLength": 1 },
                        "content": { "type": "string" }
                    }
                }
            },
            "paths": {
                "type": "array",
                "description": "Files or directories on the expert's host, scanned recursively (only when the expert allows file input).",
                "items": { "type": "string", "minLength": 1 }
            },
            "min_severity": { "enum": SEVERITIES, "description": "Drop findings below this severity." }
        }
    })
}

/// Output of `code-security/scan`.
pub fn scan_output_schema() -> Value {
    let counts =
        json!({ "type": "object", "additionalProperties": { "type": "integer", "minimum": 0 } });
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["sarif", "summary"],
        "properties": {
            "sarif": {
                "type": "object",
                "description": "SARIF 2.1.0 log.",
                "required": ["version", "runs"],
                "properties": {
                    "version": { "const": "2.1.0" },
                    "$schema": { "type": "string" },
                    "runs": { "type": "array", "minItems": 1, "items": { "type": "object", "required": ["tool", "results"] } }
                }
            },
            "summary": {
                "type": "object",
                "required": ["files", "files_scanned", "findings", "by_cwe", "by_category", "by_severity", "by_language", "errors"],
                "properties": {
                    "files": { "type": "integer", "minimum": 0 },
                    "files_scanned": { "type": "integer", "minimum": 0 },
                    "files_with_syntax_errors": { "type": "integer", "minimum": 0 },
                    "findings": { "type": "integer", "minimum": 0 },
                    "by_cwe": counts,
                    "by_category": counts,
                    "by_severity": counts,
                    "by_language": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["files", "findings"],
                            "properties": {
                                "files": { "type": "integer", "minimum": 0 },
                                "findings": { "type": "integer", "minimum": 0 }
                            }
                        }
                    },
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["path", "reason"],
                            "properties": { "path": { "type": "string" }, "reason": { "type": "string" } }
                        }
                    }
                }
            }
        }
    })
}
