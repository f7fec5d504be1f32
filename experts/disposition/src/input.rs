//! The planner's inputs, read leniently from JSON: alerts (the output of
//! `attack-detection/detect`), an attack chain (the output of the tracing
//! expert) and asset context. Every field is optional; a field with a wrong
//! type where the plan depends on it is an [`InputError`] naming its JSON
//! Pointer.

use std::collections::BTreeMap;

use serde_json::Value;

/// Most attributed groups kept from a chain (the best-ranked).
const MAX_ATTRIBUTION: usize = 3;

/// A field of the input that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{pointer}`: {message}")]
pub struct InputError {
    /// JSON Pointer of the field in the skill input, e.g. `/assets/2/criticality`.
    pub pointer: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl InputError {
    fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        InputError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// Sigma rule level of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `informational`.
    Informational,
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `critical`.
    Critical,
}

impl Level {
    /// Parses a Sigma level (case-insensitive); `None` when unknown.
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "informational" | "info" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    /// The level as written in Sigma.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// Severity in 0..=1 used by the priority score.
    pub fn severity(self) -> f64 {
        match self {
            Level::Informational => 0.1,
            Level::Low => 0.25,
            Level::Medium => 0.5,
            Level::High => 0.75,
            Level::Critical => 1.0,
        }
    }
}

/// Business criticality of an asset.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    /// Loss is tolerable.
    Low,
    /// Loss hurts one team.
    Medium,
    /// Loss hurts a business function.
    High,
    /// Loss stops the business (domain controllers, core databases).
    Critical,
}

/// The valid criticality names, for error messages and schemas.
pub const CRITICALITIES: [&str; 4] = ["low", "medium", "high", "critical"];

impl Criticality {
    /// Parses a criticality name (case-insensitive).
    pub fn parse(text: &str) -> Option<Criticality> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "low" => Criticality::Low,
            "medium" => Criticality::Medium,
            "high" => Criticality::High,
            "critical" => Criticality::Critical,
            _ => return None,
        })
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        CRITICALITIES[self.rank()]
    }

    /// 0 (low) to 3 (critical).
    pub fn rank(self) -> usize {
        self as usize
    }

    /// Weight in 0..=1 used by the priority score.
    pub fn weight(self) -> f64 {
        (self.rank() + 1) as f64 / 4.0
    }
}

/// One matched event of an alert.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertEvent {
    /// JSON Pointer of the event in the skill input.
    pub pointer: String,
    /// Where the detector read it (`input`, a file path).
    pub source: Option<String>,
    /// Position in its source.
    pub index: Option<u64>,
    /// EVTX record id.
    pub record_id: Option<u64>,
    /// Event time as written.
    pub timestamp: Option<String>,
    /// `Computer` of the event.
    pub computer: Option<String>,
    /// Windows event id.
    pub event_id: Option<u64>,
    /// Event fields (Sysmon/Security names), values as text.
    pub fields: BTreeMap<String, String>,
}

/// One alert (an item of `detect`'s `alerts`).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// JSON Pointer of the alert in the skill input.
    pub pointer: String,
    /// Sigma rule id.
    pub rule_id: String,
    /// Rule title.
    pub title: String,
    /// Rule level (`medium` when absent or unknown).
    pub level: Level,
    /// ATT&CK technique ids.
    pub techniques: Vec<String>,
    /// ATT&CK tactics.
    pub tactics: Vec<String>,
    /// Confidence in 0..=1, when the producer gave one.
    pub confidence: Option<f64>,
    /// Matched events.
    pub events: Vec<AlertEvent>,
}

/// The root cause of an attack chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RootCause {
    /// Provenance node id.
    pub node: Option<String>,
    /// Node kind (`process`, `file`, `logon`, ...).
    pub kind: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// What it is.
    pub description: Option<String>,
    /// When.
    pub timestamp: Option<String>,
}

/// One step of an attack chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainStep {
    /// JSON Pointer of the step in the skill input.
    pub pointer: String,
    /// ATT&CK technique id.
    pub technique_id: Option<String>,
    /// Technique name.
    pub technique_name: Option<String>,
    /// Tactic.
    pub tactic: Option<String>,
    /// When.
    pub timestamp: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Process (image path or name).
    pub process: Option<String>,
    /// Evidence references as given by the tracing expert.
    pub evidence: Vec<Value>,
}

/// A process entity of an attack chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainProcess {
    /// JSON Pointer in the skill input.
    pub pointer: String,
    /// Image path.
    pub image: Option<String>,
    /// Process id.
    pub pid: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Command line.
    pub command_line: Option<String>,
}

