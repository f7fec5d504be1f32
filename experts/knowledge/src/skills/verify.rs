//! `verify`: a critic for attack chains. Are the technique ids real, current
//! (not revoked or deprecated) and in a consistent ATT&CK tactic order?

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::{Cite, citation_ids};
use crate::kb::KnowledgeBase;
use crate::model::Kind;

/// One step of a chain to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStep {
    /// Technique id as given (`T1003.001`).
    pub technique: String,
    /// When it happened (RFC 3339, `YYYY-MM-DD HH:MM:SS`, or Unix seconds/milliseconds).
    pub timestamp: Option<String>,
}

/// Overall judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every id is a current technique and the tactics progress in order.
    Valid,
    /// Usable but should be revised: revoked/deprecated ids or order problems.
    Revise,
    /// Some id is malformed, unknown or not a technique.
    Invalid,
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The chain cannot be trusted as is.
    Error,
    /// The chain should be revised.
    Warning,
}

/// What is wrong with a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Not of the form `T1234` or `T1234.567`.
    Malformed,
    /// No such technique in the loaded ATT&CK data.
    Unknown,
    /// The id names another kind of object (e.g. an old mitigation).
    NotATechnique,
    /// Revoked; `suggestion` is the replacement.
    Revoked,
    /// Deprecated (no replacement in ATT&CK).
    Deprecated,
    /// None of its tactics can follow the previous steps' tactics.
    TacticOrder,
    /// Its timestamp is earlier than the previous step's.
    TimeOrder,
    /// The timestamp cannot be read.
    BadTimestamp,
}

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Index of the step in the chain as given.
    pub step: usize,
    /// What is wrong.
    pub kind: ProblemKind,
    /// How bad.
    pub severity: Severity,
    /// Explanation.
    pub message: String,
    /// Object to use instead, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Cite>,
}

/// The check of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepCheck {
    /// Index in the chain as given.
    pub step: usize,
    /// The id as given.
    pub technique: String,
    /// The technique found (absent when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Cite>,
    /// Its tactics (short names) in matrix order.
    pub tactics: Vec<String>,
    /// The tactic that places it in the chain's progression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_tactic: Option<String>,
}

/// Result of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Overall judgement.
    pub verdict: Verdict,
    /// Per-step checks, in the order given.
    pub steps: Vec<StepCheck>,
    /// Problems, by step.
    pub problems: Vec<Problem>,
    /// Ids of every object cited.
    pub citations: Vec<String>,
}

/// Whether `id` looks like an ATT&CK technique id.
fn is_technique_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match bytes.len() {
        5 => bytes[0] == b'T' && digits(&bytes[1..]),
        9 => bytes[0] == b'T' && digits(&bytes[1..5]) && bytes[5] == b'.' && digits(&bytes[6..]),
        _ => false,
    }
}

/// Parses a timestamp; `None` when unreadable.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    let number: i64 = text.parse().ok()?;
    if number.abs() < 100_000_000_000 {
        DateTime::from_timestamp(number, 0)
    } else {
        DateTime::from_timestamp_millis(number)
    }
}

/// The `verify` skill.
pub fn verify(kb: &KnowledgeBase, chain: &[ChainStep]) -> Verification {
    let mut problems = Vec::new();
    let mut steps = Vec::new();
    let mut resolved: Vec<Option<usize>> = Vec::new();
    for (step, item) in chain.iter().enumerate() {
        let id = item.technique.trim().to_uppercase();
        let technique = check_id(kb, step, &id, &mut problems);
        resolved.push(technique);
        let mut tactics: Vec<String> = technique
            .map(|t| kb.object(t).tactics.clone())
            .unwrap_or_default();
        tactics.sort_by_key(|t| kb.tactic_position(t).unwrap_or(usize::MAX));
        steps.push(StepCheck {
            step,
            technique: item.technique.clone(),
            object: technique.map(|t| Cite::of(kb, t)),
            tactics,
            assigned_tactic: None,
        });
    }
    let order = time_order(chain, &mut problems);
    check_tactic_order(kb, &order, &mut steps, &mut problems);
    problems.sort_by_key(|p| p.step);
    let verdict = if problems.iter().any(|p| p.severity == Severity::Error) {
        Verdict::Invalid
    } else if problems.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Revise
    };
    let tactic_cites: Vec<Cite> = steps
        .iter()
        .filter_map(|s| s.assigned_tactic.as_deref().and_then(|t| kb.tactic(t)))
        .map(|t| Cite::of(kb, t))
        .collect();
    let citations = citation_ids(
        steps
            .iter()
            .filter_map(|s| s.object.as_ref())
            .chain(problems.iter().filter_map(|p| p.suggestion.as_ref()))
            .chain(&tactic_cites),
    );
    Verification {
        verdict,
        steps,
        problems,
        citations,
    }
}

