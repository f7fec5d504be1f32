//! Keyword extraction for the prefilter: from a pattern, a set of lowercase
//! literals such that every match contains at least one of them. A rule
//! whose keywords do not occur in a text (ASCII case-insensitively) cannot
//! match it, so its regex is not run.

use regex_syntax::ParserBuilder;
use regex_syntax::hir::{Class, Hir, HirKind};

/// Most literals kept for one rule (more means a weak prefilter).
const MAX_LITERALS: usize = 256;

/// The required literals of `pattern`, lowercase, each at least `min_len`
/// bytes long; `None` when no such set exists (the rule must always run).
pub(crate) fn required_literals(pattern: &str, min_len: usize) -> Option<Vec<String>> {
    let set = factor(&parse(pattern)?)?;
    if set.iter().any(|lit| lit.len() < min_len) {
        return None;
    }
    let mut words: Vec<String> = set
        .into_iter()
        .map(|lit| String::from_utf8_lossy(&lit).to_ascii_lowercase())
        .collect();
    words.sort();
    words.dedup();
    Some(words)
}

/// The longest match of `pattern` in bytes (`None`: unbounded or invalid).
pub(crate) fn maximum_len(pattern: &str) -> Option<usize> {
    parse(pattern)?.properties().maximum_len()
}

/// Parses as the scanner compiles: bytes, ASCII semantics.
fn parse(pattern: &str) -> Option<Hir> {
    ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}

/// The byte `hir` always matches (ASCII case folded), if it is one.
fn fixed_byte(hir: &Hir) -> Option<u8> {
    match hir.kind() {
        HirKind::Literal(lit) if lit.0.len() == 1 => Some(lit.0[0].to_ascii_lowercase()),
        HirKind::Class(Class::Bytes(class)) => {
            let mut folded: Option<u8> = None;
            for range in class.ranges() {
                for byte in range.start()..=range.end() {
                    let lower = byte.to_ascii_lowercase();
                    match folded {
                        None => folded = Some(lower),
                        Some(f) if f == lower => {}
                        Some(_) => return None,
                    }
                }
            }
            folded
        }
        HirKind::Class(Class::Unicode(class)) => {
            let mut folded: Option<u8> = None;
            for range in class.ranges() {
                for ch in range.start()..=range.end() {
                    let lower = u8::try_from(u32::from(ch)).ok()?.to_ascii_lowercase();
                    match folded {
                        None => folded = Some(lower),
                        Some(f) if f == lower => {}
                        Some(_) => return None,
                    }
                }
            }
            folded
        }
        _ => None,
    }
}

/// Literal bytes of a literal node (lowercased).
fn literal_bytes(hir: &Hir) -> Option<Vec<u8>> {
    match hir.kind() {
        HirKind::Literal(lit) => Some(lit.0.iter().map(u8::to_ascii_lowercase).collect()),
        _ => fixed_byte(hir).map(|b| vec![b]),
    }
}

/// A set of literals one of which every match of `hir` contains.
fn factor(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Literal(_) | HirKind::Class(_) => literal_bytes(hir).map(|lit| vec![lit]),
        HirKind::Empty | HirKind::Look(_) => None,
        HirKind::Capture(capture) => factor(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => factor(&repetition.sub),
        HirKind::Repetition(_) => None,
        HirKind::Alternation(children) => {
            let mut union = Vec::new();
            for child in children {
                union.extend(factor(child)?);
                if union.len() > MAX_LITERALS {
                    return None;
                }
            }
            Some(union)
        }
        HirKind::Concat(children) => {
            let mut best: Option<Vec<Vec<u8>>> = None;
            let mut run: Vec<u8> = Vec::new();
            for child in children {
                if let Some(bytes) = literal_bytes(child) {
                    run.extend(bytes);
                    continue;
                }
                if !run.is_empty() {
                    best = better(best, Some(vec![std::mem::take(&mut run)]));
                }
                // Look-arounds take no bytes: a run continues across them.
                if matches!(child.kind(), HirKind::Look(_)) {
                    continue;
                }
                best = better(best, factor(child));
            }
            if !run.is_empty() {
                best = better(best, Some(vec![run]));
            }
            best
        }
    }
}

/// The stronger of two literal sets: the longer shortest literal, then fewer.
fn better(a: Option<Vec<Vec<u8>>>, b: Option<Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(a), Some(b)) => {
            let score = |set: &Vec<Vec<u8>>| {
                let shortest = set.iter().map(Vec::len).min().unwrap_or(0).min(8);
                (shortest, usize::MAX - set.len())
            };
            if score(&b) > score(&a) {
                Some(b)
            } else {
                Some(a)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_prefix_literal() {
        assert_eq!(
            required_literals(r"\bAKIA[A-Z0-9]{16}\b", 3),
            Some(vec!["akia".to_owned()])
        );
    }

    #[test]
    fn case_insensitive_and_alternation() {
        let words = required_literals(r"(?i)(?:api_key|token)\s*=\s*\w+", 3).unwrap();
        assert_eq!(words, ["api_key", "token"]);
    }

    #[test]
    fn no_literal_means_always_run() {
        assert_eq!(required_literals(r"\b\d{3}-\d{2}-\d{4}\b", 3), None);
        assert_eq!(required_literals(r"(?:ab)?[0-9]+", 3), None);
        // an alternation with a short branch cannot be prefiltered
        assert_eq!(required_literals(r"(?:xyzw|q)[0-9]+", 3), None);
    }

    #[test]
    fn picks_the_longest_required_run() {
        let words = required_literals(r"[a-z]+ab[0-9]passwordx", 3).unwrap();
        assert_eq!(words, ["passwordx"]);
    }
}