/// A named entity of an attack chain (host, user, IP, domain, file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainEntity {
    /// JSON Pointer in the skill input.
    pub pointer: String,
    /// The value (host name, account, address, domain, path).
    pub value: String,
    /// Host the entity belongs to (files), when given.
    pub host: Option<String>,
}

/// The entities of an attack chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entities {
    /// Hosts.
    pub hosts: Vec<ChainEntity>,
    /// User accounts.
    pub users: Vec<ChainEntity>,
    /// IP addresses.
    pub ips: Vec<ChainEntity>,
    /// Domain names.
    pub domains: Vec<ChainEntity>,
    /// Processes.
    pub processes: Vec<ChainProcess>,
    /// Files.
    pub files: Vec<ChainEntity>,
}

/// An attack chain (the tracing expert's output).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chain {
    /// JSON Pointer of the chain in the skill input.
    pub pointer: String,
    /// Root cause, when found.
    pub root_cause: Option<RootCause>,
    /// Ordered steps.
    pub steps: Vec<ChainStep>,
    /// Entities involved.
    pub entities: Entities,
    /// Confidence of the chain in 0..=1, when given.
    pub confidence: Option<f64>,
    /// Attributed groups (names or ids), when given.
    pub attribution: Vec<String>,
}

/// Business context of one host, address or account.
#[derive(Debug, Clone, PartialEq)]
pub struct Asset {
    /// Host name.
    pub host: Option<String>,
    /// IP address.
    pub ip: Option<String>,
    /// User account.
    pub user: Option<String>,
    /// Criticality.
    pub criticality: Criticality,
    /// Owner (team or person).
    pub owner: Option<String>,
    /// Role, e.g. `domain-controller`, `domain-admin`.
    pub role: Option<String>,
}

/// Everything the planner reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanInput {
    /// Alerts.
    pub alerts: Vec<Alert>,
    /// Attack chain.
    pub chain: Option<Chain>,
    /// Asset context.
    pub assets: Vec<Asset>,
    /// Creation time to stamp on the playbook (RFC 3339), when given.
    pub created: Option<String>,
}

impl PlanInput {
    /// Reads the skill input: `alerts` (the `detect` output object or its
    /// `alerts` array), `chain` (or `attack_chain`), `assets`, `created`.
    ///
    /// # Errors
    ///
    /// An [`InputError`] for a field whose type or value cannot be used.
    pub fn from_json(input: &Value) -> Result<PlanInput, InputError> {
        let mut plan_input = PlanInput::default();
        match &input["alerts"] {
            Value::Null => {}
            value => plan_input.alerts = alerts_from_json(value, "/alerts")?,
        }
        for key in ["chain", "attack_chain"] {
            match &input[key] {
                Value::Null => {}
                value if plan_input.chain.is_none() => {
                    plan_input.chain = Some(chain_from_json(value, &format!("/{key}"))?);
                }
                _ => {}
            }
        }
        match &input["assets"] {
            Value::Null => {}
            value => plan_input.assets = assets_from_json(value, "/assets")?,
        }
        plan_input.created = input["created"].as_str().map(str::to_owned);
        Ok(plan_input)
    }
}

/// Alerts from the `detect` output object (`{"alerts": [...]}`) or the bare
/// array, at `pointer`.
///
/// # Errors
///
/// When the value is neither, or an alert is not an object.
pub fn alerts_from_json(value: &Value, pointer: &str) -> Result<Vec<Alert>, InputError> {
    let (items, base) = match value {
        Value::Array(items) => (items, pointer.to_owned()),
        Value::Object(object) => match object.get("alerts") {
            Some(Value::Array(items)) => (items, format!("{pointer}/alerts")),
            _ => {
                return Err(InputError::new(
                    pointer,
                    "expected the `detect` output (an object with an `alerts` array) or an array of alerts",
                ));
            }
        },
        _ => {
            return Err(InputError::new(
                pointer,
                "expected an array of alerts or the `detect` output object",
            ));
        }
    };
    let mut alerts = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pointer = format!("{base}/{i}");
        if !item.is_object() {
            return Err(InputError::new(pointer, "an alert must be an object"));
        }
        let events = item["events"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(j, event)| alert_event(event, format!("{pointer}/events/{j}")))
            .collect();
        alerts.push(Alert {
            rule_id: text(&item["rule_id"])
                .or_else(|| text(&item["id"]))
                .unwrap_or_default(),
            title: text(&item["title"]).unwrap_or_default(),
            level: item["level"]
                .as_str()
                .and_then(Level::parse)
                .unwrap_or(Level::Medium),
            techniques: strings(&item["techniques"]),
            tactics: strings(&item["tactics"]),
            confidence: item["confidence"].as_f64().map(|c| c.clamp(0.0, 1.0)),
            events,
            pointer,
        });
    }
    Ok(alerts)
}

