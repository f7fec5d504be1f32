//! The CACAO 2.0 playbooks the expert emits validate against the OASIS
//! CACAO JSON schemas (vendored subset in `tests/cacao/`, see its NOTICE)
//! and hold the references the schemas cannot check (steps, agents and
//! targets that exist, a workflow from start to end).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use synod_expert_disposition::{Config, HttpApi, PlanInput, respond};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn incident() -> Value {
    let path = crate_dir().join("tests/fixtures/incident.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn schema_files(dir: &Path, out: &mut Vec<Value>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            schema_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap());
        }
    }
}

/// A validator for `playbook.json` with every vendored schema registered
/// under its `$id` (no network: references resolve only to these files).
fn cacao_validator() -> jsonschema::Validator {
    let mut schemas = Vec::new();
    schema_files(&crate_dir().join("tests/cacao"), &mut schemas);
    assert!(schemas.len() >= 19, "vendored schemas missing");
    let root = schemas
        .iter()
        .find(|s| s["title"] == "playbook")
        .unwrap()
        .clone();
    let mut builder = jsonschema::Registry::new();
    for schema in schemas {
        let id = schema["$id"].as_str().unwrap().to_owned();
        builder = builder
            .add(id, jsonschema::Resource::from_contents(schema))
            .unwrap();
    }
    let registry = builder.prepare().unwrap();
    jsonschema::options()
        .with_registry(&registry)
        .build(&root)
        .unwrap()
}

