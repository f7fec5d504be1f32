//! Encoding a [`Plan`] as an OASIS CACAO 2.0 playbook.
//!
//! The workflow is a sequence: `start` → for each action in priority order
//! (an approval step first when the policy requires one: `on_success` runs
//! the action, `on_failure` skips it) → `end`. Action steps carry a
//! `manual` command with the operator instruction, or an `http-api` command
//! (`POST <path>/<kind>` with the action as JSON and an `Idempotency-Key`)
//! when an HTTP endpoint is configured. Agents are the SOC responders, the
//! approver groups and the HTTP endpoint; targets are the hosts, addresses,
//! domains and accounts acted on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use crate::action::{Action, Phase, TargetKind};
use crate::attack::{AttackCatalog, attack_url};
use crate::ids::{creator_id, hashed_v4, object_id, playbook_id};
use crate::plan::Plan;

/// Where `http-api` commands go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpApi {
    /// Base URL of the response API (e.g. a SOAR or synod webhook), as the
    /// CACAO `http-api` agent's address.
    pub url: String,
    /// Path prefix of the action endpoints; the command is
    /// `POST <path_prefix>/<kind> HTTP/1.1`.
    pub path_prefix: String,
}

/// Encodes the plan as a CACAO 2.0 playbook stamped `created`.
pub fn playbook(
    plan: &Plan,
    created: &str,
    http_api: Option<&HttpApi>,
    catalog: &AttackCatalog,
) -> Value {
    let mut types: Vec<&str> = Vec::new();
    let phases: BTreeSet<Phase> = plan.actions.iter().map(|a| a.kind.phase()).collect();
    if phases.is_empty() {
        types.push("investigation");
    }
    if phases.contains(&Phase::Containment) {
        types.push("mitigation");
    }
    if phases.contains(&Phase::Eradication) || phases.contains(&Phase::Recovery) {
        types.push("remediation");
    }
    let action_ids: Vec<&str> = plan.actions.iter().map(|a| a.id.as_str()).collect();
    let fingerprint: String = hashed_v4(&action_ids.join(","))
        .simple()
        .to_string()
        .chars()
        .take(8)
        .collect();
    let headline = plan
        .headline
        .clone()
        .unwrap_or_else(|| "no alert".to_owned());
    let name = format!("synod response plan {fingerprint}: {headline}");

    let mut agents = Map::new();
    let responders = object_id("group", "soc-responders");
    agents.insert(
        responders.clone(),
        json!({ "type": "group", "name": "SOC responders",
                "description": "Analysts carrying out manual response steps" }),
    );
    let http_agent = http_api.map(|api| {
        let id = object_id("http-api", &api.url);
        agents.insert(
            id.clone(),
            json!({ "type": "http-api", "name": "synod response API",
                    "description": "HTTP endpoint that workflow bindings deliver actions to",
                    "address": { "url": [api.url] } }),
        );
        id
    });

    let mut targets = Map::new();
    let mut workflow = Map::new();
    let start = object_id("start", &fingerprint);
    let end = object_id("end", &fingerprint);
    // steps in execution order: (step id, step) pairs, linked afterwards
    let mut steps: Vec<(String, Map<String, Value>, bool)> = Vec::new();
    let mut activities = BTreeSet::new();
    for action in &plan.actions {
        activities.insert(action.kind.activity());
        let target_ids = target_definition(action, &mut targets);
        if action.approval.required {
            let approvers = &action.approval.approvers;
            let group = object_id("group", &format!("approvers|{}", approvers.join(",")));
            agents.entry(group.clone()).or_insert_with(|| {
                json!({ "type": "group",
                        "name": format!("Approvers: {}", approvers.join(", ")),
                        "description": "Roles that may approve response actions under the policy" })
            });
            let rule = action.approval.rule.as_deref().unwrap_or("default");
            let mut approval = Map::new();
            approval.insert("type".into(), json!("action"));
            approval.insert(
                "name".into(),
                json!(format!(
                    "Approve P{}: {} {}",
                    action.priority,
                    action.kind.as_str(),
                    action.target.value
                )),
            );
            approval.insert(
                "description".into(),
                json!(format!(
                    "Policy rule `{rule}`: {}. Impact: {}",
                    action.approval.reason, action.impact.description
                )),
            );
            approval.insert(
                "commands".into(),
                json!([{ "type": "manual",
                         "description": "approval gate; success runs the action, failure skips it",
                         "command": format!("Approve or reject: {}", action.instruction),
                         "playbook_activity": "identify-steps" }]),
            );
            approval.insert("agent".into(), json!(group));
            steps.push((
                object_id("action", &format!("approval|{}", action.id)),
                approval,
                true,
            ));
        }
        let mut step = Map::new();
        step.insert("type".into(), json!("action"));
        step.insert(
            "name".into(),
            json!(format!(
                "P{} {} {}",
                action.priority,
                action.kind.as_str(),
                action.target.value
            )),
        );
        step.insert("description".into(), json!(action.rationale));
        let command = match (&http_agent, http_api) {
            (Some(agent), Some(api)) => {
                step.insert("agent".into(), json!(agent));
                json!({
                    "type": "http-api",
                    "description": action.instruction,
                    "command": format!("POST {}/{} HTTP/1.1", api.path_prefix.trim_end_matches('/'), action.kind.as_str()),
                    "headers": { "Content-Type": ["application/json"], "Idempotency-Key": [action.id] },
                    "content": action.to_json().to_string(),
                    "playbook_activity": action.kind.activity(),
                })
            }
            _ => {
                step.insert("agent".into(), json!(responders));
                json!({
                    "type": "manual",
                    "command": action.instruction,
                    "playbook_activity": action.kind.activity(),
                })
            }
        };
        step.insert("commands".into(), json!([command]));
        if !target_ids.is_empty() {
            step.insert("targets".into(), json!(target_ids));
        }
        let references: Vec<Value> = action
            .mitigations
            .iter()
            .map(|m| mitigation_reference(&m.id, &m.name))
            .collect();
        if !references.is_empty() {
            step.insert("external_references".into(), json!(references));
        }
        steps.push((action.id.clone(), step, false));
    }
    if steps.is_empty() {
        activities.insert("analyze-collected-data");
        let mut review = Map::new();
        review.insert("type".into(), json!("action"));
        review.insert("name".into(), json!("Review the input"));
        review.insert(
            "description".into(),
            json!("No response action was derived from the alerts and chain."),
        );
        review.insert(
            "commands".into(),
            json!([{ "type": "manual",
                     "command": "Review the alerts and the attack chain; no target for an automated response was found.",
                     "playbook_activity": "analyze-collected-data" }]),
        );
        review.insert("agent".into(), json!(responders));
        steps.push((
            object_id("action", &format!("review|{fingerprint}")),
            review,
            false,
        ));
    }

    // link: start -> steps... -> end; an approval's failure skips its action
    workflow.insert(
        start.clone(),
        json!({ "type": "start", "name": "Start", "on_completion": steps[0].0 }),
    );
    for i in 0..steps.len() {
        let next = steps.get(i + 1).map_or(end.clone(), |s| s.0.clone());
        let is_approval = steps[i].2;
        let (id, mut step) = (steps[i].0.clone(), steps[i].1.clone());
        if is_approval {
            let after_action = steps.get(i + 2).map_or(end.clone(), |s| s.0.clone());
            step.insert("on_success".into(), json!(next));
            step.insert("on_failure".into(), json!(after_action));
        } else {
            step.insert("on_completion".into(), json!(next));
        }
        workflow.insert(id, Value::Object(step));
    }
    workflow.insert(end, json!({ "type": "end", "name": "End" }));

    let mut document = Map::new();
    document.insert("type".into(), json!("playbook"));
    document.insert("spec_version".into(), json!("cacao-2.0"));
    document.insert("id".into(), json!(playbook_id(&name, &types)));
    document.insert("name".into(), json!(name));
    document.insert("description".into(), json!(description(plan)));
    document.insert("playbook_types".into(), json!(types));
    document.insert(
        "playbook_activities".into(),
        json!(activities.into_iter().collect::<Vec<_>>()),
    );
    document.insert("created_by".into(), json!(creator_id()));
    document.insert("created".into(), json!(created));
    document.insert("modified".into(), json!(created));
    if let Some(top) = plan.actions.iter().map(|a| a.score).max() {
        // CACAO priority: 1 highest .. 100 lowest
        document.insert("priority".into(), json!((101 - top.min(100)).max(1)));
        let impact = plan
            .actions
            .iter()
            .map(|a| a.impact.level.rank())
            .max()
            .unwrap_or(0);
        document.insert("impact".into(), json!((impact + 1) * 25));
    }
    if plan.max_severity > 0.0 {
        document.insert(
            "severity".into(),
            json!(((plan.max_severity * 100.0).round() as u32).clamp(1, 100)),
        );
    }
    let mut labels: Vec<String> = plan.techniques.iter().cloned().collect();
    labels.extend(plan.attribution.iter().map(|a| format!("attribution:{a}")));
    if !labels.is_empty() {
        document.insert("labels".into(), json!(labels));
    }
    let references = external_references(plan, catalog);
    if !references.is_empty() {
        document.insert("external_references".into(), json!(references));
    }
    document.insert("workflow_start".into(), json!(start));
    document.insert("workflow".into(), Value::Object(workflow));
    document.insert("agent_definitions".into(), Value::Object(agents));
    if !targets.is_empty() {
        document.insert("target_definitions".into(), Value::Object(targets));
    }
    Value::Object(document)
}

