//! The YAML layer: parses text into a span-carrying tree ([`Node`]). This is
//! the only module that knows marked-yaml, so the YAML library can be swapped
//! by rewriting this file alone.

use marked_yaml::{LoadError, LoaderOptions, Marker};
use serde_json::{Number, Value};

use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::source::{SourceMap, Span};

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// One YAML node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    /// Scalars: the written text (quotes included; first line of block
    /// scalars). Collections: from the opening bracket or first key/item.
    pub(crate) span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Scalar(Scalar),
    /// Entries in declaration order.
    Mapping(Vec<Entry>),
    Sequence(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    /// The decoded text.
    pub(crate) text: String,
    /// Plain scalars may be `null`, booleans or numbers; quoted and block
    /// scalars are always strings.
    pub(crate) plain: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: Spanned<String>,
    pub(crate) value: Node,
}

impl Node {
    /// A short description of the node's type for "expected …, found …".
    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Mapping(_) => "a mapping",
            NodeKind::Sequence(_) => "a list",
            NodeKind::Scalar(_) => match self.to_json() {
                Value::Null => "nothing (null)",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                _ => "a string",
            },
        }
    }

    /// True for an empty plain scalar (`key:` with no value) or `null`/`~`.
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(scalar) if scalar.plain && plain_null(&scalar.text))
    }

    /// The node as JSON, reading plain scalars with the YAML 1.2 core schema
    /// (`null`, `true`, `12`, `1.5`); everything else stays a string.
    pub(crate) fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar(scalar) if !scalar.plain => Value::String(scalar.text.clone()),
            NodeKind::Scalar(scalar) => plain_scalar_json(&scalar.text),
            NodeKind::Sequence(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(item.to_json());
                }
                Value::Array(values)
            }
            NodeKind::Mapping(entries) => {
                let mut map = serde_json::Map::new();
                for entry in entries {
                    map.insert(entry.key.value.clone(), entry.value.to_json());
                }
                Value::Object(map)
            }
        }
    }
}

fn plain_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn plain_scalar_json(text: &str) -> Value {
    if plain_null(text) {
        return Value::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let looks_numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        && text.chars().any(|c| c.is_ascii_digit());
    if looks_numeric {
        if let Ok(integer) = text.parse::<i64>() {
            return Value::Number(integer.into());
        }
        if let Ok(integer) = text.parse::<u64>() {
            return Value::Number(integer.into());
        }
        if let Some(number) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(number);
        }
    }
    Value::String(text.to_owned())
}

/// Parses `source`. Returns the top-level node (when the text is YAML at
/// all) and the problems found; a duplicate key is reported but the tree is
/// still returned (the later value wins), so later checks still run.
pub(crate) fn parse(map: &SourceMap<'_>, file: &str) -> (Option<Node>, Vec<Diagnostic>) {
    let source = map.source();
    let strict = LoaderOptions::default()
        .prevent_coercion(true)
        .error_on_duplicate_keys(true);
    let mut diagnostics = Vec::new();
    match marked_yaml::parse_yaml_with_options(0, source, strict) {
        Ok(node) => return (Some(convert(&node, map)), diagnostics),
        Err(LoadError::DuplicateKey(inner)) => {
            let first = key_span(&inner.prev_key, map);
            let second = key_span(&inner.key, map);
            diagnostics.push(
                Diagnostic::error(
                    codes::DUPLICATE_KEY,
                    file,
                    second,
                    format!(
                        "key `{}` appears twice in the same mapping",
                        inner.key.as_str()
                    ),
                )
                .with_label("second definition")
                .with_secondary(first, "first defined here")
                .with_help("remove or rename one of them; YAML keeps only the last"),
            );
        }
        Err(error) => {
            diagnostics.push(load_error(&error, map, file));
            return (None, diagnostics);
        }
    }
    let lenient = LoaderOptions::default().prevent_coercion(true);
    match marked_yaml::parse_yaml_with_options(0, source, lenient) {
        Ok(node) => (Some(convert(&node, map)), diagnostics),
        Err(error) => {
            diagnostics.push(load_error(&error, map, file));
            (None, diagnostics)
        }
    }
}

