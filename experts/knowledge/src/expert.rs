//! The `knowledge` expert on `synod-expert-sdk`: skills `lookup`,
//! `mitigations`, `detections`, `links`, `answer` and `verify`.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use synod_expert_sdk::{
    ExpertServer, ExpertServerBuilder, SkillDefinition, SkillError, SkillOutput, skill_fn,
};

use crate::kb::KnowledgeBase;
use crate::model::Kind;
use crate::skills::{self, ChainStep, MatchedBy, Verdict};
use crate::{LoadError, load};

/// Version reported on the expert card.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Default and largest number of objects per answer.
const DEFAULT_LIMIT: u64 = 5;
const MAX_LIMIT: u64 = 50;
/// Longest chain `verify` accepts.
const MAX_CHAIN: usize = 500;

/// Where the expert's data lives.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// ATT&CK Enterprise STIX 2.x bundle (`enterprise-attack.json`).
    pub attack_path: Option<PathBuf>,
    /// CAPEC STIX 2.1 bundle (`stix-capec.json`).
    pub capec_path: Option<PathBuf>,
    /// CWE JSON: a file, or a directory of per-entry files (`json_repo/`).
    pub cwe_path: Option<PathBuf>,
}

impl Config {
    /// Loads the configured data.
    ///
    /// # Errors
    ///
    /// The first file that cannot be read or parsed.
    pub fn load(&self) -> Result<KnowledgeBase, LoadError> {
        let bundles: Vec<PathBuf> = self
            .attack_path
            .iter()
            .chain(&self.capec_path)
            .cloned()
            .collect();
        load(&bundles, self.cwe_path.as_deref())
    }
}

/// Builds the `knowledge` expert (add `.register_with(..)` and serve).
///
/// # Errors
///
/// When the data cannot be loaded or holds no ATT&CK technique, CAPEC
/// pattern or CWE weakness; the message says which file and how to fix it.
pub fn expert(config: &Config) -> Result<ExpertServerBuilder, String> {
    if config.attack_path.is_none() && config.capec_path.is_none() && config.cwe_path.is_none() {
        return Err("no knowledge data configured: set attack_path (enterprise-attack.json), capec_path (stix-capec.json) and/or cwe_path (CWE JSON directory)".to_owned());
    }
    let kb = config.load().map_err(|e| e.to_string())?;
    let useful = kb.objects().iter().any(|o| {
        matches!(
            o.kind,
            Kind::Technique | Kind::AttackPattern | Kind::Weakness
        )
    });
    if !useful {
        return Err(format!(
            "the configured data ({config:?}) holds no ATT&CK technique, CAPEC attack pattern or CWE weakness; check that the paths point at the STIX bundles and CWE JSON"
        ));
    }
    Ok(expert_with_base(Arc::new(kb)))
}