/// Adds the CACAO target(s) of an action; returns their ids.
fn target_definition(action: &Action, targets: &mut Map<String, Value>) -> Vec<String> {
    let target = &action.target;
    let (object_type, name, body) = match target.kind {
        TargetKind::Account => (
            "individual",
            target.value.clone(),
            json!({ "type": "individual", "name": target.value,
                    "description": "user account" }),
        ),
        TargetKind::Host | TargetKind::Ip | TargetKind::Domain => {
            let description = match target.kind {
                TargetKind::Host => "host",
                TargetKind::Ip => "IP address",
                _ => "domain name",
            };
            (
                "net-address",
                target.value.clone(),
                net_address(&target.value, description),
            )
        }
        TargetKind::Process | TargetKind::File => match &target.host {
            Some(host) => ("net-address", host.clone(), net_address(host, "host")),
            None => return Vec::new(),
        },
    };
    let id = object_id(object_type, &name.to_lowercase());
    targets.entry(id.clone()).or_insert(body);
    vec![id]
}

fn net_address(value: &str, description: &str) -> Value {
    let address = match value.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => json!({ "ipv4": [v4.to_string()] }),
        Ok(IpAddr::V6(v6)) => json!({ "ipv6": [v6.to_string()] }),
        Err(_) => json!({ "dname": [value] }),
    };
    json!({ "type": "net-address", "name": value, "description": description, "address": address })
}

