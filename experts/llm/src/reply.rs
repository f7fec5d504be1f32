//! Reading a model's reply: the JSON object in it (code fences and text
//! around it tolerated) and every way it fails the skill's output schema
//! and checks (pure).

use serde_json::Value;

use crate::skills::SkillKind;

/// Most problems listed for one reply (to the model and in errors).
const MAX_PROBLEMS: usize = 20;

/// The JSON object in a reply. Accepts a bare object, one inside a
/// ```` ``` ```` / ```` ```json ```` fence, or one surrounded by text.
///
/// # Errors
///
/// A description of why no object could be read (without the reply's
/// content, which may hold data).
pub(crate) fn extract_json(content: &str) -> Result<Value, String> {
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return Err("the reply is empty; expected a JSON object".to_owned());
    }
    let candidate = fenced_block(trimmed).unwrap_or(trimmed);
    let parsed = match serde_json::from_str::<Value>(candidate) {
        Ok(value) => Ok(value),
        Err(first_error) => match outer_braces(candidate) {
            Some(inner) => serde_json::from_str::<Value>(inner).map_err(|_| first_error),
            None => Err(first_error),
        },
    };
    match parsed {
        Ok(Value::Object(map)) => Ok(Value::Object(map)),
        Ok(other) => Err(format!(
            "the reply is a JSON {}; expected an object",
            synod_expert_sdk::proto::json::json_type_name(&other)
        )),
        Err(error) => Err(format!("the reply is not valid JSON: {error}")),
    }
}

/// The inside of the first Markdown code fence, if the text has one.
fn fenced_block(text: &str) -> Option<&str> {
    let start = text.find("```")?;
    let after_open = &text[start + 3..];
    let body_start = after_open.find('\n')? + 1;
    let body = &after_open[body_start..];
    let end = body.find("```")?;
    Some(body[..end].trim())
}

/// From the first `{` to the last `}`.
fn outer_braces(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    (end > start).then(|| &text[start..=end])
}

/// A skill's output schema, compiled once.
pub(crate) struct OutputCheck {
    kind: SkillKind,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for OutputCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputCheck")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl OutputCheck {
    /// Compiles the output schema of `kind`.
    ///
    /// # Panics
    ///
    /// If the built-in schema does not compile (a bug, covered by tests).
    pub(crate) fn new(kind: SkillKind) -> Self {
        let validator = jsonschema::validator_for(&kind.output_schema())
            .expect("built-in output schemas compile");
        OutputCheck { kind, validator }
    }

    /// Every problem of `output` (schema violations first, then the skill's
    /// own checks once the shape is right), at most [`MAX_PROBLEMS`]; empty
    /// when it is valid. Values are masked, so no data is echoed.
    pub(crate) fn problems(
        &self,
        input: &Value,
        output: &Value,
        context_ids: &[String],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let mut more = 0usize;
        for error in self.validator.iter_errors(output) {
            if problems.len() == MAX_PROBLEMS {
                more += 1;
                continue;
            }
            let pointer = match error.instance_path().as_str() {
                "" => "/".to_owned(),
                path => path.to_owned(),
            };
            problems.push(format!("`{pointer}`: {}", error.masked()));
        }
        if problems.is_empty() {
            problems = self.kind.check(input, output, context_ids);
            more = problems.len().saturating_sub(MAX_PROBLEMS);
            problems.truncate(MAX_PROBLEMS);
        }
        if more > 0 {
            problems.push(format!("{more} more problems not shown"));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_bare_fenced_and_surrounded_objects() {
        let want = json!({ "a": 1 });
        assert_eq!(extract_json(" {\"a\": 1} ").unwrap(), want);
        assert_eq!(extract_json("```json\n{\"a\": 1}\n```").unwrap(), want);
        assert_eq!(extract_json("```\n{\"a\": 1}\n```\n").unwrap(), want);
        assert_eq!(
            extract_json("Here is the result:\n{\"a\": 1}\nHope it helps").unwrap(),
            want
        );
    }

    #[test]
    fn refuses_non_objects_without_echoing_them() {
        let error = extract_json("[\"secret\"]").unwrap_err();
        assert_eq!(error, "the reply is a JSON array; expected an object");
        let error = extract_json("sure! verdict: accept secret").unwrap_err();
        assert!(error.starts_with("the reply is not valid JSON"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        assert!(extract_json("  ").unwrap_err().contains("empty"));
    }

    #[test]
    fn lists_schema_violations_then_skill_checks() {
        let check = OutputCheck::new(SkillKind::Answer);
        let input = json!({ "question": "q" });
        let problems = check.problems(&input, &json!({ "answer": 3, "run": "rm -rf /" }), &[]);
        assert!(
            problems.iter().any(|p| p.starts_with("`/answer`")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("citations")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("Additional properties")),
            "{problems:?}"
        );
        assert!(
            !problems.iter().any(|p| p.contains("rm -rf")),
            "{problems:?}"
        );
        let problems = check.problems(&input, &json!({ "answer": "a", "citations": ["x"] }), &[]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("`x` is not a given source id"));
        assert!(
            check
                .problems(&input, &json!({ "answer": "a", "citations": [] }), &[])
                .is_empty()
        );
    }
}
