//! The `tracing` expert on `synod-expert-sdk`: skills `reconstruct`
//! (`events` + `alerts` -> `attack_chain`) and `attribute`
//! (techniques -> `attribution`).

use std::sync::Arc;

use serde_json::{Value, json};
use synod_expert_attack_detection::input_events;
use synod_expert_sdk::{
    Evidence, ExpertServer, ExpertServerBuilder, Sensitivity, SkillDefinition, SkillError,
    SkillOutput, skill_fn,
};

use crate::attack::AttackData;
use crate::attribution::{Attributor, CAUTION};
use crate::graph::ProvenanceGraph;
use crate::record::Record;
use crate::trace::{AlertInput, Inputs, Limits, reconstruct};

/// Version reported on the expert card.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Technique id pattern of the schemas.
const TECHNIQUE_PATTERN: &str = "^[Tt][0-9]{4}(\\.[0-9]{3})?$";

/// How the expert is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Whether `reconstruct` may read `paths` (EVTX/JSON files on the expert's host).
    pub allow_file_input: bool,
    /// Whether to add the tracer's behavioural findings to the alerts.
    pub heuristics: bool,
    /// Output limits.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allow_file_input: false,
            heuristics: true,
            limits: Limits::default(),
        }
    }
}

/// Shared, read-only state of the skills.
#[derive(Debug)]
struct State {
    config: Config,
    attack: &'static AttackData,
    attributor: Attributor,
}

/// Builds the `tracing` expert (add `.register_with(..)` and serve).
pub fn expert(config: &Config) -> ExpertServerBuilder {
    let state = Arc::new(State {
        config: config.clone(),
        attack: AttackData::embedded(),
        attributor: Attributor::embedded(),
    });
    let reconstruct_definition = SkillDefinition::new("reconstruct")
        .description("Builds a provenance graph (processes, logons, network, DNS, files, registry, services, injections) from Windows/Sysmon events, finds the root cause of the detected activity, the attack path and the ATT&CK-ordered chain of steps, lists the entities involved, and ranks ATT&CK groups by technique overlap (weak evidence). Takes the alerts of attack-detection/detect and/or listed techniques.")
        .consumes(["events", "alerts"])
        .produces("attack_chain")
        .input_schema(reconstruct_input_schema())
        .output_schema(reconstruct_output_schema())
        .cost_hint(2.0)
        .max_sensitivity(Sensitivity::Confidential);
    let attribute_definition = SkillDefinition::new("attribute")
        .description("Ranks ATT&CK intrusion sets by IDF-weighted cosine overlap between the given techniques and the techniques ATT&CK records for each group. Weak evidence: a ranking of hypotheses, not an identification.")
        .consumes(["attack_chain"])
        .produces("attribution")
        .input_schema(attribute_input_schema())
        .output_schema(attribute_output_schema())
        .cost_hint(0.2);
    let for_reconstruct = Arc::clone(&state);
    let for_attribute = state;
    ExpertServer::builder("tracing", VERSION)
        .description(format!(
            "Attack tracing and attribution over Windows/Sysmon events ({} ATT&CK techniques, {} groups embedded).",
            for_reconstruct.attack.technique_count(),
            for_reconstruct.attack.groups().len()
        ))
        .skill(skill_fn(reconstruct_definition, move |_ctx, input| {
            let state = Arc::clone(&for_reconstruct);
            async move {
                tokio::task::spawn_blocking(move || reconstruct_skill(&state, &input))
                    .await
                    .map_err(|e| SkillError::internal(format!("reconstruction task failed: {e}")))?
            }
        }))
        .skill(skill_fn(attribute_definition, move |_ctx, input| {
            let state = Arc::clone(&for_attribute);
            async move { attribute_skill(&state, &input) }
        }))
}

