//! `mitigations`, `detections` and `links`: what relates to one object.

use serde::Serialize;

use super::{Cite, citation_ids, resolve_one};
use crate::kb::KnowledgeBase;
use crate::model::{RelType, summary};

/// Longest text per mitigation or analytic, in bytes.
const TEXT_BYTES: usize = 400;

/// One mitigation of an object.
#[derive(Debug, Clone, Serialize)]
pub struct MitigationRef {
    /// The mitigation.
    #[serde(flatten)]
    pub mitigation: Cite,
    /// How it applies (relationship description, else the mitigation's own).
    pub how: String,
}

/// Result of `mitigations`.
#[derive(Debug, Clone, Serialize)]
pub struct Mitigations {
    /// The object asked about.
    pub object: Cite,
    /// Current mitigations linked by `mitigates` relationships.
    pub mitigations: Vec<MitigationRef>,
    /// Mitigation guidance carried by the object itself (CWE).
    pub guidance: Vec<String>,
    /// Ids of every object cited.
    pub citations: Vec<String>,
}

/// One analytic of a detection strategy.
#[derive(Debug, Clone, Serialize)]
pub struct AnalyticRef {
    /// The analytic.
    #[serde(flatten)]
    pub analytic: Cite,
    /// Platforms.
    pub platforms: Vec<String>,
    /// What to look for.
    pub description: String,
}

/// A detection strategy (or data component) that detects the object.
#[derive(Debug, Clone, Serialize)]
pub struct DetectionStrategy {
    /// The strategy or data component.
    #[serde(flatten)]
    pub strategy: Cite,
    /// How it detects (relationship description, if any).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub how: String,
    /// Its analytics.
    pub analytics: Vec<AnalyticRef>,
}

/// Result of `detections`.
#[derive(Debug, Clone, Serialize)]
pub struct Detections {
    /// The object asked about.
    pub object: Cite,
    /// Current strategies and data components linked by `detects`.
    pub strategies: Vec<DetectionStrategy>,
    /// Detection guidance carried by the object itself (`x_mitre_detection`, CWE).
    pub guidance: Vec<String>,
    /// Ids of every object cited.
    pub citations: Vec<String>,
}

/// An object linked across CWE, CAPEC and ATT&CK.
#[derive(Debug, Clone, Serialize)]
pub struct LinkedObject {
    /// The linked object.
    #[serde(flatten)]
    pub object: Cite,
    /// Intermediate ids the link goes through (empty when direct).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
}

/// Result of `links`.
#[derive(Debug, Clone, Serialize)]
pub struct Links {
    /// The object asked about.
    pub object: Cite,
    /// Linked CWE weaknesses.
    pub cwe: Vec<LinkedObject>,
    /// Linked CAPEC attack patterns.
    pub capec: Vec<LinkedObject>,
    /// Linked ATT&CK techniques.
    pub attack: Vec<LinkedObject>,
    /// Ids of every object cited.
    pub citations: Vec<String>,
}

/// The `mitigations` skill for a technique, CAPEC pattern or CWE (id or name).
///
/// # Errors
///
/// When nothing has that id or name.
pub fn mitigations(kb: &KnowledgeBase, query: &str) -> Result<Mitigations, String> {
    let i = resolve_one(kb, query)?;
    let mut found: Vec<MitigationRef> = kb
        .related(i, RelType::Mitigates, false)
        .into_iter()
        .filter(|(_, m)| kb.object(*m).is_current())
        .map(|(edge, m)| {
            let own = &kb.object(m).description;
            let how = if edge.description.is_empty() {
                own
            } else {
                &edge.description
            };
            MitigationRef {
                mitigation: Cite::of(kb, m),
                how: summary(how, TEXT_BYTES),
            }
        })
        .collect();
    found.sort_by(|a, b| a.mitigation.id.cmp(&b.mitigation.id));
    let object = Cite::of(kb, i);
    let citations =
        citation_ids(std::iter::once(&object).chain(found.iter().map(|m| &m.mitigation)));
    Ok(Mitigations {
        object,
        mitigations: found,
        guidance: kb
            .object(i)
            .mitigation
            .iter()
            .map(|t| summary(t, TEXT_BYTES))
            .collect(),
        citations,
    })
}

