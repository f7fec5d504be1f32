//! Response actions: what to do ([`ActionKind`]), to what ([`Target`]),
//! why ([`Evidence`]) and the planned [`Action`] with its score, impact and
//! approval.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::input::Criticality;

/// What a response action does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Cut a host off the network (EDR containment).
    IsolateHost,
    /// Block an external IP address at the perimeter.
    BlockIp,
    /// Block (sinkhole) an external domain.
    BlockDomain,
    /// Disable a user account and revoke its sessions.
    DisableAccount,
    /// Reset an account's credentials (password, tickets, keys).
    ResetCredentials,
    /// Terminate a process.
    KillProcess,
    /// Move a file to quarantine.
    QuarantineFile,
    /// Apply security updates to a host.
    Patch,
}

/// Every action kind, in the order ties are broken (containment first).
pub const ACTION_KINDS: [ActionKind; 8] = [
    ActionKind::IsolateHost,
    ActionKind::KillProcess,
    ActionKind::BlockIp,
    ActionKind::BlockDomain,
    ActionKind::DisableAccount,
    ActionKind::QuarantineFile,
    ActionKind::ResetCredentials,
    ActionKind::Patch,
];

/// Incident-response phase of an action (NIST SP 800-61).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Stop the spread.
    Containment,
    /// Remove the attacker's footholds.
    Eradication,
    /// Return to normal, hardened.
    Recovery,
}

impl Phase {
    /// The phase's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Containment => "containment",
            Phase::Eradication => "eradication",
            Phase::Recovery => "recovery",
        }
    }

    /// Urgency multiplier of the priority score: containment comes first.
    pub fn urgency(self) -> f64 {
        match self {
            Phase::Containment => 1.0,
            Phase::Eradication => 0.85,
            Phase::Recovery => 0.7,
        }
    }
}

impl ActionKind {
    /// The snake_case name (`isolate_host`).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::IsolateHost => "isolate_host",
            ActionKind::BlockIp => "block_ip",
            ActionKind::BlockDomain => "block_domain",
            ActionKind::DisableAccount => "disable_account",
            ActionKind::ResetCredentials => "reset_credentials",
            ActionKind::KillProcess => "kill_process",
            ActionKind::QuarantineFile => "quarantine_file",
            ActionKind::Patch => "patch",
        }
    }

    /// The incident-response phase.
    pub fn phase(self) -> Phase {
        match self {
            ActionKind::IsolateHost
            | ActionKind::BlockIp
            | ActionKind::BlockDomain
            | ActionKind::DisableAccount
            | ActionKind::KillProcess => Phase::Containment,
            ActionKind::QuarantineFile | ActionKind::ResetCredentials => Phase::Eradication,
            ActionKind::Patch => Phase::Recovery,
        }
    }

    /// How disruptive the action is to the business, 0 (barely) to 3 (the
    /// target stops serving).
    pub fn disruption(self) -> usize {
        match self {
            ActionKind::IsolateHost => 3,
            ActionKind::DisableAccount | ActionKind::Patch => 2,
            ActionKind::ResetCredentials | ActionKind::KillProcess => 1,
            ActionKind::BlockIp | ActionKind::BlockDomain | ActionKind::QuarantineFile => 0,
        }
    }

    /// The CACAO `playbook-activity-type-ov` value of the action.
    pub fn activity(self) -> &'static str {
        match self {
            ActionKind::IsolateHost => "disconnect-system",
            ActionKind::BlockIp | ActionKind::BlockDomain | ActionKind::DisableAccount => {
                "restrict-access"
            }
            ActionKind::KillProcess | ActionKind::QuarantineFile => "eliminate-risk",
            ActionKind::ResetCredentials | ActionKind::Patch => "configure-systems",
        }
    }

    /// Tie-break position (see [`ACTION_KINDS`]).
    pub fn order(self) -> usize {
        ACTION_KINDS.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// What an action acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    /// A host (by name or address).
    Host,
    /// An IP address.
    Ip,
    /// A domain name.
    Domain,
    /// A user account.
    Account,
    /// A process on a host.
    Process,
    /// A file on a host.
    File,
}

impl TargetKind {
    /// The name used in output (`host`, `ip`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Host => "host",
            TargetKind::Ip => "ip",
            TargetKind::Domain => "domain",
            TargetKind::Account => "account",
            TargetKind::Process => "process",
            TargetKind::File => "file",
        }
    }
}