fn strings(input: &Value, key: &str) -> Vec<String> {
    input[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The `reconstruct` skill: reads the events, builds the graph, reconstructs.
fn reconstruct_skill(state: &State, input: &Value) -> Result<SkillOutput, SkillError> {
    let mut records = Vec::new();
    input_events(
        input,
        state.config.allow_file_input,
        "split the input or pass files",
        |reference, event| records.extend(Record::from_event(reference, &event)),
    )?;
    let alerts: Vec<AlertInput> = match input.get("alerts") {
        Some(value) => serde_json::from_value(value.clone()).map_err(|e| {
            SkillError::invalid_input(
                "/alerts",
                format!("not alerts of attack-detection/detect: {e}"),
            )
        })?,
        None => Vec::new(),
    };
    let techniques = strings(input, "techniques");
    let heuristics = input["heuristics"]
        .as_bool()
        .unwrap_or(state.config.heuristics);
    let mut limits = state.config.limits;
    if let Some(n) = input["max_attribution"].as_u64() {
        limits.attribution = n as usize;
    }
    let graph = ProvenanceGraph::build(records);
    let inputs = Inputs {
        alerts: &alerts,
        techniques: &techniques,
        heuristics,
    };
    let value = reconstruct(&graph, inputs, state.attack, &state.attributor, limits);
    let confidence = value["confidence"].as_f64().unwrap_or(0.0);
    let mut output = SkillOutput::new(value.clone()).with_confidence(confidence);
    for step in value["steps"].as_array().into_iter().flatten() {
        let Some(evidence) = step["evidence"].as_array().and_then(|e| e.first()) else {
            continue;
        };
        if evidence["source"] == "input"
            && let Some(index) = evidence["index"].as_u64()
        {
            output = output.with_evidence(Evidence::new(
                format!("/events/{index}"),
                format!(
                    "{} {} ({})",
                    step["technique_id"].as_str().unwrap_or_default(),
                    step["technique_name"].as_str().unwrap_or_default(),
                    step["tactic"].as_str().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(output)
}

/// The `attribute` skill.
fn attribute_skill(state: &State, input: &Value) -> Result<SkillOutput, SkillError> {
    let techniques: Vec<String> = strings(input, "techniques")
        .iter()
        .map(|t| state.attack.canonical(t))
        .collect();
    let limit = input["limit"].as_u64().map_or(10, |n| n as usize);
    let unknown: Vec<&String> = techniques
        .iter()
        .filter(|t| state.attack.technique(t).is_none())
        .collect();
    let ranked = state.attributor.rank(&techniques, limit);
    let confidence = ranked.first().map_or(0.0, |c| (c.score * 0.5).min(0.5));
    Ok(SkillOutput::new(json!({
        "attribution": ranked,
        "unknown_techniques": unknown,
        "caution": CAUTION,
    }))
    .with_confidence(confidence))
}

/// Input of `tracing/reconstruct`.
pub fn reconstruct_input_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "anyOf": [
            { "required": ["events"] }, { "required": ["paths"] },
            { "required": ["alerts"] }, { "required": ["techniques"] }
        ],
        "properties": {
            "events": {
                "type": "array",
                "description": "Windows/Sysmon events: EVTX-style JSON or flat JSON, as attack-detection/detect accepts.",
                "items": { "type": "object" }
            },
            "paths": {
                "type": "array",
                "description": "EVTX, JSON or JSON-lines files on the expert's host (only when the expert allows file input).",
                "items": { "type": "string", "minLength": 1 }
            },
            "alerts": {
                "type": "array",
                "description": "The `alerts` of attack-detection/detect over the same events.",
                "items": {
                    "type": "object",
                    "properties": {
                        "techniques": { "type": "array", "items": { "type": "string" } },
                        "tactics": { "type": "array", "items": { "type": "string" } },
                        "events": { "type": "array", "items": { "type": "object" } }
                    }
                }
            },
            "techniques": {
                "type": "array",
                "description": "ATT&CK technique ids known from elsewhere.",
                "items": { "type": "string", "pattern": TECHNIQUE_PATTERN }
            },
            "heuristics": { "type": "boolean", "description": "Add the tracer's behavioural findings (default: on)." },
            "max_attribution": { "type": "integer", "minimum": 0, "maximum": 50 }
        }
    })
}

fn nullable_string() -> Value {
    json!({ "type": ["string", "null"] })
}

fn attribution_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["group", "group_id", "score", "shared_techniques"],
            "properties": {
                "group": { "type": "string" },
                "group_id": { "type": "string", "pattern": "^G[0-9]{4}$" },
                "score": { "type": "number", "minimum": 0, "maximum": 1 },
                "shared_techniques": { "type": "array", "items": { "type": "string" } }
            }
        }
    })
}

