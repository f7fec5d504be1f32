//! The [`Scanner`]: runs the rules over a text and returns validated,
//! non-overlapping [`Finding`]s.
//!
//! Speed: one Aho-Corasick pass (ASCII case-insensitive) over the text finds
//! the rules' keywords, and one byte pass finds runs of digits; a rule runs
//! its regex only in windows around its triggers (keyword hits, or digit
//! runs with enough digits for `min_digits` rules), each window as wide as
//! the rule's longest match (16 KiB for unbounded patterns, so a
//! match reaching further than that from its keyword is missed). Rules
//! with neither keywords nor `min_digits` scan the whole text. Patterns run
//! on bytes with ASCII semantics (`\b`, `\w`, `(?i)`), as in Nosey Parker.

use std::ops::Range;
use std::path::PathBuf;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use serde::Serialize;

use crate::classify::Level;
use crate::rule::{
    BUILTIN_RULE_FILES, Category, Rule, RuleErrors, load_rule_file, parse_rule_file,
};
use crate::validate::shannon_entropy;

/// How far around a keyword hit an unbounded rule looks (bytes each side).
const WINDOW_CAP: usize = 16 << 10;
/// Bytes around a digit run searched by digit-triggered rules.
const DIGIT_MARGIN: usize = 16;
/// Bytes before a match searched for the rule's context words.
const CONTEXT_WINDOW: usize = 64;
/// Confidence added when a context word precedes the match.
const CONTEXT_BOOST: f64 = 0.2;

/// One piece of sensitive data in a text. It holds offsets, never the value
/// itself (use [`Finding::value`] with the scanned text).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Entity type: `EMAIL_ADDRESS`, `PHONE_NUMBER`, `CREDIT_CARD`,
    /// `IBAN_CODE`, `IP_ADDRESS`, `US_SSN`, `CN_RESIDENT_ID`, `SECRET`, ...
    pub entity_type: String,
    /// Personal data, secret or identifier.
    pub category: Category,
    /// The rule that found it.
    pub rule_id: String,
    /// The rule's name.
    pub rule_name: String,
    /// Byte offsets in the scanned text (UTF-8 character boundaries).
    pub span: Range<usize>,
    /// Character (Unicode scalar) offsets in the scanned text.
    pub char_span: Range<usize>,
    /// 0..1: the rule's confidence, raised by context words.
    pub confidence: f64,
    /// The validator the value passed (`luhn`, `iban`, ...), if the rule has one.
    pub validator: Option<&'static str>,
    /// Classification level of a document holding it.
    pub level: Level,
}

impl Finding {
    /// The matched value in `text` (the text that was scanned).
    pub fn value<'t>(&self, text: &'t str) -> &'t str {
        &text[self.span.clone()]
    }

    /// A masked preview safe for logs and run events: the first few
    /// characters (at most 4, a sixth of the value) then `*` for the rest.
    pub fn preview(&self, text: &str) -> String {
        mask_preview(self.value(text))
    }
}

/// Masks `value` keeping a short prefix (see [`Finding::preview`]).
pub fn mask_preview(value: &str) -> String {
    let chars = value.chars().count();
    let keep = (chars / 6).min(4);
    value
        .chars()
        .enumerate()
        .map(|(i, c)| if i < keep { c } else { '*' })
        .collect()
}

/// A compiled rule set with its prefilter. Cheap to share (`Arc`); scanning
/// takes `&self`.
#[derive(Debug, Clone)]
pub struct Scanner {
    rules: Vec<Rule>,
    prefilter: AhoCorasick,
    /// For each prefilter pattern, the rules it enables.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules without keywords or digit trigger (run on the whole text).
    always: Vec<usize>,
    /// Rules triggered by digit runs: `(rule, min_digits)`.
    digit_rules: Vec<(usize, usize)>,
}

impl Scanner {
    /// The embedded rule files (`rules/*.yml` of this crate).
    ///
    /// # Panics
    ///
    /// Never in a released build: the embedded files are checked by tests.
    pub fn builtin() -> Scanner {
        Scanner::new(builtin_rules().expect("embedded rule files are valid (checked by tests)"))
    }