fn schema_errors(validator: &jsonschema::Validator, playbook: &Value) -> Vec<String> {
    validator
        .iter_errors(playbook)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// What the schemas cannot say: every step link, agent and target exists;
/// start reaches end; step ids are UUIDv4 as CACAO requires.
fn check_references(playbook: &Value) {
    let workflow = playbook["workflow"].as_object().unwrap();
    let start = playbook["workflow_start"].as_str().unwrap();
    assert_eq!(workflow[start]["type"], "start");
    let agents = playbook["agent_definitions"].as_object().unwrap();
    let empty = serde_json::Map::new();
    let targets = playbook["target_definitions"].as_object().unwrap_or(&empty);
    for (id, step) in workflow {
        let uuid = id.split_once("--").unwrap().1;
        assert_eq!(&uuid[14..15], "4", "step {id} is not a UUIDv4");
        for link in ["on_completion", "on_success", "on_failure"] {
            if let Some(next) = step[link].as_str() {
                assert!(workflow.contains_key(next), "{id}.{link} -> missing {next}");
            }
        }
        if step["type"] == "action" {
            let agent = step["agent"].as_str().unwrap();
            assert!(
                agents.contains_key(agent),
                "{id}: agent {agent} not defined"
            );
            for target in step["targets"].as_array().into_iter().flatten() {
                let target = target.as_str().unwrap();
                assert!(
                    targets.contains_key(target),
                    "{id}: target {target} not defined"
                );
            }
        }
    }
    // follow on_completion / on_success from start: every step is reached and the walk ends
    let mut seen = BTreeSet::new();
    let mut at = start.to_owned();
    while seen.insert(at.clone()) {
        let step = &workflow[&at];
        if step["type"] == "end" {
            break;
        }
        at = step["on_completion"]
            .as_str()
            .or(step["on_success"].as_str())
            .unwrap()
            .to_owned();
    }
    assert_eq!(workflow[&at]["type"], "end");
    assert_eq!(seen.len(), workflow.len(), "unreachable steps");
}

fn plan(input: &Value, config: &Config) -> Value {
    respond(
        &PlanInput::from_json(input).unwrap(),
        config,
        "2026-11-23T12:00:00.000Z",
    )
    .0
}

#[test]
fn manual_playbook_validates_against_cacao_2_0() {
    let validator = cacao_validator();
    let output = plan(&incident(), &Config::default());
    let playbook = &output["playbook"];
    let errors = schema_errors(&validator, playbook);
    assert!(errors.is_empty(), "{errors:#?}");
    check_references(playbook);
    assert_eq!(playbook["spec_version"], "cacao-2.0");
    assert_eq!(
        playbook["playbook_types"],
        json!(["mitigation", "remediation"])
    );
    assert_eq!(playbook["created"], "2026-11-23T10:09:30.123Z");
    assert_eq!(playbook["created"], playbook["modified"]);
    // one action step per action (same id), plus approval gates
    let workflow = playbook["workflow"].as_object().unwrap();
    let actions = output["actions"].as_array().unwrap();
    let approvals = actions
        .iter()
        .filter(|a| a["requires_approval"] == true)
        .count();
    assert!(approvals >= 3);
    assert_eq!(workflow.len(), 2 + actions.len() + approvals);
    for action in actions {
        let step = &workflow[action["id"].as_str().unwrap()];
        assert_eq!(step["commands"][0]["type"], "manual");
        assert_eq!(step["commands"][0]["command"], action["instruction"]);
        assert_eq!(step["description"], action["rationale"]);
    }
    // an approval gate runs its action on success and skips it on failure
    let dc = actions
        .iter()
        .find(|a| a["kind"] == "isolate_host" && a["target"]["value"] == "DC01.corp.local")
        .unwrap();
    let gate = workflow
        .values()
        .find(|s| s["on_success"] == dc["id"])
        .unwrap();
    assert_ne!(gate["on_failure"], dc["id"]);
    assert_eq!(
        gate["agent"].as_str().unwrap().split("--").next(),
        Some("group")
    );
    let agent = &playbook["agent_definitions"][gate["agent"].as_str().unwrap()];
    assert_eq!(agent["name"], "Approvers: soc-lead, it-operations");
    // ATT&CK references, labels and MITRE attribution
    let references = playbook["external_references"].as_array().unwrap();
    assert!(references.iter().any(|r| r["external_id"] == "T1003.001"
        && r["url"] == "https://attack.mitre.org/techniques/T1003/001/"));
    assert!(references.iter().any(|r| r["external_id"] == "M1040"));
    assert!(
        playbook["labels"]
            .as_array()
            .unwrap()
            .contains(&json!("attribution:G0016 APT29"))
    );
    assert!(
        playbook["description"]
            .as_str()
            .unwrap()
            .contains("The MITRE Corporation")
    );
}

#[test]
fn http_api_playbook_validates_and_carries_the_action() {
    let validator = cacao_validator();
    let config = Config {
        http_api: Some(HttpApi {
            url: "https://soar.example.org".to_owned(),
            path_prefix: "/api/response-actions".to_owned(),
        }),
        ..Config::default()
    };
    let output = plan(&incident(), &config);
    let playbook = &output["playbook"];
    let errors = schema_errors(&validator, playbook);
    assert!(errors.is_empty(), "{errors:#?}");
    check_references(playbook);
    let action = &output["actions"][0];
    let step = &playbook["workflow"][action["id"].as_str().unwrap()];
    let command = &step["commands"][0];
    assert_eq!(command["type"], "http-api");
    assert_eq!(
        command["command"],
        format!(
            "POST /api/response-actions/{} HTTP/1.1",
            action["kind"].as_str().unwrap()
        )
    );
    assert_eq!(command["headers"]["Idempotency-Key"][0], action["id"]);
    let content: Value = serde_json::from_str(command["content"].as_str().unwrap()).unwrap();
    assert_eq!(&content, action);
    let agent = &playbook["agent_definitions"][step["agent"].as_str().unwrap()];
    assert_eq!(agent["address"]["url"][0], "https://soar.example.org");
}

#[test]
fn a_plan_without_actions_is_still_a_valid_playbook() {
    let validator = cacao_validator();
    let output = plan(&json!({ "chain": { "steps": [] } }), &Config::default());
    let playbook = &output["playbook"];
    let errors = schema_errors(&validator, playbook);
    assert!(errors.is_empty(), "{errors:#?}");
    check_references(playbook);
    assert_eq!(playbook["playbook_types"], json!(["investigation"]));
    // no evidence time: the caller's clock
    assert_eq!(playbook["created"], "2026-11-23T12:00:00.000Z");
}

/// A change that breaks a playbook.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn the_schemas_reject_broken_playbooks() {
    let validator = cacao_validator();
    let output = plan(&incident(), &Config::default());
    let good = output["playbook"].clone();
    let action_id = output["actions"][0]["id"].as_str().unwrap().to_owned();
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "missing workflow_start",
            Box::new(|p| {
                p.as_object_mut().unwrap().remove("workflow_start");
            }),
        ),
        (
            "wrong spec_version",
            Box::new(|p| p["spec_version"] = json!("cacao-1.0")),
        ),
        (
            "created without Z",
            Box::new(|p| p["created"] = json!("2026-11-23 10:00:00")),
        ),
        (
            "unknown playbook property",
            Box::new(|p| p["colour"] = json!("red")),
        ),
        (
            "bad step id",
            Box::new(|p| {
                let workflow = p["workflow"].as_object_mut().unwrap();
                let (id, step) = workflow
                    .iter()
                    .next()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap();
                workflow.remove(&id);
                workflow.insert("action--not-a-uuid".to_owned(), step);
            }),
        ),
        (
            "action without commands",
            Box::new(move |p| {
                p["workflow"][&action_id]
                    .as_object_mut()
                    .unwrap()
                    .remove("commands");
            }),
        ),
        (
            "manual command with an unknown property",
            Box::new({
                let id = output["actions"][1]["id"].as_str().unwrap().to_owned();
                move |p| p["workflow"][&id]["commands"][0]["shell"] = json!("rm -rf /")
            }),
        ),
        (
            "end step with a next step",
            Box::new(|p| {
                let workflow = p["workflow"].as_object_mut().unwrap();
                let start = workflow
                    .keys()
                    .find(|k| k.starts_with("start--"))
                    .unwrap()
                    .clone();
                let end = workflow
                    .keys()
                    .find(|k| k.starts_with("end--"))
                    .unwrap()
                    .clone();
                workflow[&end]["on_completion"] = json!(start);
            }),
        ),
    ];
    for (what, mutate) in mutations {
        let mut broken = good.clone();
        mutate(&mut broken);
        assert!(
            !schema_errors(&validator, &broken).is_empty(),
            "{what}: accepted by the schemas"
        );
    }
}
