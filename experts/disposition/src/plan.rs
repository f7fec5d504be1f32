//! The planner: from alerts, an attack chain and asset context to a
//! prioritised list of response [`Action`]s. Pure: no I/O, no clock, no
//! randomness, so the same input always gives the same plan.
//!
//! 1. **Observe**: every matched alert event and every chain step, root
//!    cause and entity becomes [`Evidence`] attached to candidate actions on
//!    the targets it names (hosts, processes, files, IPs, domains, accounts).
//!    Targets that must not be acted on are recorded as [`Skipped`] with the
//!    reason (internal addresses, built-in accounts, critical OS processes).
//! 2. **Merge** candidates by action kind and target identity.
//! 3. **Score** each action: `100 × urgency × (w_s·severity + w_t·tactic
//!    stage + w_c·criticality + w_f·confidence)` with the policy's weights
//!    (see [`ScoreFactors`]), then rank.
//! 4. **Decide** approval with the [`Policy`], estimate the business
//!    [`Impact`], attach ATT&CK mitigations of the evidence's techniques.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;
use std::rc::Rc;

use serde_json::{Value, json};

use crate::action::{
    Action, ActionKind, Evidence, Impact, Mitigation, ScoreFactors, Target, TargetKind,
    account_name, short_host,
};
use crate::attack::{AttackCatalog, tactic_stage};
use crate::ids::action_id;
use crate::input::{Alert, AlertEvent, Asset, Chain, Criticality, Level, PlanInput};
use crate::policy::{ApprovalSubject, Policy};
use crate::time::normalise_timestamp;

/// Most evidence references listed per action (all are counted).
pub const MAX_EVIDENCE: usize = 20;
/// ATT&CK mitigation "Update Software": its techniques call for patching.
const UPDATE_SOFTWARE: &str = "M1051";
/// Confidence of an alert that does not state one (Sigma matches are exact,
/// rules have false positives).
const ALERT_CONFIDENCE: f64 = 0.8;
/// Confidence of a chain that does not state one.
const CHAIN_CONFIDENCE: f64 = 0.6;
/// Severity of chain evidence: steps and the root cause are on the attack
/// path; entities are only involved.
const STEP_SEVERITY: f64 = 0.6;
const ROOT_CAUSE_SEVERITY: f64 = 0.75;
const ENTITY_SEVERITY: f64 = 0.5;

/// Processes whose termination crashes or reboots Windows.
const CRITICAL_PROCESSES: [&str; 9] = [
    "system",
    "smss.exe",
    "csrss.exe",
    "wininit.exe",
    "winlogon.exe",
    "services.exe",
    "lsass.exe",
    "lsaiso.exe",
    "svchost.exe",
];

/// A target the planner deliberately does not act on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skipped {
    /// The action it would have been.
    pub kind: ActionKind,
    /// The target as seen.
    pub target: String,
    /// Why not.
    pub reason: String,
    /// Where it was seen (first occurrence).
    pub pointer: String,
}

impl Skipped {
    /// JSON form.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.as_str(),
            "target": self.target,
            "reason": self.reason,
            "pointer": self.pointer,
        })
    }
}

/// The planner's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Actions, highest priority first.
    pub actions: Vec<Action>,
    /// Targets not acted on, with the reason.
    pub skipped: Vec<Skipped>,
    /// ATT&CK techniques seen in the evidence.
    pub techniques: BTreeSet<String>,
    /// Hosts involved (as first written).
    pub hosts: Vec<String>,
    /// Groups the chain attributes the attack to.
    pub attribution: Vec<String>,
    /// Highest alert/chain severity, 0..=1.
    pub max_severity: f64,
    /// Number of alerts and chain steps read.
    pub alerts: usize,
    /// Number of chain steps read.
    pub chain_steps: usize,
    /// Lowest-ranked actions left out beyond the policy's `max_actions`.
    pub dropped: usize,
    /// Latest evidence time, or the input's `created` (CACAO form, ms, `Z`).
    pub timestamp: Option<String>,
    /// Title of the most severe alert or first chain step, for naming.
    pub headline: Option<String>,
}

/// Plans the response to `input` under `policy` with the ATT&CK `catalog`.
pub fn plan(input: &PlanInput, policy: &Policy, catalog: &AttackCatalog) -> Plan {
    let mut planner = Planner::new(input, policy, catalog);
    for alert in &input.alerts {
        for event in &alert.events {
            planner.observe_alert_event(alert, event);
        }
    }
    if let Some(chain) = &input.chain {
        planner.observe_chain(chain);
    }
    planner.reset_exposed_credentials();
    planner.merge_pidless_processes();
    planner.finish(input)
}

// === impl Planner ===