    /// The embedded rules plus (or, without `builtin`, only) the rule files
    /// at `paths`. All files are checked; every error is returned.
    ///
    /// # Errors
    ///
    /// Each unreadable file and invalid rule, naming file, line and rule.
    pub fn from_files(paths: &[PathBuf], builtin: bool) -> Result<Scanner, RuleErrors> {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        if builtin {
            rules = builtin_rules()?;
        }
        for path in paths {
            match load_rule_file(path) {
                Ok(loaded) => rules.extend(loaded),
                Err(e) => errors.extend(e.errors),
            }
        }
        if errors.is_empty() {
            Ok(Scanner::new(rules))
        } else {
            Err(RuleErrors { errors })
        }
    }

    /// A scanner over already parsed rules.
    ///
    /// # Panics
    ///
    /// If the keyword automaton cannot be built (only for absurd keyword
    /// sets: the automaton's size limits are far above any rule file).
    pub fn new(rules: Vec<Rule>) -> Scanner {
        let mut keywords: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        let mut digit_rules = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if let Some(min) = rule.min_digits {
                digit_rules.push((index, min));
                continue;
            }
            if rule.keywords.is_empty() {
                always.push(index);
                continue;
            }
            for keyword in &rule.keywords {
                match keywords.iter().position(|k| k == keyword) {
                    Some(at) => keyword_rules[at].push(index),
                    None => {
                        keywords.push(keyword.clone());
                        keyword_rules.push(vec![index]);
                    }
                }
            }
        }
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)
            .expect("keyword automaton within size limits");
        Scanner {
            rules,
            prefilter,
            keyword_rules,
            always,
            digit_rules,
        }
    }

    /// The rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Finds sensitive data in `text`: validated findings, overlaps resolved
    /// (the more confident, then more severe, then longer finding wins),
    /// sorted by position.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let candidates = self.scan_candidates(text);
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&candidates[a], &candidates[b]);
            y.confidence
                .total_cmp(&x.confidence)
                .then(y.level.cmp(&x.level))
                .then((y.span.end - y.span.start).cmp(&(x.span.end - x.span.start)))
                .then(x.span.start.cmp(&y.span.start))
        });
        // Accepted spans, kept sorted by start for overlap checks.
        let mut accepted: Vec<Range<usize>> = Vec::new();
        let mut keep = vec![false; candidates.len()];
        for index in order {
            let span = &candidates[index].span;
            let at = accepted.partition_point(|s| s.start < span.start);
            let overlaps_next = accepted.get(at).is_some_and(|s| s.start < span.end);
            let overlaps_prev = at > 0 && accepted[at - 1].end > span.start;
            if !overlaps_next && !overlaps_prev {
                accepted.insert(at, span.clone());
                keep[index] = true;
            }
        }
        let mut findings: Vec<Finding> = candidates
            .into_iter()
            .zip(keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect();
        findings.sort_by_key(|f| f.span.start);
        findings
    }

    /// Every validated match of every rule, overlaps kept (e.g. to see
    /// which rules fire), sorted by position then rule order.
    pub fn scan_candidates(&self, text: &str) -> Vec<Finding> {
        let bytes = text.as_bytes();
        // Where each rule must run: the whole text, or windows around its
        // triggers (keyword hits or digit runs) wide enough to hold any
        // match containing the trigger.
        let mut whole = vec![false; self.rules.len()];
        let mut windows: Vec<Vec<Range<usize>>> = vec![Vec::new(); self.rules.len()];
        for index in &self.always {
            whole[*index] = true;
        }
        if !self.keyword_rules.is_empty() {
            for hit in self.prefilter.find_overlapping_iter(bytes) {
                for index in &self.keyword_rules[hit.pattern().as_usize()] {
                    if whole[*index] {
                        continue;
                    }
                    let reach = self.rules[*index]
                        .max_len
                        .map_or(WINDOW_CAP, |n| n.min(WINDOW_CAP));
                    push_window(
                        &mut windows[*index],
                        hit.start().saturating_sub(reach)..(hit.end() + reach).min(bytes.len()),
                    );
                }
            }
        }
        if !self.digit_rules.is_empty() {
            for (run, digits) in digit_runs(bytes) {
                for (index, min) in &self.digit_rules {
                    if digits >= *min {
                        push_window(
                            &mut windows[*index],
                            run.start.saturating_sub(DIGIT_MARGIN)
                                ..(run.end + DIGIT_MARGIN).min(bytes.len()),
                        );
                    }
                }
            }
        }
        let mut findings = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            if whole[index] {
                collect_matches(rule, text, 0..bytes.len(), &mut findings);
                continue;
            }
            for window in merge(&mut windows[index]) {
                collect_matches(rule, text, window, &mut findings);
            }
        }
        findings.sort_by(|a, b| {
            a.span
                .start
                .cmp(&b.span.start)
                .then(a.rule_id.cmp(&b.rule_id))
        });
        findings.dedup_by(|a, b| a.span == b.span && a.rule_id == b.rule_id);
        fill_char_spans(text, &mut findings);
        findings
    }
}

