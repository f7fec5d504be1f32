//! Rule files: the YAML format (a superset of Nosey Parker's rule files),
//! translation of Hyperscan/PCRE pattern syntax to Rust `regex`, and the
//! validated [`Rule`].
//!
//! A rule file holds `rules:`, a list of rules. Nosey Parker's fields are
//! `id`, `name`, `pattern`, `categories`, `description`, `examples`,
//! `negative_examples`, `references`; synod adds the optional `entity`,
//! `validator`, `confidence`, `level`, `keywords`, `context` and
//! `min_entropy`, `min_digits` (see the crate README).

use std::fmt;
use std::path::Path;

use marked_yaml::Spanned;
use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::classify::Level;
use crate::literals::required_literals;
use crate::validate::Validator;

/// The embedded rule files: `(name, YAML)`.
pub const BUILTIN_RULE_FILES: [(&str, &str); 3] = [
    ("rules/pii.yml", include_str!("../rules/pii.yml")),
    ("rules/secrets.yml", include_str!("../rules/secrets.yml")),
    (
        "rules/secrets-synod.yml",
        include_str!("../rules/secrets-synod.yml"),
    ),
];

/// Most bytes a compiled rule may take (the regex crate's size limit).
const REGEX_SIZE_LIMIT: usize = 8 << 20;
/// Least entropy (bits per byte) of values found by `generic` rules
/// without their own `min_entropy`: drops `aaaa…` placeholders, keeps
/// short passwords such as `open sesame` (2.8).
pub const GENERIC_MIN_ENTROPY: f64 = 2.5;
/// Keywords shorter than this are not worth prefiltering on.
const MIN_KEYWORD_LEN: usize = 3;

/// What kind of data a rule finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Personal data (email, phone, card, national id, ...).
    Pii,
    /// Credentials: keys, tokens, passwords, private keys.
    Secret,
    /// Identifiers that are not secret by themselves (account ids, bucket names).
    Identifier,
}

impl Category {
    /// Lowercase name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Pii => "pii",
            Category::Secret => "secret",
            Category::Identifier => "identifier",
        }
    }
}

/// One rule as written in a rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    id: Spanned<String>,
    name: String,
    pattern: Spanned<String>,
    #[serde(default)]
    entity: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    validator: Option<String>,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    keywords: Option<Vec<String>>,
    #[serde(default)]
    context: Vec<String>,
    #[serde(default)]
    min_entropy: Option<f64>,
    #[serde(default)]
    min_digits: Option<usize>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default, alias = "non_examples")]
    negative_examples: Vec<String>,
    #[serde(default)]
    references: Vec<String>,
}

/// A rule file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFileConfig {
    rules: Vec<RuleConfig>,
}

/// A validated, compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable id (`np.aws.1`, `pii.email`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Entity type reported on findings (`EMAIL_ADDRESS`, `SECRET`, ...).
    pub entity: String,
    /// What kind of data the rule finds.
    pub category: Category,
    /// Classification level of a document holding this finding.
    pub level: Level,
    /// Confidence of a finding before context adjustments (0..1).
    pub confidence: f64,
    /// Check run on each candidate; candidates that fail are dropped.
    pub validator: Option<Validator>,
    /// Lowercase literals of which every match contains at least one;
    /// empty means the rule runs on every text.
    pub keywords: Vec<String>,
    /// Lowercase words that raise confidence when they precede a match.
    pub context: Vec<String>,
    /// Least Shannon entropy (bits per byte) of the secret, if any.
    pub min_entropy: Option<f64>,
    /// When set, the rule runs only around runs of digits and separators
    /// (` -.()+`) holding at least this many digits (instead of keywords).
    pub min_digits: Option<usize>,
    /// Longest possible match in bytes (`None`: unbounded).
    pub max_len: Option<usize>,
    /// The rule file it came from.
    pub source: String,
    /// Examples the rule must find (checked by tests).
    pub examples: Vec<String>,
    /// Examples the rule must not find (checked by tests).
    pub negative_examples: Vec<String>,
    /// The compiled pattern (bytes, ASCII semantics, as Nosey Parker).
    pub regex: Regex,
}