struct Candidate {
    kind: ActionKind,
    target: Target,
    /// Shared: one event's evidence backs several actions.
    evidence: Vec<Rc<Evidence>>,
    /// Identities of `evidence` (each input item has one shared `Rc`), so
    /// each counts once.
    seen: HashSet<*const Evidence>,
}

impl Candidate {
    fn add(&mut self, evidence: Rc<Evidence>) {
        if self.seen.insert(Rc::as_ptr(&evidence)) {
            self.evidence.push(evidence);
        }
    }
}

struct Planner<'a> {
    policy: &'a Policy,
    catalog: &'a AttackCatalog,
    assets: AssetIndex<'a>,
    candidates: BTreeMap<(ActionKind, String), Candidate>,
    skipped: BTreeMap<(ActionKind, String), Skipped>,
    /// Accounts seen per host (short name), for credential resets.
    accounts_on_host: BTreeMap<String, BTreeSet<String>>,
    /// Credential-access evidence per host (short name -> (host, evidence)).
    credential_access: BTreeMap<String, (String, Vec<Rc<Evidence>>)>,
    hosts: BTreeMap<String, String>,
    timestamps: Vec<String>,
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput, policy: &'a Policy, catalog: &'a AttackCatalog) -> Self {
        Planner {
            policy,
            catalog,
            assets: AssetIndex::new(&input.assets),
            candidates: BTreeMap::new(),
            skipped: BTreeMap::new(),
            accounts_on_host: BTreeMap::new(),
            credential_access: BTreeMap::new(),
            hosts: BTreeMap::new(),
            timestamps: Vec::new(),
        }
    }

    fn propose(&mut self, kind: ActionKind, target: Target, evidence: &Rc<Evidence>) {
        self.propose_all(kind, target, std::slice::from_ref(evidence));
    }

    fn propose_all(&mut self, kind: ActionKind, target: Target, evidence: &[Rc<Evidence>]) {
        let key = (kind, target.key());
        let candidate = self.candidates.entry(key).or_insert_with(|| Candidate {
            kind,
            target,
            evidence: Vec::new(),
            seen: HashSet::new(),
        });
        for item in evidence {
            candidate.add(Rc::clone(item));
        }
    }

    fn skip(&mut self, kind: ActionKind, target: &str, reason: &str, pointer: &str) {
        let key = (kind, target.to_lowercase());
        self.skipped.entry(key).or_insert_with(|| Skipped {
            kind,
            target: target.to_owned(),
            reason: reason.to_owned(),
            pointer: pointer.to_owned(),
        });
    }

    /// Tactics of evidence: as given, else from the catalog.
    fn tactics_for(&self, tactics: &[String], techniques: &[String]) -> Vec<String> {
        if !tactics.is_empty() {
            return tactics.to_vec();
        }
        let mut derived = BTreeSet::new();
        for technique in techniques {
            derived.extend(self.catalog.tactics_of(technique).iter().cloned());
        }
        derived.into_iter().collect()
    }

    fn observe_alert_event(&mut self, alert: &Alert, event: &AlertEvent) {
        let mut reference = json!({});
        let object = reference.as_object_mut().expect("object literal");
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                object.insert(key.to_owned(), value);
            }
        };
        put("source", event.source.clone().map(Value::from));
        put("index", event.index.map(Value::from));
        put("record_id", event.record_id.map(Value::from));
        put("event_id", event.event_id.map(Value::from));
        let evidence = Rc::new(Evidence {
            pointer: event.pointer.clone(),
            source: "alert",
            rule_id: Some(alert.rule_id.clone()),
            title: format!("{} ({})", alert.title, alert.level.as_str()),
            event: Some(reference),
            timestamp: event.timestamp.clone(),
            techniques: alert.techniques.clone(),
            tactics: self.tactics_for(&alert.tactics, &alert.techniques),
            severity: alert.level.severity(),
            confidence: alert.confidence.unwrap_or(ALERT_CONFIDENCE),
        });
        if let Some(timestamp) = &event.timestamp {
            self.timestamps.push(timestamp.clone());
        }
        let host = event.computer.clone();
        let field = |names: &[&str]| -> Option<String> {
            names.iter().find_map(|name| {
                event
                    .fields
                    .iter()
                    .find(|(key, value)| key.eq_ignore_ascii_case(name) && !value.is_empty())
                    .map(|(_, value)| value.clone())
            })
        };
        if let Some(host) = &host {
            self.observe_host(
                host,
                alert.level >= self.policy.isolate_min_level,
                &evidence,
            );
        }
        if alert.level > Level::Informational {
            // ProcessAccess (Sysmon 10) names the accessing process SourceImage.
            let process = field(&["Image", "NewProcessName", "SourceImage"]);
            if let Some(image) = process {
                let target = Target::new(TargetKind::Process, image)
                    .on_host(host.clone())
                    .with_detail(
                        "pid",
                        field(&["ProcessId", "NewProcessId", "SourceProcessId"]),
                    )
                    .with_detail("command_line", field(&["CommandLine"]))
                    .with_detail("hashes", field(&["Hashes"]));
                self.observe_process(target, &evidence);
            }
            for path in [field(&["TargetFilename"])].into_iter().flatten() {
                let target = Target::new(TargetKind::File, path)
                    .on_host(host.clone())
                    .with_detail("hashes", field(&["Hashes"]));
                self.propose(ActionKind::QuarantineFile, target, &evidence);
            }
            for name in [
                "DestinationIp",
                "SourceIp",
                "IpAddress",
                "ClientAddress",
                "DestAddress",
                "SourceAddress",
            ] {
                if let Some(address) = field(&[name]) {
                    self.observe_address(&address, &evidence);
                }
            }
            for name in ["QueryName", "DestinationHostname"] {
                if let Some(domain) = field(&[name]) {
                    self.observe_domain(&domain, &evidence);
                }
            }
            let user_fields = [
                ("TargetUserName", "TargetDomainName"),
                ("SubjectUserName", "SubjectDomainName"),
                ("User", ""),
                ("AccountName", ""),
                ("SamAccountName", ""),
            ];
            for (name, domain) in user_fields {
                if let Some(user) = field(&[name]) {
                    let account = match field(&[domain]) {
                        Some(domain)
                            if !user.contains('\\') && !domain.is_empty() && domain != "-" =>
                        {
                            format!("{domain}\\{user}")
                        }
                        _ => user,
                    };
                    self.observe_account(&account, host.as_deref(), &evidence);
                }
            }
        }
        self.observe_techniques(host.as_deref(), &evidence);
    }

    fn observe_chain(&mut self, chain: &Chain) {
        let confidence = chain.confidence.unwrap_or(CHAIN_CONFIDENCE);
        for step in &chain.steps {
            let techniques: Vec<String> = step.technique_id.iter().cloned().collect();
            let given: Vec<String> = step.tactic.iter().cloned().collect();
            let title = match (&step.technique_id, &step.technique_name) {
                (Some(id), Some(name)) => format!("chain step {id} {name}"),
                (Some(id), None) => format!("chain step {id}"),
                (None, Some(name)) => format!("chain step {name}"),
                (None, None) => "chain step".to_owned(),
            };
            let evidence = Rc::new(Evidence {
                pointer: step.pointer.clone(),
                source: "chain_step",
                rule_id: None,
                title,
                event: (!step.evidence.is_empty()).then(|| json!(step.evidence)),
                timestamp: step.timestamp.clone(),
                tactics: self.tactics_for(&given, &techniques),
                techniques,
                severity: STEP_SEVERITY,
                confidence,
            });
            if let Some(timestamp) = &step.timestamp {
                self.timestamps.push(timestamp.clone());
            }
            if let Some(host) = &step.host {
                self.observe_host(host, true, &evidence);
            }
            if let Some(process) = &step.process {
                let target =
                    Target::new(TargetKind::Process, process.clone()).on_host(step.host.clone());
                self.observe_process(target, &evidence);
            }
            self.observe_techniques(step.host.as_deref(), &evidence);
        }
        if let Some(root) = &chain.root_cause {
            let evidence = Rc::new(Evidence {
                pointer: format!("{}/root_cause", chain.pointer),
                source: "root_cause",
                rule_id: None,
                title: format!(
                    "root cause: {}",
                    root.description
                        .clone()
                        .or_else(|| root.node.clone())
                        .unwrap_or_else(|| "unnamed".to_owned())
                ),
                event: root
                    .node
                    .clone()
                    .map(|node| json!({ "node": node, "kind": root.kind })),
                timestamp: root.timestamp.clone(),
                techniques: Vec::new(),
                tactics: Vec::new(),
                severity: ROOT_CAUSE_SEVERITY,
                confidence,
            });
            if let Some(host) = &root.host {
                self.observe_host(host, true, &evidence);
            }
            // the tracing expert names nodes `<kind>:<value>` (`ip:203.0.113.9`,
            // `domain:evil.example`, `user:corp\\bob`): act on an entry point
            // that is an address, a domain or an account
            let value = root
                .node
                .as_deref()
                .and_then(|n| n.split_once(':'))
                .map(|(_, v)| v);
            match (root.kind.as_deref(), value) {
                (Some("ip"), Some(address)) => self.observe_address(address, &evidence),
                (Some("domain"), Some(domain)) => self.observe_domain(domain, &evidence),
                (Some("user"), Some(account)) => {
                    self.observe_account(account, root.host.as_deref(), &evidence);
                }
                _ => {}
            }
        }
        let entity_evidence = |pointer: &str, what: &str| {
            Rc::new(Evidence {
                pointer: pointer.to_owned(),
                source: "chain_entity",
                rule_id: None,
                title: format!("{what} in the attack chain"),
                event: None,
                timestamp: None,
                techniques: Vec::new(),
                tactics: Vec::new(),
                severity: ENTITY_SEVERITY,
                confidence,
            })
        };
        let entities = &chain.entities;
        for host in &entities.hosts {
            self.observe_host(&host.value, true, &entity_evidence(&host.pointer, "host"));
        }
        for ip in &entities.ips {
            self.observe_address(&ip.value, &entity_evidence(&ip.pointer, "address"));
        }
        for domain in &entities.domains {
            self.observe_domain(&domain.value, &entity_evidence(&domain.pointer, "domain"));
        }
        for user in &entities.users {
            let evidence = entity_evidence(&user.pointer, "account");
            self.observe_account(&user.value, user.host.as_deref(), &evidence);
        }
        for process in &entities.processes {
            let Some(image) = &process.image else {
                continue;
            };
            let target = Target::new(TargetKind::Process, image.clone())
                .on_host(process.host.clone())
                .with_detail("pid", process.pid.clone())
                .with_detail("command_line", process.command_line.clone());
            self.observe_process(target, &entity_evidence(&process.pointer, "process"));
        }
        for file in &entities.files {
            let target =
                Target::new(TargetKind::File, file.value.clone()).on_host(file.host.clone());
            self.propose(
                ActionKind::QuarantineFile,
                target,
                &entity_evidence(&file.pointer, "file"),
            );
        }
    }

    fn observe_host(&mut self, host: &str, isolate: bool, evidence: &Rc<Evidence>) {
        self.hosts
            .entry(short_host(host))
            .or_insert_with(|| host.to_owned());
        if isolate {
            self.propose(
                ActionKind::IsolateHost,
                Target::new(TargetKind::Host, host),
                evidence,
            );
        }
    }

    fn observe_process(&mut self, target: Target, evidence: &Rc<Evidence>) {
        let image = target.value.to_lowercase();
        let file_name = image
            .rsplit(['\\', '/'])
            .next()
            .unwrap_or_default()
            .to_owned();
        if CRITICAL_PROCESSES.contains(&file_name.as_str()) {
            self.skip(
                ActionKind::KillProcess,
                &target.describe(),
                "a critical Windows process: terminating it crashes the host (isolate the host instead)",
                &evidence.pointer,
            );
            return;
        }
        if is_user_writable_binary(&image) {
            let file = Target::new(TargetKind::File, target.value.clone())
                .on_host(target.host.clone())
                .with_detail("hashes", target.details.get("hashes").cloned());
            self.propose(ActionKind::QuarantineFile, file, evidence);
        }
        self.propose(ActionKind::KillProcess, target, evidence);
    }

    fn observe_address(&mut self, text: &str, evidence: &Rc<Evidence>) {
        let Ok(address) = text.trim().parse::<IpAddr>() else {
            return;
        };
        if self.policy.is_internal_ip(address) {
            self.skip(
                ActionKind::BlockIp,
                text,
                "an internal address (private, loopback, link-local or a policy internal network): not blocked as external",
                &evidence.pointer,
            );
            return;
        }
        self.propose(
            ActionKind::BlockIp,
            Target::new(TargetKind::Ip, address.to_string()),
            evidence,
        );
    }

    fn observe_domain(&mut self, text: &str, evidence: &Rc<Evidence>) {
        let domain = text.trim().trim_end_matches('.');
        if domain.parse::<IpAddr>().is_ok() {
            self.observe_address(domain, evidence);
            return;
        }
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return;
        }
        let known_host = self.hosts.values().any(|h| h.eq_ignore_ascii_case(domain))
            || self.assets.has_host_name(domain);
        if self.policy.is_internal_domain(domain) || known_host {
            self.skip(
                ActionKind::BlockDomain,
                domain,
                "an internal name (single label, internal suffix or a known asset): not blocked",
                &evidence.pointer,
            );
            return;
        }
        self.propose(
            ActionKind::BlockDomain,
            Target::new(TargetKind::Domain, domain.to_lowercase()),
            evidence,
        );
    }

    fn observe_account(&mut self, account: &str, host: Option<&str>, evidence: &Rc<Evidence>) {
        if let Some(reason) = self.policy.protected_account(account) {
            self.skip(
                ActionKind::DisableAccount,
                account,
                reason,
                &evidence.pointer,
            );
            return;
        }
        if let Some(host) = host {
            self.accounts_on_host
                .entry(short_host(host))
                .or_default()
                .insert(account.to_owned());
        }
        self.propose(
            ActionKind::DisableAccount,
            Target::new(TargetKind::Account, account),
            evidence,
        );
    }

    /// Patching for techniques ATT&CK mitigates by updating software, and
    /// bookkeeping of credential access per host.
    fn observe_techniques(&mut self, host: Option<&str>, evidence: &Rc<Evidence>) {
        let Some(host) = host else {
            return;
        };
        let patchable = evidence.techniques.iter().any(|t| {
            self.catalog
                .mitigations_of(t)
                .iter()
                .any(|m| m == UPDATE_SOFTWARE)
        });
        if patchable {
            self.propose(
                ActionKind::Patch,
                Target::new(TargetKind::Host, host),
                evidence,
            );
        }
        if evidence.tactics.iter().any(|t| t == "credential-access") {
            let entry = self
                .credential_access
                .entry(short_host(host))
                .or_insert_with(|| (host.to_owned(), Vec::new()));
            entry.1.push(Rc::clone(evidence));
        }
    }

    /// Credential access on a host exposes the credentials of the accounts
    /// seen on it: reset them (or, with no account known, every account that
    /// logged on to the host).
    fn reset_exposed_credentials(&mut self) {
        let exposures = std::mem::take(&mut self.credential_access);
        for (short, (host, evidence)) in exposures {
            let accounts: Vec<String> = self
                .accounts_on_host
                .get(&short)
                .map(|set| set.iter().cloned().collect())
                .unwrap_or_default();
            let targets: Vec<Target> = if accounts.is_empty() {
                vec![Target::new(TargetKind::Host, host.clone())]
            } else {
                accounts
                    .into_iter()
                    .map(|a| Target::new(TargetKind::Account, a).on_host(Some(host.clone())))
                    .collect()
            };
            for target in targets {
                self.propose_all(ActionKind::ResetCredentials, target, &evidence);
            }
        }
    }

    /// A process seen without a pid (a chain step naming only the image) is
    /// the same process as one with a pid on the same host and image: merge
    /// its evidence there instead of proposing a second kill.
    fn merge_pidless_processes(&mut self) {
        let image_key = |target: &Target| {
            format!(
                "{}|{}",
                target.host.as_deref().map(short_host).unwrap_or_default(),
                target.value.to_lowercase()
            )
        };
        let mut with_pid: BTreeMap<String, (ActionKind, String)> = BTreeMap::new();
        for (key, candidate) in &self.candidates {
            if candidate.target.kind == TargetKind::Process
                && candidate.target.details.contains_key("pid")
            {
                with_pid
                    .entry(image_key(&candidate.target))
                    .or_insert_with(|| key.clone());
            }
        }
        let pidless: Vec<(ActionKind, String)> = self
            .candidates
            .iter()
            .filter(|(_, c)| {
                c.target.kind == TargetKind::Process
                    && !c.target.details.contains_key("pid")
                    && with_pid.contains_key(&image_key(&c.target))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in pidless {
            let Some(candidate) = self.candidates.remove(&key) else {
                continue;
            };
            let into = &with_pid[&image_key(&candidate.target)];
            if let Some(kept) = self.candidates.get_mut(into) {
                for evidence in candidate.evidence {
                    kept.add(evidence);
                }
            }
        }
    }

    fn finish(self, input: &PlanInput) -> Plan {
        let mut techniques = BTreeSet::new();
        let mut max_severity: f64 = 0.0;
        // score every candidate (cheap), rank, then build the kept ones in full
        let mut ranked = Vec::with_capacity(self.candidates.len());
        for (key, candidate) in &self.candidates {
            for evidence in &candidate.evidence {
                techniques.extend(evidence.techniques.iter().map(|t| t.to_ascii_uppercase()));
                max_severity = max_severity.max(evidence.severity);
            }
            let (score, factors) = self.score(candidate);
            ranked.push((score, factors, &key.1, candidate));
        }
        ranked.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(a.3.kind.phase().cmp(&b.3.kind.phase()))
                .then(a.3.kind.order().cmp(&b.3.kind.order()))
                .then(a.2.cmp(b.2))
        });
        let dropped = ranked.len().saturating_sub(self.policy.max_actions);
        ranked.truncate(self.policy.max_actions);
        let mut actions = Vec::with_capacity(ranked.len());
        for (rank, (score, factors, _, candidate)) in ranked.into_iter().enumerate() {
            let mut action = self.build_action(candidate, score, factors);
            action.priority = rank + 1;
            actions.push(action);
        }
        let timestamp = input
            .created
            .as_deref()
            .and_then(normalise_timestamp)
            .or_else(|| {
                self.timestamps
                    .iter()
                    .filter_map(|t| normalise_timestamp(t))
                    .max()
            });
        let headline = input
            .alerts
            .iter()
            .max_by(|a, b| a.level.cmp(&b.level).then(b.pointer.cmp(&a.pointer)))
            .map(|a| a.title.clone())
            .or_else(|| {
                let chain = input.chain.as_ref()?;
                let step = chain.steps.first()?;
                step.technique_name.clone().or(step.technique_id.clone())
            });
        Plan {
            actions,
            skipped: self.skipped.into_values().collect(),
            techniques,
            hosts: self.hosts.into_values().collect(),
            attribution: input
                .chain
                .as_ref()
                .map(|c| c.attribution.clone())
                .unwrap_or_default(),
            max_severity,
            alerts: input.alerts.len(),
            chain_steps: input.chain.as_ref().map_or(0, |c| c.steps.len()),
            dropped,
            timestamp,
            headline,
        }
    }

    /// The priority score of a candidate and its factors.
    fn score(&self, candidate: &Candidate) -> (u32, ScoreFactors) {
        let evidence = &candidate.evidence;
        let criticality = self
            .assets
            .for_target(&candidate.target)
            .map_or(self.policy.default_criticality, |a| a.criticality);
        let severity = evidence.iter().map(|e| e.severity).fold(0.0, f64::max);
        let stage = evidence
            .iter()
            .flat_map(|e| e.tactics.iter())
            .filter_map(|t| tactic_stage(t))
            .fold(None, |best: Option<f64>, s| {
                Some(best.map_or(s, |b| b.max(s)))
            })
            .unwrap_or(0.5);
        let miss: f64 = evidence.iter().map(|e| 1.0 - e.confidence).product();
        let confidence = (1.0 - miss).clamp(0.0, 0.99);
        let factors = ScoreFactors {
            severity,
            tactic_stage: stage,
            criticality: criticality.weight(),
            confidence,
            urgency: candidate.kind.phase().urgency(),
        };
        let weights = self.policy.weights;
        let raw = factors.urgency
            * (weights.severity * factors.severity
                + weights.tactic_stage * factors.tactic_stage
                + weights.criticality * factors.criticality
                + weights.confidence * factors.confidence);
        ((raw * 100.0).round().clamp(0.0, 100.0) as u32, factors)
    }

    fn build_action(&self, candidate: &Candidate, score: u32, factors: ScoreFactors) -> Action {
        let kind = candidate.kind;
        let target = &candidate.target;
        let evidence = &candidate.evidence;
        let asset = self.assets.for_target(target);
        let criticality = asset.map(|a| a.criticality);
        let effective = criticality.unwrap_or(self.policy.default_criticality);

        let privileged = target.kind == TargetKind::Account
            && (self.policy.is_privileged_name(&target.value)
                || asset
                    .and_then(|a| a.role.as_deref())
                    .is_some_and(|r| r.to_lowercase().contains("admin")));
        let approval = self.policy.decide(
            kind,
            &ApprovalSubject {
                criticality,
                role: asset.and_then(|a| a.role.clone()),
                privileged,
            },
        );

        let mut techniques: BTreeSet<String> = BTreeSet::new();
        for e in evidence {
            techniques.extend(e.techniques.iter().map(|t| t.to_ascii_uppercase()));
        }
        let techniques: Vec<String> = techniques.into_iter().collect();
        let mitigations = self.mitigations(&techniques);
        let impact = impact(kind, target, asset, effective);
        let rationale = rationale(kind, target, evidence, &factors, asset);
        let mut listed: Vec<&Rc<Evidence>> = evidence.iter().collect();
        listed.sort_by(|a, b| {
            b.severity
                .total_cmp(&a.severity)
                .then(a.pointer.cmp(&b.pointer))
        });
        listed.truncate(MAX_EVIDENCE);
        let listed: Vec<Evidence> = listed.into_iter().map(|e| (**e).clone()).collect();
        Action {
            id: action_id(kind, target),
            kind,
            target: target.clone(),
            priority: 0,
            score,
            factors,
            approval,
            rationale,
            evidence: listed,
            evidence_count: evidence.len(),
            mitigations,
            impact,
            instruction: instruction(kind, target, &techniques),
            techniques,
        }
    }

    fn mitigations(&self, techniques: &[String]) -> Vec<Mitigation> {
        let mut by_id: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for technique in techniques {
            for mitigation in self.catalog.mitigations_of(technique) {
                by_id
                    .entry(mitigation.clone())
                    .or_default()
                    .insert(technique.clone());
            }
        }
        let mut mitigations: Vec<Mitigation> = by_id
            .into_iter()
            .map(|(id, techniques)| Mitigation {
                name: self
                    .catalog
                    .mitigation_name(&id)
                    .unwrap_or_default()
                    .to_owned(),
                id,
                techniques: techniques.into_iter().collect(),
            })
            .collect();
        mitigations.sort_by(|a, b| {
            b.techniques
                .len()
                .cmp(&a.techniques.len())
                .then(a.id.cmp(&b.id))
        });
        mitigations
    }
}

