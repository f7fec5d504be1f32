//! The response policy: which actions need human approval, what counts as
//! internal, which accounts are privileged or protected, and the weights of
//! the priority score. Read from JSON (`data/policy.json` is the default,
//! embedded) and validated with every problem reported.

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::action::{ActionKind, Approval, account_name};
use crate::input::{Criticality, Level};

/// The default policy (embedded `data/policy.json`).
pub const DEFAULT_POLICY: &str = include_str!("../data/policy.json");

/// Why a policy cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file cannot be read.
    #[error("cannot read policy file `{path}`")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid JSON or not the policy format (serde names the field, line
    /// and column).
    #[error("policy `{origin}` is not a valid policy document")]
    Parse {
        /// File path or `embedded`.
        origin: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Parsed, but values are inconsistent.
    #[error("policy `{origin}` is invalid: {}", problems.join("; "))]
    Invalid {
        /// File path or `embedded`.
        origin: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyConfig {
    version: u32,
    #[serde(default = "default_criticality")]
    default_criticality: Criticality,
    #[serde(default = "default_isolate_level")]
    isolate_min_level: String,
    #[serde(default)]
    internal_networks: Vec<String>,
    #[serde(default)]
    internal_domain_suffixes: Vec<String>,
    #[serde(default)]
    privileged_account_patterns: Vec<String>,
    #[serde(default)]
    protected_accounts: Vec<String>,
    #[serde(default)]
    weights: Weights,
    #[serde(default = "default_max_actions")]
    max_actions: usize,
    approval: ApprovalConfig,
}

fn default_max_actions() -> usize {
    250
}

fn default_criticality() -> Criticality {
    Criticality::Medium
}

fn default_isolate_level() -> String {
    "high".to_owned()
}

/// Weights of the priority score factors (normalised to sum 1).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// Alert severity.
    pub severity: f64,
    /// ATT&CK tactic stage.
    pub tactic_stage: f64,
    /// Asset criticality.
    pub criticality: f64,
    /// Evidence confidence.
    pub confidence: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            severity: 0.35,
            tactic_stage: 0.2,
            criticality: 0.25,
            confidence: 0.2,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalConfig {
    #[serde(default)]
    default_requires_approval: bool,
    #[serde(default)]
    default_approvers: Vec<String>,
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    id: String,
    actions: Vec<ActionKind>,
    #[serde(default)]
    min_criticality: Option<Criticality>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    privileged: Option<bool>,
    #[serde(default = "yes")]
    requires_approval: bool,
    #[serde(default)]
    approvers: Vec<String>,
    reason: String,
}

fn yes() -> bool {
    true
}

/// An IP network (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses CIDR notation (a bare address is a /32 or /128).
    pub fn parse(text: &str) -> Option<Network> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address.parse::<IpAddr>().ok()?, prefix.parse().ok()?),
            None => {
                let address = text.trim().parse::<IpAddr>().ok()?;
                (address, if address.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Network { address, prefix })
    }

    /// Whether the address is in this network.
    pub fn contains(&self, address: IpAddr) -> bool {
        let (network, candidate, bits) = match (self.address, address) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u32::from(n) as u128, u32::from(a) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        if shift >= bits {
            return true;
        }
        (network >> shift) == (candidate >> shift)
    }
}

/// One approval rule (first match wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// Rule id, named in each decision.
    pub id: String,
    /// Actions it applies to.
    pub actions: Vec<ActionKind>,
    /// Applies when the affected asset is at least this critical.
    pub min_criticality: Option<Criticality>,
    /// Applies when the asset has one of these roles (case-insensitive).
    pub roles: Vec<String>,
    /// Applies when the account is (or is not) privileged.
    pub privileged: Option<bool>,
    /// The decision.
    pub requires_approval: bool,
    /// Who approves.
    pub approvers: Vec<String>,
    /// Why.
    pub reason: String,
}