/// Why a rule file could not be loaded. The message names the file, the
/// line, the rule and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The file (or embedded name).
    pub source: String,
    /// 1-based line of the offending value, when known.
    pub line: Option<usize>,
    /// The rule id, when the error is about one rule.
    pub rule_id: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(id) = &self.rule_id {
            write!(f, ": rule `{id}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RuleError {}

/// Every error of a rule set (all rules are checked, not only the first).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} rule error(s): {}", errors.len(), list(errors))]
pub struct RuleErrors {
    /// The errors, in file order.
    pub errors: Vec<RuleError>,
}

fn list(errors: &[RuleError]) -> String {
    let shown: Vec<String> = errors.iter().take(10).map(ToString::to_string).collect();
    let mut text = shown.join("; ");
    if errors.len() > 10 {
        text.push_str(&format!("; and {} more", errors.len() - 10));
    }
    text
}

/// Reads a rule file from disk and parses it.
///
/// # Errors
///
/// When the file cannot be read or any rule in it is invalid.
pub fn load_rule_file(path: &Path) -> Result<Vec<Rule>, RuleErrors> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| RuleErrors {
        errors: vec![RuleError {
            source: source.clone(),
            line: None,
            rule_id: None,
            message: format!("cannot read the rule file: {e}"),
        }],
    })?;
    parse_rule_file(&source, &text)
}

/// Parses the YAML text of one rule file (`source` names it in errors).
///
/// # Errors
///
/// Every invalid rule, each naming its line and what is wrong.
pub fn parse_rule_file(source: &str, text: &str) -> Result<Vec<Rule>, RuleErrors> {
    let file: RuleFileConfig = marked_yaml::from_yaml(0, text).map_err(|e| RuleErrors {
        errors: vec![RuleError {
            source: source.to_owned(),
            line: None,
            rule_id: None,
            message: format!(
                "not a valid rule file ({e}); expected `rules:` with a list of rules having `id`, `name` and `pattern`"
            ),
        }],
    })?;
    let mut rules = Vec::with_capacity(file.rules.len());
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for config in file.rules {
        let line = config.id.span().start().map(|m| m.line());
        if !seen.insert(config.id.as_str().to_owned()) {
            errors.push(RuleError {
                source: source.to_owned(),
                line,
                rule_id: Some(config.id.as_str().to_owned()),
                message: "duplicate rule id; give each rule its own `id`".to_owned(),
            });
            continue;
        }
        match build_rule(source, config) {
            Ok(rule) => rules.push(rule),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(RuleErrors { errors })
    }
}

fn build_rule(source: &str, config: RuleConfig) -> Result<Rule, RuleError> {
    let id = config.id.as_str().to_owned();
    let error = |line: Option<usize>, message: String| RuleError {
        source: source.to_owned(),
        line,
        rule_id: Some(id.clone()),
        message,
    };
    let pattern_line = config.pattern.span().start().map(|m| m.line());
    let translated = translate_pattern(config.pattern.as_str());
    let regex = RegexBuilder::new(&translated)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            error(
                pattern_line,
                format!("`pattern` is not a valid Rust regex after translation: {e}"),
            )
        })?;
    let categories: Vec<String> = config
        .categories
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let category = category_of(&categories);
    let validator = match &config.validator {
        None => None,
        Some(name) => Some(Validator::from_name(name).ok_or_else(|| {
            error(
                None,
                format!(
                    "unknown `validator: {name}`; known validators: {}",
                    Validator::NAMES.join(", ")
                ),
            )
        })?),
    };
    let level = match &config.level {
        None => default_level(category),
        Some(name) => Level::from_name(name).ok_or_else(|| {
            error(
                None,
                format!(
                    "unknown `level: {name}`; use public, internal, confidential or restricted"
                ),
            )
        })?,
    };
    let confidence = config
        .confidence
        .unwrap_or_else(|| default_confidence(&categories));
    if !(0.0..=1.0).contains(&confidence) {
        return Err(error(
            None,
            format!("`confidence: {confidence}` is outside 0..1"),
        ));
    }
    let keywords = match config.keywords {
        Some(words) => {
            if words.iter().any(String::is_empty) {
                return Err(error(
                    None,
                    "`keywords` holds an empty string; remove it (an empty list means the rule always runs)".to_owned(),
                ));
            }
            words.iter().map(|w| w.to_ascii_lowercase()).collect()
        }
        None => required_literals(&translated, MIN_KEYWORD_LEN).unwrap_or_default(),
    };
    let _ = (&config.description, &config.references);
    Ok(Rule {
        id: id.clone(),
        name: config.name,
        entity: config.entity.unwrap_or_else(|| default_entity(category)),
        category,
        level,
        confidence,
        validator,
        keywords,
        context: config
            .context
            .iter()
            .map(|w| w.to_ascii_lowercase())
            .collect(),
        // Generic rules (no fixed prefix) skip near-constant values.
        min_digits: config.min_digits,
        max_len: crate::literals::maximum_len(&translated),
        min_entropy: config.min_entropy.or_else(|| {
            categories
                .iter()
                .any(|c| c == "generic")
                .then_some(GENERIC_MIN_ENTROPY)
        }),
        source: source.to_owned(),
        examples: config.examples,
        negative_examples: config.negative_examples,
        regex,
    })
}