/// Builds the expert around an already loaded knowledge base.
pub fn expert_with_base(kb: Arc<KnowledgeBase>) -> ExpertServerBuilder {
    let count = |kind: Kind| {
        kb.objects()
            .iter()
            .filter(|o| o.kind == kind && o.is_current())
            .count()
    };
    let description = format!(
        "ATT&CK / CAPEC / CWE knowledge base with BM25 search and cited answers ({} techniques, {} groups, {} software, {} CAPEC patterns, {} CWE weaknesses, current).",
        count(Kind::Technique),
        count(Kind::Group),
        count(Kind::Software),
        count(Kind::AttackPattern),
        count(Kind::Weakness)
    );
    let id_input = |what: &str| {
        json!({
            "type": "object", "additionalProperties": false, "required": ["id"],
            "properties": { "id": { "type": "string", "minLength": 1, "description": what } }
        })
    };
    ExpertServer::builder("knowledge", VERSION)
        .description(description)
        .skill(handler(
            &kb,
            SkillDefinition::new("lookup")
                .description("Looks up ATT&CK techniques (incl. sub-techniques such as T1003.001), groups, software, mitigations, CAPEC patterns or CWE weaknesses by id, name or alias (full-text search as a fallback); returns each with tactics, parent/sub-techniques, replacement if revoked, techniques used and groups using it, all cited.")
                .input_schema(json!({
                    "type": "object", "additionalProperties": false, "required": ["query"],
                    "properties": {
                        "query": { "type": "string", "minLength": 1, "description": "An id (T1003.001, G0007, S0002, CAPEC-66, CWE-79) or a name/alias." },
                        "kinds": { "type": "array", "items": { "enum": KINDS.map(|(name, _)| name) }, "description": "Only these kinds (default: all)." },
                        "limit": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT }
                    }
                }))
                .output_schema(cited_output(&["query", "matched_by", "objects", "citations"])),
            |kb, input| {
                let kinds: Vec<Kind> = input["kinds"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|k| k.as_str().and_then(parse_kind))
                    .collect();
                let found = skills::lookup(kb, str_input(input, "query"), &kinds, limit(input));
                let confidence = match found.matched_by {
                    MatchedBy::Id => 1.0,
                    MatchedBy::Name => 0.95,
                    MatchedBy::Search => 0.5,
                    MatchedBy::None => 0.0,
                };
                Ok(output(&found)?.with_confidence(confidence))
            },
        ))
        .skill(handler(
            &kb,
            SkillDefinition::new("mitigations")
                .description("Mitigations of an ATT&CK technique, CAPEC attack pattern or CWE weakness (by id or name), with how each applies, cited.")
                .input_schema(id_input("Technique, CAPEC or CWE id (or exact name)."))
                .output_schema(cited_output(&["object", "mitigations", "guidance", "citations"])),
            |kb, input| {
                let found = skills::mitigations(kb, str_input(input, "id")).map_err(|e| SkillError::invalid_input("/id", e))?;
                output(&found)
            },
        ))
        .skill(handler(
            &kb,
            SkillDefinition::new("detections")
                .description("How to detect an ATT&CK technique: detection strategies and their analytics (platforms, what to look for), plus detection guidance; for CWE its detection methods. Cited.")
                .input_schema(id_input("Technique id (or CWE id, or exact name)."))
                .output_schema(cited_output(&["object", "strategies", "guidance", "citations"])),
            |kb, input| {
                let found = skills::detections(kb, str_input(input, "id")).map_err(|e| SkillError::invalid_input("/id", e))?;
                output(&found)
            },
        ))
        .skill(handler(
            &kb,
            SkillDefinition::new("links")
                .description("CWE ↔ CAPEC ↔ ATT&CK links of a weakness, attack pattern or technique, direct and through CAPEC, cited.")
                .input_schema(id_input("CWE, CAPEC or technique id (or exact name)."))
                .output_schema(cited_output(&["object", "cwe", "capec", "attack", "citations"])),
            |kb, input| {
                let found = skills::links(kb, str_input(input, "id")).map_err(|e| SkillError::invalid_input("/id", e))?;
                output(&found)
            },
        ))
        .skill(handler(
            &kb,
            SkillDefinition::new("answer")
                .description("Answers a free-text question about ATT&CK, CAPEC or CWE (what is X, which tactics, which techniques a group uses, who uses a technique, mitigations, detections, CWE/CAPEC links, or a full-text search) with a short answer and ranked, cited objects.")
                .input_schema(json!({
                    "type": "object", "additionalProperties": false, "required": ["question"],
                    "properties": {
                        "question": { "type": "string", "minLength": 1 },
                        "limit": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT }
                    }
                }))
                .output_schema(cited_output(&["question", "intent", "answer", "results", "citations"])),
            |kb, input| {
                let found = skills::answer(kb, str_input(input, "question"), limit(input));
                let confidence = if found.results.is_empty() { 0.0 } else if found.intent == "search" { 0.5 } else { 0.9 };
                Ok(output(&found)?.with_confidence(confidence))
            },
        ))
        .skill(handler(
            &kb,
            SkillDefinition::new("verify")
                .description("Critic for an attack chain: checks that each technique id exists, is current (not revoked or deprecated; suggests the replacement) and that tactics progress in ATT&CK order (by timestamp when given). Returns a verdict (valid, revise, invalid) and the problems.")
                .consumes(["attack_chain"])
                .input_schema(verify_input_schema())
                .output_schema(cited_output(&["verdict", "steps", "problems", "citations"]))
                .cost_hint(0.5),
            |kb, input| {
                let chain = chain_steps(input)?;
                let checked = skills::verify(kb, &chain);
                let confidence = match checked.verdict {
                    Verdict::Valid => 1.0,
                    Verdict::Revise => 0.6,
                    Verdict::Invalid => 0.2,
                };
                Ok(output(&checked)?.with_confidence(confidence))
            },
        ))
}

