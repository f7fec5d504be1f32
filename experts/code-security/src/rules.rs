//! Rule data: per-language sources, sanitizers, sinks, container models and
//! pattern rules, read from JSON files (`rules/<language>.json`) and compiled
//! into matchers.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

use crate::lang::Language;
use crate::path::PathPattern;

/// Builtin category table (`rules/categories.json`).
const CATEGORIES: &str = include_str!("../rules/categories.json");
/// Builtin rule files, one per language.
const BUILTIN: [(Language, &str); 4] = [
    (Language::Python, include_str!("../rules/python.json")),
    (Language::Java, include_str!("../rules/java.json")),
    (
        Language::JavaScript,
        include_str!("../rules/javascript.json"),
    ),
    (Language::Go, include_str!("../rules/go.json")),
];

/// Why a rule file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The file is not valid JSON of the rule-file shape.
    #[error("rule file `{file}` is not valid: {source}")]
    Json {
        /// The file (or builtin name).
        file: String,
        /// The parse error with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A regular expression in a rule does not compile.
    #[error("rule `{rule}` in `{file}`: field `{field}` is not a valid regex: {source}")]
    Regex {
        /// The file.
        file: String,
        /// The rule id.
        rule: String,
        /// The field holding the regex.
        field: &'static str,
        /// The regex error.
        #[source]
        source: regex::Error,
    },
    /// A rule names a category the category table does not define.
    #[error("rule `{rule}` in `{file}` has unknown category `{category}`; known: {known}")]
    UnknownCategory {
        /// The file.
        file: String,
        /// The rule id.
        rule: String,
        /// The unknown category.
        category: String,
        /// Known categories, comma-separated.
        known: String,
    },
    /// The `language` field names no supported language.
    #[error(
        "rule file `{file}` is for unknown language `{language}`; known: python, java, javascript, go"
    )]
    UnknownLanguage {
        /// The file.
        file: String,
        /// The language given.
        language: String,
    },
}

/// One vulnerability category (`sqli`, `xss`, ...) with its CWE.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// CWE number (OWASP Benchmark mapping).
    pub cwe: u32,
    /// Human-readable name.
    pub name: String,
    /// `high`, `medium` or `low`.
    pub severity: String,
}

/// Where a sink or pattern applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Target {
    /// A call (function, method or constructor).
    #[default]
    Call,
    /// An assignment target (`session['k'] = v`, `el.innerHTML = v`).
    Assign,
    /// A `return` from a function with a matching decorator (web routes).
    Return,
    /// A composite literal (Go `http.Cookie{...}`).
    Composite,
}

/// A taint source as written in a rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSpec {
    pattern: String,
    kind: String,
}

/// A sanitizer as written in a rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SanitizerSpec {
    pattern: String,
    /// Categories it neutralises; empty = all.
    categories: Vec<String>,
}

/// A keyed container operation (`d.get('k')`, `m.put(k, v)`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyedSpec {
    pattern: String,
    keys: Vec<usize>,
    #[serde(default)]
    value: Option<usize>,
}

/// Container models as written in a rule file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerSpec {
    #[serde(default)]
    append: Vec<String>,
    #[serde(default)]
    extend: Vec<String>,
    #[serde(default)]
    pop: Vec<String>,
    #[serde(default)]
    pop_front: Vec<String>,
    #[serde(default)]
    insert: Vec<String>,
    #[serde(default)]
    key_set: Vec<KeyedSpec>,
    #[serde(default)]
    key_get: Vec<KeyedSpec>,
}

/// A taint sink as written in a rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkSpec {
    id: String,
    category: String,
    #[serde(default)]
    on: Target,
    #[serde(default)]
    patterns: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    args: Option<Vec<usize>>,
    #[serde(default)]
    args_from: Option<usize>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    receiver: bool,
    #[serde(default)]
    when_keyword: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    unless_keyword: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    unless_args: BTreeMap<usize, String>,
    #[serde(default)]
    when_text: Option<String>,
    #[serde(default)]
    unless_text: Option<String>,
    #[serde(default)]
    first_arg_regex: Option<String>,
    #[serde(default)]
    decorators: Vec<String>,
    message: String,
}

