//! `ioc/extract`: indicators of compromise from free text.
//!
//! The text is first **refanged** (`hxxp` → `http`, `[.]`/`(.)`/`(dot)` →
//! `.`, `[@]`/`(at)` → `@`, `[:]` → `:`) into a normalised copy that keeps a
//! map back to the original positions; regexes then find IPv4 and IPv6
//! addresses (validated by the standard library's parsers), domains, URLs,
//! email addresses, MD5/SHA-1/SHA-256 hashes and CVE ids. Results are
//! deduplicated by type and normalised value, each with every occurrence's
//! offsets in the original text, counted in Unicode code points (as Python
//! string indices are).
//!
//! Known limits, by design of a regex extractor: domains are recognised by
//! shape (labels and an alphabetic TLD), not against the public suffix list;
//! names ending in a common file extension (`invoice.pdf`, `run.ps1`) are
//! not reported as domains unless written defanged.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};

/// Kinds of indicator, in report order.
pub const IOC_TYPES: [&str; 9] = [
    "url", "domain", "ipv4", "ipv6", "email", "md5", "sha1", "sha256", "cve",
];

/// Longest text accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 1_000_000;

/// File extensions that look like TLDs; names ending in them are skipped
/// unless defanged.
const FILE_EXTENSIONS: &[&str] = &[
    "7z", "apk", "bak", "bat", "bin", "cab", "cfg", "cmd", "conf", "csv", "dat", "db", "dll",
    "doc", "docm", "docx", "eml", "exe", "gif", "gz", "hta", "htm", "html", "ini", "iso", "jar",
    "jpeg", "jpg", "js", "json", "lnk", "log", "md", "msg", "msi", "one", "pdf", "php", "png",
    "ppt", "pptx", "ps1", "py", "rar", "rtf", "scr", "sh", "svg", "sys", "tar", "tmp", "txt",
    "vbs", "wsf", "xls", "xlsm", "xlsx", "xml", "yaml", "yml",
];

/// One occurrence of an indicator in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Start, in code points.
    pub start: usize,
    /// End (exclusive), in code points.
    pub end: usize,
    /// The text as written (possibly defanged).
    pub raw: String,
}

/// One deduplicated indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ioc {
    /// One of [`IOC_TYPES`].
    pub ioc_type: &'static str,
    /// The normalised (refanged, lowercased where case does not matter) value.
    pub value: String,
    /// Whether any occurrence was written defanged.
    pub defanged: bool,
    /// Every occurrence, in text order.
    pub occurrences: Vec<Occurrence>,
}

impl Ioc {
    /// The JSON form used in skill outputs.
    pub fn to_json(&self) -> Value {
        let occurrences: Vec<Value> = self
            .occurrences
            .iter()
            .map(|o| json!({ "start": o.start, "end": o.end, "raw": o.raw }))
            .collect();
        json!({
            "type": self.ioc_type,
            "value": self.value,
            "defanged": self.defanged,
            "occurrences": occurrences,
        })
    }
}

// === refanging ===

/// The refanged text plus, for each of its bytes, the original byte range
/// it came from.
struct Refanged {
    text: String,
    origin: Vec<(usize, usize)>,
    /// Whether the byte came from a defang token.
    replaced: Vec<bool>,
}

/// Defang tokens and their replacements, matched case-insensitively,
/// longest first.
const DEFANG_TOKENS: &[(&str, &str)] = &[
    ("hxxps", "https"),
    ("hxxp", "http"),
    ("fxp", "ftp"),
    ("[://]", "://"),
    ("[dot]", "."),
    ("(dot)", "."),
    ("{dot}", "."),
    ("[.]", "."),
    ("(.)", "."),
    ("{.}", "."),
    ("[at]", "@"),
    ("(at)", "@"),
    ("{at}", "@"),
    ("[@]", "@"),
    ("(@)", "@"),
    ("[:]", ":"),
];