/// A skill producing `knowledge` from a pure function of the base and the input.
fn handler(
    kb: &Arc<KnowledgeBase>,
    definition: SkillDefinition,
    run: fn(&KnowledgeBase, &Value) -> Result<SkillOutput, SkillError>,
) -> impl synod_expert_sdk::Skill {
    let kb = Arc::clone(kb);
    skill_fn(definition.produces("knowledge"), move |_ctx, input| {
        let kb = Arc::clone(&kb);
        async move { run(&kb, &input) }
    })
}

fn output(value: &impl Serialize) -> Result<SkillOutput, SkillError> {
    serde_json::to_value(value)
        .map(SkillOutput::new)
        .map_err(|e| SkillError::internal(format!("cannot serialise the result: {e}")))
}

fn str_input<'a>(input: &'a Value, key: &str) -> &'a str {
    input[key].as_str().unwrap_or_default()
}

fn limit(input: &Value) -> usize {
    input["limit"]
        .as_u64()
        .unwrap_or(DEFAULT_LIMIT)
        .min(MAX_LIMIT) as usize
}

/// Every kind with its serialised name.
const KINDS: [(&str, Kind); 13] = [
    ("technique", Kind::Technique),
    ("tactic", Kind::Tactic),
    ("group", Kind::Group),
    ("software", Kind::Software),
    ("campaign", Kind::Campaign),
    ("mitigation", Kind::Mitigation),
    ("detection-strategy", Kind::DetectionStrategy),
    ("analytic", Kind::Analytic),
    ("data-component", Kind::DataComponent),
    ("attack-pattern", Kind::AttackPattern),
    ("capec-mitigation", Kind::CapecMitigation),
    ("weakness", Kind::Weakness),
    ("category", Kind::Category),
];

fn parse_kind(name: &str) -> Option<Kind> {
    KINDS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, kind)| kind)
}

/// Output schema: an object with these required fields and cited ids.
fn cited_output(required: &[&str]) -> Value {
    json!({
        "type": "object",
        "required": required,
        "properties": {
            "citations": { "type": "array", "items": { "type": "string", "minLength": 1 } }
        }
    })
}

/// Input of `knowledge/verify`: `chain` (or `steps`, as an attack chain
/// artifact may name it), other fields ignored.
pub(crate) fn verify_input_schema() -> Value {
    let steps = json!({
        "type": "array",
        "maxItems": MAX_CHAIN,
        "description": "Technique ids in attack order: strings (\"T1003.001\") or objects with `technique_id` (or `technique`/`id`) and an optional `timestamp` (RFC 3339 or Unix time).",
        "items": {
            "anyOf": [
                { "type": "string", "minLength": 1 },
                {
                    "type": "object",
                    "anyOf": [{ "required": ["technique_id"] }, { "required": ["technique"] }, { "required": ["id"] }],
                    "properties": {
                        "technique_id": { "type": "string" },
                        "technique": { "type": "string" },
                        "id": { "type": "string" },
                        "timestamp": { "type": ["string", "number"] }
                    }
                }
            ]
        }
    });
    json!({
        "type": "object",
        "anyOf": [{ "required": ["chain"] }, { "required": ["steps"] }],
        "properties": { "chain": steps, "steps": steps }
    })
}

fn chain_steps(input: &Value) -> Result<Vec<ChainStep>, SkillError> {
    let key = if input.get("chain").is_some() {
        "chain"
    } else {
        "steps"
    };
    let items = input[key].as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            if let Some(id) = item.as_str() {
                return Ok(ChainStep {
                    technique: id.to_owned(),
                    timestamp: None,
                });
            }
            let technique = ["technique_id", "technique", "id"]
                .iter()
                .find_map(|k| item[*k].as_str())
                .ok_or_else(|| {
                    SkillError::invalid_input(
                        format!("/{key}/{i}"),
                        "expected a technique id string or an object with `technique_id`",
                    )
                })?;
            let timestamp = match &item["timestamp"] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            Ok(ChainStep {
                technique: technique.to_owned(),
                timestamp,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_serialised_names() {
        for (name, kind) in KINDS {
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
            assert_eq!(parse_kind(name), Some(kind));
        }
        assert_eq!(parse_kind("Technique"), None);
    }
}