/// A pattern (non-taint) rule as written in a rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternSpec {
    id: String,
    category: String,
    #[serde(default)]
    on: Target,
    #[serde(default)]
    patterns: Vec<String>,
    #[serde(default)]
    arg: Option<usize>,
    #[serde(default)]
    arg_regex: Option<String>,
    #[serde(default)]
    keyword: Option<String>,
    #[serde(default)]
    keyword_regex: Option<String>,
    #[serde(default)]
    keyword_missing: bool,
    #[serde(default)]
    unless_keyword: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    when_text: Option<String>,
    #[serde(default)]
    unless_text: Option<String>,
    #[serde(default)]
    file_regex: Option<String>,
    #[serde(default)]
    name_regex: Option<String>,
    #[serde(default)]
    value_regex: Option<String>,
    message: String,
}

/// A whole rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFileSpec {
    language: String,
    #[serde(default)]
    sources: Vec<SourceSpec>,
    #[serde(default)]
    sanitizers: Vec<SanitizerSpec>,
    #[serde(default)]
    validators: Vec<String>,
    #[serde(default)]
    terminators: Vec<String>,
    #[serde(default)]
    containers: ContainerSpec,
    #[serde(default)]
    sinks: Vec<SinkSpec>,
    #[serde(default)]
    patterns: Vec<PatternSpec>,
}

// === compiled rules ===

/// A compiled taint source.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// Access path matched as a prefix (`request.args`, `*.getParameter`).
    pub(crate) pattern: PathPattern,
    /// What kind of input it is (for messages).
    pub(crate) kind: String,
}

/// A compiled sanitizer.
#[derive(Debug, Clone)]
pub(crate) struct Sanitizer {
    /// Callee matched as a suffix.
    pub(crate) pattern: PathPattern,
    /// Categories neutralised; empty = all.
    pub(crate) categories: Vec<String>,
}

/// A compiled keyed container operation.
#[derive(Debug, Clone)]
pub(crate) struct Keyed {
    /// Method matched as a suffix.
    pub(crate) pattern: PathPattern,
    /// Positions of the key arguments.
    pub(crate) keys: Vec<usize>,
    /// Position of the stored value (setters).
    pub(crate) value: Option<usize>,
}

/// Compiled container models.
#[derive(Debug, Clone, Default)]
pub(crate) struct Containers {
    /// Adds its arguments as a new last element.
    pub(crate) append: Vec<PathPattern>,
    /// Adds every element of its argument.
    pub(crate) extend: Vec<PathPattern>,
    /// Removes an element (at the constant index, or the last).
    pub(crate) pop: Vec<PathPattern>,
    /// Removes the first element.
    pub(crate) pop_front: Vec<PathPattern>,
    /// Inserts its second argument at the constant index of the first.
    pub(crate) insert: Vec<PathPattern>,
    /// Stores a value under constant keys.
    pub(crate) key_set: Vec<Keyed>,
    /// Reads the value under constant keys.
    pub(crate) key_get: Vec<Keyed>,
}

/// Conditions shared by sinks and pattern rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    /// Keyword argument that must have one of these values.
    pub(crate) when_keyword: BTreeMap<String, Vec<String>>,
    /// Keyword argument whose value (one of these) disables the rule.
    pub(crate) unless_keyword: BTreeMap<String, Vec<String>>,
    /// Positional arguments whose text matching the regex disables the rule.
    pub(crate) unless_args: Vec<(usize, Regex)>,
    /// The enclosing function's text must match.
    pub(crate) when_text: Option<Regex>,
    /// The enclosing function's text must not match.
    pub(crate) unless_text: Option<Regex>,
    /// The whole file's text must match.
    pub(crate) file_regex: Option<Regex>,
}

/// What every sink and pattern rule has.
#[derive(Debug, Clone)]
pub(crate) struct RuleHead {
    /// Rule id (SARIF `ruleId`).
    pub(crate) id: String,
    /// Category key (`sqli`, ...).
    pub(crate) category: String,
    /// Where it applies.
    pub(crate) on: Target,
    /// Callee (or assignment target) patterns.
    pub(crate) patterns: Vec<PathPattern>,
    /// Extra conditions.
    pub(crate) conditions: Conditions,
    /// Finding message.
    pub(crate) message: String,
}

/// A compiled taint sink.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    /// Id, category, target, patterns, conditions, message.
    pub(crate) head: RuleHead,
    /// Callees excluded even when a pattern matches.
    pub(crate) exclude: Vec<PathPattern>,
    /// Positional arguments checked (`None` = all).
    pub(crate) args: Option<Vec<usize>>,
    /// Check every positional argument from this index on.
    pub(crate) args_from: Option<usize>,
    /// Keyword arguments checked.
    pub(crate) keywords: Vec<String>,
    /// Whether the receiver's taint counts.
    pub(crate) receiver: bool,
    /// The first argument's text must match (e.g. a response writer).
    pub(crate) first_arg: Option<Regex>,
    /// Return sinks: the function must carry one of these decorators.
    pub(crate) decorators: Vec<PathPattern>,
}

