//! [`Diagnostic`]: one located problem in a workflow, its rustc-style
//! rendering, and [`Diagnostics`], the error type of loading and planning.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

use crate::source::Span;

/// How bad a problem is: errors stop loading, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The workflow cannot be used.
    Error,
    /// The workflow works, but probably not as intended.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Severity::Error => f.write_str("error"),
            Severity::Warning => f.write_str("warning"),
        }
    }
}

/// A secondary location of a diagnostic (e.g. the other steps of a cycle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// 1-based line of the labelled text.
    pub line: usize,
    /// 1-based column (in characters) of the labelled text.
    pub column: usize,
    /// Byte range of the labelled text in the source.
    pub span: Range<usize>,
    /// What this location has to do with the problem.
    pub message: String,
}

/// One problem found in a workflow file, with its location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code, e.g. `SYN-W0004`; see [`crate::codes`].
    pub code: &'static str,
    /// What is wrong, naming the offending value.
    pub message: String,
    /// The file name given to the loader.
    pub file: String,
    /// 1-based line of the primary location.
    pub line: usize,
    /// 1-based column (in characters) of the primary location.
    pub column: usize,
    /// Byte range of the primary location in the source (for underlining).
    pub span: Range<usize>,
    /// Short text printed under the primary location (e.g. "unknown step").
    pub label: Option<String>,
    /// Further locations involved.
    pub labels: Vec<Label>,
    /// How to fix it, e.g. the valid names.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span` of `file`.
    pub fn error(code: &'static str, file: &str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Error, code, file, span, message.into())
    }

    /// A warning at `span` of `file`.
    pub fn warning(code: &'static str, file: &str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Warning, code, file, span, message.into())
    }

    fn new(
        severity: Severity,
        code: &'static str,
        file: &str,
        span: Span,
        message: String,
    ) -> Self {
        Diagnostic {
            severity,
            code,
            message,
            file: file.to_owned(),
            line: span.line.max(1),
            column: span.column.max(1),
            span: span.range(),
            label: None,
            labels: Vec::new(),
            help: None,
        }
    }

    /// Sets the text under the primary location.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a secondary location.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            line: span.line.max(1),
            column: span.column.max(1),
            span: span.range(),
            message: message.into(),
        });
        self
    }

    /// Sets the help text.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic rustc-style against the text it was found in:
    ///
    /// ```text
    /// error[SYN-W0004]: step `enrich` needs unknown step `extrct`
    ///   --> flows/ioc.yaml:9:13
    ///    |
    ///  9 |     needs: [extrct]
    ///    |             ^^^^^^ unknown step
    ///    = help: did you mean `extract`? known steps: `extract`, `enrich`
    /// ```
    pub fn render(&self, source: &str) -> String {
        let mut marks: Vec<Mark<'_>> = vec![Mark {
            line: self.line,
            column: self.column,
            span: self.span.clone(),
            message: self.label.as_deref().unwrap_or(""),
            primary: true,
        }];
        for label in &self.labels {
            marks.push(Mark {
                line: label.line,
                column: label.column,
                span: label.span.clone(),
                message: &label.message,
                primary: false,
            });
        }
        marks.sort_by_key(|mark| (mark.line, mark.column));
        let widest_line = marks.iter().map(|mark| mark.line).max().unwrap_or(1);
        let width = widest_line.to_string().len();
        let gutter = " ".repeat(width + 1);

        let mut out = format!("{}[{}]: {}\n", self.severity, self.code, self.message);
        out.push_str(&format!(
            "{gutter}--> {}:{}:{}\n",
            self.file, self.line, self.column
        ));
        out.push_str(&format!("{gutter} |\n"));
        let mut printed_line = 0;
        for mark in &marks {
            let Some(text) = source_line(source, mark.line) else {
                continue;
            };
            if mark.line != printed_line {
                if printed_line != 0 && mark.line > printed_line + 1 {
                    out.push_str(&format!("{gutter}...\n"));
                }
                out.push_str(&format!(
                    " {:>width$} | {}\n",
                    mark.line,
                    expand_tabs(text).trim_end()
                ));
                printed_line = mark.line;
            }
            let (indent, length) = underline_geometry(text, source, mark);
            let marker = if mark.primary { "^" } else { "-" };
            let mut underline =
                format!("{gutter} | {}{}", " ".repeat(indent), marker.repeat(length));
            if !mark.message.is_empty() {
                underline.push(' ');
                underline.push_str(mark.message);
            }
            out.push_str(underline.trim_end());
            out.push('\n');
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("{gutter} = help: {help}\n"));
        }
        out
    }
}

