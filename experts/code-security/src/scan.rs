//! Scanning source files: language detection, parsing, analysis, and the
//! report (findings, per-file outcomes, summary).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::finding::{Finding, FlowSource};
use crate::lang::Language;
use crate::rules::{RuleError, RuleSet};
use crate::taint::analyse;

/// Deepest syntax tree analysed (the analysis recurses over the tree).
const MAX_DEPTH: usize = 5000;
/// Stack of the analysis thread (enough for `MAX_DEPTH` in debug builds).
const ANALYSIS_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The depth of a syntax tree, without recursion.
fn tree_depth(tree: &tree_sitter::Tree) -> usize {
    let mut cursor = tree.walk();
    let (mut depth, mut max) = (0usize, 0usize);
    loop {
        max = max.max(depth);
        if cursor.goto_first_child() {
            depth += 1;
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return max;
            }
            depth -= 1;
        }
    }
}

/// One file to scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path (used for language detection and in results).
    pub path: String,
    /// Source text.
    pub content: String,
}

/// Why one file could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The extension names no supported language.
    #[error(
        "`{path}`: unsupported file type; supported extensions: .py, .java, .js/.mjs/.cjs/.jsx, .go"
    )]
    UnsupportedLanguage {
        /// The file.
        path: String,
    },
    /// The rule set has no rules for the language.
    #[error("`{path}`: no rules loaded for {language}")]
    NoRules {
        /// The file.
        path: String,
        /// The language.
        language: String,
    },
    /// The grammar could not be loaded or the parser gave up.
    #[error("`{path}`: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOutcome {
    /// The file.
    pub path: String,
    /// Its language, when supported.
    pub language: Option<String>,
    /// Number of findings.
    pub findings: usize,
    /// Whether the parser recovered from syntax errors.
    pub syntax_errors: bool,
    /// Why it was not scanned.
    pub error: Option<String>,
}

/// The result of scanning a set of files.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// All findings, by file then position.
    pub findings: Vec<Finding>,
    /// One outcome per input file.
    pub files: Vec<FileOutcome>,
}

/// A scanner over a rule set (cheap to clone: the rules are shared).
#[derive(Debug, Clone)]
pub struct Scanner {
    rules: Arc<RuleSet>,
}

impl Scanner {
    /// A scanner with these rules.
    pub fn new(rules: RuleSet) -> Self {
        Scanner {
            rules: Arc::new(rules),
        }
    }

    /// A scanner with the builtin rules.
    ///
    /// # Errors
    ///
    /// When the embedded rule files are invalid.
    pub fn builtin() -> Result<Self, RuleError> {
        Ok(Scanner::new(RuleSet::builtin()?))
    }

    /// The rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Scans one file's text.
    ///
    /// # Errors
    ///
    /// When the language is not supported or the file cannot be parsed.
    pub fn scan_source(&self, path: &str, content: &str) -> Result<Vec<Finding>, ScanError> {
        self.scan_with_status(path, content).map(|(f, _)| f)
    }