/// Binaries outside the OS and program directories (where attackers drop
/// tools) are quarantined; LOLBins like `powershell.exe` are not.
fn is_user_writable_binary(image: &str) -> bool {
    let image = image.to_lowercase().replace('/', "\\");
    let system = [
        "c:\\windows\\",
        "c:\\program files\\",
        "c:\\program files (x86)\\",
        "%systemroot%\\",
        "%windir%\\",
        "\\systemroot\\",
    ];
    // writable by ordinary users or services: attackers stage tools there
    let writable = [
        "c:\\windows\\temp\\",
        "c:\\windows\\tasks\\",
        "c:\\windows\\tracing\\",
        "c:\\windows\\debug\\",
        "c:\\windows\\system32\\tasks\\",
        "c:\\windows\\system32\\spool\\drivers\\color\\",
    ];
    image.contains('\\')
        && (writable.iter().any(|prefix| image.starts_with(prefix))
            || !system.iter().any(|prefix| image.starts_with(prefix)))
}

fn impact(
    kind: ActionKind,
    target: &Target,
    asset: Option<&Asset>,
    effective: Criticality,
) -> Impact {
    let rank = (kind.disruption() + effective.rank())
        .saturating_sub(2)
        .min(3);
    let level = [
        Criticality::Low,
        Criticality::Medium,
        Criticality::High,
        Criticality::Critical,
    ][rank];
    let name = &target.value;
    let host = target.host.as_deref().unwrap_or("its host");
    let what = match kind {
        ActionKind::IsolateHost => {
            format!(
                "{name} loses network access until released; its users and the services it runs are interrupted"
            )
        }
        ActionKind::BlockIp => format!("connections to and from {name} fail"),
        ActionKind::BlockDomain => format!("{name} stops resolving for every internal client"),
        ActionKind::DisableAccount => format!(
            "{name} cannot log on; services and scheduled tasks running as it stop authenticating"
        ),
        ActionKind::ResetCredentials if target.kind == TargetKind::Host => format!(
            "every account that logged on to {name} must change its password; their sessions and tickets end"
        ),
        ActionKind::ResetCredentials => format!(
            "{name} must set a new password; its sessions, tickets and saved credentials stop working"
        ),
        ActionKind::KillProcess => format!("{name} stops on {host}; unsaved work in it is lost"),
        ActionKind::QuarantineFile => {
            format!("{name} becomes unavailable on {host}; software that needs it fails")
        }
        ActionKind::Patch => format!("{name} needs a maintenance window and probably a reboot"),
    };
    let context = match asset {
        Some(asset) => {
            let mut parts = vec![format!("{} asset", asset.criticality.as_str())];
            if let Some(role) = &asset.role {
                parts.push(format!("role {role}"));
            }
            if let Some(owner) = &asset.owner {
                parts.push(format!("owner {owner}"));
            }
            format!(" ({})", parts.join(", "))
        }
        None => format!(
            " (not in the asset context; assumed {})",
            effective.as_str()
        ),
    };
    Impact {
        level,
        asset_criticality: asset.map(|a| a.criticality),
        owner: asset.and_then(|a| a.owner.clone()),
        role: asset.and_then(|a| a.role.clone()),
        description: format!("{what}{context}"),
    }
}