fn load_error(error: &LoadError, map: &SourceMap<'_>, file: &str) -> Diagnostic {
    let (marker, message, help) = match error {
        LoadError::TopLevelMustBeMapping(marker) | LoadError::TopLevelMustBeSequence(marker) => (
            marker,
            "a workflow file must be a YAML mapping".to_owned(),
            "start with `name: my-workflow` and a `steps:` mapping",
        ),
        LoadError::UnexpectedAnchor(marker) => (
            marker,
            "yaml anchors and aliases (`&name`, `*name`) are not supported".to_owned(),
            "write the value out in full",
        ),
        LoadError::MappingKeyMustBeScalar(marker) => (
            marker,
            "mapping keys must be plain text".to_owned(),
            "use a name as the key, not a list or mapping",
        ),
        LoadError::UnexpectedTag(marker) => (
            marker,
            "yaml tags (`!name`) are not supported".to_owned(),
            "remove the tag; quote the value if it must be a string",
        ),
        LoadError::ScanError(marker, scan) => (
            marker,
            format!("invalid yaml: {}", scan.info()),
            "check indentation, quotes and brackets around this position",
        ),
        LoadError::DuplicateKey(inner) => {
            let span = key_span(&inner.key, map);
            return Diagnostic::error(
                codes::DUPLICATE_KEY,
                file,
                span,
                format!(
                    "key `{}` appears twice in the same mapping",
                    inner.key.as_str()
                ),
            );
        }
    };
    let offset = marker_offset(marker, map);
    let end = map.source()[offset..]
        .chars()
        .next()
        .map_or(offset, |c| offset + c.len_utf8());
    Diagnostic::error(codes::YAML_SYNTAX, file, map.span(offset, end), message).with_help(help)
}

fn marker_offset(marker: &Marker, map: &SourceMap<'_>) -> usize {
    map.offset_of(marker.line(), marker.column())
}

fn start_offset(span: &marked_yaml::Span, map: &SourceMap<'_>) -> Option<usize> {
    span.start().map(|marker| marker_offset(marker, map))
}

fn key_span(key: &marked_yaml::types::MarkedScalarNode, map: &SourceMap<'_>) -> Span {
    let start = start_offset(key.span(), map).unwrap_or(0);
    let end = scalar_end(map, start, key.as_str(), key.may_coerce());
    map.span(start, end)
}

/// Where the written form of a scalar ends. marked-yaml records only the
/// start, so this re-reads the text: quoted scalars end at the closing quote,
/// plain ones after their text, block scalars at the end of their first line.
fn scalar_end(map: &SourceMap<'_>, start: usize, text: &str, plain: bool) -> usize {
    let source = map.source();
    let rest = &source[start..];
    if plain {
        if !text.is_empty() && rest.starts_with(text) {
            return start + text.len();
        }
        return map.line_end(start);
    }
    let mut characters = rest.char_indices();
    match characters.next() {
        Some((_, '"')) => {
            let mut escaped = false;
            for (index, character) in characters {
                if escaped {
                    escaped = false;
                } else if character == '\\' {
                    escaped = true;
                } else if character == '"' {
                    return start + index + 1;
                }
            }
            source.len()
        }
        Some((_, '\'')) => {
            let bytes = rest.as_bytes();
            let mut index = 1;
            while index < bytes.len() {
                if bytes[index] == b'\'' {
                    if bytes.get(index + 1) == Some(&b'\'') {
                        index += 2;
                        continue;
                    }
                    return start + index + 1;
                }
                index += 1;
            }
            source.len()
        }
        _ => map.line_end(start),
    }
}

