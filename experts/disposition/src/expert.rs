//! The `disposition` expert on `synod-expert-sdk`: skill `plan`
//! (`alerts` + `attack_chain` + `assets` -> `response_plan`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use synod_expert_sdk::{
    Evidence, ExpertServer, ExpertServerBuilder, Sensitivity, SkillContext, SkillDefinition,
    SkillError, SkillOutput, skill_fn,
};

use crate::action::ACTION_KINDS;
use crate::attack::AttackCatalog;
use crate::cacao::{HttpApi, playbook};
use crate::input::{
    CRITICALITIES, InputError, PlanInput, alerts_from_json, assets_from_json, chain_from_json,
};
use crate::plan::{Plan, plan};
use crate::policy::{Policy, PolicyError};
use crate::time::format_timestamp;

/// Version reported on the expert card.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Most alerts per call.
const MAX_ALERTS: usize = 10_000;

/// How the expert is set up.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Approval rules, internal networks, score weights.
    pub policy: Policy,
    /// When set, action steps carry `http-api` commands to this endpoint
    /// instead of `manual` ones.
    pub http_api: Option<HttpApi>,
}

impl Config {
    /// The default configuration with the policy read from a JSON file.
    ///
    /// # Errors
    ///
    /// [`PolicyError`] when the file cannot be read or is invalid.
    pub fn with_policy_file(path: &Path) -> Result<Config, PolicyError> {
        Ok(Config {
            policy: Policy::from_file(path)?,
            http_api: None,
        })
    }
}

/// Builds the `disposition` expert (add `.register_with(..)` and serve).
pub fn expert(config: &Config) -> ExpertServerBuilder {
    let definition = SkillDefinition::new("plan")
        .description("Plans the response to alerts (attack-detection/detect output), an attack chain (tracing output) and asset context: prioritised actions (isolate host, block IP/domain, disable account, reset credentials, kill process, quarantine file, patch) with targets, evidence, ATT&CK mitigations, business impact and policy approval, as a flat action list and an OASIS CACAO 2.0 playbook.")
        .consumes(["alerts", "attack_chain"]) // `assets` is optional context
        .produces("response_plan")
        .input_schema(plan_input_schema())
        .output_schema(plan_output_schema())
        .cost_hint(0.5)
        .max_sensitivity(Sensitivity::Confidential);
    let config = Arc::new(config.clone());
    ExpertServer::builder("disposition", VERSION)
        .description("Incident disposition: response plans as CACAO 2.0 playbooks and deliverable actions, with an approval policy.")
        .skill(skill_fn(definition, move |ctx, input| {
            let config = Arc::clone(&config);
            async move { invoke(&ctx, &input, &config) }
        }))
}

fn invoke(ctx: &SkillContext, input: &Value, config: &Config) -> Result<SkillOutput, SkillError> {
    let mut plan_input =
        PlanInput::from_json(input).map_err(|e| SkillError::invalid_input(e.pointer, e.message))?;
    add_context_artifacts(ctx, &mut plan_input)?;
    if plan_input.alerts.is_empty() && plan_input.chain.is_none() {
        return Err(SkillError::invalid_input(
            "/alerts",
            "nothing to plan from: give `alerts` (the attack-detection `detect` output) or `chain` (the tracing output)",
        ));
    }
    if plan_input.alerts.len() > MAX_ALERTS {
        return Err(SkillError::invalid_input(
            "/alerts",
            format!(
                "{} alerts; the limit per call is {MAX_ALERTS}: raise `min_level` in detection or split the input",
                plan_input.alerts.len()
            ),
        ));
    }
    let now = format_timestamp(chrono::Utc::now());
    let (value, plan) = respond(&plan_input, config, &now);
    let confidence = plan
        .actions
        .iter()
        .map(|a| a.factors.confidence)
        .fold(0.0, f64::max);
    let mut output = SkillOutput::new(value).with_confidence(if plan.actions.is_empty() {
        0.5
    } else {
        confidence
    });
    for action in plan.actions.iter().take(10) {
        if let Some(first) = action.evidence.first() {
            output = output.with_evidence(Evidence::new(
                first.pointer.clone(),
                format!(
                    "P{} {} {}",
                    action.priority,
                    action.kind.as_str(),
                    action.target.value
                ),
            ));
        }
    }
    Ok(output)
}

