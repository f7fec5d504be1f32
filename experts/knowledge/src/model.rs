//! The objects of the knowledge base and the relationships between them.

use serde::Serialize;

/// What an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// ATT&CK technique or sub-technique (`T1003`, `T1003.001`).
    Technique,
    /// ATT&CK tactic (`TA0006`).
    Tactic,
    /// ATT&CK group (`G0007`).
    Group,
    /// ATT&CK software: malware or tool (`S0002`).
    Software,
    /// ATT&CK campaign (`C0001`).
    Campaign,
    /// ATT&CK mitigation (`M1043`).
    Mitigation,
    /// ATT&CK detection strategy (`DET0001`).
    DetectionStrategy,
    /// ATT&CK analytic (`AN0001`).
    Analytic,
    /// ATT&CK data component (`DC0001`).
    DataComponent,
    /// CAPEC attack pattern (`CAPEC-66`).
    AttackPattern,
    /// CAPEC course of action.
    CapecMitigation,
    /// CWE weakness (`CWE-79`).
    Weakness,
    /// CWE category.
    Category,
}

impl Kind {
    /// Lookup preference when several objects share an external id (old
    /// ATT&CK mitigations reuse technique ids): lower wins.
    pub(crate) fn priority(self) -> u8 {
        match self {
            Kind::Technique | Kind::Group | Kind::Software | Kind::Tactic => 0,
            Kind::AttackPattern | Kind::Weakness | Kind::Campaign => 1,
            Kind::Mitigation | Kind::DetectionStrategy | Kind::Analytic | Kind::DataComponent => 2,
            Kind::CapecMitigation | Kind::Category => 3,
        }
    }
}

/// A relationship type between two objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelType {
    /// group/software/campaign `uses` technique/software.
    Uses,
    /// mitigation `mitigates` technique or attack pattern.
    Mitigates,
    /// detection strategy or data component `detects` technique.
    Detects,
    /// sub-technique `subtechnique-of` technique.
    SubtechniqueOf,
    /// old object `revoked-by` its replacement.
    RevokedBy,
    /// campaign `attributed-to` group.
    AttributedTo,
}

impl RelType {
    /// Parses a STIX `relationship_type`.
    pub(crate) fn parse(text: &str) -> Option<RelType> {
        Some(match text {
            "uses" => RelType::Uses,
            "mitigates" => RelType::Mitigates,
            "detects" => RelType::Detects,
            "subtechnique-of" => RelType::SubtechniqueOf,
            "revoked-by" => RelType::RevokedBy,
            "attributed-to" => RelType::AttributedTo,
            _ => return None,
        })
    }
}

/// One object (ATT&CK, CAPEC or CWE).
#[derive(Debug, Clone)]
pub struct Object {
    /// STIX id (`attack-pattern--…`); for CWE entries `cwe--<kind>--<n>`.
    pub stix_id: String,
    /// Public id: `T1003.001`, `G0007`, `CAPEC-66`, `CWE-79`, …
    pub external_id: Option<String>,
    /// What it is.
    pub kind: Kind,
    /// Name (`LSASS Memory`).
    pub name: String,
    /// Name qualified by the parent for sub-techniques (`OS Credential Dumping: LSASS Memory`).
    pub full_name: String,
    /// Description with citations and markdown links removed.
    pub description: String,
    /// Other names (group and software aliases, CWE alternate terms).
    pub aliases: Vec<String>,
    /// STIX `revoked`.
    pub revoked: bool,
    /// `x_mitre_deprecated`, or CAPEC/CWE status `Deprecated`/`Obsolete`.
    pub deprecated: bool,
    /// Tactic short names from the `mitre-attack` kill chain phases.
    pub tactics: Vec<String>,
    /// Tactic short name of a tactic object (`credential-access`).
    pub shortname: Option<String>,
    /// Platforms (ATT&CK).
    pub platforms: Vec<String>,
    /// Detection guidance text (`x_mitre_detection`, CWE detection methods).
    pub detection: Vec<String>,
    /// Mitigation text carried by the object itself (CWE potential mitigations).
    pub mitigation: Vec<String>,
    /// External ids this object cites (`CWE-…`, `CAPEC-…`, `T…`).
    pub cites: Vec<String>,
    /// STIX ids of analytics (detection strategies).
    pub analytic_refs: Vec<String>,
    /// Whether this is an ATT&CK sub-technique.
    pub is_subtechnique: bool,
}

impl Object {
    /// A new object with empty optional fields.
    pub fn new(stix_id: String, kind: Kind, name: String) -> Self {
        Object {
            stix_id,
            external_id: None,
            kind,
            full_name: name.clone(),
            name,
            description: String::new(),
            aliases: Vec::new(),
            revoked: false,
            deprecated: false,
            tactics: Vec::new(),
            shortname: None,
            platforms: Vec::new(),
            detection: Vec::new(),
            mitigation: Vec::new(),
            cites: Vec::new(),
            analytic_refs: Vec::new(),
            is_subtechnique: false,
        }
    }

    /// Whether the object is current (neither revoked nor deprecated).
    pub fn is_current(&self) -> bool {
        !self.revoked && !self.deprecated
    }

    /// The id to cite: the external id, else the STIX id.
    pub fn id(&self) -> &str {
        self.external_id.as_deref().unwrap_or(&self.stix_id)
    }
}

/// A relationship between two loaded objects (indexes into the object list).
#[derive(Debug, Clone)]
pub struct Edge {
    /// Type.
    pub rel: RelType,
    /// Source object.
    pub source: usize,
    /// Target object.
    pub target: usize,
    /// Relationship description (how a mitigation applies, …), cleaned.
    pub description: String,
}

/// Removes ATT&CK citation markers, markdown links and XHTML tags, and
/// collapses whitespace.
pub fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("(Citation:") {
            rest = after.find(')').map_or("", |end| &after[end + 1..]);
        } else if rest.starts_with('[')
            && let Some(close) = rest.find("](")
            && let Some(end) = rest[close..].find(')')
            && !rest[1..close].contains('[')
        {
            out.push_str(&rest[1..close]);
            rest = &rest[close + end + 1..];
        } else if rest.starts_with('<')
            && let Some(end) = rest.find('>')
            && end < 40
        {
            out.push(' ');
            rest = &rest[end + 1..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first sentences of `text`, at most about `max` bytes.
pub(crate) fn summary(text: &str, max: usize) -> String {
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i > max {
            break;
        }
        if c == '.' && text[i + 1..].starts_with(' ') || i + c.len_utf8() == text.len() {
            end = i + c.len_utf8();
        }
    }
    if end == 0 {
        let mut cut = max.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        return format!("{}…", &text[..cut]);
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_citations_links_and_tags() {
        assert_eq!(
            clean_text(
                "[APT28](https://attack.mitre.org/groups/G0007) dumps <code>lsass</code>.(Citation: X 2020)\n Next."
            ),
            "APT28 dumps lsass . Next."
        );
    }

    #[test]
    fn summary_stops_at_a_sentence() {
        assert_eq!(summary("One two. Three four.", 10), "One two.");
        assert_eq!(summary("Short.", 100), "Short.");
        assert_eq!(summary("abcdefghijkl", 4), "abcd…");
    }
}
