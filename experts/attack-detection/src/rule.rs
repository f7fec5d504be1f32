//! Sigma rules: YAML text to a compiled [`Rule`] (metadata, log source,
//! selections, condition), with errors that say why a rule cannot load.
//!
//! YAML is read with `yaml-rust2` (typed scalars, anchors) and converted to
//! JSON values. Sigma v1 rule collections (`action: global` followed by
//! documents) are merged as the specification describes. Correlation and
//! filter documents are reported as unsupported rather than skipped.

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

use crate::condition::{self, Expr};
use crate::event::Event;
use crate::logsource::LogSource;
use crate::matcher::{FieldCondition, Placeholders};
use crate::prefilter;

/// Severity of a rule, in Sigma's order.
pub const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

/// Position of `level` in [`LEVELS`] (higher is more severe); unknown levels rank lowest.
pub(crate) fn level_rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

/// The descriptive part of a rule.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleMeta {
    /// `id` (a UUID in SigmaHQ), or the file name when absent.
    pub id: String,
    /// `title`.
    pub title: String,
    /// `level`, lowercase (`medium` when absent).
    pub level: String,
    /// `status` (`stable`, `test`, `experimental`, …).
    pub status: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `author` (the Detection Rule License requires keeping it).
    pub author: Option<String>,
    /// `tags`, e.g. `attack.t1003.001`.
    pub tags: Vec<String>,
    /// Ids of `related` rules (derived, obsolete, renamed, …).
    pub related: Vec<String>,
    /// `falsepositives`.
    pub falsepositives: Vec<String>,
    /// `logsource`.
    pub logsource: LogSource,
    /// Where the rule came from (file path or name).
    pub source: String,
}

impl RuleMeta {
    /// ATT&CK technique ids from the tags, uppercase (`T1003.001`).
    pub fn techniques(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .filter(|t| {
                let b = t.as_bytes();
                b.len() >= 5
                    && (b[0] == b't' || b[0] == b'T')
                    && b[1..5].iter().all(u8::is_ascii_digit)
            })
            .map(|t| t.to_ascii_uppercase())
            .collect()
    }

    /// ATT&CK tactics from the tags (`credential-access`).
    pub fn tactics(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .map(|t| t.replace('_', "-"))
            .filter(|t| {
                KILL_CHAIN_TACTICS.contains(&t.as_str()) || NEWER_TACTICS.contains(&t.as_str())
            })
            .collect()
    }
}

/// ATT&CK Enterprise tactics in kill-chain order (the order of the matrix),
/// as short names (`credential-access`); shared by the experts that order or
/// weigh tactics (tracing, disposition).
pub const KILL_CHAIN_TACTICS: [&str; 14] = [
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

/// Tactic tags newer Sigma rules use besides [`KILL_CHAIN_TACTICS`].
const NEWER_TACTICS: [&str; 2] = ["stealth", "defense-impairment"];

/// A compiled Sigma rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Metadata.
    pub meta: RuleMeta,
    selections: Vec<Selection>,
    condition: Expr,
    /// Keys of the fields the detection tests, sorted.
    fields: Vec<String>,
}

/// A named detection item: a map (AND of field conditions) or a list (OR).
#[derive(Debug, Clone)]
enum Selection {
    All(Vec<FieldCondition>),
    Any(Vec<Selection>),
}

impl Selection {
    fn collect_fields(&self, out: &mut Vec<String>) {
        match self {
            Selection::All(conditions) => out.extend(
                conditions
                    .iter()
                    .filter_map(|c| c.field().map(str::to_owned)),
            ),
            Selection::Any(items) => items.iter().for_each(|s| s.collect_fields(out)),
        }
    }

    fn literals(&self) -> Option<Vec<String>> {
        match self {
            Selection::All(conditions) => {
                prefilter::best(conditions.iter().map(FieldCondition::literals))
            }
            Selection::Any(items) => prefilter::union(items.iter().map(Selection::literals)),
        }
    }

    fn matches(&self, event: &Event) -> bool {
        match self {
            Selection::All(conditions) => conditions.iter().all(|c| c.matches(event)),
            Selection::Any(items) => items.iter().any(|s| s.matches(event)),
        }
    }

