//! `lookup`: an object by id, name or alias, with the facts around it.

use serde::Serialize;

use super::{Cite, citation_ids};
use crate::kb::KnowledgeBase;
use crate::model::{Kind, Object, RelType, summary};

/// Longest description returned, in bytes (about a paragraph).
const DESCRIPTION_BYTES: usize = 600;

/// How the query matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// Exact external or STIX id.
    Id,
    /// Exact name, qualified name or alias (case-insensitive).
    Name,
    /// Full-text search (no exact match).
    Search,
    /// Nothing matched.
    None,
}

/// One object with its context.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    /// The object.
    #[serde(flatten)]
    pub object: Cite,
    /// First sentences of the description.
    pub description: String,
    /// Other names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Platforms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Tactics in matrix order (techniques).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tactics: Vec<Cite>,
    /// Parent technique (sub-techniques).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Cite>,
    /// Current sub-techniques (techniques).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subtechniques: Vec<Cite>,
    /// Replacement of a revoked object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<Cite>,
    /// Current techniques used (groups, software, campaigns).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<Cite>,
    /// Current software used (groups, campaigns).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<Cite>,
    /// Current groups using it (techniques, software).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub used_by_groups: Vec<Cite>,
    /// Groups a campaign is attributed to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributed_to: Vec<Cite>,
}

/// Result of `lookup`.
#[derive(Debug, Clone, Serialize)]
pub struct Lookup {
    /// The query.
    pub query: String,
    /// How it matched.
    pub matched_by: MatchedBy,
    /// Matching objects, current ones first.
    pub objects: Vec<Card>,
    /// Ids of every object cited.
    pub citations: Vec<String>,
}

/// Finds objects by id, then by name or alias, then by full-text search;
/// `keep` filters objects, at most `limit` are returned.
pub fn resolve(
    kb: &KnowledgeBase,
    query: &str,
    keep: &dyn Fn(&Object) -> bool,
    limit: usize,
) -> (Vec<usize>, MatchedBy) {
    let query = query
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '`');
    let filter = |found: Vec<usize>| -> Vec<usize> {
        found
            .into_iter()
            .filter(|&i| keep(kb.object(i)))
            .take(limit)
            .collect()
    };
    let by_id = filter(kb.by_id(query));
    if !by_id.is_empty() {
        return (by_id, MatchedBy::Id);
    }
    let by_name = filter(kb.by_name(query));
    if !by_name.is_empty() {
        return (by_name, MatchedBy::Name);
    }
    let hits: Vec<usize> = kb
        .search(query, limit, |o| keep(o) && o.is_current())
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    if hits.is_empty() {
        (hits, MatchedBy::None)
    } else {
        (hits, MatchedBy::Search)
    }
}

/// The `lookup` skill: objects of the given kinds (all when empty) matching
/// `query`.
pub fn lookup(kb: &KnowledgeBase, query: &str, kinds: &[Kind], limit: usize) -> Lookup {
    let keep = |o: &Object| kinds.is_empty() || kinds.contains(&o.kind);
    let (found, matched_by) = resolve(kb, query, &keep, limit.max(1));
    let objects: Vec<Card> = found.into_iter().map(|i| card(kb, i)).collect();
    let mut cites: Vec<&Cite> = Vec::new();
    for card in &objects {
        cites.push(&card.object);
        cites.extend(
            card.tactics
                .iter()
                .chain(&card.parent)
                .chain(&card.revoked_by),
        );
        cites.extend(
            card.subtechniques
                .iter()
                .chain(&card.techniques)
                .chain(&card.software),
        );
        cites.extend(card.used_by_groups.iter().chain(&card.attributed_to));
    }
    Lookup {
        query: query.to_owned(),
        matched_by,
        citations: citation_ids(cites),
        objects,
    }
}

/// The card of object `i`.
pub fn card(kb: &KnowledgeBase, i: usize) -> Card {
    let object = kb.object(i);
    let related = |rel: RelType, outgoing: bool, kind: Kind| -> Vec<Cite> {
        let mut found: Vec<usize> = kb
            .related(i, rel, outgoing)
            .into_iter()
            .map(|(_, j)| j)
            .filter(|&j| kb.object(j).kind == kind && kb.object(j).is_current())
            .collect();
        found.sort_by(|&a, &b| kb.object(a).id().cmp(kb.object(b).id()));
        found.dedup();
        found.into_iter().map(|j| Cite::of(kb, j)).collect()
    };
    let mut tactics: Vec<(usize, usize)> = object
        .tactics
        .iter()
        .filter_map(|t| Some((kb.tactic_position(t).unwrap_or(usize::MAX), kb.tactic(t)?)))
        .collect();
    tactics.sort();
    let is_actor = matches!(object.kind, Kind::Group | Kind::Software | Kind::Campaign);
    Card {
        object: Cite::of(kb, i),
        description: summary(&object.description, DESCRIPTION_BYTES),
        aliases: object.aliases.clone(),
        platforms: object.platforms.clone(),
        tactics: tactics.into_iter().map(|(_, t)| Cite::of(kb, t)).collect(),
        parent: kb.parent(i).map(|p| Cite::of(kb, p)),
        subtechniques: related(RelType::SubtechniqueOf, false, Kind::Technique),
        revoked_by: if object.revoked {
            kb.replacement(i).map(|r| Cite::of(kb, r))
        } else {
            None
        },
        techniques: if is_actor {
            related(RelType::Uses, true, Kind::Technique)
        } else {
            Vec::new()
        },
        software: if is_actor {
            related(RelType::Uses, true, Kind::Software)
        } else {
            Vec::new()
        },
        used_by_groups: related(RelType::Uses, false, Kind::Group),
        attributed_to: related(RelType::AttributedTo, true, Kind::Group),
    }
}