fn mitigation_reference(id: &str, name: &str) -> Value {
    json!({
        "name": format!("MITRE ATT&CK mitigation {id} {name}"),
        "source": "MITRE ATT&CK",
        "external_id": id,
        "url": attack_url(id),
    })
}

fn external_references(plan: &Plan, catalog: &AttackCatalog) -> Vec<Value> {
    let mut references = Vec::new();
    for technique in &plan.techniques {
        let name = catalog
            .technique(technique)
            .map(|t| t.name.as_str())
            .unwrap_or_default();
        references.push(json!({
            "name": format!("MITRE ATT&CK technique {technique} {name}").trim_end().to_owned(),
            "source": "MITRE ATT&CK",
            "external_id": technique,
            "url": attack_url(technique),
        }));
    }
    let mut mitigations: BTreeMap<&str, &str> = BTreeMap::new();
    for action in &plan.actions {
        for mitigation in &action.mitigations {
            mitigations.insert(&mitigation.id, &mitigation.name);
        }
    }
    for (id, name) in mitigations {
        references.push(mitigation_reference(id, name));
    }
    references
}

fn description(plan: &Plan) -> String {
    let approvals = plan.actions.iter().filter(|a| a.approval.required).count();
    let mut text = format!(
        "Response plan derived by synod's disposition expert from {} alerts and {} attack-chain steps: {} actions ({} need approval) on hosts {}.",
        plan.alerts,
        plan.chain_steps,
        plan.actions.len(),
        approvals,
        if plan.hosts.is_empty() {
            "none".to_owned()
        } else {
            plan.hosts.join(", ")
        }
    );
    if plan.dropped > 0 {
        text.push_str(&format!(
            " {} lower-ranked actions were left out (policy max_actions).",
            plan.dropped
        ));
    }
    if !plan.techniques.is_empty() {
        let list: Vec<&str> = plan.techniques.iter().map(String::as_str).collect();
        text.push_str(&format!(" ATT&CK techniques: {}.", list.join(", ")));
    }
    if !plan.attribution.is_empty() {
        text.push_str(&format!(" Attributed to: {}.", plan.attribution.join(", ")));
    }
    text.push_str(" ATT&CK data © The MITRE Corporation, reproduced with permission.");
    text
}