/// Adds `window`, extending the last one when they overlap (hits arrive
/// roughly in text order, so this keeps the lists short).
fn push_window(windows: &mut Vec<Range<usize>>, window: Range<usize>) {
    if let Some(last) = windows.last_mut()
        && window.start <= last.end
        && window.end >= last.start
    {
        last.start = last.start.min(window.start);
        last.end = last.end.max(window.end);
        return;
    }
    windows.push(window);
}

/// Sorts and merges overlapping or touching ranges.
fn merge(ranges: &mut [Range<usize>]) -> Vec<Range<usize>> {
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges.iter() {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range.clone()),
        }
    }
    merged
}

/// Maximal runs of digits and separators (` -.()+`) with their digit count
/// (runs without digits are skipped).
fn digit_runs(bytes: &[u8]) -> Vec<(Range<usize>, usize)> {
    let is_separator = |b: u8| matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'+');
    let mut runs = Vec::new();
    let mut floor = 0usize;
    while let Some(first_digit) = next_digit(bytes, floor) {
        let mut start = first_digit;
        while start > floor && is_separator(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = first_digit;
        let mut digits = 0usize;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || is_separator(bytes[end])) {
            digits += usize::from(bytes[end].is_ascii_digit());
            end += 1;
        }
        runs.push((start..end, digits));
        floor = end;
    }
    runs
}

/// The first ASCII digit at or after `from`, skipping 8 bytes at a time
/// while a word holds none (SWAR "has a byte below 10" after `^ b'0'`).
fn next_digit(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'0'));
        if x.wrapping_sub(ONES * 10) & !x & (ONES * 0x80) != 0 {
            break;
        }
        at += 8;
    }
    bytes
        .get(at..)?
        .iter()
        .position(u8::is_ascii_digit)
        .map(|p| at + p)
}

fn builtin_rules() -> Result<Vec<Rule>, RuleErrors> {
    let mut rules = Vec::new();
    for (name, text) in BUILTIN_RULE_FILES {
        rules.extend(parse_rule_file(name, text)?);
    }
    Ok(rules)
}