fn alert_event(event: &Value, pointer: String) -> AlertEvent {
    let mut fields = BTreeMap::new();
    if let Some(object) = event["fields"].as_object() {
        for (key, value) in object {
            if let Some(value) = text(value) {
                fields.insert(key.clone(), value);
            }
        }
    }
    AlertEvent {
        pointer,
        source: text(&event["source"]),
        index: event["index"].as_u64(),
        record_id: event["record_id"].as_u64(),
        timestamp: text(&event["timestamp"]),
        computer: text(&event["computer"]).or_else(|| fields.get("Computer").cloned()),
        event_id: event["event_id"].as_u64(),
        fields,
    }
}

/// An attack chain at `pointer`.
///
/// # Errors
///
/// When the value is not an object, or `steps` is not an array.
pub fn chain_from_json(value: &Value, pointer: &str) -> Result<Chain, InputError> {
    if !value.is_object() {
        return Err(InputError::new(
            pointer,
            "expected the tracing output: an object with `steps`, `entities`, `root_cause`",
        ));
    }
    let steps = match &value["steps"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, step)| ChainStep {
                pointer: format!("{pointer}/steps/{i}"),
                technique_id: text(&step["technique_id"]),
                technique_name: text(&step["technique_name"]),
                tactic: text(&step["tactic"]),
                timestamp: text(&step["timestamp"]),
                host: text(&step["host"]),
                process: text(&step["process"]).or_else(|| text(&step["process"]["image"])),
                evidence: step["evidence"].as_array().cloned().unwrap_or_default(),
            })
            .collect(),
        _ => {
            return Err(InputError::new(
                format!("{pointer}/steps"),
                "expected an array of steps",
            ));
        }
    };
    let root_cause = value["root_cause"].as_object().map(|_| {
        let root = &value["root_cause"];
        RootCause {
            node: text(&root["node"]),
            kind: text(&root["kind"]),
            host: text(&root["host"]),
            description: text(&root["description"]),
            timestamp: text(&root["timestamp"]),
        }
    });
    let entities_value = &value["entities"];
    let entity_list = |key: &str, names: &[&str]| -> Vec<ChainEntity> {
        entities_value[key]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let value = text(item).or_else(|| names.iter().find_map(|n| text(&item[*n])))?;
                Some(ChainEntity {
                    pointer: format!("{pointer}/entities/{key}/{i}"),
                    value,
                    host: text(&item["host"]),
                })
            })
            .collect()
    };
    let processes = entities_value["processes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, item)| ChainProcess {
            pointer: format!("{pointer}/entities/processes/{i}"),
            image: text(item).or_else(|| text(&item["image"])),
            pid: text(&item["pid"]),
            host: text(&item["host"]),
            command_line: text(&item["command_line"]),
        })
        .collect();
    let entities = Entities {
        hosts: entity_list("hosts", &["name", "host", "value"]),
        users: entity_list("users", &["name", "user", "value"]),
        ips: entity_list("ips", &["ip", "address", "value"]),
        domains: entity_list("domains", &["domain", "name", "value"]),
        processes,
        files: entity_list("files", &["path", "name", "value"]),
    };
    let attribution = value["attribution"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|a| {
            text(a).or_else(|| {
                let id = text(&a["group_id"]).or_else(|| text(&a["id"]));
                let name = text(&a["group_name"])
                    .or_else(|| text(&a["group"]))
                    .or_else(|| text(&a["name"]));
                match (id, name) {
                    (Some(id), Some(name)) => Some(format!("{id} {name}")),
                    (id, name) => id.or(name),
                }
            })
        })
        // attribution is a ranking of hypotheses: keep the leading ones
        .take(MAX_ATTRIBUTION)
        .collect();
    Ok(Chain {
        pointer: pointer.to_owned(),
        root_cause,
        steps,
        entities,
        confidence: value["confidence"].as_f64().map(|c| c.clamp(0.0, 1.0)),
        attribution,
    })
}

