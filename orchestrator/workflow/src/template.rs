//! Values with `${{ … }}` holes, as written in `with:`, and their rendering.
//!
//! A YAML value becomes a [`ValueTemplate`]: literals stay literals, a string
//! that is exactly one `${{ expr }}` becomes [`ValueTemplate::Expr`] (so the
//! expression's JSON type is kept: arrays stay arrays), a string mixing text
//! and expressions becomes [`ValueTemplate::Interpolate`] (always a string).
//!
//! Expressions are reference paths for now: `inputs.events`,
//! `steps.detect.output.alerts[0].rule`, `run.id`. The workflow-language
//! issue replaces [`Expression`]'s internals with CEL; the template shape and
//! [`ValueTemplate::render`] stay.

use std::fmt;

use serde_json::{Map, Value};

/// A JSON value with expression holes.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTemplate {
    /// A value without expressions.
    Literal(Value),
    /// A string that is exactly one expression; renders to the expression's value.
    Expr(Expression),
    /// A string mixing text and expressions; renders to a string.
    Interpolate(Vec<TemplatePart>),
    /// An array with at least one expression inside.
    Array(Vec<ValueTemplate>),
    /// An object with at least one expression inside (key order kept).
    Object(Vec<(String, ValueTemplate)>),
}

/// One piece of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    /// Text copied as is.
    Text(String),
    /// An expression rendered as text (strings as is, other values as JSON).
    Expr(Expression),
}

/// A parsed `${{ … }}` expression: a reference path into the run's scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    /// The text between `${{` and `}}`, trimmed.
    pub source: String,
    /// The path segments, e.g. `steps`, `detect`, `output`, `alerts`, `[0]`.
    pub path: Vec<PathSegment>,
}

/// One step of a reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// `.name`
    Field(String),
    /// `[3]`
    Index(usize),
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Why an expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpressionParseError {
    /// What is wrong and how to fix it.
    pub message: String,
    /// Byte offset of the problem within the template string.
    pub offset: usize,
}

/// Why a template could not be rendered at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A path segment names a key that is not there.
    #[error("`{expression}`: `{missing}` is not present; available keys: {available}")]
    MissingKey {
        /// The whole expression.
        expression: String,
        /// The path up to and including the missing key.
        missing: String,
        /// Keys present at that level, comma-separated.
        available: String,
    },
    /// An index past the end of an array, or a segment applied to the wrong type.
    #[error("`{expression}`: cannot take `{segment}` of {found}")]
    WrongShape {
        /// The whole expression.
        expression: String,
        /// The segment that failed.
        segment: String,
        /// What was found instead (e.g. "an array of 2 items").
        found: String,
    },
}

/// The roots an expression may start with.
pub const EXPRESSION_ROOTS: &[&str] = &["inputs", "steps", "run"];