/// Output of `tracing/reconstruct`.
pub fn reconstruct_output_schema() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    json!({
        "type": "object",
        "required": ["root_cause", "steps", "path", "entities", "attribution", "summary", "confidence"],
        "properties": {
            "root_cause": {
                "oneOf": [
                    { "type": "null" },
                    {
                        "type": "object",
                        "required": ["node", "kind", "host", "description", "timestamp"],
                        "properties": {
                            "node": { "type": "string" },
                            "kind": { "enum": ["process", "logon", "user", "ip", "domain", "file", "registry", "service"] },
                            "host": nullable_string(),
                            "description": { "type": "string" },
                            "timestamp": nullable_string()
                        }
                    }
                ]
            },
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["technique_id", "technique_name", "tactic", "timestamp", "host", "process", "evidence"],
                    "properties": {
                        "technique_id": { "type": "string" },
                        "technique_name": { "type": "string" },
                        "tactic": { "type": "string" },
                        "timestamp": nullable_string(),
                        "host": nullable_string(),
                        "process": nullable_string(),
                        "evidence": { "type": "array", "items": { "type": "object" } },
                        "reasons": strings
                    }
                }
            },
            "path": {
                "type": "object",
                "required": ["nodes", "edges"],
                "properties": {
                    "nodes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "kind", "label"],
                            "properties": {
                                "id": { "type": "string" }, "kind": { "type": "string" },
                                "label": { "type": "string" }, "host": nullable_string(),
                                "first_seen": nullable_string(), "detected": { "type": "boolean" }
                            }
                        }
                    },
                    "edges": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["from", "to", "kind"],
                            "properties": {
                                "from": { "type": "string" }, "to": { "type": "string" },
                                "kind": { "type": "string" }, "first_seen": nullable_string(),
                                "count": { "type": "integer", "minimum": 1 },
                                "evidence": { "type": "array", "items": { "type": "object" } }
                            }
                        }
                    }
                }
            },
            "entities": {
                "type": "object",
                "required": ["hosts", "users", "ips", "domains", "processes", "files"],
                "properties": {
                    "hosts": strings, "users": strings, "ips": strings, "domains": strings, "files": strings,
                    "processes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["image", "pid", "host", "command_line"],
                            "properties": {
                                "image": { "type": "string" },
                                "pid": { "type": ["integer", "null"] },
                                "host": { "type": "string" },
                                "command_line": nullable_string()
                            }
                        }
                    }
                }
            },
            "attribution": attribution_schema(),
            "summary": { "type": "string" },
            "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
            "caution": { "type": "string" },
            "counts": { "type": "object" }
        }
    })
}

/// Input of `tracing/attribute`.
pub fn attribute_input_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["techniques"],
        "properties": {
            "techniques": {
                "type": "array",
                "minItems": 1,
                "items": { "type": "string", "pattern": TECHNIQUE_PATTERN }
            },
            "limit": { "type": "integer", "minimum": 1, "maximum": 200 }
        }
    })
}

/// Output of `tracing/attribute`.
pub fn attribute_output_schema() -> Value {
    json!({
        "type": "object",
        "required": ["attribution", "unknown_techniques", "caution"],
        "properties": {
            "attribution": attribution_schema(),
            "unknown_techniques": { "type": "array", "items": { "type": "string" } },
            "caution": { "type": "string" }
        }
    })
}