/// Fills what the input lacks from the call's context artifacts of types
/// `alerts`, `attack_chain` and `assets` (the orchestrator passes earlier
/// steps' outputs this way when it answers a need).
fn add_context_artifacts(ctx: &SkillContext, input: &mut PlanInput) -> Result<(), SkillError> {
    let bad = |e: InputError| SkillError::invalid_input(e.pointer, e.message);
    if input.alerts.is_empty() {
        for (i, artifact) in ctx.artifacts_of_type("alerts").enumerate() {
            let pointer = format!("/artifacts/alerts/{i}");
            input
                .alerts
                .extend(alerts_from_json(&artifact.data, &pointer).map_err(bad)?);
        }
    }
    if input.chain.is_none()
        && let Some(artifact) = ctx.artifacts_of_type("attack_chain").next()
    {
        input.chain =
            Some(chain_from_json(&artifact.data, "/artifacts/attack_chain/0").map_err(bad)?);
    }
    if input.assets.is_empty() {
        for (i, artifact) in ctx.artifacts_of_type("assets").enumerate() {
            let data = artifact.data.get("assets").unwrap_or(&artifact.data);
            let pointer = format!("/artifacts/assets/{i}");
            input
                .assets
                .extend(assets_from_json(data, &pointer).map_err(bad)?);
        }
    }
    Ok(())
}

/// The `plan` skill as a pure function: the response plan JSON for the
/// input, stamped with the input's `created`, else the latest evidence time,
/// else `now`.
pub fn respond(input: &PlanInput, config: &Config, now: &str) -> (Value, Plan) {
    let catalog = AttackCatalog::embedded();
    let plan = plan(input, &config.policy, catalog);
    let created = plan.timestamp.clone().unwrap_or_else(|| now.to_owned());
    let document = playbook(&plan, &created, config.http_api.as_ref(), catalog);
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut mitigations: BTreeMap<&str, (&str, Vec<&str>, Vec<&str>)> = BTreeMap::new();
    for action in &plan.actions {
        *by_kind.entry(action.kind.as_str()).or_default() += 1;
        for mitigation in &action.mitigations {
            let entry = mitigations.entry(&mitigation.id).or_insert((
                &mitigation.name,
                Vec::new(),
                Vec::new(),
            ));
            for technique in &mitigation.techniques {
                if !entry.1.contains(&technique.as_str()) {
                    entry.1.push(technique);
                }
            }
            entry.2.push(&action.id);
        }
    }
    let mitigations: Vec<Value> = mitigations
        .into_iter()
        .map(|(id, (name, mut techniques, actions))| {
            techniques.sort_unstable();
            json!({ "id": id, "name": name, "techniques": techniques, "actions": actions })
        })
        .collect();
    let value = json!({
        "playbook": document,
        "actions": plan.actions.iter().map(|a| a.to_json()).collect::<Vec<_>>(),
        "skipped": plan.skipped.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        "mitigations": mitigations,
        "summary": {
            "actions": plan.actions.len(),
            "requiring_approval": plan.actions.iter().filter(|a| a.approval.required).count(),
            "by_kind": by_kind,
            "hosts": plan.hosts,
            "techniques": plan.techniques,
            "attribution": plan.attribution,
            "alerts": plan.alerts,
            "chain_steps": plan.chain_steps,
            "dropped_actions": plan.dropped,
            "created": created,
        },
        "attribution_notice": "ATT&CK® data © 2025 The MITRE Corporation. This work is reproduced and distributed with the permission of The MITRE Corporation.",
    });
    (value, plan)
}