fn verb(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::IsolateHost => "Isolate",
        ActionKind::BlockIp | ActionKind::BlockDomain => "Block",
        ActionKind::DisableAccount => "Disable",
        ActionKind::ResetCredentials => "Reset the credentials of",
        ActionKind::KillProcess => "Kill",
        ActionKind::QuarantineFile => "Quarantine",
        ActionKind::Patch => "Patch",
    }
}

fn rationale(
    kind: ActionKind,
    target: &Target,
    evidence: &[Rc<Evidence>],
    factors: &ScoreFactors,
    asset: Option<&Asset>,
) -> String {
    let mut alerts: BTreeMap<String, usize> = BTreeMap::new();
    let mut chain = Vec::new();
    for e in evidence {
        match &e.rule_id {
            Some(rule_id) => {
                *alerts
                    .entry(format!("{} [rule {rule_id}]", e.title))
                    .or_default() += 1
            }
            None => chain.push(e.title.clone()),
        }
    }
    let mut reasons: Vec<String> = alerts
        .iter()
        .take(3)
        .map(|(title, events)| match events {
            1 => title.clone(),
            n => format!("{title} on {n} events"),
        })
        .collect();
    if alerts.len() > 3 {
        reasons.push(format!("{} more alerts", alerts.len() - 3));
    }
    chain.dedup();
    reasons.extend(chain.iter().take(3).cloned());
    if chain.len() > 3 {
        reasons.push(format!("{} more chain items", chain.len() - 3));
    }
    let target_text = match (kind, target.kind) {
        (ActionKind::ResetCredentials, TargetKind::Host) => {
            format!("every account that logged on to {}", target.value)
        }
        _ => target.describe(),
    };
    let mut tactics: Vec<&str> = evidence
        .iter()
        .flat_map(|e| e.tactics.iter().map(String::as_str))
        .collect();
    tactics.sort_by(|a, b| {
        tactic_stage(b)
            .unwrap_or(0.0)
            .total_cmp(&tactic_stage(a).unwrap_or(0.0))
    });
    let stage = tactics
        .first()
        .map(|t| format!("; latest stage {t}"))
        .unwrap_or_default();
    let asset_text = asset
        .map(|a| format!("; asset criticality {}", a.criticality.as_str()))
        .unwrap_or_default();
    format!(
        "{} {target_text}: {}{stage}{asset_text} (severity {:.2}, confidence {:.2})",
        verb(kind),
        reasons.join("; "),
        factors.severity,
        factors.confidence
    )
}