/// What an approval decision looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalSubject {
    /// Criticality of the affected asset (the policy default when unknown).
    pub criticality: Option<Criticality>,
    /// Role of the affected asset.
    pub role: Option<String>,
    /// Whether the target is a privileged account.
    pub privileged: bool,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Criticality of assets not in the asset context.
    pub default_criticality: Criticality,
    /// Lowest alert level that isolates a host (chain steps always do).
    pub isolate_min_level: Level,
    /// Networks treated as internal besides private, loopback, link-local,
    /// CGNAT and unique-local ranges.
    pub internal_networks: Vec<Network>,
    /// Domain suffixes treated as internal (never blocked).
    pub internal_domain_suffixes: Vec<String>,
    /// Substrings marking an account as privileged (lowercase).
    pub privileged_account_patterns: Vec<String>,
    /// Accounts never disabled or reset (besides Windows' built-in ones).
    pub protected_accounts: Vec<String>,
    /// Score weights, normalised to sum 1.
    pub weights: Weights,
    /// Most actions in a plan: the lowest-ranked beyond it are dropped (and
    /// counted), so a noisy input cannot produce an unusable plan.
    pub max_actions: usize,
    /// Decision when no rule matches.
    pub default_requires_approval: bool,
    /// Approvers when no rule matches.
    pub default_approvers: Vec<String>,
    /// Approval rules in order.
    pub rules: Vec<ApprovalRule>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::from_json_str(DEFAULT_POLICY, "embedded").expect("the embedded policy is valid")
    }
}

