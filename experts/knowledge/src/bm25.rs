//! BM25 full-text ranking with a small tokeniser (lowercase, stop words,
//! light suffix stemming; ATT&CK-style ids such as `t1003.001` stay whole).

use std::collections::HashMap;

/// Term-frequency saturation.
const K1: f32 = 1.2;
/// Length normalisation.
const B: f32 = 0.75;

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "in", "is", "it", "its", "of", "on", "or", "that", "the", "their", "this", "to", "was",
    "what", "when", "which", "who", "with", "use", "used", "using",
];

/// Splits text into search terms: lowercase alphanumeric runs (a `.` between
/// digits is kept, so `T1003.001` is one term), stop words dropped, suffixes
/// stemmed.
pub fn tokenize(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut terms = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let digit_dot = c == '.'
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_alphanumeric() || digit_dot {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            push_term(&mut terms, std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        push_term(&mut terms, current);
    }
    terms
}

fn push_term(terms: &mut Vec<String>, term: String) {
    if !STOP_WORDS.contains(&term.as_str()) {
        terms.push(stem(term));
    }
}

/// Strips common English suffixes (a small subset of Porter's step 1).
fn stem(mut term: String) -> String {
    if !term.chars().all(char::is_alphabetic) {
        return term;
    }
    for (suffix, replacement) in [
        ("ies", "y"),
        ("sses", "ss"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
    ] {
        if term.ends_with(suffix) && term.len() >= suffix.len() + 3 && !term.ends_with("ss") {
            term.truncate(term.len() - suffix.len());
            term.push_str(replacement);
            break;
        }
    }
    term
}

/// An inverted index scored with Okapi BM25.
#[derive(Debug, Default)]
pub struct Bm25 {
    postings: HashMap<String, Vec<(u32, u32)>>,
    doc_len: Vec<u32>,
    total_len: u64,
}

impl Bm25 {
    /// An empty index.
    pub fn new() -> Self {
        Bm25::default()
    }

    /// Adds a document; documents are numbered from 0 in insertion order.
    pub fn add(&mut self, text: &str) -> u32 {
        let doc = self.doc_len.len() as u32;
        let terms = tokenize(text);
        let mut tf: HashMap<String, u32> = HashMap::new();
        for term in &terms {
            *tf.entry(term.clone()).or_default() += 1;
        }
        for (term, count) in tf {
            self.postings.entry(term).or_default().push((doc, count));
        }
        self.doc_len.push(terms.len() as u32);
        self.total_len += terms.len() as u64;
        doc
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.doc_len.len()
    }

    /// Whether the index has no document.
    pub fn is_empty(&self) -> bool {
        self.doc_len.is_empty()
    }

    /// The `limit` best documents for `query` with their scores, best first;
    /// `keep` filters documents (e.g. by kind). Documents without any query
    /// term are never returned.
    pub fn search(&self, query: &str, limit: usize, keep: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let n = self.doc_len.len() as f32;
        if n == 0.0 {
            return Vec::new();
        }
        let avg_len = self.total_len as f32 / n;
        let mut terms = tokenize(query);
        terms.sort();
        terms.dedup();
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for term in &terms {
            let Some(postings) = self.postings.get(term) else {
                continue;
            };
            let df = postings.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(doc, tf) in postings {
                let tf = tf as f32;
                let len = self.doc_len[doc as usize] as f32;
                let norm = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg_len));
                *scores.entry(doc).or_default() += idf * norm;
            }
        }
        let mut ranked: Vec<(u32, f32)> = scores.into_iter().filter(|(d, _)| keep(*d)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(limit);
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_keeps_ids_and_stems() {
        assert_eq!(
            tokenize("Dumping LSASS memory (T1003.001), credentials."),
            ["dump", "lsass", "memory", "t1003.001", "credential"]
        );
        assert_eq!(tokenize("the processes"), ["process"]);
        assert_eq!(tokenize("end."), ["end"]);
    }

    #[test]
    fn ranks_relevant_documents_first() {
        let mut index = Bm25::new();
        index.add("Phishing: adversaries send spearphishing emails with a malicious attachment");
        index.add("OS Credential Dumping: LSASS memory is dumped to obtain credentials");
        index.add("Credential stuffing uses leaked credentials against many accounts");
        index.add("Network share discovery");
        let hits = index.search("dump credentials from lsass memory", 10, |_| true);
        assert_eq!(hits[0].0, 1);
        assert_eq!(hits[1].0, 2);
        assert_eq!(
            hits.len(),
            2,
            "documents without a query term are not returned"
        );
        assert!(index.search("lsass", 10, |d| d != 1).is_empty());
        assert!(index.search("zebra", 10, |_| true).is_empty());
    }

    #[test]
    fn rare_terms_weigh_more_than_common_ones() {
        let mut index = Bm25::new();
        for _ in 0..5 {
            index.add("windows registry persistence");
        }
        index.add("windows kerberoasting");
        index.add("registry kerberoasting kerberoasting");
        let hits = index.search("windows kerberoasting", 3, |_| true);
        assert!(hits[0].0 >= 5, "{hits:?}");
        assert!(hits[1].0 >= 5, "{hits:?}");
    }
}
