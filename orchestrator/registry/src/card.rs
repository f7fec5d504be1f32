//! Validated expert cards and the compiled output-schema cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use jsonschema::Validator;
use serde_json::Value;
use synod_proto::expert::ExpertCard;
use synod_proto::json::opt_struct_to_json;

/// Most schema violations listed in one error message.
const MAX_LISTED_VIOLATIONS: usize = 3;
/// Longest text of one violation in an error message.
const MAX_VIOLATION_CHARS: usize = 200;

/// An expert card checked at registration: valid names, schemas converted to
/// JSON, output schemas compiled.
#[derive(Debug)]
pub(crate) struct CardInfo {
    /// The card as the instance served it.
    pub(crate) card: ExpertCard,
    /// Skills by name.
    pub(crate) skills: BTreeMap<String, SkillSchemas>,
}

/// A skill's schemas, ready to use.
#[derive(Debug)]
pub(crate) struct SkillSchemas {
    /// JSON Schema of the input (`{}` when the card gives none).
    pub(crate) input: Value,
    /// JSON Schema of the output (`{}` when the card gives none).
    pub(crate) output: Value,
    /// `output`, compiled.
    pub(crate) output_validator: Arc<Validator>,
}

/// Compiled output schemas, keyed by (expert, version, skill), so instances
/// of one expert version share them and each is compiled once.
#[derive(Debug, Default)]
pub(crate) struct SchemaCache {
    compiled: Mutex<HashMap<(String, String, String), CachedSchema>>,
}

#[derive(Debug)]
struct CachedSchema {
    schema: Value,
    validator: Arc<Validator>,
}

impl SchemaCache {
    /// The compiled `schema` of `expert`/`version`/`skill`, compiled now if
    /// not cached. A cached schema that differs from `schema` (an expert
    /// changed a schema without bumping its version) is replaced.
    fn validator(
        &self,
        key: (String, String, String),
        schema: &Value,
    ) -> Result<Arc<Validator>, String> {
        {
            let compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(cached) = compiled.get(&key)
                && &cached.schema == schema
            {
                return Ok(cached.validator.clone());
            }
        }
        let validator = Arc::new(jsonschema::validator_for(schema).map_err(|e| e.to_string())?);
        let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = compiled.get(&key)
            && &previous.schema != schema
        {
            tracing::warn!(
                expert = %key.0,
                version = %key.1,
                skill = %key.2,
                "output schema changed without a version change; using the newest"
            );
        }
        compiled.insert(
            key,
            CachedSchema {
                schema: schema.clone(),
                validator: validator.clone(),
            },
        );
        Ok(validator)
    }
}

/// Whether `name` is a valid expert or skill name (as in `expert/skill`).
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl CardInfo {
    /// Checks `card` and compiles its output schemas. The error text says
    /// what is wrong with the card and how to fix it.
    pub(crate) fn from_card(card: ExpertCard, cache: &SchemaCache) -> Result<Self, String> {
        if !is_name(&card.name) {
            return Err(format!(
                "expert name `{}` is not valid; use letters, digits, `-`, `_` or `.`, e.g. `attack-detection`",
                card.name
            ));
        }
        let mut skills = BTreeMap::new();
        for skill in &card.skills {
            if !is_name(&skill.name) {
                return Err(format!(
                    "skill name `{}` is not valid; use letters, digits, `-`, `_` or `.`, e.g. `detect`",
                    skill.name
                ));
            }
            if skills.contains_key(&skill.name) {
                return Err(format!(
                    "skill `{}` appears twice in the card; skill names must be unique",
                    skill.name
                ));
            }
            let input = opt_struct_to_json(skill.input_schema.as_ref())
                .map_err(|e| format!("input schema of skill `{}`: {e}", skill.name))?;
            let output = opt_struct_to_json(skill.output_schema.as_ref())
                .map_err(|e| format!("output schema of skill `{}`: {e}", skill.name))?;
            let key = (card.name.clone(), card.version.clone(), skill.name.clone());
            let output_validator = cache.validator(key, &output).map_err(|e| {
                format!(
                    "output schema of skill `{}` is not a valid JSON Schema: {e}",
                    skill.name
                )
            })?;
            skills.insert(
                skill.name.clone(),
                SkillSchemas {
                    input,
                    output,
                    output_validator,
                },
            );
        }
        Ok(CardInfo { card, skills })
    }

    /// Skill names, sorted.
    pub(crate) fn skill_names(&self) -> Vec<String> {
        self.skills.keys().cloned().collect()
    }
}