impl Expression {
    /// Parses a reference path such as `steps.detect.output.alerts[0]`.
    pub fn parse(source: &str) -> Result<Expression, ExpressionParseError> {
        let text = source.trim();
        let leading = source.len() - source.trim_start().len();
        let error = |offset: usize, message: String| ExpressionParseError {
            message,
            offset: leading + offset,
        };
        if text.is_empty() {
            return Err(error(
                0,
                "empty expression; write e.g. `${{ inputs.events }}`".into(),
            ));
        }
        let bytes = text.as_bytes();
        let mut path = Vec::new();
        let mut position = 0;
        let mut expect_name = true;
        while position < bytes.len() {
            let byte = bytes[position];
            if expect_name {
                let start = position;
                while position < bytes.len()
                    && (bytes[position].is_ascii_alphanumeric()
                        || matches!(bytes[position], b'_' | b'-'))
                {
                    position += 1;
                }
                if start == position {
                    return Err(error(
                        start,
                        format!("expected a name at `{}`", &text[start..]),
                    ));
                }
                path.push(PathSegment::Field(text[start..position].to_owned()));
                expect_name = false;
            } else if byte == b'.' {
                position += 1;
                expect_name = true;
            } else if byte == b'[' {
                let close = text[position..]
                    .find(']')
                    .ok_or_else(|| error(position, "`[` without a closing `]`".into()))?;
                let inner = &text[position + 1..position + close];
                let index = inner.trim().parse::<usize>().map_err(|_| {
                    error(
                        position,
                        format!("`[{inner}]` is not an array index; write e.g. `[0]`"),
                    )
                })?;
                path.push(PathSegment::Index(index));
                position += close + 1;
            } else {
                // Point at the offending token, not the space before it.
                while position < bytes.len() && bytes[position].is_ascii_whitespace() {
                    position += 1;
                }
                return Err(error(
                    position,
                    format!(
                        "unexpected `{}`; expressions are reference paths like `steps.detect.output.alerts[0]`",
                        &text[position
                            ..position + text[position..].chars().next().map_or(1, char::len_utf8)]
                    ),
                ));
            }
        }
        if expect_name {
            return Err(error(text.len(), "the expression ends with `.`".into()));
        }
        let Some(PathSegment::Field(root)) = path.first() else {
            return Err(error(0, "an expression must start with a name".into()));
        };
        if !EXPRESSION_ROOTS.contains(&root.as_str()) {
            return Err(error(
                0,
                format!(
                    "unknown root `{root}`; expressions start with one of: {}",
                    EXPRESSION_ROOTS.join(", ")
                ),
            ));
        }
        Ok(Expression {
            source: text.to_owned(),
            path,
        })
    }

    /// The step this expression reads from (`steps.<id>…`), if any.
    pub fn referenced_step(&self) -> Option<&str> {
        match self.path.as_slice() {
            [PathSegment::Field(root), PathSegment::Field(step), ..] if root == "steps" => {
                Some(step)
            }
            _ => None,
        }
    }

    /// The input this expression reads (`inputs.<name>…`), if any.
    pub fn referenced_input(&self) -> Option<&str> {
        match self.path.as_slice() {
            [PathSegment::Field(root), PathSegment::Field(name), ..] if root == "inputs" => {
                Some(name)
            }
            _ => None,
        }
    }

    /// Evaluates the path against `scope`
    /// (`{"inputs": …, "steps": {"<id>": {"output": …}}, "run": {"id": …}}`).
    pub fn evaluate<'a>(&self, scope: &'a Value) -> Result<&'a Value, RenderError> {
        let mut current = scope;
        let mut walked = String::new();
        for segment in &self.path {
            match segment {
                PathSegment::Field(name) => {
                    if !walked.is_empty() {
                        walked.push('.');
                    }
                    walked.push_str(name);
                    let Value::Object(map) = current else {
                        return Err(RenderError::WrongShape {
                            expression: self.source.clone(),
                            segment: format!(".{name}"),
                            found: describe(current),
                        });
                    };
                    current = map.get(name).ok_or_else(|| RenderError::MissingKey {
                        expression: self.source.clone(),
                        missing: walked.clone(),
                        available: available_keys(map),
                    })?;
                }
                PathSegment::Index(index) => {
                    walked.push_str(&format!("[{index}]"));
                    let item = match current {
                        Value::Array(items) => items.get(*index),
                        _ => None,
                    };
                    current = item.ok_or_else(|| RenderError::WrongShape {
                        expression: self.source.clone(),
                        segment: format!("[{index}]"),
                        found: describe(current),
                    })?;
                }
            }
        }
        Ok(current)
    }
}

fn available_keys(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return "(none)".to_owned();
    }
    map.keys()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Object(_) => "an object".into(),
    }
}