fn convert(node: &marked_yaml::Node, map: &SourceMap<'_>) -> Node {
    match node {
        marked_yaml::Node::Scalar(scalar) => {
            let plain = scalar.may_coerce();
            let start = start_offset(scalar.span(), map).unwrap_or(0);
            let end = if plain && scalar.as_str().is_empty() {
                start
            } else {
                scalar_end(map, start, scalar.as_str(), plain)
            };
            Node {
                kind: NodeKind::Scalar(Scalar {
                    text: scalar.as_str().to_owned(),
                    plain,
                }),
                span: map.span(start, end),
            }
        }
        marked_yaml::Node::Mapping(mapping) => {
            let mut entries = Vec::with_capacity(mapping.len());
            for (key, value) in mapping.iter() {
                entries.push(Entry {
                    key: Spanned {
                        value: key.as_str().to_owned(),
                        span: key_span(key, map),
                    },
                    value: convert(value, map),
                });
            }
            let first = entries.first().map(|entry| entry.key.span);
            let last = entries.last().map(|entry| entry.value.span);
            let span = collection_span(mapping.span(), map, first, last, '{');
            Node {
                kind: NodeKind::Mapping(entries),
                span,
            }
        }
        marked_yaml::Node::Sequence(sequence) => {
            let mut items = Vec::with_capacity(sequence.len());
            for item in sequence.iter() {
                items.push(convert(item, map));
            }
            let first = items.first().map(|item| item.span);
            let last = items.last().map(|item| item.span);
            let span = collection_span(sequence.span(), map, first, last, '[');
            Node {
                kind: NodeKind::Sequence(items),
                span,
            }
        }
    }
}

/// Flow collections (`{…}`, `[…]`) span their brackets; block collections
/// span from their first key or item to the end of their last value.
fn collection_span(
    span: &marked_yaml::Span,
    map: &SourceMap<'_>,
    first: Option<Span>,
    last: Option<Span>,
    open: char,
) -> Span {
    let source = map.source();
    let start = start_offset(span, map).unwrap_or(0);
    if source[start..].starts_with(open) {
        let close = if open == '{' { '}' } else { ']' };
        let end = match span.end() {
            Some(marker) => {
                let offset = marker_offset(marker, map);
                if source[offset..].starts_with(close) {
                    offset + 1
                } else {
                    offset
                }
            }
            None => start + 1,
        };
        return map.span(start, end.max(start + 1));
    }
    match (first, last) {
        (Some(first), Some(last)) => map.span(first.start, last.end.max(first.end)),
        (Some(first), None) => first,
        _ => map.span(start, start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(source: &str) -> Node {
        let map = SourceMap::new(source);
        let (node, diagnostics) = parse(&map, "t.yaml");
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        node.unwrap()
    }

    fn entries(node: &Node) -> &[Entry] {
        match &node.kind {
            NodeKind::Mapping(entries) => entries,
            other => panic!("not a mapping: {other:?}"),
        }
    }

    #[test]
    fn keeps_order_types_and_spans() {
        let source = "b: 1\na: \"x\\\"y\"\nc: [t, 'u']\nd: é-plain\n";
        let node = parse_ok(source);
        let entries = entries(&node);
        let keys: Vec<_> = entries.iter().map(|e| e.key.value.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c", "d"]);
        assert_eq!(entries[0].value.to_json(), serde_json::json!(1));
        let quoted = &entries[1].value;
        assert_eq!(&source[quoted.span.range()], "\"x\\\"y\"");
        assert_eq!((quoted.span.line, quoted.span.column), (2, 4));
        assert_eq!(&source[entries[2].value.span.range()], "[t, 'u']");
        assert_eq!(&source[entries[3].value.span.range()], "é-plain");
        assert_eq!(
            node.to_json(),
            serde_json::json!({"b": 1, "a": "x\"y", "c": ["t", "u"], "d": "é-plain"})
        );
    }

    #[test]
    fn reports_syntax_errors_and_duplicates_with_positions() {
        let map = SourceMap::new("a: 1\nb: [1,\n");
        let (node, diagnostics) = parse(&map, "t.yaml");
        assert!(node.is_none());
        assert_eq!(diagnostics[0].code, codes::YAML_SYNTAX);
        assert_eq!(diagnostics[0].line, 3);

        let map = SourceMap::new("a: 1\nb: 2\na: 3\n");
        let (node, diagnostics) = parse(&map, "t.yaml");
        assert!(node.is_some());
        assert_eq!(diagnostics[0].code, codes::DUPLICATE_KEY);
        assert_eq!((diagnostics[0].line, diagnostics[0].column), (3, 1));
        assert_eq!(diagnostics[0].labels[0].line, 1);
    }
}
