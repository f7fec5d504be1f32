//! Selections: field conditions compiled from `field|modifier|...: value(s)`
//! entries, and their evaluation against an [`Event`].
//!
//! Supported modifiers (Sigma specification v2): `contains`, `startswith`,
//! `endswith`, `all`, `cased`, `re` with `i`/`m`/`s`, `base64`,
//! `base64offset`, `utf16le`/`wide`, `utf16be`, `utf16`, `windash`, `cidr`,
//! `exists`, `lt`/`lte`/`gt`/`gte`, `fieldref`. Values may be strings,
//! numbers, booleans or `null` (the field is absent, null or empty).

use std::collections::HashMap;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::event::{Event, Field, Scalar, field_key};
use crate::pattern::{self, Pattern, Piece};
use crate::prefilter;

/// Most variants a value may expand to (`windash`, `expand`).
const MAX_VARIANTS: usize = 3125;

/// Values of `%name%` placeholders for the `expand` modifier, by name
/// (without the `%`), e.g. `dc_ip_addresses` -> the domain controllers' IPs.
pub type Placeholders = HashMap<String, Vec<String>>;

/// A compiled regular expression: the `regex` crate when it accepts the
/// pattern, `fancy-regex` for PCRE features it lacks (look-around,
/// back-references).
#[derive(Debug, Clone)]
pub(crate) enum Regex {
    Fast(regex::Regex),
    Fancy(Box<fancy_regex::Regex>),
}

impl Regex {
    fn compile(source: &str, i: bool, m: bool, s: bool) -> Result<Self, String> {
        match regex::RegexBuilder::new(source)
            .case_insensitive(i)
            .multi_line(m)
            .dot_matches_new_line(s)
            .build()
        {
            Ok(re) => Ok(Regex::Fast(re)),
            Err(fast_error) => {
                let flags: String = [(i, 'i'), (m, 'm'), (s, 's')]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, f)| *f)
                    .collect();
                let with_flags = if flags.is_empty() {
                    source.to_owned()
                } else {
                    format!("(?{flags}){source}")
                };
                fancy_regex::Regex::new(&with_flags)
                    .map(|re| Regex::Fancy(Box::new(re)))
                    .map_err(|fancy_error| {
                        format!("invalid regular expression `{source}`: {fast_error}; PCRE fallback: {fancy_error}")
                    })
            }
        }
    }

    fn is_match(&self, text: &str) -> bool {
        match self {
            Regex::Fast(re) => re.is_match(text),
            // a backtracking limit hit counts as no match
            Regex::Fancy(re) => re.is_match(text).unwrap_or(false),
        }
    }
}