/// One underlined location while rendering.
struct Mark<'a> {
    line: usize,
    column: usize,
    span: Range<usize>,
    message: &'a str,
    primary: bool,
}

fn source_line(source: &str, line: usize) -> Option<&str> {
    let text = source.split('\n').nth(line.checked_sub(1)?)?;
    Some(text.strip_suffix('\r').unwrap_or(text))
}

fn expand_tabs(text: &str) -> String {
    text.replace('\t', "    ")
}

/// Display columns before the underline and its length, in the tab-expanded line.
fn underline_geometry(text: &str, source: &str, mark: &Mark<'_>) -> (usize, usize) {
    let mut indent = 0;
    let mut characters = text.chars();
    for _ in 1..mark.column {
        match characters.next() {
            Some('\t') => indent += 4,
            Some(_) => indent += 1,
            None => break,
        }
    }
    // Characters of the span that lie on this line.
    let start = mark.span.start.min(source.len());
    let end = mark.span.end.min(source.len()).max(start);
    let mut length = 0;
    if source.is_char_boundary(start) && source.is_char_boundary(end) {
        for character in source[start..end].chars() {
            if character == '\n' || character == '\r' {
                break;
            }
            length += if character == '\t' { 4 } else { 1 };
        }
    }
    (indent, length.max(1))
}

impl fmt::Display for Diagnostic {
    /// One line: `file:line:column: error[CODE]: message`, then the help.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]: {}",
            self.file, self.line, self.column, self.severity, self.code, self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

/// Every problem found in one workflow, in source order; the error type of
/// [`crate::load`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no diagnostic.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The diagnostics in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Renders every diagnostic (see [`Diagnostic::render`]), separated by
    /// blank lines, followed by a summary line.
    pub fn render(&self, source: &str) -> String {
        let mut out = String::new();
        for diagnostic in &self.0 {
            out.push_str(&diagnostic.render(source));
            out.push('\n');
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// `2 errors, 1 warning`.
    pub fn summary(&self) -> String {
        let errors = self.0.iter().filter(|d| d.is_error()).count();
        let warnings = self.0.len() - errors;
        let plural = |count: usize, word: &str| {
            if count == 1 {
                format!("{count} {word}")
            } else {
                format!("{count} {word}s")
            }
        };
        format!(
            "{}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    }

    /// Sorts by position (line, column), keeping the order of equal positions.
    pub(crate) fn sort(&mut self) {
        self.0.sort_by_key(|d| (d.line, d.column));
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.0 {
            writeln!(f, "{diagnostic}")?;
        }
        write!(f, "{}", self.summary())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceMap;

    #[test]
    fn renders_like_rustc() {
        let source = "name: x\nsteps:\n  enrich:\n    needs: [extrct]\n";
        let map = SourceMap::new(source);
        let start = source.find("extrct").unwrap();
        let diagnostic = Diagnostic::error(
            crate::codes::UNKNOWN_NEED,
            "flows/ioc.yaml",
            map.span(start, start + 6),
            "step `enrich` needs unknown step `extrct`",
        )
        .with_label("unknown step")
        .with_help("did you mean `extract`? known steps: `extract`, `enrich`");
        assert_eq!(
            diagnostic.render(source),
            "error[SYN-W0004]: step `enrich` needs unknown step `extrct`\n\
             \x20 --> flows/ioc.yaml:4:13\n\
             \x20  |\n\
             \x204 |     needs: [extrct]\n\
             \x20  |             ^^^^^^ unknown step\n\
             \x20  = help: did you mean `extract`? known steps: `extract`, `enrich`\n"
        );
    }

    #[test]
    fn serializes_for_json_output() {
        let diagnostic = Diagnostic::warning("SYN-W0018", "a.yaml", Span::START, "twice");
        let json = serde_json::to_value(&diagnostic).unwrap();
        assert_eq!(json["severity"], "warning");
        assert_eq!(json["span"]["start"], 0);
        assert_eq!(json["line"], 1);
    }
}