/// Category from Nosey Parker's `categories` (plus synod's `pii`).
fn category_of(categories: &[String]) -> Category {
    let has = |name: &str| categories.iter().any(|c| c == name);
    if has("pii") {
        Category::Pii
    } else if has("secret") || has("hashed") {
        Category::Secret
    } else if has("identifier") {
        Category::Identifier
    } else {
        Category::Secret
    }
}

fn default_level(category: Category) -> Level {
    match category {
        Category::Secret => Level::Restricted,
        Category::Pii => Level::Confidential,
        Category::Identifier => Level::Internal,
    }
}

fn default_entity(category: Category) -> String {
    match category {
        Category::Identifier => "IDENTIFIER".to_owned(),
        Category::Pii | Category::Secret => "SECRET".to_owned(),
    }
}

/// Fuzzy and generic rules have lower precision upstream.
fn default_confidence(categories: &[String]) -> f64 {
    let has = |name: &str| categories.iter().any(|c| c == name);
    if has("generic") {
        0.5
    } else if has("fuzzy") {
        0.7
    } else {
        0.9
    }
}

/// Translates Hyperscan/PCRE syntax the Rust `regex` crate lacks: removes
/// `(?# comments )` (Rust has `#` line comments in `(?x)` mode only).
pub fn translate_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = find_unescaped(rest, "(?#") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        match after.find(')') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Finds `needle` not preceded by an odd number of backslashes.
fn find_unescaped(haystack: &str, needle: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(pos) = haystack[from..].find(needle) {
        let at = from + pos;
        let backslashes = haystack[..at]
            .bytes()
            .rev()
            .take_while(|b| *b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_strips_inline_comments_only() {
        assert_eq!(translate_pattern(r"a (?# note ) b"), "a  b");
        assert_eq!(translate_pattern(r"a \(?# b"), r"a \(?# b");
    }

    #[test]
    fn errors_name_file_line_rule_and_problem() {
        let text = "rules:\n- id: bad.1\n  name: Bad\n  pattern: '(unclosed'\n- id: bad.2\n  name: Val\n  pattern: 'x'\n  validator: nope\n";
        let errors = parse_rule_file("custom.yml", text).unwrap_err().errors;
        assert_eq!(errors.len(), 2, "every bad rule is reported");
        let first = errors[0].to_string();
        assert!(
            first.starts_with("custom.yml:4: rule `bad.1`: `pattern` is not a valid Rust regex"),
            "{first}"
        );
        let second = errors[1].to_string();
        assert!(second.contains("rule `bad.2`"), "{second}");
        assert!(second.contains("unknown `validator: nope`"), "{second}");
        assert!(
            second.contains("luhn"),
            "lists the known validators: {second}"
        );
    }

    #[test]
    fn structural_errors_name_the_file_and_the_expected_shape() {
        let error = parse_rule_file("x.yml", "rules:\n- id: a\n  pattern: b\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("x.yml"), "{error}");
        assert!(error.contains("name"), "{error}");
        let error = parse_rule_file(
            "y.yml",
            "rules:\n- id: a\n  name: A\n  pattern: b\n  colour: red\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn duplicate_ids_and_bad_confidence_are_rejected() {
        let text = "rules:\n- {id: a, name: A, pattern: x}\n- {id: a, name: B, pattern: y}\n- {id: c, name: C, pattern: z, confidence: 2}\n";
        let errors = parse_rule_file("d.yml", text).unwrap_err().errors;
        assert_eq!(errors.len(), 2);
        assert!(errors[0].message.contains("duplicate rule id"));
        assert!(errors[1].message.contains("outside 0..1"));
    }

    #[test]
    fn missing_file_is_reported_with_its_path() {
        let error = load_rule_file(Path::new("/nonexistent/rules.yml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/nonexistent/rules.yml: cannot read"),
            "{error}"
        );
    }

    #[test]
    fn every_builtin_rule_compiles() {
        for (name, text) in BUILTIN_RULE_FILES {
            let rules = parse_rule_file(name, text).unwrap_or_else(|e| panic!("{e}"));
            assert!(!rules.is_empty(), "{name}");
        }
    }
}