/// Runs one rule over `window` of `text` (look-behind sees the text before
/// it), pushing validated findings.
fn collect_matches(rule: &Rule, text: &str, window: Range<usize>, out: &mut Vec<Finding>) {
    let bytes = text.as_bytes();
    let haystack = &bytes[..window.end];
    let mut push = |start: usize, end: usize| {
        let span = snap(text, start, end);
        if span.is_empty() {
            return;
        }
        let value = &text[span.clone()];
        if let Some(validator) = rule.validator
            && !validator.check(value)
        {
            return;
        }
        if let Some(min) = rule.min_entropy
            && shannon_entropy(value.as_bytes()) < min
        {
            return;
        }
        out.push(Finding {
            entity_type: rule.entity.clone(),
            category: rule.category,
            rule_id: rule.id.clone(),
            rule_name: rule.name.clone(),
            confidence: confidence(rule, bytes, span.start),
            span,
            char_span: 0..0,
            validator: rule.validator.map(|v| v.name()),
            level: rule.level,
        });
    };
    let mut at = window.start;
    if rule.regex.captures_len() == 1 {
        while at <= haystack.len() {
            let Some(m) = rule.regex.find_at(haystack, at) else {
                break;
            };
            push(m.start(), m.end());
            at = if m.end() > m.start() {
                m.end()
            } else {
                m.end() + 1
            };
        }
        return;
    }
    let mut captures = rule.regex.capture_locations();
    while at <= haystack.len() {
        let Some(m) = rule.regex.captures_read_at(&mut captures, haystack, at) else {
            break;
        };
        at = if m.end() > m.start() {
            m.end()
        } else {
            m.end() + 1
        };
        // The secret is what the groups capture (Nosey Parker reports
        // groups); a finding covers all of them.
        let mut span: Option<(usize, usize)> = None;
        for group in 1..captures.len() {
            if let Some((start, end)) = captures.get(group) {
                span = Some(span.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
            }
        }
        let (start, end) = span.unwrap_or((m.start(), m.end()));
        push(start, end);
    }
}

/// The rule's confidence, raised when a context word precedes `start`.
fn confidence(rule: &Rule, bytes: &[u8], start: usize) -> f64 {
    if rule.context.is_empty() {
        return rule.confidence;
    }
    let window = bytes[start.saturating_sub(CONTEXT_WINDOW)..start].to_ascii_lowercase();
    let near = rule
        .context
        .iter()
        .any(|word| window.windows(word.len()).any(|w| w == word.as_bytes()));
    if near {
        (rule.confidence + CONTEXT_BOOST).min(1.0)
    } else {
        rule.confidence
    }
}

/// Widens a byte range to UTF-8 character boundaries.
fn snap(text: &str, mut start: usize, mut end: usize) -> Range<usize> {
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    while end < text.len() && !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// Sets `char_span` on findings sorted by start (one pass over the text).
fn fill_char_spans(text: &str, findings: &mut [Finding]) {
    if text.is_ascii() {
        for f in findings.iter_mut() {
            f.char_span = f.span.clone();
        }
        return;
    }
    let mut offsets: Vec<usize> = findings
        .iter()
        .flat_map(|f| [f.span.start, f.span.end])
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    let mut char_of = std::collections::HashMap::with_capacity(offsets.len());
    let mut next = offsets.iter().peekable();
    let boundaries = text.char_indices().map(|(byte, _)| byte);
    for (chars, byte) in boundaries.chain(std::iter::once(text.len())).enumerate() {
        while next.peek().is_some_and(|o| **o == byte) {
            char_of.insert(byte, chars);
            next.next();
        }
    }
    for f in findings.iter_mut() {
        f.char_span = char_of[&f.span.start]..char_of[&f.span.end];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_find_their_examples_and_skip_negatives() {
        let scanner = Scanner::builtin();
        let mut failures = Vec::new();
        for rule in scanner.rules() {
            for example in &rule.examples {
                let found = scanner
                    .scan_candidates(example)
                    .iter()
                    .any(|f| f.rule_id == rule.id);
                if !found {
                    failures.push(format!("{} misses example {example:?}", rule.id));
                }
            }
            for example in &rule.negative_examples {
                let found = scanner
                    .scan_candidates(example)
                    .iter()
                    .any(|f| f.rule_id == rule.id);
                if found {
                    failures.push(format!("{} fires on negative {example:?}", rule.id));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn spans_are_bytes_and_chars() {
        let scanner = Scanner::builtin();
        let text = "café: écrire à jean.dupont@example.fr";
        let findings = scanner.scan(text);
        assert_eq!(findings.len(), 1, "{findings:?}");
        let f = &findings[0];
        assert_eq!(f.entity_type, "EMAIL_ADDRESS");
        assert_eq!(f.value(text), "jean.dupont@example.fr");
        let chars: Vec<char> = text.chars().collect();
        let by_chars: String = chars[f.char_span.clone()].iter().collect();
        assert_eq!(by_chars, "jean.dupont@example.fr");
        assert_eq!(f.preview(text), "jea*******************");
    }

    #[test]
    fn digit_runs_with_separators() {
        let text = b"call (555) 123-4567 or x 42; abcdefghijklmnop 9";
        let runs = digit_runs(text);
        let found: Vec<(&str, usize)> = runs
            .iter()
            .map(|(r, d)| (std::str::from_utf8(&text[r.clone()]).unwrap(), *d))
            .collect();
        assert_eq!(found, [(" (555) 123-4567 ", 10), (" 42", 2), (" 9", 1)]);
        assert_eq!(next_digit(b"abcdefghijklmnopqrstuvw", 0), None);
        assert_eq!(next_digit(b"abcdefghijklmnopqrst7", 3), Some(20));
    }

    #[test]
    fn overlaps_resolve_to_the_validated_entity() {
        let scanner = Scanner::builtin();
        let text = "SSN 460-89-9847, card 4111 1111 1111 1111, host 10.1.2.3";
        let findings = scanner.scan(text);
        let types: Vec<&str> = findings.iter().map(|f| f.entity_type.as_str()).collect();
        assert_eq!(types, ["US_SSN", "CREDIT_CARD", "IP_ADDRESS"]);
    }
}
