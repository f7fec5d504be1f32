//! `answer`: a free-text question to ranked, cited objects and a short
//! extracted answer. The question's subject is an id, a quoted or known
//! name, or the best BM25 hit; keywords pick what is asked about it.

use serde::Serialize;

use super::lookup::card;
use super::{Cite, citation_ids, detections, links, mitigations};
use crate::bm25::tokenize;
use crate::kb::KnowledgeBase;
use crate::model::{Kind, summary};

/// Objects listed by name in an answer before "and N more".
const LISTED: usize = 10;
/// Longest extracted answer sentence, in bytes.
const SENTENCE_BYTES: usize = 400;

/// One object behind an answer.
#[derive(Debug, Clone, Serialize)]
pub struct RankedObject {
    /// The object.
    #[serde(flatten)]
    pub object: Cite,
    /// Relevance: BM25 score for search hits, 1 for objects related to the subject.
    pub score: f32,
    /// Text from the object supporting the answer.
    pub snippet: String,
}

/// Result of `answer`.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The question.
    pub question: String,
    /// What was understood to be asked (`describe`, `tactics`, `techniques`,
    /// `groups`, `mitigations`, `detections`, `links`, `search`).
    pub intent: &'static str,
    /// The short answer.
    pub answer: String,
    /// Objects behind the answer, most relevant first.
    pub results: Vec<RankedObject>,
    /// Ids of every object cited.
    pub citations: Vec<String>,
}

/// What is asked about the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Describe,
    Tactics,
    Techniques,
    Groups,
    Mitigations,
    Detections,
    Links,
}

impl Intent {
    fn name(self) -> &'static str {
        match self {
            Intent::Describe => "describe",
            Intent::Tactics => "tactics",
            Intent::Techniques => "techniques",
            Intent::Groups => "groups",
            Intent::Mitigations => "mitigations",
            Intent::Detections => "detections",
            Intent::Links => "links",
        }
    }
}

fn intent(question: &str, subject: Option<Kind>) -> Intent {
    let q = question.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| q.contains(w));
    let actor = matches!(subject, Some(Kind::Group | Kind::Software | Kind::Campaign));
    if has(&[
        "mitigat",
        "prevent",
        "defend against",
        "protect against",
        "countermeasure",
    ]) {
        Intent::Mitigations
    } else if has(&["detect", "monitor", "log source", "analytic", "hunt for"]) {
        Intent::Detections
    } else if has(&["tactic", "kill chain", "phase"]) {
        Intent::Tactics
    } else if has(&[
        "cwe",
        "capec",
        "weakness",
        "attack pattern",
        "linked to",
        "map to",
        "maps to",
    ]) {
        Intent::Links
    } else if !matches!(subject, Some(Kind::Group | Kind::Campaign))
        && has(&["group", "actor", "who uses", "which apt"])
    {
        Intent::Groups
    } else if actor && has(&["technique", "ttp", "what does", "how does"]) {
        Intent::Techniques
    } else {
        Intent::Describe
    }
}

/// Finds the object a question is about: an explicit id or quoted name
/// (`true`), or the longest known name of two or more words, or a
/// capitalised single word of four or more letters naming something
/// (`Kerberoasting`, `Mimikatz`) (`false`).
fn subject(kb: &KnowledgeBase, question: &str) -> Option<(usize, bool)> {
    let words: Vec<&str> = question
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '.' && c != '-'))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| !w.is_empty())
        .collect();
    for word in &words {
        let upper = word.to_uppercase();
        let id_like = upper.chars().any(|c| c.is_ascii_digit())
            && upper
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
        if id_like && let Some(&i) = kb.by_id(&upper).first() {
            return Some((i, true));
        }
    }
    for quote in ['"', '\'', '`', '“'] {
        let close = if quote == '“' { '”' } else { quote };
        if let Some(start) = question.find(quote)
            && let Some(len) = question[start + quote.len_utf8()..].find(close)
        {
            let inner = &question[start + quote.len_utf8()..start + quote.len_utf8() + len];
            if let Some(&i) = kb.by_name(inner).first() {
                return Some((i, true));
            }
        }
    }
    for n in (2..=8.min(words.len())).rev() {
        for window in words.windows(n) {
            if let Some(&i) = kb.by_name(&window.join(" ")).first() {
                return Some((i, false));
            }
        }
    }
    words
        .iter()
        .filter(|w| w.chars().any(|c| c.is_uppercase() || c.is_ascii_digit()) && w.len() >= 4)
        .find_map(|w| {
            kb.by_name(w)
                .into_iter()
                .find(|&i| kb.object(i).kind != Kind::Analytic)
                .map(|i| (i, false))
        })
}

