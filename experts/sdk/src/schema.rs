//! JSON Schema compilation (once, when the server is built) and validation
//! into [`FieldViolation`]s that name the failing JSON Pointer.

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::error::{BuildError, FieldViolation};

/// Most violations reported for one value; the rest are summarised.
const MAX_VIOLATIONS: usize = 20;

/// A compiled JSON Schema.
pub(crate) struct CompiledSchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema").finish_non_exhaustive()
    }
}

impl CompiledSchema {
    /// Compiles `schema` (draft 2020-12 unless its `$schema` says otherwise),
    /// checking it against its meta-schema first.
    pub(crate) fn compile(
        skill: &str,
        which: &'static str,
        schema: &Value,
    ) -> Result<Self, BuildError> {
        let invalid = |reason: String| BuildError::InvalidSchema {
            skill: skill.to_owned(),
            which,
            reason,
        };
        if !schema.is_object() {
            return Err(invalid(format!(
                "expected a JSON object, found {}",
                synod_proto::json::json_type_name(schema)
            )));
        }
        let validator = jsonschema::validator_for(schema).map_err(|error| {
            let at = error.instance_path().as_str();
            if at.is_empty() {
                error.to_string()
            } else {
                format!("at `{at}`: {error}")
            }
        });
        match validator {
            Ok(validator) => Ok(CompiledSchema { validator }),
            Err(reason) => Err(invalid(reason)),
        }
    }

    /// Every way `value` fails the schema (at most [`MAX_VIOLATIONS`]),
    /// empty when it is valid. Values are masked so that payloads never
    /// end up in error messages or logs.
    pub(crate) fn violations(&self, value: &Value) -> Vec<FieldViolation> {
        let mut violations = Vec::new();
        let mut extra = 0usize;
        for error in self.validator.iter_errors(value) {
            if violations.len() == MAX_VIOLATIONS {
                extra += 1;
                continue;
            }
            let pointer = match error.instance_path().as_str() {
                "" => "/".to_owned(),
                path => path.to_owned(),
            };
            let mut description = error.masked().to_string();
            if matches!(error.kind(), ValidationErrorKind::Type { .. }) {
                description.push_str(&format!(
                    ", found {}",
                    synod_proto::json::json_type_name(error.instance())
                ));
            }
            violations.push(FieldViolation::new(pointer, description));
        }
        if extra > 0 {
            violations.push(FieldViolation::new(
                "/",
                format!("{extra} more violations not shown"),
            ));
        }
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> CompiledSchema {
        CompiledSchema::compile(
            "s",
            "input",
            &json!({
                "type": "object",
                "required": ["text"],
                "additionalProperties": false,
                "properties": {
                    "text": { "type": "string" },
                    "items": { "type": "array", "items": { "type": "integer" } }
                }
            }),
        )
        .unwrap()
    }

    #[test]
    fn names_the_failing_pointer_without_echoing_values() {
        let violations = schema().violations(&json!({"text": "ok", "items": [1, "secret"]}));
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].pointer, "/items/1");
        assert!(violations[0].description.contains("integer"));
        assert!(violations[0].description.contains("found string"));
        assert!(!violations[0].description.contains("secret"));
    }

    #[test]
    fn reports_missing_and_unexpected_properties_at_the_root() {
        let violations = schema().violations(&json!({"other": 1}));
        let descriptions: Vec<&str> = violations.iter().map(|v| v.description.as_str()).collect();
        assert!(violations.iter().all(|v| v.pointer == "/"));
        assert!(
            descriptions.iter().any(|d| d.contains("\"text\"")),
            "{descriptions:?}"
        );
        assert!(
            descriptions.iter().any(|d| d.contains("other")),
            "{descriptions:?}"
        );
        assert!(schema().violations(&json!({"text": "x"})).is_empty());
    }

    #[test]
    fn rejects_invalid_schemas_at_build() {
        let error = CompiledSchema::compile("s", "output", &json!({"type": 12})).unwrap_err();
        assert!(
            matches!(
                error,
                BuildError::InvalidSchema {
                    which: "output",
                    ..
                }
            ),
            "{error}"
        );
        let error = CompiledSchema::compile("s", "input", &json!(true)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the input schema of skill `s` is invalid: expected a JSON object, found boolean"
        );
    }

    #[test]
    fn caps_the_number_of_violations() {
        let schema = CompiledSchema::compile(
            "s",
            "input",
            &json!({"type": "array", "items": {"type": "string"}}),
        )
        .unwrap();
        let value = Value::Array((0..30).map(Value::from).collect());
        let violations = schema.violations(&value);
        assert_eq!(violations.len(), MAX_VIOLATIONS + 1);
        assert_eq!(
            violations[MAX_VIOLATIONS].description,
            "10 more violations not shown"
        );
    }
}