fn instruction(kind: ActionKind, target: &Target, techniques: &[String]) -> String {
    let name = &target.value;
    let host = target.host.as_deref().unwrap_or("the affected host");
    match kind {
        ActionKind::IsolateHost => format!(
            "Isolate host {name} from the network with the EDR's network containment (keep the EDR management channel); confirm it no longer reaches other hosts; collect volatile evidence before any reboot."
        ),
        ActionKind::BlockIp => format!(
            "Block inbound and outbound traffic for {name} on the perimeter firewall and web proxy; search proxy and firewall logs for other internal hosts talking to it."
        ),
        ActionKind::BlockDomain => format!(
            "Sinkhole {name} on the DNS resolvers and block it on the web proxy; search DNS logs for other clients resolving it."
        ),
        ActionKind::DisableAccount => format!(
            "Disable account {name} in the directory, revoke its sessions and tokens, and review what it changed."
        ),
        ActionKind::ResetCredentials if target.kind == TargetKind::Host => format!(
            "Reset the passwords of every account that logged on to {name} since the compromise (twice for krbtgt if a domain controller is involved) and revoke their Kerberos tickets."
        ),
        ActionKind::ResetCredentials => format!(
            "Reset the password of {name} (exposed on {host}), revoke its Kerberos tickets and sessions, and rotate any keys it holds."
        ),
        ActionKind::KillProcess => {
            let pid = target
                .details
                .get("pid")
                .map(|p| format!(" (PID {p})"))
                .unwrap_or_default();
            format!(
                "Terminate process {name}{pid} on {host} if it still runs, after capturing its memory if forensics need it."
            )
        }
        ActionKind::QuarantineFile => {
            let hashes = target
                .details
                .get("hashes")
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            format!(
                "Quarantine {name}{hashes} on {host} with the EDR and block its hash across the fleet."
            )
        }
        ActionKind::Patch => format!(
            "Apply the pending security updates to {name} (ATT&CK M1051 Update Software mitigates {}).",
            techniques.join(", ")
        ),
    }
}