impl ValueTemplate {
    /// Builds a template from a JSON value, parsing every `${{ … }}` inside
    /// strings. Errors carry the byte offset within the offending string.
    pub fn from_value(value: &Value) -> Result<ValueTemplate, ExpressionParseError> {
        Ok(match value {
            Value::String(text) => parse_string(text)?,
            Value::Array(items) => {
                let parts = items
                    .iter()
                    .map(ValueTemplate::from_value)
                    .collect::<Result<Vec<_>, _>>()?;
                if parts.iter().all(|p| matches!(p, ValueTemplate::Literal(_))) {
                    ValueTemplate::Literal(value.clone())
                } else {
                    ValueTemplate::Array(parts)
                }
            }
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, field) in map {
                    fields.push((key.clone(), ValueTemplate::from_value(field)?));
                }
                if fields
                    .iter()
                    .all(|(_, p)| matches!(p, ValueTemplate::Literal(_)))
                {
                    ValueTemplate::Literal(value.clone())
                } else {
                    ValueTemplate::Object(fields)
                }
            }
            other => ValueTemplate::Literal(other.clone()),
        })
    }

    /// Every expression in the template, in order.
    pub fn expressions(&self) -> Vec<&Expression> {
        let mut out = Vec::new();
        self.collect_expressions(&mut out);
        out
    }

    fn collect_expressions<'a>(&'a self, out: &mut Vec<&'a Expression>) {
        match self {
            ValueTemplate::Literal(_) => {}
            ValueTemplate::Expr(expression) => out.push(expression),
            ValueTemplate::Interpolate(parts) => {
                for part in parts {
                    if let TemplatePart::Expr(expression) = part {
                        out.push(expression);
                    }
                }
            }
            ValueTemplate::Array(items) => {
                for item in items {
                    item.collect_expressions(out);
                }
            }
            ValueTemplate::Object(fields) => {
                for (_, field) in fields {
                    field.collect_expressions(out);
                }
            }
        }
    }

    /// Renders the template against `scope`.
    pub fn render(&self, scope: &Value) -> Result<Value, RenderError> {
        Ok(match self {
            ValueTemplate::Literal(value) => value.clone(),
            ValueTemplate::Expr(expression) => expression.evaluate(scope)?.clone(),
            ValueTemplate::Interpolate(parts) => {
                let mut text = String::new();
                for part in parts {
                    match part {
                        TemplatePart::Text(literal) => text.push_str(literal),
                        TemplatePart::Expr(expression) => match expression.evaluate(scope)? {
                            Value::String(s) => text.push_str(s),
                            other => text.push_str(&other.to_string()),
                        },
                    }
                }
                Value::String(text)
            }
            ValueTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| item.render(scope))
                    .collect::<Result<_, _>>()?,
            ),
            ValueTemplate::Object(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (key, field) in fields {
                    map.insert(key.clone(), field.render(scope)?);
                }
                Value::Object(map)
            }
        })
    }
}

/// One `${{ … }}` hole found in a string by [`scan_expressions`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExpressionSlot {
    /// Byte range of the whole hole, `${{` to `}}` inclusive (to the end of
    /// the string when `}}` is missing).
    pub range: std::ops::Range<usize>,
    /// Byte range of the trimmed expression text inside the hole.
    pub inner: std::ops::Range<usize>,
    /// The parsed expression; error offsets are relative to the whole string.
    pub parsed: Result<Expression, ExpressionParseError>,
}

/// Finds and parses every `${{ … }}` in `text`, in order, so that a checker
/// can report every broken expression with its position (not just the
/// first, as [`ValueTemplate::from_value`] does). A `${{` without a closing
/// `}}` ends the scan.
pub fn scan_expressions(text: &str) -> Vec<ExpressionSlot> {
    let mut slots = Vec::new();
    let mut consumed = 0;
    while let Some(relative_open) = text[consumed..].find("${{") {
        let open = consumed + relative_open;
        let body_start = open + 3;
        let Some(relative_close) = text[body_start..].find("}}") else {
            slots.push(ExpressionSlot {
                range: open..text.len(),
                inner: open..text.len(),
                parsed: Err(ExpressionParseError {
                    message: "`${{` without a closing `}}`".into(),
                    offset: open,
                }),
            });
            break;
        };
        let body_end = body_start + relative_close;
        let body = &text[body_start..body_end];
        let leading = body.len() - body.trim_start().len();
        let inner_start = body_start + leading;
        let inner_end = (body_start + body.trim_end().len()).max(inner_start);
        let parsed = Expression::parse(body).map_err(|mut error| {
            error.offset += body_start;
            error
        });
        slots.push(ExpressionSlot {
            range: open..body_end + 2,
            inner: inner_start..inner_end,
            parsed,
        });
        consumed = body_end + 2;
    }
    slots
}