/// Resolves one id to a technique, recording problems; returns the
/// technique whose tactics place the step (the replacement of a revoked one).
fn check_id(
    kb: &KnowledgeBase,
    step: usize,
    id: &str,
    problems: &mut Vec<Problem>,
) -> Option<usize> {
    let mut problem = |kind, severity, message: String, suggestion: Option<usize>| {
        problems.push(Problem {
            step,
            kind,
            severity,
            message,
            suggestion: suggestion.map(|s| Cite::of(kb, s)),
        });
    };
    if !is_technique_id(id) {
        let guess = kb
            .search(id, 1, |o| o.kind == Kind::Technique && o.is_current())
            .first()
            .map(|(i, _)| *i);
        problem(
            ProblemKind::Malformed,
            Severity::Error,
            format!("`{id}` is not an ATT&CK technique id (T1234 or T1234.567)"),
            guess,
        );
        return None;
    }
    let found = kb.by_id(id);
    let Some(&technique) = found
        .iter()
        .find(|&&i| kb.object(i).kind == Kind::Technique)
    else {
        if let Some(&other) = found.first() {
            let object = kb.object(other);
            problem(
                ProblemKind::NotATechnique,
                Severity::Error,
                format!(
                    "{id} is {:?} `{}`, not a technique",
                    object.kind, object.name
                ),
                None,
            );
        } else {
            let parent = id.split_once('.').and_then(|(p, _)| {
                kb.by_id(p)
                    .into_iter()
                    .find(|&i| kb.object(i).kind == Kind::Technique)
            });
            let hint = if parent.is_some() {
                "; its parent technique exists"
            } else {
                ""
            };
            problem(
                ProblemKind::Unknown,
                Severity::Error,
                format!("{id} is not an ATT&CK Enterprise technique{hint}"),
                parent,
            );
        }
        return None;
    };
    let object = kb.object(technique);
    if object.revoked {
        let replacement = kb.replacement(technique);
        let message = match replacement {
            Some(r) => format!(
                "{id} ({}) is revoked; use {} ({}) instead",
                object.full_name,
                kb.object(r).id(),
                kb.object(r).full_name
            ),
            None => format!(
                "{id} ({}) is revoked and has no replacement",
                object.full_name
            ),
        };
        problem(
            ProblemKind::Revoked,
            Severity::Warning,
            message,
            replacement,
        );
        return replacement.or(Some(technique));
    }
    if object.deprecated {
        let parent = kb.parent(technique).filter(|&p| kb.object(p).is_current());
        problem(
            ProblemKind::Deprecated,
            Severity::Warning,
            format!(
                "{id} ({}) is deprecated and no longer maintained in ATT&CK",
                object.full_name
            ),
            parent,
        );
    }
    Some(technique)
}