/// Checks `output` against a compiled schema; the error lists the first few
/// violations, each with the JSON Pointer of the offending value.
pub(crate) fn check_output(validator: &Validator, output: &Value) -> Result<(), String> {
    let mut listed = Vec::new();
    let mut total = 0usize;
    for error in validator.iter_errors(output) {
        total += 1;
        if listed.len() < MAX_LISTED_VIOLATIONS {
            let pointer = match error.instance_path().as_str() {
                "" => "/".to_owned(),
                path => path.to_owned(),
            };
            let mut text = error.to_string();
            if text.chars().count() > MAX_VIOLATION_CHARS {
                text = text.chars().take(MAX_VIOLATION_CHARS).collect::<String>() + "…";
            }
            listed.push(format!("at `{pointer}`: {text}"));
        }
    }
    if total == 0 {
        return Ok(());
    }
    let mut message = listed.join("; ");
    if total > listed.len() {
        message.push_str(&format!(" (and {} more)", total - listed.len()));
    }
    Err(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use synod_proto::expert::Skill;
    use synod_proto::json::json_to_struct;

    fn card(name: &str, skills: Vec<Skill>) -> ExpertCard {
        ExpertCard {
            name: name.into(),
            version: "1.0.0".into(),
            skills,
            ..Default::default()
        }
    }

    fn skill(name: &str, output_schema: Value) -> Skill {
        Skill {
            name: name.into(),
            output_schema: Some(json_to_struct(&output_schema).unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn compiles_once_per_expert_version_skill() {
        let cache = SchemaCache::default();
        let schema = json!({"type": "object", "required": ["alerts"]});
        let first = CardInfo::from_card(card("det", vec![skill("detect", schema.clone())]), &cache)
            .unwrap();
        let second =
            CardInfo::from_card(card("det", vec![skill("detect", schema)]), &cache).unwrap();
        assert!(Arc::ptr_eq(
            &first.skills["detect"].output_validator,
            &second.skills["detect"].output_validator
        ));
        let changed = CardInfo::from_card(
            card("det", vec![skill("detect", json!({"type": "object"}))]),
            &cache,
        )
        .unwrap();
        assert!(!Arc::ptr_eq(
            &first.skills["detect"].output_validator,
            &changed.skills["detect"].output_validator
        ));
        assert!(check_output(&changed.skills["detect"].output_validator, &json!({})).is_ok());
    }

    #[test]
    fn rejects_bad_names_duplicates_and_bad_schemas() {
        let cache = SchemaCache::default();
        let error = CardInfo::from_card(card("bad name", vec![]), &cache).unwrap_err();
        assert!(
            error.contains("expert name `bad name` is not valid"),
            "{error}"
        );
        let twice = vec![skill("a", json!({})), skill("a", json!({}))];
        let error = CardInfo::from_card(card("x", twice), &cache).unwrap_err();
        assert!(error.contains("skill `a` appears twice"), "{error}");
        let bad_schema = vec![skill("a", json!({"type": 12}))];
        let error = CardInfo::from_card(card("x", bad_schema), &cache).unwrap_err();
        assert!(
            error.starts_with("output schema of skill `a` is not a valid JSON Schema"),
            "{error}"
        );
    }

    #[test]
    fn violations_name_the_pointer_and_count_the_rest() {
        let schema = json!({
            "type": "object",
            "properties": {"alerts": {"type": "array", "items": {"type": "object", "required": ["id"]}}}
        });
        let validator = jsonschema::validator_for(&schema).unwrap();
        let output = json!({"alerts": [{}, {}, {}, {}, {"id": 1}]});
        let error = check_output(&validator, &output).unwrap_err();
        assert!(
            error.starts_with("at `/alerts/0`: \"id\" is a required property"),
            "{error}"
        );
        assert!(error.ends_with("(and 1 more)"), "{error}");
        let error = check_output(&validator, &json!({"alerts": 3})).unwrap_err();
        assert_eq!(error, "at `/alerts`: 3 is not of type \"array\"");
        assert!(check_output(&validator, &json!({"alerts": []})).is_ok());
    }
}
