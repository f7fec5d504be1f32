//! A literal prefilter: skip rules that cannot match an event.
//!
//! For each rule, [`crate::rule::Rule::literals`] derives a set of lowercase
//! literals such that every event the rule matches holds at least one of
//! them in some value (from the positive part of the condition: `and` keeps
//! the most selective operand's set, `or` takes the union, `not` gives
//! none). One Aho-Corasick automaton over all rules' literals scans an
//! event's lowercased values once; only rules with a literal found (or with
//! no literal set) are evaluated. The prefilter never changes results, only
//! skips work.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::event::Event;
use crate::rule::Rule;

/// Literals shorter than this are not worth scanning for: such a rule is
/// always evaluated.
const MIN_LITERAL: usize = 3;

/// The union of literal sets (any operand may match): `None` if any is `None`.
pub(crate) fn union(sets: impl Iterator<Item = Option<Vec<String>>>) -> Option<Vec<String>> {
    let mut all = Vec::new();
    for set in sets {
        all.extend(set?);
    }
    all.sort();
    all.dedup();
    (!all.is_empty()).then_some(all)
}

/// The most selective of literal sets (every operand must match): the one
/// whose shortest literal is longest, then the smallest.
pub(crate) fn best(sets: impl Iterator<Item = Option<Vec<String>>>) -> Option<Vec<String>> {
    sets.flatten()
        .filter(|set| !set.is_empty())
        .max_by_key(|set| {
            let shortest = set.iter().map(String::len).min().unwrap_or(0);
            (shortest.min(16), std::cmp::Reverse(set.len()))
        })
}

/// The compiled prefilter of a rule set.
#[derive(Debug)]
pub(crate) struct Prefilter {
    automaton: Option<AhoCorasick>,
    /// For each literal, the rules it admits.
    literal_rules: Vec<Vec<u32>>,
    /// Per rule: whether it has a literal set (else always evaluated).
    filtered: Vec<bool>,
}

impl Prefilter {
    pub(crate) fn build(rules: &[Rule]) -> Self {
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut literal_rules: Vec<Vec<u32>> = Vec::new();
        let mut filtered = vec![false; rules.len()];
        for (index, rule) in rules.iter().enumerate() {
            let Some(literals) = rule.literals() else {
                continue;
            };
            if literals.iter().any(|l| l.len() < MIN_LITERAL) {
                continue;
            }
            filtered[index] = true;
            for literal in literals {
                let next = ids.len();
                let id = *ids.entry(literal).or_insert(next);
                if id == literal_rules.len() {
                    literal_rules.push(Vec::new());
                }
                literal_rules[id].push(index as u32);
            }
        }
        let mut patterns = vec![String::new(); ids.len()];
        for (literal, id) in ids {
            patterns[id] = literal;
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .ok();
        if automaton.is_none() {
            // too large for the automaton: evaluate every rule
            filtered.iter_mut().for_each(|f| *f = false);
        }
        Prefilter {
            automaton,
            literal_rules,
            filtered,
        }
    }

    /// Per rule: whether it may match `event` (`true` for unfiltered rules).
    pub(crate) fn candidates(&self, event: &Event) -> Vec<bool> {
        let mut admitted: Vec<bool> = self.filtered.iter().map(|f| !f).collect();
        let Some(automaton) = &self.automaton else {
            return admitted;
        };
        let mut seen = vec![false; self.literal_rules.len()];
        for field in event.fields() {
            for scalar in &field.values {
                for found in automaton.find_overlapping_iter(scalar.lower.as_str()) {
                    let literal = found.pattern().as_usize();
                    if !std::mem::replace(&mut seen[literal], true) {
                        for &rule in &self.literal_rules[literal] {
                            admitted[rule as usize] = true;
                        }
                    }
                }
            }
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn union_and_best() {
        assert_eq!(
            union([set(&["b", "a"]), set(&["a"])].into_iter()),
            set(&["a", "b"])
        );
        assert_eq!(union([set(&["a"]), None].into_iter()), None);
        assert_eq!(
            best([set(&["ab"]), None, set(&["abcd", "abcde"])].into_iter()),
            set(&["abcd", "abcde"])
        );
        assert_eq!(best([None, None].into_iter()), None);
    }

    #[test]
    fn admits_only_rules_whose_literal_occurs() {
        let yaml = |id: &str, cond: &str| {
            format!(
                "title: {id}\nid: {id}\nlogsource: {{product: windows}}\ndetection:\n  sel:\n    CommandLine|contains: '{id}-literal'\n  other:\n    User: 'x'\n  condition: {cond}\n"
            )
        };
        let rules: Vec<Rule> = [
            ("one", "sel"),
            ("two", "sel and other"),
            ("three", "not sel"),
        ]
        .iter()
        .flat_map(|(id, cond)| Rule::parse_all(&yaml(id, cond), id).unwrap())
        .collect();
        let prefilter = Prefilter::build(&rules);
        let event = Event::from_pairs([("CommandLine", "run ONE-LITERAL now")]);
        assert_eq!(prefilter.candidates(&event), vec![true, false, true]);
    }
}