/// The order to check tactics in: by timestamp when every step has one
/// (ties keep the given order), else as given. Records time problems.
fn time_order(chain: &[ChainStep], problems: &mut Vec<Problem>) -> Vec<usize> {
    let mut times = Vec::new();
    for (step, item) in chain.iter().enumerate() {
        let Some(text) = &item.timestamp else {
            continue;
        };
        match parse_time(text) {
            Some(time) => times.push((step, time)),
            None => problems.push(Problem {
                step,
                kind: ProblemKind::BadTimestamp,
                severity: Severity::Warning,
                message: format!(
                    "cannot read timestamp `{text}` (use RFC 3339, e.g. 2024-05-01T10:00:00Z)"
                ),
                suggestion: None,
            }),
        }
    }
    for pair in times.windows(2) {
        if pair[1].1 < pair[0].1 {
            problems.push(Problem {
                step: pair[1].0,
                kind: ProblemKind::TimeOrder,
                severity: Severity::Warning,
                message: format!(
                    "step {} happened at {} before step {} at {}; the chain is not in time order",
                    pair[1].0, pair[1].1, pair[0].0, pair[0].1
                ),
                suggestion: None,
            });
        }
    }
    let mut order: Vec<usize> = (0..chain.len()).collect();
    if times.len() == chain.len() {
        order.sort_by_key(|&s| times[s].1);
    }
    order
}

/// Coarse phase of a tactic: preparation, getting in, inside. Inside the
/// network tactics recur in any order as the adversary spreads, and
/// exfiltration or impact in one place does not end the attack elsewhere
/// (real emulation plans exfiltrate over C2 and carry on), so they share a phase.
fn phase(tactic: &str) -> u8 {
    match tactic {
        "reconnaissance" | "resource-development" => 0,
        "initial-access" => 1,
        _ => 2,
    }
}

/// Places each step on one of its tactics so that the chain never goes back
/// to an earlier phase (preparation, initial access, inside);
/// within a phase tactics may recur in any order. Prefers the earliest tactic
/// at or after the previous one in matrix order. Steps whose every tactic
/// belongs to an earlier phase are reported.
fn check_tactic_order(
    kb: &KnowledgeBase,
    order: &[usize],
    steps: &mut [StepCheck],
    problems: &mut Vec<Problem>,
) {
    let names = kb.tactic_order();
    let mut current: Option<(usize, usize)> = None; // (position, step)
    for &s in order {
        let positions: Vec<usize> = steps[s]
            .tactics
            .iter()
            .filter_map(|t| kb.tactic_position(t))
            .collect();
        let Some(&last) = positions.last() else {
            continue;
        };
        let (floor, floor_phase) = current.map_or((0, 0), |(p, _)| (p, phase(&names[p])));
        let chosen = positions
            .iter()
            .find(|&&p| p >= floor)
            .or_else(|| positions.iter().find(|&&p| phase(&names[p]) >= floor_phase));
        let chosen = match chosen {
            Some(&p) => p,
            None => {
                let (previous_position, previous_step) = current.unwrap_or_default();
                problems.push(Problem {
                    step: s,
                    kind: ProblemKind::TacticOrder,
                    severity: Severity::Warning,
                    message: format!(
                        "step {s} ({}: {}) comes after step {previous_step} ({}), but its tactics belong to an earlier phase of an attack",
                        steps[s].technique,
                        steps[s].tactics.join(", "),
                        names[previous_position],
                    ),
                    suggestion: None,
                });
                last
            }
        };
        steps[s].assigned_tactic = Some(names[chosen].clone());
        current = Some((chosen, s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_id_shape() {
        assert!(is_technique_id("T1003"));
        assert!(is_technique_id("T1003.001"));
        assert!(!is_technique_id("T10031"));
        assert!(!is_technique_id("T1003.01"));
        assert!(!is_technique_id("G0007"));
    }

    #[test]
    fn timestamps_in_several_forms() {
        let a = parse_time("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(parse_time("2024-05-01T12:00:00+02:00"), Some(a));
        assert_eq!(parse_time("2024-05-01 10:00:00"), Some(a));
        assert_eq!(parse_time(&a.timestamp().to_string()), Some(a));
        assert_eq!(parse_time(&a.timestamp_millis().to_string()), Some(a));
        assert_eq!(parse_time("yesterday"), None);
    }
}
