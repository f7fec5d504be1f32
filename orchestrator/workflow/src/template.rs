//! Values with `${{ … }}` holes, as written in `with:`, and their rendering.
//!
//! A YAML value becomes a [`ValueTemplate`]: literals stay literals, a string
//! that is exactly one `${{ expr }}` becomes [`ValueTemplate::Expr`] (so the
//! expression's JSON type is kept: arrays stay arrays), a string mixing text
//! and expressions becomes [`ValueTemplate::Interpolate`] (always a string).
//!
//! Expressions are CEL (see [`crate::expr`]): `inputs.events`,
//! `size(steps.detect.output.alerts) > 0`, `'run-' + run.id`.

use serde_json::{Map, Value};

pub use crate::expr::{EvalError as RenderError, Expression, ExpressionError, PathSegment};

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

impl ValueTemplate {
    /// Builds a template from a JSON value, parsing every `${{ … }}` inside
    /// strings. Errors carry the byte offset within the offending string.
    pub fn from_value(value: &Value) -> Result<ValueTemplate, ExpressionError> {
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
            ValueTemplate::Expr(expression) => expression.evaluate(scope)?,
            ValueTemplate::Interpolate(parts) => {
                let mut text = String::new();
                for part in parts {
                    match part {
                        TemplatePart::Text(literal) => text.push_str(literal),
                        TemplatePart::Expr(expression) => match expression.evaluate(scope)? {
                            Value::String(s) => text.push_str(&s),
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
    /// The parsed expression; error ranges are relative to the whole string.
    pub parsed: Result<Expression, Vec<ExpressionError>>,
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
                parsed: Err(vec![ExpressionError {
                    message: "`${{` without a closing `}}`".into(),
                    range: open..open + 3,
                }]),
            });
            break;
        };
        let body_end = body_start + relative_close;
        let body = &text[body_start..body_end];
        let leading = body.len() - body.trim_start().len();
        let inner_start = body_start + leading;
        let inner_end = (body_start + body.trim_end().len()).max(inner_start);
        let parsed = Expression::parse(body).map_err(|errors| {
            let mut shifted = Vec::with_capacity(errors.len());
            for mut error in errors {
                error.range = error.range.start + body_start..error.range.end + body_start;
                shifted.push(error);
            }
            shifted
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

fn parse_string(text: &str) -> Result<ValueTemplate, ExpressionError> {
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
        let close = after_open.find("}}").ok_or_else(|| ExpressionError {
            message: "`${{` without a closing `}}`".into(),
            range: consumed + open..consumed + open + 3,
        })?;
        let inner = &after_open[..close];
        let expression = Expression::parse(inner).map_err(|errors| {
            let mut error = errors.into_iter().next().unwrap_or(ExpressionError {
                message: "the expression does not parse".into(),
                range: 0..0,
            });
            let shift = consumed + open + 3;
            error.range = error.range.start + shift..error.range.end + shift;
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
    fn parse_errors_have_ranges() {
        let error = ValueTemplate::from_value(&json!("x ${{ inputs.. }}")).unwrap_err();
        assert_eq!(error.range.start, 13);
        let error = ValueTemplate::from_value(&json!("${{ inputs.x")).unwrap_err();
        assert!(error.message.contains("closing"));
    }

    #[test]
    fn scans_every_expression_with_ranges() {
        let text = "a ${{ inputs.x }} b ${{ a | b }} ${{ steps.s.output";
        let slots = scan_expressions(text);
        assert_eq!(slots.len(), 3);
        assert_eq!(&text[slots[0].inner.clone()], "inputs.x");
        assert_eq!(&text[slots[0].range.clone()], "${{ inputs.x }}");
        assert!(slots[0].parsed.is_ok());
        let errors = slots[1].parsed.as_ref().unwrap_err();
        assert_eq!(errors[0].range.start, text.find('|').unwrap());
        let errors = slots[2].parsed.as_ref().unwrap_err();
        assert!(errors[0].message.contains("closing"));
        assert_eq!(errors[0].range.start, text.rfind("${{").unwrap());
        assert!(scan_expressions("no holes").is_empty());
    }
}