fn refang(original: &str) -> Refanged {
    let bytes = original.as_bytes();
    let mut out = Refanged {
        text: String::with_capacity(original.len()),
        origin: Vec::with_capacity(original.len()),
        replaced: Vec::with_capacity(original.len()),
    };
    let mut index = 0;
    'scan: while index < bytes.len() {
        for (token, replacement) in DEFANG_TOKENS {
            let end = index + token.len();
            if end > bytes.len() || !bytes[index..end].eq_ignore_ascii_case(token.as_bytes()) {
                continue;
            }
            // `hxxp`/`fxp` only as a scheme: a word start, then `:` or `s:`
            // (possibly defanged as `[:]`).
            if token.as_bytes()[0].is_ascii_alphabetic() {
                let word_start = index == 0 || !bytes[index - 1].is_ascii_alphanumeric();
                let rest = &original[end..];
                if !word_start || !(rest.starts_with(':') || rest.starts_with("[:]")) {
                    continue;
                }
            }
            for byte in replacement.bytes() {
                out.text.push(byte as char);
                out.origin.push((index, end));
                out.replaced.push(true);
            }
            index = end;
            continue 'scan;
        }
        let ch_len = utf8_len(bytes[index]);
        let ch_end = (index + ch_len).min(bytes.len());
        out.text.push_str(&original[index..ch_end]);
        for byte_index in index..ch_end {
            out.origin.push((byte_index, byte_index + 1));
            out.replaced.push(false);
        }
        index = ch_end;
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

// === patterns ===

static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b(?:https?|ftp)://[^\s<>"'`{}|\\^\[\]]*(?:\[[0-9a-f:.]+\][^\s<>"'`{}|\\^]*)?"#,
    )
    .expect("valid URL regex")
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9][a-z0-9._%+-]{0,63}@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+(?:\p{L}{2,63}|xn--[a-z0-9-]{1,59})\b")
        .expect("valid email regex")
});
static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+(?:xn--[a-z0-9-]{1,59}|\p{L}{2,63})\b")
        .expect("valid domain regex")
});
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:\d{1,3}\.){3}\d{1,3}\b").expect("valid IPv4 regex"));
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*").expect("valid IPv6 regex")
});
static HASH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[0-9A-Fa-f]{32,64}\b").expect("valid hash regex"));
static CVE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bCVE-\d{4}-\d{4,7}\b").expect("valid CVE regex"));

// === extraction ===

/// Extracts every indicator from `text`, deduplicated, in [`IOC_TYPES`]
/// order and then by first occurrence.
pub fn extract(text: &str) -> Vec<Ioc> {
    let refanged = refang(text);
    let norm = refanged.text.as_str();
    let char_index = char_offsets(text);
    let mut found = Found::default();
    let mut add = |ioc_type: &'static str, value: String, start: usize, end: usize| {
        let original_start = refanged.origin[start].0;
        let original_end = refanged.origin[end - 1].1;
        let defanged = refanged.replaced[start..end].iter().any(|r| *r);
        found.add(
            ioc_type,
            value,
            defanged,
            Occurrence {
                start: char_index[original_start],
                end: char_index[original_end],
                raw: text[original_start..original_end].to_owned(),
            },
        );
    };

    for m in URL.find_iter(norm) {
        let url = trim_trailing_punctuation(m.as_str());
        if url.len() > "http://".len() {
            add("url", normalise_url(url), m.start(), m.start() + url.len());
        }
    }
    for m in EMAIL.find_iter(norm) {
        add("email", m.as_str().to_lowercase(), m.start(), m.end());
    }
    for m in DOMAIN.find_iter(norm) {
        let domain = m.as_str();
        let next = norm[m.end()..].chars().next();
        // The local part of an email address, or a name followed by more
        // name characters the regex could not take (`a.b_c`).
        if matches!(next, Some('@' | '_')) {
            continue;
        }
        let tld = domain.rsplit('.').next().unwrap_or_default().to_lowercase();
        let defanged = refanged.replaced[m.start()..m.end()].iter().any(|r| *r);
        if FILE_EXTENSIONS.contains(&tld.as_str()) && !defanged {
            continue;
        }
        add("domain", domain.to_lowercase(), m.start(), m.end());
    }
    for m in IPV4.find_iter(norm) {
        let before = norm[..m.start()].chars().next_back();
        let after = norm[m.end()..].chars().next();
        let after_next = norm[m.end()..].chars().nth(1);
        // Part of a longer dotted number, e.g. a version `1.2.3.4.5`.
        if before == Some('.')
            || (after == Some('.') && after_next.is_some_and(|c| c.is_ascii_digit()))
        {
            continue;
        }
        if let Ok(address) = m.as_str().parse::<Ipv4Addr>() {
            add("ipv4", address.to_string(), m.start(), m.end());
        }
    }
    for m in IPV6.find_iter(norm) {
        let before = norm[..m.start()].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric()) {
            continue;
        }
        let mut candidate = m.as_str().trim_end_matches('.');
        if candidate.ends_with(':') && !candidate.ends_with("::") {
            candidate = &candidate[..candidate.len() - 1];
        }
        let after = norm[m.start() + candidate.len()..].chars().next();
        let has_digit = candidate.bytes().any(|b| b.is_ascii_hexdigit());
        if !has_digit || after.is_some_and(|c| c.is_alphanumeric()) {
            continue;
        }
        if let Ok(address) = candidate.parse::<Ipv6Addr>() {
            add(
                "ipv6",
                address.to_string(),
                m.start(),
                m.start() + candidate.len(),
            );
        }
    }
    for m in HASH.find_iter(norm) {
        let ioc_type = match m.len() {
            32 => "md5",
            40 => "sha1",
            64 => "sha256",
            _ => continue,
        };
        add(ioc_type, m.as_str().to_lowercase(), m.start(), m.end());
    }
    for m in CVE.find_iter(norm) {
        add("cve", m.as_str().to_uppercase(), m.start(), m.end());
    }
    found.into_sorted()
}