impl Policy {
    /// The text of the default policy (`data/policy.json`), to start a custom one from.
    pub fn default_json() -> &'static str {
        DEFAULT_POLICY
    }

    /// Reads and validates a policy file.
    ///
    /// # Errors
    ///
    /// [`PolicyError`] naming the file and every problem.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Policy::from_json_str(&text, &path.display().to_string())
    }

    /// Parses and validates a policy document; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Parse`] or [`PolicyError::Invalid`].
    pub fn from_json_str(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let config: PolicyConfig =
            serde_json::from_str(text).map_err(|source| PolicyError::Parse {
                origin: origin.to_owned(),
                source,
            })?;
        let mut problems = Vec::new();
        if config.version != 1 {
            problems.push(format!(
                "`version` is {}; this expert reads version 1",
                config.version
            ));
        }
        let isolate_min_level = Level::parse(&config.isolate_min_level).unwrap_or_else(|| {
            problems.push(format!(
                "`isolate_min_level` is `{}`; valid: informational, low, medium, high, critical",
                config.isolate_min_level
            ));
            Level::High
        });
        let mut internal_networks = Vec::new();
        for (i, text) in config.internal_networks.iter().enumerate() {
            match Network::parse(text) {
                Some(network) => internal_networks.push(network),
                None => problems.push(format!(
                    "`internal_networks[{i}]` `{text}` is not CIDR notation (e.g. `198.51.100.0/24`)"
                )),
            }
        }
        let weights = config.weights;
        let all = [
            ("severity", weights.severity),
            ("tactic_stage", weights.tactic_stage),
            ("criticality", weights.criticality),
            ("confidence", weights.confidence),
        ];
        for (name, weight) in all {
            if !(weight.is_finite() && weight >= 0.0) {
                problems.push(format!(
                    "`weights.{name}` is {weight}; weights must be >= 0"
                ));
            }
        }
        let sum: f64 = all.iter().map(|(_, w)| w).sum();
        if sum <= 0.0 || !sum.is_finite() {
            problems.push("`weights` sum to 0; give at least one weight above 0".to_owned());
        }
        if config.max_actions == 0 {
            problems.push("`max_actions` is 0; a plan needs at least one action".to_owned());
        }
        let mut rules = Vec::new();
        for (i, rule) in config.approval.rules.iter().enumerate() {
            if rule.actions.is_empty() {
                problems.push(format!(
                    "`approval.rules[{i}]` (`{}`) lists no `actions`",
                    rule.id
                ));
            }
            if config.approval.rules[..i].iter().any(|r| r.id == rule.id) {
                problems.push(format!(
                    "`approval.rules[{i}]` repeats rule id `{}`; ids must be unique",
                    rule.id
                ));
            }
            rules.push(ApprovalRule {
                id: rule.id.clone(),
                actions: rule.actions.clone(),
                min_criticality: rule.min_criticality,
                roles: rule.roles.iter().map(|r| r.to_lowercase()).collect(),
                privileged: rule.privileged,
                requires_approval: rule.requires_approval,
                approvers: rule.approvers.clone(),
                reason: rule.reason.clone(),
            });
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid {
                origin: origin.to_owned(),
                problems,
            });
        }
        let normalised = |w: f64| if sum > 0.0 { w / sum } else { 0.0 };
        Ok(Policy {
            default_criticality: config.default_criticality,
            isolate_min_level,
            internal_networks,
            internal_domain_suffixes: config
                .internal_domain_suffixes
                .iter()
                .map(|s| s.trim_matches('.').to_lowercase())
                .collect(),
            privileged_account_patterns: config
                .privileged_account_patterns
                .iter()
                .map(|s| s.to_lowercase())
                .collect(),
            protected_accounts: config
                .protected_accounts
                .iter()
                .map(|a| account_name(a))
                .collect(),
            weights: Weights {
                severity: normalised(weights.severity),
                tactic_stage: normalised(weights.tactic_stage),
                criticality: normalised(weights.criticality),
                confidence: normalised(weights.confidence),
            },
            max_actions: config.max_actions,
            default_requires_approval: config.approval.default_requires_approval,
            default_approvers: config.approval.default_approvers,
            rules,
        })
    }

    /// The approval decision for an action on a subject: the first rule
    /// whose action list, criticality, roles and privilege conditions all
    /// match; the policy default otherwise.
    pub fn decide(&self, kind: ActionKind, subject: &ApprovalSubject) -> Approval {
        let criticality = subject.criticality.unwrap_or(self.default_criticality);
        let role = subject.role.as_deref().map(str::to_lowercase);
        for rule in &self.rules {
            if !rule.actions.contains(&kind) {
                continue;
            }
            if rule.min_criticality.is_some_and(|min| criticality < min) {
                continue;
            }
            if !rule.roles.is_empty()
                && !role
                    .as_deref()
                    .is_some_and(|role| rule.roles.iter().any(|r| r == role))
            {
                continue;
            }
            if rule.privileged.is_some_and(|p| p != subject.privileged) {
                continue;
            }
            return Approval {
                required: rule.requires_approval,
                rule: Some(rule.id.clone()),
                approvers: if rule.requires_approval {
                    rule.approvers.clone()
                } else {
                    Vec::new()
                },
                reason: rule.reason.clone(),
            };
        }
        Approval {
            required: self.default_requires_approval,
            rule: None,
            approvers: if self.default_requires_approval {
                self.default_approvers.clone()
            } else {
                Vec::new()
            },
            reason: if self.default_requires_approval {
                "the policy requires approval for every action without a more specific rule"
            } else {
                "no policy rule requires approval for this action"
            }
            .to_owned(),
        }
    }

    /// Whether an address is internal: private, loopback, link-local,
    /// unspecified, broadcast, multicast, CGNAT (100.64/10), unique-local
    /// IPv6, or in [`Policy::internal_networks`]. Internal addresses are
    /// never blocked as "external".
    pub fn is_internal_ip(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        let builtin = match address {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                v4.is_private()
                    || v4.is_loopback()
                    || v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.is_broadcast()
                    || v4.is_multicast()
                    || (a == 100 && (64..128).contains(&b))
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        };
        builtin || self.internal_networks.iter().any(|n| n.contains(address))
    }

    /// Whether a domain is internal: a single label, or ending in one of
    /// [`Policy::internal_domain_suffixes`].
    pub fn is_internal_domain(&self, domain: &str) -> bool {
        let domain = domain.trim().trim_end_matches('.').to_lowercase();
        if !domain.contains('.') {
            return true;
        }
        self.internal_domain_suffixes
            .iter()
            .any(|suffix| domain == *suffix || domain.ends_with(&format!(".{suffix}")))
    }

    /// Whether an account matches a privileged pattern.
    pub fn is_privileged_name(&self, account: &str) -> bool {
        let name = account_name(account);
        self.privileged_account_patterns
            .iter()
            .any(|p| name.contains(p.as_str()))
    }

    /// Why an account must not be disabled or reset, if so: Windows'
    /// built-in service identities, machine accounts, or the policy's
    /// protected list.
    pub fn protected_account(&self, account: &str) -> Option<&'static str> {
        let full = account.trim().to_lowercase();
        let name = account_name(account);
        let domain = full.rsplit_once('\\').map(|(d, _)| d).unwrap_or_default();
        const BUILTIN: [&str; 9] = [
            "system",
            "local service",
            "localservice",
            "network service",
            "networkservice",
            "anonymous logon",
            "local system",
            "trustedinstaller",
            "-",
        ];
        if BUILTIN.contains(&name.as_str())
            || matches!(
                domain,
                "nt authority"
                    | "nt service"
                    | "window manager"
                    | "font driver host"
                    | "iis apppool"
            )
            || name.starts_with("dwm-")
            || name.starts_with("umfd-")
            || name.is_empty()
        {
            return Some("a built-in Windows service identity");
        }
        if name.ends_with('$') {
            return Some("a computer account (isolate or reset the host instead)");
        }
        if self.protected_accounts.contains(&name) {
            return Some("listed in the policy's protected_accounts");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_decisions() {
        let policy = Policy::default();
        let critical_server = ApprovalSubject {
            criticality: Some(Criticality::Critical),
            ..ApprovalSubject::default()
        };
        let decision = policy.decide(ActionKind::IsolateHost, &critical_server);
        assert!(decision.required);
        assert_eq!(decision.rule.as_deref(), Some("isolate-important-host"));
        let workstation = ApprovalSubject {
            criticality: Some(Criticality::Low),
            ..ApprovalSubject::default()
        };
        assert!(
            !policy
                .decide(ActionKind::IsolateHost, &workstation)
                .required
        );
        let dc = ApprovalSubject {
            role: Some("Domain-Controller".to_owned()),
            criticality: Some(Criticality::Low),
            ..ApprovalSubject::default()
        };
        assert_eq!(
            policy.decide(ActionKind::IsolateHost, &dc).rule.as_deref(),
            Some("isolate-infrastructure")
        );
        let admin = ApprovalSubject {
            privileged: true,
            ..ApprovalSubject::default()
        };
        assert!(policy.decide(ActionKind::DisableAccount, &admin).required);
        let external = policy.decide(ActionKind::BlockIp, &critical_server);
        assert!(!external.required);
        assert_eq!(external.rule.as_deref(), Some("block-external"));
    }

    #[test]
    fn internal_addresses_and_domains() {
        let policy = Policy::from_json_str(
            r#"{"version": 1, "internal_networks": ["198.51.100.0/24"], "internal_domain_suffixes": ["corp.example"], "approval": {}}"#,
            "test",
        )
        .unwrap();
        for internal in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "198.51.100.7",
            "0.0.0.0",
        ] {
            assert!(
                policy.is_internal_ip(internal.parse().unwrap()),
                "{internal}"
            );
        }
        for external in ["8.8.8.8", "203.0.113.9", "2001:4860::8888", "172.32.0.1"] {
            assert!(
                !policy.is_internal_ip(external.parse().unwrap()),
                "{external}"
            );
        }
        assert!(policy.is_internal_domain("fileserver"));
        assert!(policy.is_internal_domain("dc1.corp.example."));
        assert!(!policy.is_internal_domain("evil.example.com"));
    }

    #[test]
    fn system_accounts_are_protected() {
        let policy = Policy::default();
        for account in [
            "SYSTEM",
            "NT AUTHORITY\\SYSTEM",
            "NT AUTHORITY\\LOCAL SERVICE",
            "LOCAL SERVICE",
            "NETWORK SERVICE",
            "Window Manager\\DWM-1",
            "WS01$",
            "-",
        ] {
            assert!(policy.protected_account(account).is_some(), "{account}");
        }
        assert!(policy.protected_account("CORP\\alice").is_none());
        assert!(policy.is_privileged_name("CORP\\Administrator"));
        assert!(!policy.is_privileged_name("alice@corp.example"));
    }

    #[test]
    fn invalid_policies_report_every_problem() {
        let error = Policy::from_json_str(
            r#"{"version": 2, "isolate_min_level": "urgent", "internal_networks": ["10.0.0.0/33"],
                "weights": {"severity": 0, "tactic_stage": 0, "criticality": 0, "confidence": 0},
                "approval": {"rules": [{"id": "a", "actions": [], "reason": "r"}, {"id": "a", "actions": ["patch"], "reason": "r"}]}}"#,
            "p.json",
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "policy `p.json` is invalid",
            "`version` is 2",
            "`isolate_min_level` is `urgent`",
            "`internal_networks[0]`",
            "`weights` sum to 0",
            "lists no `actions`",
            "repeats rule id `a`",
        ] {
            assert!(error.contains(expected), "{expected} not in {error}");
        }
        let error = Policy::from_json_str(
            r#"{"version": 1, "approval": {"rules": [{"id": "a", "actions": ["isolate"], "reason": "r"}]}}"#,
            "p.json",
        )
        .unwrap_err();
        let PolicyError::Parse { source, .. } = &error else {
            panic!("{error}");
        };
        assert!(
            source.to_string().contains("unknown variant `isolate`"),
            "{source}"
        );
    }
}