/// Input of `disposition/plan`.
pub fn plan_input_schema() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let alert = json!({
        "type": "object",
        "description": "An alert as attack-detection/detect emits it; only rule_id, title, level, techniques, tactics and events are read.",
        "properties": {
            "rule_id": { "type": "string" },
            "title": { "type": "string" },
            "level": { "type": "string" },
            "techniques": strings,
            "tactics": strings,
            "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "computer": { "type": "string" },
                        "timestamp": { "type": "string" },
                        "fields": { "type": "object" }
                    }
                }
            }
        }
    });
    let chain = json!({
        "type": ["object", "null"],
        "description": "The tracing expert's output: root_cause, steps, entities, attribution (all optional).",
        "properties": {
            "root_cause": { "type": ["object", "null"] },
            "steps": { "type": "array", "items": { "type": "object" } },
            "entities": { "type": "object" },
            "attribution": { "type": "array" },
            "confidence": { "type": "number", "minimum": 0, "maximum": 1 }
        }
    });
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "alerts": {
                "description": "The attack-detection `detect` output, or its `alerts` array.",
                "anyOf": [
                    { "type": "array", "items": alert },
                    { "type": "object", "required": ["alerts"], "properties": { "alerts": { "type": "array", "items": alert } } }
                ]
            },
            "chain": chain,
            "attack_chain": chain,
            "assets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "anyOf": [{ "required": ["host"] }, { "required": ["ip"] }, { "required": ["user"] }],
                    "properties": {
                        "host": { "type": "string" },
                        "ip": { "type": "string" },
                        "user": { "type": "string" },
                        "criticality": { "enum": CRITICALITIES },
                        "owner": { "type": "string" },
                        "role": { "type": "string", "description": "e.g. domain-controller, database, domain-admin" }
                    }
                }
            },
            "created": { "type": "string", "description": "RFC 3339 time stamped on the playbook (default: the latest evidence time)." }
        }
    })
}

/// Output of `disposition/plan`.
pub fn plan_output_schema() -> Value {
    let kinds: Vec<&str> = ACTION_KINDS.iter().map(|k| k.as_str()).collect();
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    json!({
        "type": "object",
        "required": ["playbook", "actions", "skipped", "mitigations", "summary"],
        "properties": {
            "playbook": {
                "type": "object",
                "description": "OASIS CACAO 2.0 playbook.",
                "required": ["type", "spec_version", "id", "name", "created_by", "created", "modified", "workflow_start", "workflow"],
                "properties": {
                    "type": { "const": "playbook" },
                    "spec_version": { "const": "cacao-2.0" },
                    "id": { "type": "string", "pattern": "^playbook--" },
                    "workflow": { "type": "object", "minProperties": 3 }
                }
            },
            "actions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "kind", "target", "priority", "score", "requires_approval", "rationale", "evidence", "mitigations", "impact"],
                    "properties": {
                        "id": { "type": "string", "pattern": "^action--" },
                        "kind": { "enum": kinds },
                        "phase": { "enum": ["containment", "eradication", "recovery"] },
                        "target": {
                            "type": "object",
                            "required": ["type", "value"],
                            "properties": {
                                "type": { "enum": ["host", "ip", "domain", "account", "process", "file"] },
                                "value": { "type": "string" },
                                "host": { "type": "string" }
                            }
                        },
                        "priority": { "type": "integer", "minimum": 1 },
                        "score": { "type": "integer", "minimum": 0, "maximum": 100 },
                        "score_factors": { "type": "object" },
                        "requires_approval": { "type": "boolean" },
                        "approval": { "type": "object" },
                        "rationale": { "type": "string" },
                        "instruction": { "type": "string" },
                        "evidence": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["pointer", "source"],
                                "properties": {
                                    "pointer": { "type": "string" },
                                    "source": { "enum": ["alert", "chain_step", "chain_entity", "root_cause"] },
                                    "rule_id": { "type": "string" },
                                    "techniques": strings
                                }
                            }
                        },
                        "evidence_count": { "type": "integer", "minimum": 1 },
                        "techniques": strings,
                        "mitigations": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "name", "techniques"],
                                "properties": { "id": { "type": "string", "pattern": "^M[0-9]{4}$" } }
                            }
                        },
                        "impact": {
                            "type": "object",
                            "required": ["level", "description"],
                            "properties": { "level": { "enum": CRITICALITIES } }
                        }
                    }
                }
            },
            "skipped": { "type": "array", "items": { "type": "object", "required": ["kind", "target", "reason"] } },
            "mitigations": { "type": "array" },
            "summary": { "type": "object", "required": ["actions", "requiring_approval", "hosts", "techniques", "created"] }
        }
    })
}