    fn compile(name: &str, value: &Value, placeholders: &Placeholders) -> Result<Self, String> {
        match value {
            Value::Object(map) => {
                if map.is_empty() {
                    return Err(format!("selection `{name}` is empty"));
                }
                map.iter()
                    .map(|(key, v)| FieldCondition::compile(key, v, placeholders))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Selection::All)
                    .map_err(|e| format!("selection `{name}`: {e}"))
            }
            Value::Array(items) if items.is_empty() => {
                Err(format!("selection `{name}` is an empty list"))
            }
            Value::Array(items) => {
                let (maps, keywords): (Vec<&Value>, Vec<&Value>) =
                    items.iter().partition(|v| v.is_object() || v.is_array());
                let mut alternatives = maps
                    .into_iter()
                    .map(|v| Selection::compile(name, v, placeholders))
                    .collect::<Result<Vec<_>, _>>()?;
                if !keywords.is_empty() {
                    let keywords: Vec<Value> = keywords.into_iter().cloned().collect();
                    alternatives.push(Selection::All(vec![
                        FieldCondition::keywords(&keywords)
                            .map_err(|e| format!("selection `{name}`: {e}"))?,
                    ]));
                }
                Ok(Selection::Any(alternatives))
            }
            Value::Null => Err(format!("selection `{name}` is null")),
            scalar => Ok(Selection::All(vec![
                FieldCondition::keywords(std::slice::from_ref(scalar))
                    .map_err(|e| format!("selection `{name}`: {e}"))?,
            ])),
        }
    }
}

impl Rule {
    /// Literals (lowercase) one of which appears in a value of every event
    /// the rule matches, or `None` when no such set is known.
    pub(crate) fn literals(&self) -> Option<Vec<String>> {
        self.expr_literals(&self.condition)
    }

    fn expr_literals(&self, expr: &Expr) -> Option<Vec<String>> {
        let sel = |i: &usize| self.selections[*i].literals();
        match expr {
            Expr::Sel(i) => sel(i),
            Expr::Not(_) => None,
            Expr::And(items) => prefilter::best(items.iter().map(|e| self.expr_literals(e))),
            Expr::Or(items) => prefilter::union(items.iter().map(|e| self.expr_literals(e))),
            Expr::AtLeast(_, ids) => prefilter::union(ids.iter().map(sel)),
            Expr::All(ids) => prefilter::best(ids.iter().map(sel)),
        }
    }

    /// Lookup keys (lowercase, no spaces) of the fields the detection tests.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Whether the rule's detection matches `event` (log source not checked).
    pub fn matches(&self, event: &Event) -> bool {
        let mut cache: [Option<bool>; 16] = [None; 16];
        let selections = &self.selections;
        self.condition.eval(&mut |i| {
            if i < cache.len() {
                *cache[i].get_or_insert_with(|| selections[i].matches(event))
            } else {
                selections[i].matches(event)
            }
        })
    }

    /// Parses every rule in one YAML file (one document, or a Sigma v1
    /// collection). `source` names the file in metadata and errors.
    pub fn parse_all(yaml: &str, source: &str) -> Result<Vec<Rule>, String> {
        Rule::parse_all_with(yaml, source, &Placeholders::new())
    }

    /// [`Rule::parse_all`] with values for the `expand` modifier's placeholders.
    pub fn parse_all_with(
        yaml: &str,
        source: &str,
        placeholders: &Placeholders,
    ) -> Result<Vec<Rule>, String> {
        let docs = YamlLoader::load_from_str(yaml).map_err(|e| format!("invalid YAML: {e}"))?;
        let docs: Vec<Value> = docs.iter().map(to_json).collect::<Result<_, _>>()?;
        let mut rules = Vec::new();
        let mut global: Option<Map<String, Value>> = None;
        for (index, doc) in docs.into_iter().enumerate() {
            let Value::Object(mut map) = doc else {
                if doc.is_null() {
                    continue;
                }
                return Err(format!("document {} is not a mapping", index + 1));
            };
            match map.get("action").and_then(Value::as_str) {
                Some("global") => {
                    map.remove("action");
                    global = Some(map);
                    continue;
                }
                Some("reset") => {
                    global = None;
                    continue;
                }
                Some(other) if other != "repeat" => {
                    return Err(format!("unsupported collection action `{other}`"));
                }
                _ => {}
            }
            map.remove("action");
            if let Some(global) = &global {
                let mut merged = global.clone();
                merge(&mut merged, map);
                map = merged;
            }
            rules.push(Rule::compile_with(&map, source, placeholders)?);
        }
        if rules.is_empty() {
            return Err("the file holds no rule".to_owned());
        }
        Ok(rules)
    }

    /// Compiles one rule document.
    pub fn compile(doc: &Map<String, Value>, source: &str) -> Result<Rule, String> {
        Rule::compile_with(doc, source, &Placeholders::new())
    }