/// A compiled pattern rule.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    /// Id, category, target, patterns, conditions, message.
    pub(crate) head: RuleHead,
    /// Positional argument tested by `arg_regex`.
    pub(crate) arg: Option<usize>,
    /// Regex the argument's text must match.
    pub(crate) arg_regex: Option<Regex>,
    /// Keyword (or struct field / option) tested.
    pub(crate) keyword: Option<String>,
    /// Regex the keyword's value text must match.
    pub(crate) keyword_regex: Option<Regex>,
    /// Whether a missing keyword also fires.
    pub(crate) keyword_missing: bool,
    /// Assignments: the target name must match.
    pub(crate) name_regex: Option<Regex>,
    /// Assignments: the value text must match.
    pub(crate) value_regex: Option<Regex>,
}

/// The compiled rules of one language.
#[derive(Debug, Clone)]
pub(crate) struct LanguageRules {
    /// Sources.
    pub(crate) sources: Vec<Source>,
    /// Sanitizers.
    pub(crate) sanitizers: Vec<Sanitizer>,
    /// Calls whose truth validates their arguments and receiver (allow-lists, regex checks).
    pub(crate) validators: Vec<PathPattern>,
    /// Calls that end the function (`abort`, `sys.exit`).
    pub(crate) terminators: Vec<PathPattern>,
    /// Container models.
    pub(crate) containers: Containers,
    /// Sinks.
    pub(crate) sinks: Vec<Sink>,
    /// Pattern rules.
    pub(crate) patterns: Vec<Pattern>,
}

/// All rules: the category table and each language's rules.
#[derive(Debug, Clone)]
pub struct RuleSet {
    categories: BTreeMap<String, Category>,
    languages: BTreeMap<Language, LanguageRules>,
}

impl RuleSet {
    /// The builtin rules (`rules/*.json`, embedded at build time).
    ///
    /// # Errors
    ///
    /// When a builtin file is invalid (a build of this crate with broken data).
    pub fn builtin() -> Result<Self, RuleError> {
        let mut set = RuleSet::with_categories_json("categories.json", CATEGORIES)?;
        for (_, text) in BUILTIN {
            set.add_json("builtin", text)?;
        }
        Ok(set)
    }

    /// An empty rule set with the category table given as JSON.
    ///
    /// # Errors
    ///
    /// When the JSON is not a category table.
    pub fn with_categories_json(file: &str, text: &str) -> Result<Self, RuleError> {
        let categories = serde_json::from_str(text).map_err(|source| RuleError::Json {
            file: file.to_owned(),
            source,
        })?;
        Ok(RuleSet {
            categories,
            languages: BTreeMap::new(),
        })
    }

    /// Adds (replaces) one language's rules from a rule file's JSON text.
    ///
    /// # Errors
    ///
    /// When the JSON is malformed, a regex does not compile, a category is
    /// unknown or the language is not supported.
    pub fn add_json(&mut self, file: &str, text: &str) -> Result<(), RuleError> {
        let spec: RuleFileSpec = serde_json::from_str(text).map_err(|source| RuleError::Json {
            file: file.to_owned(),
            source,
        })?;
        let language =
            Language::from_name(&spec.language).ok_or_else(|| RuleError::UnknownLanguage {
                file: file.to_owned(),
                language: spec.language.clone(),
            })?;
        let compiled = self.compile(file, spec)?;
        self.languages.insert(language, compiled);
        Ok(())
    }

    /// The category table.
    pub fn categories(&self) -> &BTreeMap<String, Category> {
        &self.categories
    }

    /// One category.
    pub fn category(&self, key: &str) -> Option<&Category> {
        self.categories.get(key)
    }

    /// One language's rules.
    pub(crate) fn language(&self, language: Language) -> Option<&LanguageRules> {
        self.languages.get(&language)
    }