    fn scan_with_status(
        &self,
        path: &str,
        content: &str,
    ) -> Result<(Vec<Finding>, bool), ScanError> {
        let language =
            Language::from_path(Path::new(path)).ok_or_else(|| ScanError::UnsupportedLanguage {
                path: path.to_owned(),
            })?;
        let rules = self
            .rules
            .language(language)
            .ok_or_else(|| ScanError::NoRules {
                path: path.to_owned(),
                language: language.name().to_owned(),
            })?;
        let mut parser = tree_sitter::Parser::new();
        parser
            .set_language(&language.grammar())
            .map_err(|e| ScanError::Parse {
                path: path.to_owned(),
                reason: format!("cannot load the {} grammar: {e}", language.name()),
            })?;
        let tree = parser
            .parse(content, None)
            .ok_or_else(|| ScanError::Parse {
                path: path.to_owned(),
                reason: "the parser returned no tree".to_owned(),
            })?;
        let depth = tree_depth(&tree);
        if depth > MAX_DEPTH {
            return Err(ScanError::Parse {
                path: path.to_owned(),
                reason: format!(
                    "syntax tree nested {depth} levels deep (more than {MAX_DEPTH}: generated or minified code?); not analysed"
                ),
            });
        }
        // The analysis recurses over the tree: give it a stack of its own.
        let raw = std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("code-security-analysis".to_owned())
                .stack_size(ANALYSIS_STACK_BYTES)
                .spawn_scoped(scope, || analyse(language, rules, content, &tree));
            match worker {
                Ok(handle) => handle.join().map_err(|_| ScanError::Parse {
                    path: path.to_owned(),
                    reason: "the analysis panicked; please report this file".to_owned(),
                }),
                Err(_) => Ok(analyse(language, rules, content, &tree)),
            }
        })?;
        let mut findings = Vec::with_capacity(raw.len());
        for r in raw {
            let Some(category) = self.rules.category(&r.category) else {
                continue;
            };
            findings.push(Finding {
                rule_id: r.rule_id,
                cwe: category.cwe,
                severity: category.severity.clone(),
                category: r.category,
                language: language.name().to_owned(),
                path: path.to_owned(),
                message: r.message,
                start_line: r.start.0,
                start_column: r.start.1,
                end_line: r.end.0,
                end_column: r.end.1,
                snippet: r.snippet,
                source: r.source.map(|s| FlowSource {
                    kind: s.kind,
                    text: s.text,
                    line: s.line,
                    column: s.column,
                }),
            });
        }
        findings.sort_by_key(|f| (f.start_line, f.start_column, f.rule_id.clone()));
        Ok((findings, tree.root_node().has_error()))
    }

    /// Scans files; a file that cannot be scanned is reported in its
    /// outcome and does not stop the others.
    pub fn scan_files(&self, files: &[SourceFile]) -> ScanReport {
        let mut report = ScanReport::default();
        for file in files {
            let language = Language::from_path(Path::new(&file.path)).map(|l| l.name().to_owned());
            match self.scan_with_status(&file.path, &file.content) {
                Ok((findings, syntax_errors)) => {
                    report.files.push(FileOutcome {
                        path: file.path.clone(),
                        language,
                        findings: findings.len(),
                        syntax_errors,
                        error: None,
                    });
                    report.findings.extend(findings);
                }
                Err(error) => report.files.push(FileOutcome {
                    path: file.path.clone(),
                    language,
                    findings: 0,
                    syntax_errors: false,
                    error: Some(error.to_string()),
                }),
            }
        }
        report
    }
}

impl ScanReport {
    /// Counts by CWE, category, severity and language, and the files that
    /// could not be scanned.
    pub fn summary(&self) -> Value {
        let mut by_cwe: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_category: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_severity: BTreeMap<String, usize> =
            ["high", "medium", "low"].map(|s| (s.to_owned(), 0)).into();
        let mut by_language: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for finding in &self.findings {
            *by_cwe.entry(format!("CWE-{}", finding.cwe)).or_default() += 1;
            *by_category.entry(finding.category.clone()).or_default() += 1;
            *by_severity.entry(finding.severity.clone()).or_default() += 1;
            by_language.entry(finding.language.clone()).or_default().1 += 1;
        }
        for file in &self.files {
            if let (Some(language), None) = (&file.language, &file.error) {
                by_language.entry(language.clone()).or_default().0 += 1;
            }
        }
        let errors: Vec<Value> = self
            .files
            .iter()
            .filter_map(|f| {
                f.error
                    .as_ref()
                    .map(|e| json!({ "path": f.path, "reason": e }))
            })
            .collect();
        json!({
            "files": self.files.len(),
            "files_scanned": self.files.iter().filter(|f| f.error.is_none()).count(),
            "files_with_syntax_errors": self.files.iter().filter(|f| f.syntax_errors).count(),
            "findings": self.findings.len(),
            "by_cwe": by_cwe,
            "by_category": by_category,
            "by_severity": by_severity,
            "by_language": by_language
                .into_iter()
                .map(|(k, (files, findings))| (k, json!({ "files": files, "findings": findings })))
                .collect::<serde_json::Map<String, Value>>(),
            "errors": errors,
        })
    }
}