/// An IP network for the `cidr` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = text.trim().split_once('/').unwrap_or((text.trim(), ""));
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("`{text}` is not a CIDR network (expected e.g. 10.0.0.0/8)"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}` has an invalid prefix length (0..={max})"))?
        };
        Ok(Cidr { network, prefix })
    }

    pub(crate) fn contains(&self, text: &str) -> bool {
        let Ok(address) = text.trim().parse::<IpAddr>() else {
            return false;
        };
        match (self.network, address) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_equal(
                u128::from(u32::from(n)),
                u128::from(u32::from(a)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix_equal(u128::from(n), u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_equal(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (a >> shift) == (b >> shift)
}

/// Numeric comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Lt,
    Lte,
    Gt,
    Gte,
}

/// How `fieldref` compares the two fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefMode {
    Equal,
    Contains,
    StartsWith,
    EndsWith,
}

/// One compiled value of a field condition.
#[derive(Debug, Clone)]
pub(crate) enum ValueMatcher {
    /// `null`: the field is absent, null or empty.
    Null,
    /// `exists: true|false`.
    Exists(bool),
    /// A Sigma string, or its variants (`windash`, `base64offset`), any of which may match.
    Strings(Vec<Pattern>),
    /// An integer written unquoted: equal as a number (`0x10` = 16) or as text.
    Integer(i64, Pattern),
    Regex(Regex),
    Cidr(Cidr),
    Compare(Cmp, f64),
    FieldRef(String, RefMode),
}

impl ValueMatcher {
    /// Literals one of which every matching value contains (see [`crate::prefilter`]).
    fn literals(&self) -> Option<Vec<String>> {
        match self {
            ValueMatcher::Strings(patterns) => patterns.iter().map(Pattern::literal).collect(),
            _ => None,
        }
    }

    fn scalar_matches(&self, scalar: &Scalar) -> bool {
        if scalar.is_null {
            return false;
        }
        match self {
            ValueMatcher::Strings(patterns) => patterns.iter().any(|p| {
                p.is_match(if p.cased() {
                    &scalar.text
                } else {
                    &scalar.lower
                })
            }),
            ValueMatcher::Integer(n, text) => {
                scalar.number == Some(*n as f64) || text.is_match(&scalar.lower)
            }
            ValueMatcher::Regex(re) => re.is_match(&scalar.text),
            ValueMatcher::Cidr(cidr) => cidr.contains(&scalar.text),
            ValueMatcher::Compare(cmp, bound) => scalar.number.is_some_and(|n| match cmp {
                Cmp::Lt => n < *bound,
                Cmp::Lte => n <= *bound,
                Cmp::Gt => n > *bound,
                Cmp::Gte => n >= *bound,
            }),
            ValueMatcher::Null | ValueMatcher::Exists(_) | ValueMatcher::FieldRef(..) => false,
        }
    }

    fn matches(&self, field: Option<&Field>, event: &Event) -> bool {
        match self {
            ValueMatcher::Null => {
                field.is_none_or(|f| f.values.iter().all(|s| s.is_null || s.text.is_empty()))
            }
            ValueMatcher::Exists(wanted) => {
                field.is_some_and(|f| f.values.iter().any(|s| !s.is_null)) == *wanted
            }
            ValueMatcher::FieldRef(other, mode) => {
                let (Some(field), Some(other)) = (field, event.get_key(other)) else {
                    return false;
                };
                field.values.iter().any(|a| {
                    !a.is_null
                        && other.values.iter().any(|b| {
                            !b.is_null
                                && match mode {
                                    RefMode::Equal => a.lower == b.lower,
                                    RefMode::Contains => a.lower.contains(b.lower.as_str()),
                                    RefMode::StartsWith => a.lower.starts_with(b.lower.as_str()),
                                    RefMode::EndsWith => a.lower.ends_with(b.lower.as_str()),
                                }
                        })
                })
            }
            _ => field.is_some_and(|f| f.values.iter().any(|s| self.scalar_matches(s))),
        }
    }
}

/// `field|modifiers: values`, or a keyword list when `field` is `None`.
#[derive(Debug, Clone)]
pub(crate) struct FieldCondition {
    /// [`field_key`] of the field; `None` for keywords (any field).
    field: Option<String>,
    matchers: Vec<ValueMatcher>,
    /// The `all` modifier: every value must match instead of any.
    all: bool,
}

impl FieldCondition {
    /// The [`field_key`] of the field tested, `None` for keywords.
    pub(crate) fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// Literals one of which a matching event contains in some value.
    pub(crate) fn literals(&self) -> Option<Vec<String>> {
        let sets = self.matchers.iter().map(ValueMatcher::literals);
        if self.all {
            prefilter::best(sets)
        } else {
            prefilter::union(sets)
        }
    }

    pub(crate) fn matches(&self, event: &Event) -> bool {
        let test = |m: &ValueMatcher| match &self.field {
            Some(name) => m.matches(event.get_key(name), event),
            None => event
                .fields()
                .any(|f| f.values.iter().any(|s| m.scalar_matches(s))),
        };
        if self.all {
            self.matchers.iter().all(test)
        } else {
            self.matchers.iter().any(test)
        }
    }

    /// Compiles `key: value` of a selection map (`key` is `field|mod|...`;
    /// an empty field name means keywords).
    pub(crate) fn compile(
        key: &str,
        value: &Value,
        placeholders: &Placeholders,
    ) -> Result<Self, String> {
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or_default().trim();
        let modifiers = Modifiers::parse(parts)?;
        let keyword = field.is_empty();
        let values: Vec<&Value> = match value {
            Value::Array(items) if items.is_empty() => {
                return Err(format!("`{key}` has an empty list of values"));
            }
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        let matchers = values
            .into_iter()
            .map(|v| modifiers.compile_value(v, keyword, placeholders))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`{key}`: {e}"))?;
        Ok(FieldCondition {
            field: (!keyword).then(|| field_key(field)),
            matchers,
            all: modifiers.all,
        })
    }

    /// A keyword condition: any value of any field contains one of `values`.
    pub(crate) fn keywords(values: &[Value]) -> Result<Self, String> {
        let modifiers = Modifiers::default();
        let matchers = values
            .iter()
            .map(|v| modifiers.compile_value(v, true, &Placeholders::new()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("keywords: {e}"))?;
        Ok(FieldCondition {
            field: None,
            matchers,
            all: false,
        })
    }
}

/// The modifiers of one field, validated.
#[derive(Debug, Default, Clone)]
struct Modifiers {
    contains: bool,
    startswith: bool,
    endswith: bool,
    all: bool,
    cased: bool,
    re: bool,
    re_i: bool,
    re_m: bool,
    re_s: bool,
    base64: bool,
    base64offset: bool,
    utf16: Option<Utf16>,
    windash: bool,
    expand: bool,
    cidr: bool,
    exists: bool,
    compare: Option<Cmp>,
    fieldref: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Utf16 {
    Le,
    Be,
    WithBom,
}

impl Modifiers {
    fn parse<'a>(names: impl Iterator<Item = &'a str>) -> Result<Self, String> {
        let mut m = Modifiers::default();
        for name in names {
            match name.trim() {
                "contains" => m.contains = true,
                "startswith" => m.startswith = true,
                "endswith" => m.endswith = true,
                "all" => m.all = true,
                "cased" => m.cased = true,
                "re" => m.re = true,
                "i" => m.re_i = true,
                "m" => m.re_m = true,
                "s" => m.re_s = true,
                "base64" => m.base64 = true,
                "base64offset" => m.base64offset = true,
                "utf16le" | "wide" => m.utf16 = Some(Utf16::Le),
                "utf16be" => m.utf16 = Some(Utf16::Be),
                "utf16" => m.utf16 = Some(Utf16::WithBom),
                "windash" => m.windash = true,
                "cidr" => m.cidr = true,
                "exists" => m.exists = true,
                "lt" => m.compare = Some(Cmp::Lt),
                "lte" => m.compare = Some(Cmp::Lte),
                "gt" => m.compare = Some(Cmp::Gt),
                "gte" => m.compare = Some(Cmp::Gte),
                "fieldref" => m.fieldref = true,
                "expand" => m.expand = true,
                other => return Err(format!("unknown modifier `{other}`")),
            }
        }
        if (m.re_i || m.re_m || m.re_s) && !m.re {
            return Err("regex flags `i`, `m`, `s` need the `re` modifier".to_owned());
        }
        Ok(m)
    }

    fn compile_value(
        &self,
        value: &Value,
        keyword: bool,
        placeholders: &Placeholders,
    ) -> Result<ValueMatcher, String> {
        if self.exists {
            return match value {
                Value::Bool(b) => Ok(ValueMatcher::Exists(*b)),
                Value::String(s) if s.eq_ignore_ascii_case("true") => {
                    Ok(ValueMatcher::Exists(true))
                }
                Value::String(s) if s.eq_ignore_ascii_case("false") => {
                    Ok(ValueMatcher::Exists(false))
                }
                other => Err(format!("`exists` needs true or false, found {other}")),
            };
        }
        let text = match value {
            Value::Null if keyword => return Err("a keyword cannot be null".to_owned()),
            Value::Null => return Ok(ValueMatcher::Null),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => match n.as_i64() {
                Some(i) if self.compare.is_none() && !self.has_string_modifiers() => {
                    let exact = Pattern::compile(&pattern::literal(&i.to_string()), false);
                    return Ok(ValueMatcher::Integer(i, exact));
                }
                _ => n.to_string(),
            },
            Value::String(s) => s.clone(),
            other => {
                return Err(format!(
                    "expected a string, number, boolean or null, found {other}"
                ));
            }
        };
        if let Some(cmp) = self.compare {
            let bound = text
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("comparison modifiers need a number, found `{text}`"))?;
            return Ok(ValueMatcher::Compare(cmp, bound));
        }
        if self.re {
            return Regex::compile(&text, self.re_i, self.re_m, self.re_s).map(ValueMatcher::Regex);
        }
        if self.cidr {
            return Cidr::parse(&text).map(ValueMatcher::Cidr);
        }
        if self.fieldref {
            let mode = match (self.contains, self.startswith, self.endswith) {
                (true, _, _) => RefMode::Contains,
                (_, true, _) => RefMode::StartsWith,
                (_, _, true) => RefMode::EndsWith,
                _ => RefMode::Equal,
            };
            return Ok(ValueMatcher::FieldRef(field_key(text.trim()), mode));
        }
        let expanded = if self.expand {
            expand_placeholders(&text, placeholders)?
        } else {
            vec![text]
        };
        let mut variants = Vec::new();
        for text in expanded {
            if self.windash {
                variants.extend(windash_variants(&text)?);
            } else {
                variants.push(text);
            }
        }
        let encoded = self.base64 || self.base64offset || self.utf16.is_some();
        let mut pieces: Vec<Vec<Piece>> = Vec::new();
        for variant in &variants {
            if !encoded {
                pieces.push(pattern::parse(variant));
                continue;
            }
            let bytes = match self.utf16 {
                None => variant.as_bytes().to_vec(),
                Some(Utf16::Le) => variant.encode_utf16().flat_map(u16::to_le_bytes).collect(),
                Some(Utf16::Be) => variant.encode_utf16().flat_map(u16::to_be_bytes).collect(),
                Some(Utf16::WithBom) => [0xFF, 0xFE]
                    .into_iter()
                    .chain(variant.encode_utf16().flat_map(u16::to_le_bytes))
                    .collect(),
            };
            if self.base64offset {
                for text in base64_offsets(&bytes) {
                    pieces.push(pattern::literal(&text));
                }
            } else if self.base64 {
                pieces.push(pattern::literal(&STANDARD.encode(&bytes)));
            } else {
                let text: String = bytes.iter().map(|b| char::from(*b)).collect();
                pieces.push(pattern::literal(&text));
            }
        }
        let cased = self.cased || self.base64 || self.base64offset;
        let patterns = pieces
            .into_iter()
            .map(|p| {
                let p = pattern::wrap(
                    p,
                    keyword || self.contains || self.endswith,
                    keyword || self.contains || self.startswith,
                );
                Pattern::compile(&p, cased)
            })
            .collect();
        Ok(ValueMatcher::Strings(patterns))
    }

    fn has_string_modifiers(&self) -> bool {
        self.contains
            || self.startswith
            || self.endswith
            || self.base64
            || self.base64offset
            || self.utf16.is_some()
            || self.windash
            || self.expand
            || self.re
            || self.cidr
            || self.fieldref
            || self.cased
    }
}

/// Every variant of `text` with each `%name%` replaced by each value of the
/// placeholder `name`.
fn expand_placeholders(text: &str, placeholders: &Placeholders) -> Result<Vec<String>, String> {
    let mut variants = vec![String::new()];
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('%') else { break };
        let name = &after[..end];
        let values = placeholders.get(name).ok_or_else(|| {
            format!("placeholder `%{name}%` (modifier `expand`) has no value; configure it in the placeholders")
        })?;
        if values.is_empty() || variants.len() * values.len() > MAX_VARIANTS {
            return Err(format!(
                "placeholder `%{name}%` has {} values; expected 1 to {MAX_VARIANTS} variants",
                values.len()
            ));
        }
        let prefix = &rest[..start];
        variants = variants
            .into_iter()
            .flat_map(|v| {
                values
                    .iter()
                    .map(move |value| format!("{v}{prefix}{value}"))
            })
            .collect();
        rest = &after[end + 1..];
    }
    Ok(variants.into_iter().map(|v| v + rest).collect())
}

/// The three base64 encodings of `bytes` at each offset modulo 3, with the
/// characters that depend on neighbouring bytes removed (as pySigma does).
fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END_TRIM: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut shifted = vec![b' '; i];
            shifted.extend_from_slice(bytes);
            let encoded = STANDARD.encode(&shifted);
            let end = encoded.len() - END_TRIM[(bytes.len() + i) % 3];
            encoded.get(START[i]..end).unwrap_or_default().to_owned()
        })
        .collect()
}

/// Every variant of `text` with each dash or slash that starts a word
/// (`\B[-/]\b`) replaced by `-`, `/`, en dash, em dash or horizontal bar.
fn windash_variants(text: &str) -> Result<Vec<String>, String> {
    const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
    let chars: Vec<char> = text.chars().collect();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let positions: Vec<usize> = (0..chars.len())
        .filter(|&i| {
            matches!(chars[i], '-' | '/')
                && (i == 0 || !is_word(chars[i - 1]))
                && chars.get(i + 1).is_some_and(|c| is_word(*c))
        })
        .collect();
    let total = DASHES
        .len()
        .checked_pow(positions.len() as u32)
        .unwrap_or(usize::MAX);
    if total > MAX_VARIANTS {
        return Err(format!(
            "`windash` on `{text}` gives {total} variants (limit {MAX_VARIANTS})"
        ));
    }
    let mut variants = vec![chars];
    for position in positions {
        variants = variants
            .into_iter()
            .flat_map(|v| {
                DASHES.iter().map(move |d| {
                    let mut v = v.clone();
                    v[position] = *d;
                    v
                })
            })
            .collect();
    }
    Ok(variants
        .into_iter()
        .map(|v| v.into_iter().collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cond(key: &str, value: Value) -> FieldCondition {
        FieldCondition::compile(key, &value, &Placeholders::new()).unwrap()
    }

    fn event(pairs: &[(&str, &str)]) -> Event {
        Event::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn string_modifiers_are_case_insensitive() {
        let e = event(&[("CommandLine", "C:\\Windows\\System32\\WHOAMI.exe /ALL")]);
        assert!(cond("CommandLine|contains", json!("whoami")).matches(&e));
        assert!(cond("CommandLine|startswith", json!("c:\\windows")).matches(&e));
        assert!(cond("CommandLine|endswith", json!(["/x", "/all"])).matches(&e));
        assert!(!cond("CommandLine|contains|all", json!(["whoami", "/priv"])).matches(&e));
        assert!(cond("CommandLine|contains|all", json!(["whoami", "/all"])).matches(&e));
        assert!(!cond("CommandLine|contains|cased", json!("whoami")).matches(&e));
        assert!(!cond("CommandLine", json!("whoami")).matches(&e));
        assert!(cond("commandline", json!("*WHOAMI*")).matches(&e));
    }

    #[test]
    fn regex_flags_and_fallback() {
        let e = event(&[("CommandLine", "Invoke-Mimikatz -DumpCreds")]);
        assert!(!cond("CommandLine|re", json!("invoke-mimikatz")).matches(&e));
        assert!(cond("CommandLine|re|i", json!("invoke-mimikatz")).matches(&e));
        assert!(cond("CommandLine|re", json!("Invoke-(?!Foo)\\w+")).matches(&e));
        assert!(FieldCondition::compile("x|re", &json!("("), &Placeholders::new()).is_err());
        assert!(FieldCondition::compile("x|i", &json!("a"), &Placeholders::new()).is_err());
    }

    #[test]
    fn base64_and_utf16() {
        // "whoami" base64 at the three offsets
        assert_eq!(
            base64_offsets(b"whoami"),
            vec!["d2hvYW1p", "dob2Fta", "3aG9hbW"]
        );
        let encoded = STANDARD.encode(
            "Set-MpPreference -x"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
        );
        let e = event(&[("CommandLine", &format!("powershell -enc {encoded}"))]);
        assert!(
            cond(
                "CommandLine|wide|base64offset|contains",
                json!("Set-MpPreference")
            )
            .matches(&e)
        );
        assert!(
            !cond(
                "CommandLine|base64offset|contains",
                json!("Set-MpPreference")
            )
            .matches(&e)
        );
        let plain = event(&[("CommandLine", &STANDARD.encode("IEX (New-Object"))]);
        assert!(cond("CommandLine|base64|contains", json!("IEX (New-Object")).matches(&plain));
    }

    #[test]
    fn utf16_variants() {
        let encode = |bytes: Vec<u8>| STANDARD.encode(bytes);
        let be = encode("cmd".encode_utf16().flat_map(u16::to_be_bytes).collect());
        let bom: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("cmd".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let e = event(&[("a", &be), ("b", &encode(bom))]);
        assert!(cond("a|utf16be|base64", json!("cmd")).matches(&e));
        assert!(!cond("a|utf16le|base64", json!("cmd")).matches(&e));
        assert!(cond("b|utf16|base64", json!("cmd")).matches(&e));
    }

    #[test]
    fn null_among_values_and_empty_lists() {
        let e = event(&[("Present", "x")]);
        assert!(cond("Missing", json!([null, "y"])).matches(&e));
        assert!(cond("Present", json!([null, "x"])).matches(&e));
        assert!(!cond("Present", json!([null, "y"])).matches(&e));
        assert!(FieldCondition::compile("Present", &json!([]), &Placeholders::new()).is_err());
        assert!(FieldCondition::keywords(&[json!(null)]).is_err());
    }

    #[test]
    fn windash() {
        let variants = windash_variants("net user -add a-b").unwrap();
        assert_eq!(variants.len(), 5);
        assert!(variants.contains(&"net user /add a-b".to_owned()));
        let e = event(&[("CommandLine", "whoami \u{2013}all")]);
        assert!(cond("CommandLine|windash|contains", json!(" -all")).matches(&e));
    }

    #[test]
    fn cidr_numbers_null_exists_fieldref() {
        let e = event(&[
            ("DestinationIp", "10.1.2.3"),
            ("Ip6", "fe80::1"),
            ("Port", "4444"),
            ("GrantedAccess", "0x1410"),
            ("Empty", ""),
            ("A", "C:\\x\\Evil.exe"),
            ("B", "c:\\x\\evil.EXE"),
        ]);
        assert!(
            cond(
                "DestinationIp|cidr",
                json!(["192.168.0.0/16", "10.0.0.0/8"])
            )
            .matches(&e)
        );
        assert!(!cond("DestinationIp|cidr", json!("10.2.0.0/16")).matches(&e));
        assert!(cond("Ip6|cidr", json!("fe80::/10")).matches(&e));
        assert!(cond("Port|gte", json!(1024)).matches(&e));
        assert!(!cond("Port|lt", json!(1024)).matches(&e));
        assert!(cond("GrantedAccess", json!(0x1410)).matches(&e));
        assert!(cond("GrantedAccess", json!("0x1410")).matches(&e));
        assert!(cond("Missing", json!(null)).matches(&e));
        assert!(cond("Empty", json!(null)).matches(&e));
        assert!(!cond("Port", json!(null)).matches(&e));
        assert!(cond("Port|exists", json!(true)).matches(&e));
        assert!(cond("Missing|exists", json!(false)).matches(&e));
        assert!(cond("A|fieldref", json!("B")).matches(&e));
        assert!(cond("A|fieldref|endswith", json!("Empty")).matches(&e));
        assert!(!cond("Port|fieldref", json!("B")).matches(&e));
        assert!(
            FieldCondition::compile("x|cidr", &json!("10.0.0.0/40"), &Placeholders::new()).is_err()
        );
        assert!(FieldCondition::compile("x|bogus", &json!("a"), &Placeholders::new()).is_err());
    }

    #[test]
    fn expand_placeholders_from_configuration() {
        let placeholders: Placeholders = [
            (
                "dc_ips".to_owned(),
                vec!["10.0.0.1".to_owned(), "10.0.0.2".to_owned()],
            ),
            ("domain".to_owned(), vec!["CORP".to_owned()]),
        ]
        .into();
        let compile = |key: &str, value: Value| FieldCondition::compile(key, &value, &placeholders);
        let e = event(&[("IpAddress", "10.0.0.2"), ("CommandLine", "echo corp\\x")]);
        assert!(
            compile("IpAddress|expand", json!("%dc_ips%"))
                .unwrap()
                .matches(&e)
        );
        assert!(
            compile("CommandLine|contains|expand", json!("%domain%\\"))
                .unwrap()
                .matches(&e)
        );
        assert_eq!(
            expand_placeholders(
                "a%x%b%y%c",
                &[
                    ("x".to_owned(), vec!["1".to_owned(), "2".to_owned()]),
                    ("y".to_owned(), vec!["3".to_owned()])
                ]
                .into()
            )
            .unwrap(),
            vec!["a1b3c", "a2b3c"]
        );
        let missing = compile("IpAddress|expand", json!("%nope%")).unwrap_err();
        assert!(missing.contains("`%nope%`"), "{missing}");
    }

    #[test]
    fn keywords_search_every_field() {
        let e = event(&[("Message", "The audit log was cleared"), ("x", "y")]);
        assert!(
            FieldCondition::keywords(&[json!("LOG WAS CLEARED")])
                .unwrap()
                .matches(&e)
        );
        assert!(
            !FieldCondition::keywords(&[json!("mimikatz")])
                .unwrap()
                .matches(&e)
        );
    }
}
