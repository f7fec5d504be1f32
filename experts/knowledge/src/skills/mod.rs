//! The skills as pure functions of the knowledge base and a typed request.
//! Every result lists `citations`: the ids of the objects it is based on.

mod answer;
mod lookup;
mod relations;
mod verify;

use serde::Serialize;

pub use answer::{Answer, RankedObject, answer};
pub use lookup::{Card, Lookup, MatchedBy, card, lookup, resolve};
pub use relations::{
    AnalyticRef, DetectionStrategy, Detections, LinkedObject, Links, MitigationRef, Mitigations,
    detections, links, mitigations,
};
pub use verify::{ChainStep, Problem, ProblemKind, Severity, Verdict, Verification, verify};

use crate::kb::KnowledgeBase;
use crate::model::Kind;

/// A reference to one object: the id to cite and what it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cite {
    /// Public id (`T1003.001`, `G0007`, `CAPEC-66`, `CWE-79`) or STIX id.
    pub id: String,
    /// STIX id (absent for ids referenced but not loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stix_id: Option<String>,
    /// Kind (absent for ids referenced but not loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// Name (qualified for sub-techniques); empty when not loaded.
    pub name: String,
    /// `revoked` or `deprecated` when the object is no longer current.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

impl Cite {
    /// Cites object `i`.
    pub fn of(kb: &KnowledgeBase, i: usize) -> Cite {
        let object = kb.object(i);
        Cite {
            id: object.id().to_owned(),
            stix_id: Some(object.stix_id.clone()),
            kind: Some(object.kind),
            name: object.full_name.clone(),
            status: if object.revoked {
                Some("revoked")
            } else if object.deprecated {
                Some("deprecated")
            } else {
                None
            },
        }
    }

    /// Cites an external id, loaded or not.
    pub fn of_id(kb: &KnowledgeBase, id: &str) -> Cite {
        match kb.by_id(id).first() {
            Some(&i) => Cite::of(kb, i),
            None => Cite {
                id: id.to_owned(),
                stix_id: None,
                kind: None,
                name: String::new(),
                status: None,
            },
        }
    }
}

/// Ids of `cites`, in order, without repeats.
pub(crate) fn citation_ids<'a>(cites: impl IntoIterator<Item = &'a Cite>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for cite in cites {
        if !ids.contains(&cite.id) {
            ids.push(cite.id.clone());
        }
    }
    ids
}

/// Resolves a request naming one object (id or name) to its index.
pub(crate) fn resolve_one(kb: &KnowledgeBase, query: &str) -> Result<usize, String> {
    let (found, how) = resolve(kb, query, &|_| true, 1);
    match found.first() {
        Some(&i) if how != MatchedBy::Search => Ok(i),
        Some(&i) => Err(format!(
            "no object has the id or name `{query}`; the closest match is {} ({}): ask with its id",
            kb.object(i).id(),
            kb.object(i).full_name
        )),
        None => Err(format!(
            "no object has the id or name `{query}`; use an ATT&CK, CAPEC or CWE id such as T1003.001, CAPEC-66 or CWE-79"
        )),
    }
}