/// Whether a name found in a question is what the question is about: it
/// makes up at least a third of the question's terms ("What is Remote
/// Services?"), rather than being mentioned in passing in a longer text.
fn name_is_topic(kb: &KnowledgeBase, i: usize, question_terms: &[String]) -> bool {
    let object = kb.object(i);
    let mut name_terms = tokenize(&object.full_name);
    if !question_terms.iter().any(|t| name_terms.contains(t)) {
        name_terms = tokenize(&object.name);
    }
    let shared = question_terms
        .iter()
        .filter(|t| name_terms.contains(t))
        .count();
    shared * 3 >= question_terms.len()
}

/// The sentence of `text` sharing the most terms with the question.
fn best_sentence(text: &str, question_terms: &[String]) -> String {
    let mut best = (0usize, "");
    for sentence in text.split_inclusive(". ") {
        let terms = tokenize(sentence);
        let overlap = question_terms.iter().filter(|t| terms.contains(t)).count();
        if overlap > best.0 {
            best = (overlap, sentence);
        }
    }
    if best.0 == 0 {
        summary(text, SENTENCE_BYTES)
    } else {
        summary(best.1.trim(), SENTENCE_BYTES)
    }
}

fn listing(cites: &[Cite]) -> String {
    let mut text: Vec<String> = cites
        .iter()
        .take(LISTED)
        .map(|c| format!("{} ({})", c.id, c.name))
        .collect();
    if cites.len() > LISTED {
        text.push(format!("and {} more", cites.len() - LISTED));
    }
    if text.is_empty() {
        "none recorded".to_owned()
    } else {
        text.join(", ")
    }
}