// === impl AssetIndex ===

/// Asset lookups by host (short name), address and account name.
struct AssetIndex<'a> {
    hosts: BTreeMap<String, &'a Asset>,
    ips: BTreeMap<String, &'a Asset>,
    users: BTreeMap<String, &'a Asset>,
}

impl<'a> AssetIndex<'a> {
    fn new(assets: &'a [Asset]) -> Self {
        let mut index = AssetIndex {
            hosts: BTreeMap::new(),
            ips: BTreeMap::new(),
            users: BTreeMap::new(),
        };
        for asset in assets {
            if let Some(host) = &asset.host {
                index.hosts.entry(short_host(host)).or_insert(asset);
            }
            if let Some(ip) = &asset.ip {
                index.ips.entry(ip.trim().to_lowercase()).or_insert(asset);
            }
            if let Some(user) = &asset.user {
                index.users.entry(account_name(user)).or_insert(asset);
            }
        }
        index
    }

    /// Whether an asset's host is written exactly `name` (a host's FQDN is
    /// an internal name, not a domain to block).
    fn has_host_name(&self, name: &str) -> bool {
        self.hosts.values().any(|a| {
            a.host
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(name))
        })
    }

    fn host(&self, host: &str) -> Option<&'a Asset> {
        let key = short_host(host);
        self.hosts.get(&key).or_else(|| self.ips.get(&key)).copied()
    }

    fn for_target(&self, target: &Target) -> Option<&'a Asset> {
        match target.kind {
            TargetKind::Host => self.host(&target.value),
            TargetKind::Ip => self
                .ips
                .get(&target.value.to_lowercase())
                .copied()
                .or_else(|| self.host(&target.value)),
            TargetKind::Account => self.users.get(&account_name(&target.value)).copied(),
            TargetKind::Process | TargetKind::File => {
                target.host.as_deref().and_then(|h| self.host(h))
            }
            TargetKind::Domain => None,
        }
    }
}
