//! The embedded ATT&CK table: technique names, tactics and the mitigations
//! (course-of-action objects) that `mitigates` them, derived from MITRE
//! ATT&CK Enterprise STIX into `data/attack-mitigations.tsv` by
//! `tests/attack_table.rs`.
//!
//! © 2025 The MITRE Corporation. This work is reproduced and distributed with
//! the permission of The MITRE Corporation (license and disclaimers in
//! `data/LICENSE-MITRE-ATTACK-CAPEC.txt`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The derived table (see the module docs).
const TABLE: &str = include_str!("../data/attack-mitigations.tsv");

/// ATT&CK Enterprise tactics in kill-chain order (`x_mitre_shortname`).
pub use synod_expert_attack_detection::KILL_CHAIN_TACTICS as TACTICS;

/// Where a tactic sits in the attack, 0.0 (reconnaissance) to 1.0 (impact);
/// `None` for an unknown tactic. Accepts `credential-access`,
/// `credential_access` and `Credential Access`.
pub fn tactic_stage(tactic: &str) -> Option<f64> {
    let normal = tactic.trim().to_ascii_lowercase().replace([' ', '_'], "-");
    let index = TACTICS.iter().position(|t| *t == normal)?;
    Some(index as f64 / (TACTICS.len() - 1) as f64)
}

/// One technique or sub-technique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Technique {
    /// `T1003.001`.
    pub id: String,
    /// `OS Credential Dumping: LSASS Memory`.
    pub name: String,
    /// Tactic short names, e.g. `credential-access`.
    pub tactics: Vec<String>,
    /// Mitigation ids (`M1040`), sorted.
    pub mitigations: Vec<String>,
}

/// The ATT&CK techniques and mitigations known to the planner.
#[derive(Debug, Clone, Default)]
pub struct AttackCatalog {
    techniques: BTreeMap<String, Technique>,
    mitigations: BTreeMap<String, String>,
}

impl AttackCatalog {
    /// The catalog embedded in the binary (parsed once).
    pub fn embedded() -> &'static AttackCatalog {
        static CATALOG: OnceLock<AttackCatalog> = OnceLock::new();
        CATALOG.get_or_init(|| AttackCatalog::parse(TABLE))
    }

    /// Parses the tab-separated table format of `data/attack-mitigations.tsv`
    /// (`M id name` and `T id name tactics mitigations` rows; `#` comments).
    /// Malformed rows are skipped.
    pub fn parse(table: &str) -> AttackCatalog {
        let mut catalog = AttackCatalog::default();
        for line in table.lines() {
            let columns: Vec<&str> = line.split('\t').collect();
            match columns.as_slice() {
                ["M", id, name] => {
                    catalog
                        .mitigations
                        .insert((*id).to_owned(), (*name).to_owned());
                }
                ["T", id, name, tactics, mitigations] => {
                    let list = |text: &str| -> Vec<String> {
                        text.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    };
                    catalog.techniques.insert(
                        (*id).to_owned(),
                        Technique {
                            id: (*id).to_owned(),
                            name: (*name).to_owned(),
                            tactics: list(tactics),
                            mitigations: list(mitigations),
                        },
                    );
                }
                _ => {}
            }
        }
        catalog
    }

    /// The technique with this id (case-insensitive, e.g. `t1003.001`).
    pub fn technique(&self, id: &str) -> Option<&Technique> {
        self.techniques.get(&id.trim().to_ascii_uppercase())
    }

    /// The mitigations of a technique; a sub-technique without its own falls
    /// back to its parent's (ATT&CK maps some mitigations only to parents).
    pub fn mitigations_of(&self, technique_id: &str) -> &[String] {
        let own = self
            .technique(technique_id)
            .map(|t| t.mitigations.as_slice())
            .unwrap_or_default();
        if !own.is_empty() {
            return own;
        }
        match technique_id.split_once('.') {
            Some((parent, _)) => self
                .technique(parent)
                .map(|t| t.mitigations.as_slice())
                .unwrap_or_default(),
            None => own,
        }
    }

    /// The tactics of a technique (its parent's when the id is unknown).
    pub fn tactics_of(&self, technique_id: &str) -> &[String] {
        let parent = technique_id.split('.').next().unwrap_or(technique_id);
        self.technique(technique_id)
            .or_else(|| self.technique(parent))
            .map(|t| t.tactics.as_slice())
            .unwrap_or_default()
    }

    /// The name of a mitigation (`M1051` -> `Update Software`).
    pub fn mitigation_name(&self, id: &str) -> Option<&str> {
        self.mitigations.get(id).map(String::as_str)
    }

    /// Number of techniques and of mitigations.
    pub fn len(&self) -> (usize, usize) {
        (self.techniques.len(), self.mitigations.len())
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.techniques.is_empty()
    }
}

/// The ATT&CK web page of a technique or mitigation id.
pub fn attack_url(id: &str) -> String {
    if let Some(rest) = id.strip_prefix('M') {
        format!("https://attack.mitre.org/mitigations/M{rest}/")
    } else {
        format!(
            "https://attack.mitre.org/techniques/{}/",
            id.replace('.', "/")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_has_techniques_and_mitigations() {
        let catalog = AttackCatalog::embedded();
        let (techniques, mitigations) = catalog.len();
        assert!(
            techniques > 600 && mitigations > 40,
            "{techniques} {mitigations}"
        );
        assert_eq!(catalog.mitigation_name("M1051"), Some("Update Software"));
        let lsass = catalog.technique("t1003.001").unwrap();
        assert_eq!(lsass.tactics, ["credential-access"]);
        assert!(lsass.mitigations.contains(&"M1040".to_owned()));
    }

    #[test]
    fn tactic_stages_follow_the_kill_chain() {
        assert_eq!(tactic_stage("reconnaissance"), Some(0.0));
        assert_eq!(tactic_stage("Impact"), Some(1.0));
        assert!(tactic_stage("credential_access") > tactic_stage("execution"));
        assert_eq!(tactic_stage("brewing"), None);
    }

    #[test]
    fn urls() {
        assert_eq!(
            attack_url("T1003.001"),
            "https://attack.mitre.org/techniques/T1003/001/"
        );
        assert_eq!(
            attack_url("M1051"),
            "https://attack.mitre.org/mitigations/M1051/"
        );
    }
}