/// The concrete target of an action.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// What kind of thing.
    pub kind: TargetKind,
    /// Host name, address, domain, account, image path or file path, as seen.
    pub value: String,
    /// The host a process or file lives on (or an account was seen on).
    pub host: Option<String>,
    /// Extra facts: `pid`, `command_line`, `hashes`.
    pub details: BTreeMap<String, String>,
}

impl Target {
    /// A target without host or details.
    pub fn new(kind: TargetKind, value: impl Into<String>) -> Self {
        Target {
            kind,
            value: value.into(),
            host: None,
            details: BTreeMap::new(),
        }
    }

    /// Sets the host.
    pub fn on_host(mut self, host: Option<String>) -> Self {
        self.host = host;
        self
    }

    /// Adds a detail when it has a value.
    pub fn with_detail(mut self, key: &str, value: Option<String>) -> Self {
        if let Some(value) = value {
            self.details.insert(key.to_owned(), value);
        }
        self
    }

    /// The identity of the target for merging and ids: kind, normalised
    /// value and host (processes also by pid). Case-insensitive, as Windows
    /// names are.
    pub fn key(&self) -> String {
        let host = self.host.as_deref().map(short_host).unwrap_or_default();
        let value = self.value.to_lowercase();
        match self.kind {
            TargetKind::Host => format!("host:{}", short_host(&self.value)),
            TargetKind::Ip => format!("ip:{value}"),
            TargetKind::Domain => format!("domain:{}", value.trim_end_matches('.')),
            TargetKind::Account => format!("account:{}", account_name(&self.value)),
            TargetKind::Process => format!(
                "process:{host}:{value}:{}",
                self.details.get("pid").map(String::as_str).unwrap_or("")
            ),
            TargetKind::File => format!("file:{host}:{value}"),
        }
    }

    /// JSON form: `{type, value, host?, ...details}`.
    pub fn to_json(&self) -> Value {
        let mut value = json!({ "type": self.kind.as_str(), "value": self.value });
        let object = value.as_object_mut().expect("object literal");
        if let Some(host) = &self.host {
            object.insert("host".to_owned(), json!(host));
        }
        for (key, detail) in &self.details {
            object.insert(key.clone(), json!(detail));
        }
        value
    }

    /// Human-readable description (`process C:\x.exe (pid 42) on WS1`).
    pub fn describe(&self) -> String {
        let on = self
            .host
            .as_deref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        match self.kind {
            TargetKind::Process => match self.details.get("pid") {
                Some(pid) => format!("process {} (pid {pid}){on}", self.value),
                None => format!("process {}{on}", self.value),
            },
            TargetKind::File => format!("file {}{on}", self.value),
            TargetKind::Account => format!("account {}", self.value),
            kind => format!("{} {}", kind.as_str(), self.value),
        }
    }
}

/// Host name without domain, lowercase (`WS01.corp.local` -> `ws01`);
/// addresses stay whole.
pub fn short_host(host: &str) -> String {
    let host = host.trim().to_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    host.split('.').next().unwrap_or_default().to_owned()
}

/// Account name without domain, lowercase (`CORP\alice`, `alice@corp` -> `alice`).
pub fn account_name(account: &str) -> String {
    let account = account.trim().to_lowercase();
    let name = account.rsplit('\\').next().unwrap_or_default();
    name.split('@').next().unwrap_or_default().to_owned()
}

/// Why an action is proposed: a reference into the skill input.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// JSON Pointer into the skill input (`/alerts/alerts/0/events/1`).
    pub pointer: String,
    /// `alert`, `chain_step`, `chain_entity` or `root_cause`.
    pub source: &'static str,
    /// Sigma rule id (alerts).
    pub rule_id: Option<String>,
    /// Alert title or step/entity description.
    pub title: String,
    /// Event reference: detector source, index, record id, event id.
    pub event: Option<Value>,
    /// Event or step time.
    pub timestamp: Option<String>,
    /// ATT&CK techniques behind this evidence.
    pub techniques: Vec<String>,
    /// ATT&CK tactics behind this evidence.
    pub tactics: Vec<String>,
    /// Severity in 0..=1.
    pub severity: f64,
    /// Confidence in 0..=1.
    pub confidence: f64,
}