/// Assets at `pointer`: `[{host|ip|user, criticality, owner, role}]`.
///
/// # Errors
///
/// When the value is not an array of objects, an asset names no host, IP
/// or user, or its criticality is unknown.
pub fn assets_from_json(value: &Value, pointer: &str) -> Result<Vec<Asset>, InputError> {
    let Some(items) = value.as_array() else {
        return Err(InputError::new(
            pointer,
            "expected an array of assets ({\"host\"|\"ip\"|\"user\", \"criticality\", \"owner\", \"role\"})",
        ));
    };
    let mut assets = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{pointer}/{i}");
        if !item.is_object() {
            return Err(InputError::new(at, "an asset must be an object"));
        }
        let asset_criticality = match &item["criticality"] {
            Value::Null => Criticality::Medium,
            Value::String(name) => Criticality::parse(name).ok_or_else(|| {
                InputError::new(
                    format!("{at}/criticality"),
                    format!(
                        "unknown criticality `{name}`; valid: {}",
                        CRITICALITIES.join(", ")
                    ),
                )
            })?,
            _ => {
                return Err(InputError::new(
                    format!("{at}/criticality"),
                    format!("expected one of {}", CRITICALITIES.join(", ")),
                ));
            }
        };
        let asset = Asset {
            host: text(&item["host"]).or_else(|| text(&item["hostname"])),
            ip: text(&item["ip"]),
            user: text(&item["user"]).or_else(|| text(&item["account"])),
            criticality: asset_criticality,
            owner: text(&item["owner"]),
            role: text(&item["role"]),
        };
        if asset.host.is_none() && asset.ip.is_none() && asset.user.is_none() {
            return Err(InputError::new(
                at,
                "an asset needs at least one of `host`, `ip` or `user`",
            ));
        }
        assets.push(asset);
    }
    Ok(assets)
}

/// A scalar as trimmed, non-empty text.
fn text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(text)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_detect_output_and_bare_arrays() {
        let alert = json!({ "rule_id": "r1", "title": "t", "level": "high",
            "techniques": ["T1059.001"], "tactics": ["execution"],
            "events": [{ "source": "input", "index": 3, "computer": "WS1",
                         "fields": { "Image": "C:\\x.exe", "ProcessId": 42 } }] });
        let from_object =
            PlanInput::from_json(&json!({ "alerts": { "alerts": [alert.clone()] } })).unwrap();
        assert_eq!(from_object.alerts[0].pointer, "/alerts/alerts/0");
        assert_eq!(
            from_object.alerts[0].events[0].pointer,
            "/alerts/alerts/0/events/0"
        );
        assert_eq!(from_object.alerts[0].events[0].fields["ProcessId"], "42");
        let from_array = PlanInput::from_json(&json!({ "alerts": [alert] })).unwrap();
        assert_eq!(from_array.alerts[0].pointer, "/alerts/0");
        assert_eq!(from_array.alerts[0].level, Level::High);
    }

    #[test]
    fn bad_fields_name_their_pointer() {
        let error =
            PlanInput::from_json(&json!({ "assets": [{ "host": "a", "criticality": "urgent" }] }))
                .unwrap_err();
        assert_eq!(error.pointer, "/assets/0/criticality");
        assert!(
            error.message.contains("valid: low, medium, high, critical"),
            "{error}"
        );
        let error = PlanInput::from_json(&json!({ "assets": [{ "owner": "x" }] })).unwrap_err();
        assert!(error.message.contains("at least one of"), "{error}");
        let error = PlanInput::from_json(&json!({ "alerts": "x" })).unwrap_err();
        assert_eq!(error.pointer, "/alerts");
        let error = PlanInput::from_json(&json!({ "chain": { "steps": 3 } })).unwrap_err();
        assert_eq!(error.pointer, "/chain/steps");
    }

    #[test]
    fn chain_fields_are_optional() {
        let input = PlanInput::from_json(&json!({ "attack_chain": {
            "root_cause": null,
            "steps": [{ "technique_id": "T1003.001", "host": "DC1" }],
            "entities": { "ips": ["8.8.8.8", { "ip": "1.2.3.4" }],
                          "processes": [{ "image": "C:\\m.exe", "pid": 7, "host": "DC1" }] },
            "attribution": [{ "group_id": "G0016", "group_name": "APT29" }]
        }}))
        .unwrap();
        let chain = input.chain.unwrap();
        assert_eq!(chain.pointer, "/attack_chain");
        assert!(chain.root_cause.is_none());
        assert_eq!(chain.entities.ips[1].value, "1.2.3.4");
        assert_eq!(chain.entities.processes[0].pid.as_deref(), Some("7"));
        assert_eq!(chain.attribution, ["G0016 APT29"]);
    }
}