/// The `detections` skill for a technique (or CWE: detection methods).
///
/// # Errors
///
/// When nothing has that id or name.
pub fn detections(kb: &KnowledgeBase, query: &str) -> Result<Detections, String> {
    let i = resolve_one(kb, query)?;
    let mut strategies: Vec<DetectionStrategy> = kb
        .related(i, RelType::Detects, false)
        .into_iter()
        .filter(|(_, s)| kb.object(*s).is_current())
        .map(|(edge, s)| DetectionStrategy {
            strategy: Cite::of(kb, s),
            how: summary(&edge.description, TEXT_BYTES),
            analytics: kb
                .object(s)
                .analytic_refs
                .iter()
                .filter_map(|r| kb.by_id(r).first().copied())
                .map(|a| AnalyticRef {
                    analytic: Cite::of(kb, a),
                    platforms: kb.object(a).platforms.clone(),
                    description: summary(&kb.object(a).description, TEXT_BYTES),
                })
                .collect(),
        })
        .collect();
    strategies.sort_by(|a, b| a.strategy.id.cmp(&b.strategy.id));
    let object = Cite::of(kb, i);
    let mut cites = vec![&object];
    for strategy in &strategies {
        cites.push(&strategy.strategy);
        cites.extend(strategy.analytics.iter().map(|a| &a.analytic));
    }
    let citations = citation_ids(cites);
    Ok(Detections {
        object,
        strategies,
        guidance: kb
            .object(i)
            .detection
            .iter()
            .map(|t| summary(t, TEXT_BYTES))
            .collect(),
        citations,
    })
}

/// Which catalogue an external id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Catalogue {
    Cwe,
    Capec,
    Attack,
}

fn catalogue(id: &str) -> Option<Catalogue> {
    if id.starts_with("CWE-") {
        Some(Catalogue::Cwe)
    } else if id.starts_with("CAPEC-") {
        Some(Catalogue::Capec)
    } else if id.starts_with('T') && id[1..].chars().all(|c| c.is_ascii_digit() || c == '.') {
        Some(Catalogue::Attack)
    } else {
        None
    }
}

/// The `links` skill: CWE ↔ CAPEC ↔ ATT&CK links of one object, direct
/// (CAPEC's references, CWE's related attack patterns) and through CAPEC.
///
/// # Errors
///
/// When nothing has that id or name, or it is not a CWE, CAPEC or technique.
pub fn links(kb: &KnowledgeBase, query: &str) -> Result<Links, String> {
    let i = resolve_one(kb, query)?;
    let id = kb.object(i).id().to_owned();
    let Some(start) = catalogue(&id) else {
        return Err(format!(
            "{id} ({}) is not a CWE weakness, CAPEC attack pattern or ATT&CK technique; links exist only between those",
            kb.object(i).full_name
        ));
    };
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |linked: &str, via: Option<&str>| {
        if linked == id {
            return;
        }
        match found.iter_mut().find(|(l, _)| l == linked) {
            Some((_, vias)) => {
                if let Some(via) = via.filter(|v| !vias.iter().any(|x| x == v)) {
                    vias.push(via.to_owned());
                }
            }
            None => found.push((
                linked.to_owned(),
                via.map(str::to_owned).into_iter().collect(),
            )),
        }
    };
    for direct in kb.links_of(&id) {
        add(direct, None);
    }
    if start != Catalogue::Capec {
        // CWE -> CAPEC -> ATT&CK and ATT&CK -> CAPEC -> CWE.
        let capecs: Vec<&str> = kb
            .links_of(&id)
            .filter(|l| l.starts_with("CAPEC-"))
            .collect();
        for capec in capecs {
            for second in kb.links_of(capec) {
                if catalogue(second).is_some_and(|c| c != start && c != Catalogue::Capec) {
                    add(second, Some(capec));
                }
            }
        }
    }
    found.sort_by_key(|a| id_order(&a.0));
    let linked = |wanted: Catalogue| -> Vec<LinkedObject> {
        found
            .iter()
            .filter(|(l, _)| catalogue(l) == Some(wanted))
            .map(|(l, via)| LinkedObject {
                object: Cite::of_id(kb, l),
                via: via.clone(),
            })
            .collect()
    };
    let (cwe, capec, attack) = (
        linked(Catalogue::Cwe),
        linked(Catalogue::Capec),
        linked(Catalogue::Attack),
    );
    let object = Cite::of(kb, i);
    let citations = citation_ids(
        std::iter::once(&object).chain(cwe.iter().chain(&capec).chain(&attack).map(|l| &l.object)),
    );
    Ok(Links {
        object,
        cwe,
        capec,
        attack,
        citations,
    })
}

/// Sorts `CWE-79` before `CWE-100`.
fn id_order(id: &str) -> (String, Vec<u32>) {
    let prefix: String = id.chars().take_while(|c| !c.is_ascii_digit()).collect();
    let numbers = id[prefix.len()..]
        .split('.')
        .map(|n| n.parse().unwrap_or(u32::MAX))
        .collect();
    (prefix, numbers)
}