fn parse_string(text: &str) -> Result<ValueTemplate, ExpressionParseError> {
    if !text.contains("${{") {
        return Ok(ValueTemplate::Literal(Value::String(text.to_owned())));
    }
    let mut parts = Vec::new();
    let mut rest = text;
    let mut consumed = 0;
    while let Some(open) = rest.find("${{") {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_owned()));
        }
        let after_open = &rest[open + 3..];
        let close = after_open.find("}}").ok_or_else(|| ExpressionParseError {
            message: "`${{` without a closing `}}`".into(),
            offset: consumed + open,
        })?;
        let inner = &after_open[..close];
        let expression = Expression::parse(inner).map_err(|mut error| {
            error.offset += consumed + open + 3;
            error
        })?;
        parts.push(TemplatePart::Expr(expression));
        let advance = open + 3 + close + 2;
        consumed += advance;
        rest = &rest[advance..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_owned()));
    }
    if let [TemplatePart::Expr(expression)] = parts.as_slice() {
        return Ok(ValueTemplate::Expr(expression.clone()));
    }
    Ok(ValueTemplate::Interpolate(parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Value {
        json!({
            "inputs": {"events": [{"id": 1}, {"id": 2}], "host": "ws1"},
            "steps": {"detect": {"output": {"alerts": [{"rule": "r1"}], "count": 1}}},
            "run": {"id": "abc"}
        })
    }

    #[test]
    fn whole_expression_keeps_json_type() {
        let template = ValueTemplate::from_value(&json!({
            "events": "${{ inputs.events }}",
            "first": "${{ steps.detect.output.alerts[0].rule }}",
            "label": "host ${{ inputs.host }} has ${{ steps.detect.output.count }} alerts",
            "fixed": [1, 2]
        }))
        .unwrap();
        assert_eq!(
            template.render(&scope()).unwrap(),
            json!({
                "events": [{"id": 1}, {"id": 2}],
                "first": "r1",
                "label": "host ws1 has 1 alerts",
                "fixed": [1, 2]
            })
        );
        let steps: Vec<_> = template
            .expressions()
            .iter()
            .filter_map(|e| e.referenced_step())
            .collect();
        assert_eq!(steps, ["detect", "detect"]);
    }

    #[test]
    fn missing_keys_name_what_is_available() {
        let template =
            ValueTemplate::from_value(&json!("${{ steps.detect.output.alert }}")).unwrap();
        let error = template.render(&scope()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`steps.detect.output.alert`: `steps.detect.output.alert` is not present; available keys: `alerts`, `count`"
        );
    }

    #[test]
    fn parse_errors_have_offsets() {
        let error = ValueTemplate::from_value(&json!("x ${{ bogus.y }}")).unwrap_err();
        assert!(
            error.message.contains("unknown root `bogus`"),
            "{}",
            error.message
        );
        assert_eq!(error.offset, 6);
        let error = ValueTemplate::from_value(&json!("${{ inputs.x")).unwrap_err();
        assert!(error.message.contains("closing"));
        let error = ValueTemplate::from_value(&json!("${{ inputs..x }}")).unwrap_err();
        assert!(error.message.contains("expected a name"));
    }

    #[test]
    fn scans_every_expression_with_ranges() {
        let text = "a ${{ inputs.x }} b ${{ bogus }} ${{ steps.s.output";
        let slots = scan_expressions(text);
        assert_eq!(slots.len(), 3);
        assert_eq!(&text[slots[0].inner.clone()], "inputs.x");
        assert_eq!(&text[slots[0].range.clone()], "${{ inputs.x }}");
        assert!(slots[0].parsed.is_ok());
        let error = slots[1].parsed.as_ref().unwrap_err();
        assert_eq!(error.offset, text.find("bogus").unwrap());
        let error = slots[2].parsed.as_ref().unwrap_err();
        assert!(error.message.contains("closing"));
        assert_eq!(error.offset, text.rfind("${{").unwrap());
        assert!(scan_expressions("no holes").is_empty());
    }
}
