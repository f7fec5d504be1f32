//! The loaded knowledge base: objects, relationships, id/name indexes,
//! tactic order, CWE↔CAPEC↔ATT&CK link maps and the BM25 index.

use std::collections::{BTreeSet, HashMap};

use crate::bm25::Bm25;
use crate::model::{Edge, Kind, Object, RelType};
use crate::stix::Parsed;

/// ATT&CK, CAPEC and CWE objects with their relationships and indexes.
#[derive(Debug, Default)]
pub struct KnowledgeBase {
    objects: Vec<Object>,
    edges: Vec<Edge>,
    outgoing: Vec<Vec<usize>>,
    incoming: Vec<Vec<usize>>,
    by_stix: HashMap<String, usize>,
    by_external: HashMap<String, Vec<usize>>,
    /// Name key -> (object, match strength: 0 full name, 1 bare name, 2 alias).
    by_name: HashMap<String, Vec<(usize, u8)>>,
    /// Tactic short names in matrix order.
    tactic_order: Vec<String>,
    /// Tactic short name -> the first tactic object with it.
    by_tactic: HashMap<String, usize>,
    /// External id (`CWE-79`, `CAPEC-66`, `T1003`) -> external ids linked to it.
    links: HashMap<String, BTreeSet<String>>,
    index: Bm25,
    /// Relationships whose ends were not loaded.
    dangling_edges: usize,
}