    /// Every sink and pattern rule: (id, category, message), sorted by id.
    pub fn rule_descriptors(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for rules in self.languages.values() {
            let heads = rules.sinks.iter().map(|s| &s.head);
            for head in heads.chain(rules.patterns.iter().map(|p| &p.head)) {
                out.push((head.id.clone(), head.category.clone(), head.message.clone()));
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    fn check_category(&self, file: &str, rule: &str, category: &str) -> Result<(), RuleError> {
        if self.categories.contains_key(category) {
            return Ok(());
        }
        Err(RuleError::UnknownCategory {
            file: file.to_owned(),
            rule: rule.to_owned(),
            category: category.to_owned(),
            known: self
                .categories
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    fn compile(&self, file: &str, spec: RuleFileSpec) -> Result<LanguageRules, RuleError> {
        let patterns = |list: &[String]| list.iter().map(|p| PathPattern::parse(p)).collect();
        let keyed = |list: &[KeyedSpec]| {
            list.iter()
                .map(|k| Keyed {
                    pattern: PathPattern::parse(&k.pattern),
                    keys: k.keys.clone(),
                    value: k.value,
                })
                .collect()
        };
        let mut sinks = Vec::new();
        for s in spec.sinks {
            self.check_category(file, &s.id, &s.category)?;
            let re = |field: &'static str, value: &Option<String>| {
                compile_regex(file, &s.id, field, value.as_deref())
            };
            let mut unless_args = Vec::new();
            for (index, pattern) in &s.unless_args {
                let regex = compile_regex(file, &s.id, "unless_args", Some(pattern))?;
                unless_args.extend(regex.map(|r| (*index, r)));
            }
            sinks.push(Sink {
                first_arg: re("first_arg_regex", &s.first_arg_regex)?,
                head: RuleHead {
                    conditions: Conditions {
                        when_keyword: s.when_keyword.clone(),
                        unless_keyword: s.unless_keyword.clone(),
                        unless_args,
                        when_text: re("when_text", &s.when_text)?,
                        unless_text: re("unless_text", &s.unless_text)?,
                        file_regex: None,
                    },
                    patterns: patterns(&s.patterns),
                    id: s.id,
                    category: s.category,
                    on: s.on,
                    message: s.message,
                },
                exclude: patterns(&s.exclude),
                decorators: patterns(&s.decorators),
                args: s.args,
                args_from: s.args_from,
                keywords: s.keywords,
                receiver: s.receiver,
            });
        }
        let mut pattern_rules = Vec::new();
        for p in spec.patterns {
            self.check_category(file, &p.id, &p.category)?;
            let re = |field: &'static str, value: &Option<String>| {
                compile_regex(file, &p.id, field, value.as_deref())
            };
            pattern_rules.push(Pattern {
                arg_regex: re("arg_regex", &p.arg_regex)?,
                keyword_regex: re("keyword_regex", &p.keyword_regex)?,
                name_regex: re("name_regex", &p.name_regex)?,
                value_regex: re("value_regex", &p.value_regex)?,
                head: RuleHead {
                    conditions: Conditions {
                        when_keyword: BTreeMap::new(),
                        unless_keyword: p.unless_keyword.clone(),
                        unless_args: Vec::new(),
                        when_text: re("when_text", &p.when_text)?,
                        unless_text: re("unless_text", &p.unless_text)?,
                        file_regex: re("file_regex", &p.file_regex)?,
                    },
                    patterns: patterns(&p.patterns),
                    id: p.id,
                    category: p.category,
                    on: p.on,
                    message: p.message,
                },
                arg: p.arg,
                keyword: p.keyword,
                keyword_missing: p.keyword_missing,
            });
        }
        for sanitizer in &spec.sanitizers {
            for category in &sanitizer.categories {
                self.check_category(file, &sanitizer.pattern, category)?;
            }
        }
        Ok(LanguageRules {
            sources: spec
                .sources
                .iter()
                .map(|s| Source {
                    pattern: PathPattern::parse(&s.pattern),
                    kind: s.kind.clone(),
                })
                .collect(),
            sanitizers: spec
                .sanitizers
                .iter()
                .map(|s| Sanitizer {
                    pattern: PathPattern::parse(&s.pattern),
                    categories: s.categories.clone(),
                })
                .collect(),
            validators: patterns(&spec.validators),
            terminators: patterns(&spec.terminators),
            containers: Containers {
                append: patterns(&spec.containers.append),
                extend: patterns(&spec.containers.extend),
                pop: patterns(&spec.containers.pop),
                pop_front: patterns(&spec.containers.pop_front),
                insert: patterns(&spec.containers.insert),
                key_set: keyed(&spec.containers.key_set),
                key_get: keyed(&spec.containers.key_get),
            },
            sinks,
            patterns: pattern_rules,
        })
    }
}

fn compile_regex(
    file: &str,
    rule: &str,
    field: &'static str,
    pattern: Option<&str>,
) -> Result<Option<Regex>, RuleError> {
    pattern
        .map(|p| {
            Regex::new(p).map_err(|source| RuleError::Regex {
                file: file.to_owned(),
                rule: rule.to_owned(),
                field,
                source,
            })
        })
        .transpose()
}