/// URLs end before trailing punctuation of the surrounding prose, and
/// before an unbalanced closing parenthesis.
fn trim_trailing_punctuation(url: &str) -> &str {
    let mut url = url;
    loop {
        let trimmed = url.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"']);
        let trimmed = if trimmed.ends_with(')')
            && trimmed.matches('(').count() < trimmed.matches(')').count()
        {
            &trimmed[..trimmed.len() - 1]
        } else {
            trimmed
        };
        if trimmed.len() == url.len() {
            return url;
        }
        url = trimmed;
    }
}

/// Lowercases the scheme and host; the path keeps its case.
fn normalise_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!(
        "{}://{}{}",
        scheme.to_lowercase(),
        rest[..host_end].to_lowercase(),
        &rest[host_end..]
    )
}

/// Code point index of every byte offset that starts a character (and of
/// the end).
fn char_offsets(text: &str) -> Vec<usize> {
    let mut offsets = vec![0; text.len() + 1];
    let mut count = 0;
    for (byte_index, ch) in text.char_indices() {
        for slot in &mut offsets[byte_index..byte_index + ch.len_utf8()] {
            *slot = count;
        }
        count += 1;
    }
    offsets[text.len()] = count;
    offsets
}

#[derive(Default)]
struct Found {
    by_key: BTreeMap<(usize, String), Ioc>,
    order: Vec<(usize, String)>,
}

impl Found {
    fn add(
        &mut self,
        ioc_type: &'static str,
        value: String,
        defanged: bool,
        occurrence: Occurrence,
    ) {
        let rank = IOC_TYPES
            .iter()
            .position(|t| *t == ioc_type)
            .unwrap_or(IOC_TYPES.len());
        let key = (rank, value);
        match self.by_key.get_mut(&key) {
            Some(ioc) => {
                ioc.defanged |= defanged;
                if !ioc.occurrences.contains(&occurrence) {
                    ioc.occurrences.push(occurrence);
                }
            }
            None => {
                self.order.push(key.clone());
                self.by_key.insert(
                    key.clone(),
                    Ioc {
                        ioc_type,
                        value: key.1,
                        defanged,
                        occurrences: vec![occurrence],
                    },
                );
            }
        }
    }

    fn into_sorted(mut self) -> Vec<Ioc> {
        let mut iocs: Vec<Ioc> = Vec::with_capacity(self.order.len());
        for key in &self.order {
            if let Some(mut ioc) = self.by_key.remove(key) {
                ioc.occurrences.sort_by_key(|o| o.start);
                iocs.push(ioc);
            }
        }
        iocs.sort_by(|a, b| {
            let rank = |ioc: &Ioc| IOC_TYPES.iter().position(|t| *t == ioc.ioc_type);
            rank(a)
                .cmp(&rank(b))
                .then(a.occurrences[0].start.cmp(&b.occurrences[0].start))
        });
        iocs
    }
}

