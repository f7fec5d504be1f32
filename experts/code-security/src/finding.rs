//! Findings: one rule match at one place in one file.

use serde::Serialize;

/// Where tainted data entered the function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowSource {
    /// Kind of input (`request parameter`, `cookie`, ...).
    pub kind: String,
    /// The source expression.
    pub text: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (bytes).
    pub column: usize,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Rule id (`python.sqli.execute`).
    pub rule_id: String,
    /// Category key (`sqli`).
    pub category: String,
    /// CWE number.
    pub cwe: u32,
    /// `high`, `medium` or `low`.
    pub severity: String,
    /// Language name.
    pub language: String,
    /// File path as given.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// 1-based start line.
    pub start_line: usize,
    /// 1-based start column (bytes).
    pub start_column: usize,
    /// 1-based end line.
    pub end_line: usize,
    /// 1-based end column (bytes).
    pub end_column: usize,
    /// First line of the matched code.
    pub snippet: String,
    /// For taint findings, where the data came from.
    pub source: Option<FlowSource>,
}