impl Evidence {
    /// JSON form (scores omitted; they are summarised on the action).
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "pointer": self.pointer,
            "source": self.source,
            "title": self.title,
            "techniques": self.techniques,
        });
        let object = value.as_object_mut().expect("object literal");
        if let Some(rule_id) = &self.rule_id {
            object.insert("rule_id".to_owned(), json!(rule_id));
        }
        if let Some(event) = &self.event {
            object.insert("event".to_owned(), event.clone());
        }
        if let Some(timestamp) = &self.timestamp {
            object.insert("timestamp".to_owned(), json!(timestamp));
        }
        value
    }
}

/// The factors of an action's priority score, each in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreFactors {
    /// Highest alert severity behind the action.
    pub severity: f64,
    /// Latest ATT&CK tactic stage behind the action (0 reconnaissance, 1 impact).
    pub tactic_stage: f64,
    /// Business criticality of the target (or of its host).
    pub criticality: f64,
    /// Combined confidence of the evidence (noisy-or).
    pub confidence: f64,
    /// Phase urgency multiplier (containment 1.0, eradication 0.85, recovery 0.7).
    pub urgency: f64,
}

/// Whether a human must approve the action first, and on which policy rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Approval needed.
    pub required: bool,
    /// The policy rule that decided (`None`: the policy default).
    pub rule: Option<String>,
    /// Roles that may approve.
    pub approvers: Vec<String>,
    /// Why.
    pub reason: String,
}

/// Expected business impact of carrying out an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impact {
    /// `low`, `medium`, `high` or `critical`.
    pub level: Criticality,
    /// Criticality of the affected asset, when known from the asset context.
    pub asset_criticality: Option<Criticality>,
    /// Owner of the affected asset.
    pub owner: Option<String>,
    /// Role of the affected asset.
    pub role: Option<String>,
    /// What the business will notice.
    pub description: String,
}

/// A mitigation attached to an action.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mitigation {
    /// ATT&CK mitigation id (`M1040`).
    pub id: String,
    /// Name.
    pub name: String,
    /// The action's techniques it mitigates.
    pub techniques: Vec<String>,
}

/// A planned response action.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// Deterministic id, `action--<uuid>` (same kind and target, same id).
    pub id: String,
    /// What to do.
    pub kind: ActionKind,
    /// To what.
    pub target: Target,
    /// Rank, 1 = first.
    pub priority: usize,
    /// Score 0..=100 (higher = more urgent) and its factors.
    pub score: u32,
    /// The factors of the score.
    pub factors: ScoreFactors,
    /// Approval decision.
    pub approval: Approval,
    /// Why, in a sentence, naming the evidence.
    pub rationale: String,
    /// Evidence references (at most [`crate::plan::MAX_EVIDENCE`]).
    pub evidence: Vec<Evidence>,
    /// How many evidence references there were in all.
    pub evidence_count: usize,
    /// ATT&CK techniques behind the action.
    pub techniques: Vec<String>,
    /// ATT&CK mitigations of those techniques.
    pub mitigations: Vec<Mitigation>,
    /// Expected business impact.
    pub impact: Impact,
    /// What an operator does (the CACAO manual command).
    pub instruction: String,
}

impl Action {
    /// The flat JSON form delivered to workflow bindings.
    pub fn to_json(&self) -> Value {
        let factors = &self.factors;
        json!({
            "id": self.id,
            "kind": self.kind.as_str(),
            "phase": self.kind.phase().as_str(),
            "target": self.target.to_json(),
            "priority": self.priority,
            "score": self.score,
            "score_factors": {
                "severity": round3(factors.severity),
                "tactic_stage": round3(factors.tactic_stage),
                "criticality": round3(factors.criticality),
                "confidence": round3(factors.confidence),
                "urgency": round3(factors.urgency),
            },
            "requires_approval": self.approval.required,
            "approval": {
                "rule": self.approval.rule,
                "approvers": self.approval.approvers,
                "reason": self.approval.reason,
            },
            "rationale": self.rationale,
            "instruction": self.instruction,
            "evidence": self.evidence.iter().map(Evidence::to_json).collect::<Vec<_>>(),
            "evidence_count": self.evidence_count,
            "techniques": self.techniques,
            "mitigations": self.mitigations.iter().map(|m| json!({
                "id": m.id, "name": m.name, "techniques": m.techniques,
            })).collect::<Vec<_>>(),
            "impact": {
                "level": self.impact.level.as_str(),
                "asset_criticality": self.impact.asset_criticality.map(Criticality::as_str),
                "owner": self.impact.owner,
                "role": self.impact.role,
                "description": self.impact.description,
            },
        })
    }
}

/// Rounds to three decimals (stable, readable JSON).
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
