//! Supported languages: file extensions, tree-sitter grammars and the node
//! kinds the analysis needs to know per grammar.

use std::path::Path;

/// A language the scanner analyses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Language {
    /// Python 3.
    Python,
    /// Java.
    Java,
    /// JavaScript (and JSX).
    JavaScript,
    /// Go.
    Go,
}

impl Language {
    /// Every supported language.
    pub const ALL: [Language; 4] = [
        Language::Python,
        Language::Java,
        Language::JavaScript,
        Language::Go,
    ];

    /// The language of a file, from its extension.
    pub fn from_path(path: &Path) -> Option<Language> {
        match path.extension()?.to_str()? {
            "py" => Some(Language::Python),
            "java" => Some(Language::Java),
            "js" | "mjs" | "cjs" | "jsx" => Some(Language::JavaScript),
            "go" => Some(Language::Go),
            _ => None,
        }
    }

    /// The language named `name` (`python`, `java`, `javascript`, `go`).
    pub fn from_name(name: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Lower-case name, as in rule files and summaries.
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Java => "java",
            Language::JavaScript => "javascript",
            Language::Go => "go",
        }
    }

    /// The tree-sitter grammar.
    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::Java => tree_sitter_java::LANGUAGE.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }

    /// Node kinds that start a new function body (analysed on their own).
    pub(crate) fn is_function(self, kind: &str) -> bool {
        match self {
            Language::Python => matches!(kind, "function_definition" | "lambda"),
            Language::Java => matches!(
                kind,
                "method_declaration" | "constructor_declaration" | "lambda_expression"
            ),
            Language::JavaScript => matches!(
                kind,
                "function_declaration"
                    | "function_expression"
                    | "arrow_function"
                    | "method_definition"
                    | "generator_function_declaration"
                    | "generator_function"
                    | "function"
            ),
            Language::Go => matches!(
                kind,
                "function_declaration" | "method_declaration" | "func_literal"
            ),
        }
    }
}
