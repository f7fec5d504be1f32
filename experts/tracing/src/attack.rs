//! ATT&CK Enterprise reference data embedded at build time: technique names
//! and tactics, revoked-technique replacements, and which techniques each
//! intrusion set (group) uses.
//!
//! The tables in `data/` are derived from MITRE ATT&CK by
//! `scripts/gen_attack_data.py` (© The MITRE Corporation, reproduced under
//! the ATT&CK terms of use in `data/LICENSE-MITRE-ATTACK-CAPEC.txt`).

use std::collections::HashMap;
use std::sync::OnceLock;

/// Enterprise tactics in kill-chain order (the order of the ATT&CK matrix).
pub use synod_expert_attack_detection::KILL_CHAIN_TACTICS as TACTICS;

/// Position of `tactic` in [`TACTICS`] (unknown tactics sort last).
pub fn tactic_rank(tactic: &str) -> usize {
    TACTICS
        .iter()
        .position(|t| *t == tactic)
        .unwrap_or(TACTICS.len())
}

const TECHNIQUES_TSV: &str = include_str!("../data/techniques.tsv");
const GROUPS_TSV: &str = include_str!("../data/groups.tsv");

/// One technique or sub-technique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Technique {
    /// `T1003.001`.
    pub id: String,
    /// `OS Credential Dumping: LSASS Memory`.
    pub name: String,
    /// Its tactics, in kill-chain order.
    pub tactics: Vec<String>,
}

/// One intrusion set and the techniques ATT&CK records it using.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `G0016`.
    pub id: String,
    /// `APT29`.
    pub name: String,
    /// Technique ids, sorted.
    pub techniques: Vec<String>,
}

/// The embedded ATT&CK tables.
#[derive(Debug)]
pub struct AttackData {
    techniques: HashMap<String, Technique>,
    revoked: HashMap<String, String>,
    groups: Vec<Group>,
}

impl AttackData {
    /// The tables embedded in the binary (parsed once).
    pub fn embedded() -> &'static AttackData {
        static DATA: OnceLock<AttackData> = OnceLock::new();
        DATA.get_or_init(|| AttackData::parse(TECHNIQUES_TSV, GROUPS_TSV))
    }

    /// Parses the two tab-separated tables (`#` lines are comments).
    pub fn parse(techniques_tsv: &str, groups_tsv: &str) -> AttackData {
        let mut techniques = HashMap::new();
        let mut revoked = HashMap::new();
        for columns in rows(techniques_tsv) {
            let [id, name, third] = columns[..] else {
                continue;
            };
            if name == "revoked" {
                revoked.insert(id.to_owned(), third.to_owned());
                continue;
            }
            let mut tactics: Vec<String> = third
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            tactics.sort_by_key(|t| tactic_rank(t));
            techniques.insert(
                id.to_owned(),
                Technique {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    tactics,
                },
            );
        }
        let groups = rows(groups_tsv)
            .filter_map(|columns| {
                let [id, name, list] = columns[..] else {
                    return None;
                };
                Some(Group {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    techniques: list.split(',').map(str::to_owned).collect(),
                })
            })
            .collect();
        AttackData {
            techniques,
            revoked,
            groups,
        }
    }

    /// The technique `id` (revoked ids resolve to their replacement).
    pub fn technique(&self, id: &str) -> Option<&Technique> {
        self.techniques.get(&self.canonical(id))
    }

    /// `id` uppercased, with a revoked id replaced by its successor.
    pub fn canonical(&self, id: &str) -> String {
        let upper = id.trim().to_ascii_uppercase();
        self.revoked.get(&upper).cloned().unwrap_or(upper)
    }

    /// Name of `id`, or `id` itself when unknown.
    pub fn technique_name(&self, id: &str) -> String {
        self.technique(id)
            .map_or_else(|| id.to_owned(), |t| t.name.clone())
    }

    /// Every group.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Number of active techniques.
    pub fn technique_count(&self) -> usize {
        self.techniques.len()
    }
}

fn rows(tsv: &str) -> impl Iterator<Item = Vec<&str>> {
    tsv.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
}

/// The parent of a sub-technique (`T1003.001` -> `T1003`), or `None`.
pub fn parent_technique(id: &str) -> Option<&str> {
    id.split_once('.').map(|(parent, _)| parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_parse() {
        let data = AttackData::embedded();
        assert!(data.technique_count() > 600);
        let lsass = data.technique("t1003.001").unwrap();
        assert_eq!(lsass.name, "OS Credential Dumping: LSASS Memory");
        assert_eq!(lsass.tactics, ["credential-access"]);
        // kill-chain order, not file order
        let valid = data.technique("T1078").unwrap();
        assert_eq!(valid.tactics[0], "initial-access");
        assert_eq!(data.canonical("T1143"), "T1564.003");
        assert!(
            data.groups()
                .iter()
                .any(|g| g.id == "G0016" && g.name == "APT29")
        );
        assert_eq!(parent_technique("T1003.001"), Some("T1003"));
        assert_eq!(tactic_rank("impact"), 13);
    }
}