/// The `answer` skill; at most `limit` search results when the question
/// has no identifiable subject.
pub fn answer(kb: &KnowledgeBase, question: &str, limit: usize) -> Answer {
    let terms = tokenize(question);
    let hits = kb.search(question, limit.max(1), |o| {
        o.is_current() && o.kind != Kind::Analytic
    });
    let found = subject(kb, question);
    let asked = intent(question, found.map(|(i, _)| kb.object(i).kind));
    let explicit = found
        .filter(|&(i, explicit)| {
            explicit || asked != Intent::Describe || name_is_topic(kb, i, &terms)
        })
        .map(|(i, _)| i);
    // Without a named subject, a structured question is about the best hit.
    let subject = explicit.or_else(|| {
        let suits = |kind: Kind| match asked {
            Intent::Describe => false,
            Intent::Techniques => matches!(kind, Kind::Group | Kind::Software | Kind::Campaign),
            Intent::Links => matches!(kind, Kind::Technique | Kind::AttackPattern | Kind::Weakness),
            Intent::Mitigations => {
                matches!(kind, Kind::Technique | Kind::AttackPattern | Kind::Weakness)
            }
            Intent::Tactics => kind == Kind::Technique,
            Intent::Detections => matches!(kind, Kind::Technique | Kind::Weakness),
            Intent::Groups => matches!(kind, Kind::Technique | Kind::Software),
        };
        hits.iter()
            .map(|(i, _)| *i)
            .find(|&i| suits(kb.object(i).kind))
    });
    let Some(subject) = subject else {
        return search_answer(kb, question, &terms, &hits);
    };
    let object = kb.object(subject);
    let me = Cite::of(kb, subject);
    let head = format!("{} ({})", me.id, me.name);
    let (text, related): (String, Vec<Cite>) = match asked {
        Intent::Describe => (
            format!(
                "{head} is {}: {}",
                kind_phrase(object.kind),
                best_sentence(&object.description, &terms)
            ),
            Vec::new(),
        ),
        Intent::Tactics => {
            let card = card(kb, subject);
            (
                format!("{head} belongs to the tactics {}", listing(&card.tactics)),
                card.tactics,
            )
        }
        Intent::Techniques => {
            let card = card(kb, subject);
            (
                format!(
                    "{head} uses {} techniques: {}",
                    card.techniques.len(),
                    listing(&card.techniques)
                ),
                card.techniques,
            )
        }
        Intent::Groups => {
            let card = card(kb, subject);
            (
                format!(
                    "{} groups use {head}: {}",
                    card.used_by_groups.len(),
                    listing(&card.used_by_groups)
                ),
                card.used_by_groups,
            )
        }
        Intent::Mitigations => match mitigations(kb, &me.id) {
            Ok(m) => {
                let cites: Vec<Cite> = m.mitigations.into_iter().map(|m| m.mitigation).collect();
                let extra = m
                    .guidance
                    .first()
                    .map(|g| format!(". {g}"))
                    .unwrap_or_default();
                (
                    format!("Mitigations for {head}: {}{extra}", listing(&cites)),
                    cites,
                )
            }
            Err(e) => (e, Vec::new()),
        },
        Intent::Detections => match detections(kb, &me.id) {
            Ok(d) => {
                let cites: Vec<Cite> = d.strategies.into_iter().map(|s| s.strategy).collect();
                let extra = d
                    .guidance
                    .first()
                    .map(|g| format!(". {g}"))
                    .unwrap_or_default();
                (
                    format!("{head} is detected by {}{extra}", listing(&cites)),
                    cites,
                )
            }
            Err(e) => (e, Vec::new()),
        },
        Intent::Links => match links(kb, &me.id) {
            Ok(l) => {
                let part = |name: &str, list: Vec<super::LinkedObject>| {
                    let cites: Vec<Cite> = list.into_iter().map(|l| l.object).collect();
                    (format!("{name}: {}", listing(&cites)), cites)
                };
                let (cwe, mut cites) = part("CWE", l.cwe);
                let (capec, more) = part("CAPEC", l.capec);
                cites.extend(more);
                let (attack, more) = part("ATT&CK", l.attack);
                cites.extend(more);
                (format!("{head} links to {cwe}; {capec}; {attack}"), cites)
            }
            Err(e) => (e, Vec::new()),
        },
    };
    let mut results = vec![RankedObject {
        object: me,
        score: 1.0,
        snippet: best_sentence(&object.description, &terms),
    }];
    results.extend(related.into_iter().map(|c| RankedObject {
        snippet: String::new(),
        score: 1.0,
        object: c,
    }));
    if asked == Intent::Describe {
        // Other candidates, in search order.
        results.extend(
            hits.iter()
                .filter(|(i, _)| *i != subject)
                .take(limit.max(1).saturating_sub(1))
                .map(|&(i, score)| RankedObject {
                    object: Cite::of(kb, i),
                    score,
                    snippet: best_sentence(&kb.object(i).description, &terms),
                }),
        );
    }
    Answer {
        question: question.to_owned(),
        intent: asked.name(),
        answer: text,
        citations: citation_ids(results.iter().map(|r| &r.object)),
        results,
    }
}

fn search_answer(
    kb: &KnowledgeBase,
    question: &str,
    terms: &[String],
    hits: &[(usize, f32)],
) -> Answer {
    let results: Vec<RankedObject> = hits
        .iter()
        .map(|&(i, score)| RankedObject {
            object: Cite::of(kb, i),
            score,
            snippet: best_sentence(&kb.object(i).description, terms),
        })
        .collect();
    let text = match results.first() {
        Some(top) => format!("{} ({}): {}", top.object.id, top.object.name, top.snippet),
        None => "Nothing in the ATT&CK, CAPEC and CWE data matches the question.".to_owned(),
    };
    Answer {
        question: question.to_owned(),
        intent: "search",
        answer: text,
        citations: citation_ids(results.iter().map(|r| &r.object)),
        results,
    }
}

fn kind_phrase(kind: Kind) -> &'static str {
    match kind {
        Kind::Technique => "an ATT&CK technique",
        Kind::Tactic => "an ATT&CK tactic",
        Kind::Group => "an ATT&CK group",
        Kind::Software => "ATT&CK software",
        Kind::Campaign => "an ATT&CK campaign",
        Kind::Mitigation => "an ATT&CK mitigation",
        Kind::DetectionStrategy => "an ATT&CK detection strategy",
        Kind::Analytic => "an ATT&CK analytic",
        Kind::DataComponent => "an ATT&CK data component",
        Kind::AttackPattern => "a CAPEC attack pattern",
        Kind::CapecMitigation => "a CAPEC mitigation",
        Kind::Weakness => "a CWE weakness",
        Kind::Category => "a CWE category",
    }
}