    /// [`Rule::compile`] with values for the `expand` modifier's placeholders.
    pub fn compile_with(
        doc: &Map<String, Value>,
        source: &str,
        placeholders: &Placeholders,
    ) -> Result<Rule, String> {
        if doc.contains_key("correlation") {
            return Err("correlation rules are not supported (only detection rules)".to_owned());
        }
        if doc.contains_key("filter") && !doc.contains_key("detection") {
            return Err("Sigma filters are not supported (only detection rules)".to_owned());
        }
        let text = |key: &str| doc.get(key).and_then(scalar_text);
        let list = |key: &str| -> Vec<String> {
            match doc.get(key) {
                Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
                Some(v) => scalar_text(v).into_iter().collect(),
                None => Vec::new(),
            }
        };
        let title = text("title").ok_or("missing `title`")?;
        let logsource = match doc.get("logsource") {
            Some(Value::Object(ls)) => {
                let field = |k: &str| ls.get(k).and_then(scalar_text);
                LogSource::new(
                    field("product").as_deref(),
                    field("category").as_deref(),
                    field("service").as_deref(),
                )
            }
            _ => return Err("missing `logsource` mapping".to_owned()),
        };
        let level = text("level").map_or_else(|| "medium".to_owned(), |l| l.to_ascii_lowercase());
        if !LEVELS.contains(&level.as_str()) {
            return Err(format!(
                "unknown level `{level}` (expected one of {})",
                LEVELS.join(", ")
            ));
        }
        let related = match doc.get("related") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|r| r.get("id").and_then(scalar_text))
                .collect(),
            _ => Vec::new(),
        };
        let meta = RuleMeta {
            id: text("id").unwrap_or_else(|| source.to_owned()),
            title,
            level,
            status: text("status"),
            description: text("description"),
            author: text("author"),
            tags: list("tags")
                .into_iter()
                .map(|t| t.to_ascii_lowercase())
                .collect(),
            related,
            falsepositives: list("falsepositives"),
            logsource,
            source: source.to_owned(),
        };
        let Some(Value::Object(detection)) = doc.get("detection") else {
            return Err("missing `detection` mapping".to_owned());
        };
        let mut names = Vec::new();
        let mut selections = Vec::new();
        let mut errors = Vec::new();
        for (name, value) in detection {
            if name == "condition" || name == "timeframe" {
                continue;
            }
            names.push(name.clone());
            match Selection::compile(name, value, placeholders) {
                Ok(selection) => selections.push(selection),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            // every broken selection, not only the first
            return Err(errors.join("; "));
        }
        let condition = match detection.get("condition") {
            Some(Value::String(c)) => condition::parse(c, &names)?,
            Some(Value::Array(items)) => {
                let parts = items
                    .iter()
                    .map(|c| match c {
                        Value::String(c) => condition::parse(c, &names),
                        other => Err(format!("condition must be a string, found {other}")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Expr::Or(parts)
            }
            Some(other) => return Err(format!("condition must be a string, found {other}")),
            None => return Err("missing `detection.condition`".to_owned()),
        };
        let mut fields = Vec::new();
        selections
            .iter()
            .for_each(|s| s.collect_fields(&mut fields));
        fields.sort();
        fields.dedup();
        Ok(Rule {
            meta,
            selections,
            condition,
            fields,
        })
    }
}

/// Deep-merges `extra` into `base` (maps merge, other values replace).
fn merge(base: &mut Map<String, Value>, extra: Map<String, Value>) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(b)), Value::Object(e)) => merge(b, e),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Converts a YAML node to JSON, keeping integers as numbers and floats as
/// written when they do not fit a JSON number.
fn to_json(yaml: &Yaml) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::Number((*i).into()),
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(text.clone()), Value::Number),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (key, value) in hash {
                let key = match key {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => "null".to_owned(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                map.insert(key, to_json(value)?);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) => return Err("unresolved YAML alias".to_owned()),
        Yaml::BadValue => return Err("invalid YAML value".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOAMI: &str = r#"
title: Whoami Execution
id: 11111111-2222-3333-4444-555555555555
status: test
author: synod
level: medium
tags:
    - attack.discovery
    - attack.t1033
logsource:
    product: windows
    category: process_creation
detection:
    selection_img:
        - Image|endswith: '\whoami.exe'
        - OriginalFileName: 'whoami.exe'
    selection_cli:
        CommandLine|contains|windash:
            - ' -all'
            - ' -priv'
    filter_system:
        User|contains: 'SYSTEM'
    condition: all of selection_* and not 1 of filter_*
"#;

    #[test]
    fn parses_and_matches() {
        let rules = Rule::parse_all(WHOAMI, "whoami.yml").unwrap();
        let rule = &rules[0];
        assert_eq!(rule.meta.id, "11111111-2222-3333-4444-555555555555");
        assert_eq!(rule.meta.techniques(), vec!["T1033"]);
        assert_eq!(rule.meta.tactics(), vec!["discovery"]);
        assert_eq!(
            rule.fields(),
            ["commandline", "image", "originalfilename", "user"]
        );
        let hit = Event::from_pairs([
            ("Image", "C:\\Windows\\System32\\whoami.exe"),
            ("CommandLine", "whoami /all"),
            ("User", "CORP\\bob"),
        ]);
        let system = Event::from_pairs([
            ("Image", "C:\\Windows\\System32\\whoami.exe"),
            ("CommandLine", "whoami /all"),
            ("User", "NT AUTHORITY\\SYSTEM"),
        ]);
        let renamed = Event::from_pairs([
            ("Image", "C:\\x\\w.exe"),
            ("OriginalFileName", "WHOAMI.EXE"),
            ("CommandLine", "w -priv"),
        ]);
        let plain = Event::from_pairs([
            ("Image", "C:\\Windows\\System32\\whoami.exe"),
            ("CommandLine", "whoami"),
        ]);
        assert!(rule.matches(&hit));
        assert!(!rule.matches(&system));
        assert!(rule.matches(&renamed));
        assert!(!rule.matches(&plain));
    }

    #[test]
    fn collections_merge_global() {
        let yaml = "action: global\ntitle: T\nlogsource:\n  product: windows\ndetection:\n  condition: sel\n---\nid: a\ndetection:\n  sel:\n    EventID: 1\n---\nid: b\ndetection:\n  sel:\n    EventID: 2\n";
        let rules = Rule::parse_all(yaml, "c.yml").unwrap();
        assert_eq!(rules.len(), 2);
        assert!(rules[1].matches(&Event::from_pairs([("EventID", "2")])));
        assert!(!rules[0].matches(&Event::from_pairs([("EventID", "2")])));
    }

    #[test]
    fn failures_have_reasons() {
        let err = |y: &str| Rule::parse_all(y, "x.yml").unwrap_err();
        assert!(err("title: [").contains("invalid YAML"));
        assert!(
            err("logsource: {product: windows}\ndetection: {sel: {a: 1}, condition: sel}")
                .contains("title")
        );
        assert!(
            err("title: t\nlogsource: {product: windows}\ndetection: {sel: {a: 1}}")
                .contains("condition")
        );
        assert!(err("title: t\nlogsource: {product: windows}\ndetection: {sel: {a|nope: 1}, condition: sel}").contains("nope"));
        let both = err(
            "title: t\nlogsource: {product: windows}\ndetection: {a: {x|re: '('}, b: {y|bad: 1}, condition: a or b}",
        );
        assert!(
            both.contains("selection `a`") && both.contains("selection `b`"),
            "{both}"
        );
        assert!(err("title: t\ncorrelation: {type: event_count}").contains("correlation"));
        assert!(err("title: t\nlevel: severe\nlogsource: {product: windows}\ndetection: {sel: {a: 1}, condition: sel}").contains("level"));
    }

    #[test]
    fn lists_mixing_maps_and_keywords() {
        let yaml = "title: m\nlogsource: {product: windows}\ndetection:\n  sel:\n    - Image|endswith: '\\evil.exe'\n    - 'mimikatz'\n  condition: sel\n";
        let rule = &Rule::parse_all(yaml, "m.yml").unwrap()[0];
        assert!(rule.matches(&Event::from_pairs([("Image", "C:\\EVIL.exe")])));
        assert!(rule.matches(&Event::from_pairs([("CommandLine", "x Mimikatz.exe")])));
        assert!(!rule.matches(&Event::from_pairs([("Image", "C:\\good.exe")])));
    }

    #[test]
    fn keyword_selections() {
        let yaml = "title: k\nlogsource: {product: windows, service: system}\ndetection:\n  keywords:\n    - 'mimikatz'\n    - 'sekurlsa'\n  condition: keywords\n";
        let rule = &Rule::parse_all(yaml, "k.yml").unwrap()[0];
        assert!(rule.matches(&Event::from_pairs([(
            "Message",
            "ran SEKURLSA::logonpasswords"
        )])));
        assert!(!rule.matches(&Event::from_pairs([("Message", "benign")])));
    }
}