/// Normalises a name for exact lookup: lowercase, single spaces.
pub(crate) fn name_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl KnowledgeBase {
    /// Builds the knowledge base from parsed STIX bundles and CWE entries.
    pub(crate) fn build(bundles: Vec<Parsed>, cwe: Vec<Object>) -> KnowledgeBase {
        let mut kb = KnowledgeBase::default();
        let mut raw_edges = Vec::new();
        let mut tactic_refs = Vec::new();
        for parsed in bundles {
            kb.objects.extend(parsed.objects);
            raw_edges.extend(parsed.edges);
            if tactic_refs.is_empty() {
                tactic_refs = parsed.tactic_refs;
            }
        }
        kb.objects.extend(cwe);
        for (i, object) in kb.objects.iter().enumerate() {
            kb.by_stix.insert(object.stix_id.clone(), i);
            if object.kind == Kind::Tactic
                && let Some(shortname) = &object.shortname
            {
                kb.by_tactic.entry(shortname.clone()).or_insert(i);
            }
        }
        kb.outgoing = vec![Vec::new(); kb.objects.len()];
        kb.incoming = vec![Vec::new(); kb.objects.len()];
        for raw in raw_edges {
            let (Some(rel), Some(&source), Some(&target)) = (
                RelType::parse(&raw.rel),
                kb.by_stix.get(&raw.source),
                kb.by_stix.get(&raw.target),
            ) else {
                kb.dangling_edges += 1;
                continue;
            };
            kb.outgoing[source].push(kb.edges.len());
            kb.incoming[target].push(kb.edges.len());
            kb.edges.push(Edge {
                rel,
                source,
                target,
                description: raw.description,
            });
        }
        kb.set_tactic_order(&tactic_refs);
        kb.qualify_subtechnique_names();
        kb.index_ids_and_names();
        kb.build_links();
        kb.build_search_index();
        kb
    }

    fn set_tactic_order(&mut self, tactic_refs: &[String]) {
        let shortname = |i: usize| self.objects[i].shortname.clone();
        self.tactic_order = tactic_refs
            .iter()
            .filter_map(|r| self.by_stix.get(r).and_then(|&i| shortname(i)))
            .collect();
        if self.tactic_order.is_empty() {
            // No matrix: fall back to the tactic ids' numeric order.
            let mut tactics: Vec<&Object> = self
                .objects
                .iter()
                .filter(|o| o.kind == Kind::Tactic)
                .collect();
            tactics.sort_by(|a, b| a.external_id.cmp(&b.external_id));
            self.tactic_order = tactics.iter().filter_map(|o| o.shortname.clone()).collect();
        }
    }

    fn qualify_subtechnique_names(&mut self) {
        for i in 0..self.objects.len() {
            if let Some(parent) = self.parent(i) {
                let full = format!("{}: {}", self.objects[parent].name, self.objects[i].name);
                self.objects[i].full_name = full;
                self.objects[i].is_subtechnique = true;
            }
        }
    }

    fn index_ids_and_names(&mut self) {
        for (i, object) in self.objects.iter().enumerate() {
            if let Some(id) = &object.external_id {
                self.by_external
                    .entry(id.to_uppercase())
                    .or_default()
                    .push(i);
            }
            // Match strength: 0 full name, 1 bare sub-technique name, 2 alias.
            let mut names = vec![
                (name_key(&object.full_name), 0u8),
                (name_key(&object.name), 1),
            ];
            names.extend(object.aliases.iter().map(|a| (name_key(a), 2)));
            names.sort();
            names.dedup_by(|a, b| a.0 == b.0);
            for (key, strength) in names {
                self.by_name.entry(key).or_default().push((i, strength));
            }
        }
        let objects = &self.objects;
        let rank = |i: usize| (!objects[i].is_current(), objects[i].kind.priority());
        self.by_external
            .values_mut()
            .for_each(|v| v.sort_by_key(|&i| rank(i)));
        self.by_name.values_mut().for_each(|v| {
            v.sort_by_key(|&(i, strength)| {
                (
                    !objects[i].is_current(),
                    objects[i].kind.priority(),
                    strength,
                )
            })
        });
    }

    /// Links from CAPEC's CWE/ATT&CK references and CWE's related attack
    /// patterns, stored in both directions.
    fn build_links(&mut self) {
        let mut links: HashMap<String, BTreeSet<String>> = HashMap::new();
        for object in &self.objects {
            let Some(id) = &object.external_id else {
                continue;
            };
            for cited in &object.cites {
                links.entry(id.clone()).or_default().insert(cited.clone());
                links.entry(cited.clone()).or_default().insert(id.clone());
            }
        }
        self.links = links;
    }

    fn build_search_index(&mut self) {
        let mut index = Bm25::new();
        for (i, object) in self.objects.iter().enumerate() {
            let mut text = String::new();
            // The name counts three times: a hit on it matters most (CAPEC
            // courses of action are named by their own text).
            let repeats = if object.kind == Kind::CapecMitigation {
                1
            } else {
                3
            };
            for _ in 0..repeats {
                text.push_str(&object.full_name);
                text.push(' ');
            }
            text.push_str(&object.aliases.join(" "));
            text.push(' ');
            text.push_str(object.id());
            text.push(' ');
            text.push_str(&object.description);
            for extra in object.detection.iter().chain(&object.mitigation) {
                text.push(' ');
                text.push_str(extra);
            }
            for &e in &self.incoming[i] {
                // Which mitigations apply to this technique, and how.
                if self.edges[e].rel == RelType::Mitigates {
                    text.push(' ');
                    text.push_str(&self.objects[self.edges[e].source].name);
                    text.push(' ');
                    text.push_str(&self.edges[e].description);
                }
            }
            index.add(&text);
        }
        self.index = index;
    }

    /// All objects.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// Object `i`.
    pub fn object(&self, i: usize) -> &Object {
        &self.objects[i]
    }

    /// Tactic short names in matrix order.
    pub fn tactic_order(&self) -> &[String] {
        &self.tactic_order
    }

    /// Position of a tactic short name in the matrix order.
    pub fn tactic_position(&self, shortname: &str) -> Option<usize> {
        self.tactic_order.iter().position(|t| t == shortname)
    }

    /// The tactic object with this short name.
    pub fn tactic(&self, shortname: &str) -> Option<usize> {
        self.by_tactic.get(shortname).copied()
    }

    /// Relationships whose ends were not loaded.
    pub fn dangling_edges(&self) -> usize {
        self.dangling_edges
    }

    /// Objects with this external id (case-insensitive) or STIX id, current
    /// and most specific kinds first.
    pub fn by_id(&self, id: &str) -> Vec<usize> {
        if let Some(&i) = self.by_stix.get(id) {
            return vec![i];
        }
        self.by_external
            .get(&id.trim().to_uppercase())
            .cloned()
            .unwrap_or_default()
    }

    /// Objects with this name, qualified sub-technique name or alias
    /// (case-insensitive): current objects first, then most specific kinds
    /// (techniques, groups, software), then full names before bare
    /// sub-technique names before aliases.
    pub fn by_name(&self, name: &str) -> Vec<usize> {
        self.by_name
            .get(&name_key(name))
            .map(|found| found.iter().map(|&(i, _)| i).collect())
            .unwrap_or_default()
    }

    /// BM25 search; `keep` filters objects.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        keep: impl Fn(&Object) -> bool,
    ) -> Vec<(usize, f32)> {
        self.index
            .search(query, limit, |d| keep(&self.objects[d as usize]))
            .into_iter()
            .map(|(d, s)| (d as usize, s))
            .collect()
    }

    /// Related objects: `(edge, other end)` for relationships of type `rel`
    /// leaving (`outgoing = true`) or entering object `i`.
    pub fn related(&self, i: usize, rel: RelType, outgoing: bool) -> Vec<(&Edge, usize)> {
        let edges = if outgoing {
            &self.outgoing[i]
        } else {
            &self.incoming[i]
        };
        edges
            .iter()
            .map(|&e| &self.edges[e])
            .filter(|e| e.rel == rel)
            .map(|e| (e, if outgoing { e.target } else { e.source }))
            .collect()
    }

    /// The parent technique of a sub-technique.
    pub fn parent(&self, i: usize) -> Option<usize> {
        self.related(i, RelType::SubtechniqueOf, true)
            .first()
            .map(|(_, p)| *p)
    }

    /// The current replacement of a revoked object, following `revoked-by`
    /// chains (at most 10 hops).
    pub fn replacement(&self, i: usize) -> Option<usize> {
        let mut current = i;
        for _ in 0..10 {
            match self.related(current, RelType::RevokedBy, true).first() {
                Some((_, next)) => current = *next,
                None => break,
            }
            if !self.objects[current].revoked {
                break;
            }
        }
        (current != i).then_some(current)
    }

    /// External ids linked to `id` by CAPEC/CWE cross references.
    pub fn links_of(&self, id: &str) -> impl Iterator<Item = &str> {
        self.links.get(id).into_iter().flatten().map(String::as_str)
    }
}