/// The skill output: `{ "iocs": [...], "counts": { "<type>": n } }`.
pub fn extract_output(text: &str) -> Value {
    let iocs = extract(text);
    let mut counts = serde_json::Map::new();
    for ioc_type in IOC_TYPES {
        let count = iocs.iter().filter(|ioc| ioc.ioc_type == ioc_type).count();
        counts.insert(ioc_type.to_owned(), Value::from(count));
    }
    json!({
        "iocs": iocs.iter().map(Ioc::to_json).collect::<Vec<_>>(),
        "counts": counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(iocs: &[Ioc], ioc_type: &str) -> Vec<String> {
        iocs.iter()
            .filter(|ioc| ioc.ioc_type == ioc_type)
            .map(|ioc| ioc.value.clone())
            .collect()
    }

    #[test]
    fn refangs_urls_domains_and_emails_with_original_offsets() {
        let text = "Click hxxps://login-micros0ft[.]com/verify?id=42. Reply to billing(at)evil(dot)example.";
        let iocs = extract(text);
        assert_eq!(
            values(&iocs, "url"),
            ["https://login-micros0ft.com/verify?id=42"]
        );
        let url = &iocs[0];
        assert!(url.defanged);
        assert_eq!(
            url.occurrences[0].raw,
            "hxxps://login-micros0ft[.]com/verify?id=42"
        );
        let chars: Vec<char> = text.chars().collect();
        let slice: String = chars[url.occurrences[0].start..url.occurrences[0].end]
            .iter()
            .collect();
        assert_eq!(slice, url.occurrences[0].raw);
        assert_eq!(
            values(&iocs, "domain"),
            ["login-micros0ft.com", "evil.example"]
        );
        assert_eq!(values(&iocs, "email"), ["billing@evil.example"]);
    }

    #[test]
    fn offsets_count_code_points() {
        let text = "Ünïcödé → 8.8.8.8";
        let iocs = extract(text);
        assert_eq!(iocs[0].value, "8.8.8.8");
        assert_eq!(iocs[0].occurrences[0].start, 10);
        assert_eq!(iocs[0].occurrences[0].end, 17);
    }

    #[test]
    fn extracts_ipv4_but_not_versions_or_out_of_range_octets() {
        let iocs = extract(
            "beacon to 185.220.101.47:443, not 1.2.3.4.5 nor 999.1.1.1; internal 10.0.0.5.",
        );
        assert_eq!(values(&iocs, "ipv4"), ["185.220.101.47", "10.0.0.5"]);
    }

    #[test]
    fn extracts_and_normalises_ipv6() {
        let iocs = extract(
            "v6 C2 2001:DB8:0:0::1 and fe80::1%eth0, std::string a :: b, at 10:30:00 mac 00:1a:2b:3c:4d:5e, url http://[2001:db8::2]:8080/x",
        );
        assert_eq!(
            values(&iocs, "ipv6"),
            ["2001:db8::1", "fe80::1", "2001:db8::2"]
        );
    }

    #[test]
    fn extracts_hashes_by_length_and_cves() {
        let md5 = "44d88612fea8a8f36de82e1278abb02f";
        let sha1 = "3395856ce81f2b7382dee72602f798b642f14140";
        let sha256 = "275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F";
        let text = format!(
            "md5 {md5} sha1 {sha1} sha256 {sha256} odd {} cve-2021-44228 and CVE-2023-4966",
            "a".repeat(33)
        );
        let iocs = extract(&text);
        assert_eq!(values(&iocs, "md5"), [md5]);
        assert_eq!(values(&iocs, "sha1"), [sha1]);
        assert_eq!(values(&iocs, "sha256"), [sha256.to_lowercase()]);
        assert_eq!(values(&iocs, "cve"), ["CVE-2021-44228", "CVE-2023-4966"]);
    }

    #[test]
    fn deduplicates_and_keeps_every_occurrence() {
        let iocs = extract("evil[.]com then EVIL.com then evil.com");
        assert_eq!(iocs.len(), 1);
        assert_eq!(iocs[0].value, "evil.com");
        assert!(iocs[0].defanged);
        assert_eq!(iocs[0].occurrences.len(), 3);
        assert_eq!(iocs[0].occurrences[1].raw, "EVIL.com");
    }

    #[test]
    fn skips_file_names_unless_defanged_and_trims_prose_punctuation() {
        let iocs =
            extract("opened invoice.pdf and ran update.ps1 (see https://example.org/a_(b)).");
        assert_eq!(values(&iocs, "domain"), ["example.org"]);
        assert_eq!(values(&iocs, "url"), ["https://example.org/a_(b)"]);
        let iocs = extract("dropper at payload[.]zip");
        assert_eq!(values(&iocs, "domain"), ["payload.zip"]);
    }

    #[test]
    fn output_counts_every_type() {
        let output = extract_output("mail a@b.example about 8.8.8.8");
        assert_eq!(output["counts"]["ipv4"], 1);
        assert_eq!(output["counts"]["email"], 1);
        assert_eq!(output["counts"]["domain"], 1);
        assert_eq!(output["counts"]["sha256"], 0);
        assert_eq!(output["iocs"][0]["type"], "domain");
        assert_eq!(output["iocs"][0]["occurrences"][0]["raw"], "b.example");
    }

    #[test]
    fn unicode_domains_are_kept_for_homoglyph_checks() {
        let iocs = extract("login at pаypal.com now");
        assert_eq!(values(&iocs, "domain"), ["pаypal.com"]);
    }
}
