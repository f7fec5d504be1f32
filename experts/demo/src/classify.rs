//! `ioc/classify-ips` and `ioc/classify-domains`: what an address or a name
//! is, from its shape alone, with a reason for every verdict.
//!
//! IPs are placed in the special-purpose ranges of the IANA registries
//! (RFC 6890 and the RFCs each range cites). Domains are checked for
//! reserved names (RFC 2606, 6761, 6762, 7686, 8375, 9476), punycode
//! (decoded per RFC 3492), mixed-script and confusable characters
//! (homoglyphs), brand names written with digits (`micros0ft`), long labels
//! and DGA-like randomness (Shannon entropy, digits, consonant runs).
//! Nothing here consults reputation data: a `public` IP or a `no-signal`
//! domain is not a claim that it is benign.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

/// Severity of a finding, from least to most.
pub const SEVERITIES: [&str; 4] = ["info", "low", "medium", "high"];

/// One classified indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The indicator as given.
    pub indicator: String,
    /// `ipv4`, `ipv6` or `domain`.
    pub indicator_type: &'static str,
    /// What it is, e.g. `private`, `documentation`, `homoglyph`.
    pub verdict: &'static str,
    /// One of [`SEVERITIES`].
    pub severity: &'static str,
    /// 0..1: how strongly the signals point at something to investigate.
    pub score: f64,
    /// Why, one sentence per signal.
    pub reasons: Vec<String>,
    /// Type-specific facts (range, RFC, unicode form, entropy, ...).
    pub details: Value,
}

impl Finding {
    /// The JSON form used in skill outputs.
    pub fn to_json(&self) -> Value {
        json!({
            "indicator": self.indicator,
            "indicator_type": self.indicator_type,
            "verdict": self.verdict,
            "severity": self.severity,
            "score": round3(self.score),
            "reasons": self.reasons,
            "details": self.details,
        })
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

// === IP addresses ===

struct Range {
    verdict: &'static str,
    label: &'static str,
    cidr: &'static str,
    rfc: &'static str,
}

const fn range(
    verdict: &'static str,
    label: &'static str,
    cidr: &'static str,
    rfc: &'static str,
) -> Range {
    Range {
        verdict,
        label,
        cidr,
        rfc,
    }
}

/// IPv4 special-purpose ranges, most specific first.
const IPV4_RANGES: &[Range] = &[
    range(
        "unspecified",
        "the unspecified address",
        "0.0.0.0/32",
        "RFC 1122",
    ),
    range(
        "broadcast",
        "the limited broadcast address",
        "255.255.255.255/32",
        "RFC 919",
    ),
    range("reserved", "\"this network\"", "0.0.0.0/8", "RFC 1122"),
    range("private", "private-use space", "10.0.0.0/8", "RFC 1918"),
    range(
        "shared",
        "shared address space (carrier-grade NAT)",
        "100.64.0.0/10",
        "RFC 6598",
    ),
    range("loopback", "loopback", "127.0.0.0/8", "RFC 1122"),
    range("link-local", "link-local", "169.254.0.0/16", "RFC 3927"),
    range("private", "private-use space", "172.16.0.0/12", "RFC 1918"),
    range(
        "documentation",
        "TEST-NET-1, for documentation",
        "192.0.2.0/24",
        "RFC 5737",
    ),
    range(
        "reserved",
        "IETF protocol assignments",
        "192.0.0.0/24",
        "RFC 6890",
    ),
    range(
        "reserved",
        "the deprecated 6to4 relay anycast prefix",
        "192.88.99.0/24",
        "RFC 7526",
    ),
    range("private", "private-use space", "192.168.0.0/16", "RFC 1918"),
    range(
        "benchmarking",
        "benchmarking space",
        "198.18.0.0/15",
        "RFC 2544",
    ),
    range(
        "documentation",
        "TEST-NET-2, for documentation",
        "198.51.100.0/24",
        "RFC 5737",
    ),
    range(
        "documentation",
        "TEST-NET-3, for documentation",
        "203.0.113.0/24",
        "RFC 5737",
    ),
    range("multicast", "multicast", "224.0.0.0/4", "RFC 5771"),
    range(
        "reserved",
        "reserved for future use",
        "240.0.0.0/4",
        "RFC 1112",
    ),
];

/// IPv6 special-purpose ranges, most specific first.
const IPV6_RANGES: &[Range] = &[
    range(
        "unspecified",
        "the unspecified address",
        "::/128",
        "RFC 4291",
    ),
    range("loopback", "loopback", "::1/128", "RFC 4291"),
    range(
        "reserved",
        "the NAT64 well-known prefix",
        "64:ff9b::/96",
        "RFC 6052",
    ),
    range("reserved", "discard-only space", "100::/64", "RFC 6666"),
    range(
        "documentation",
        "documentation space",
        "2001:db8::/32",
        "RFC 3849",
    ),
    range(
        "documentation",
        "documentation space",
        "3fff::/20",
        "RFC 9637",
    ),
    range("tunnel", "Teredo tunnelling", "2001::/32", "RFC 4380"),
    range("tunnel", "6to4 tunnelling", "2002::/16", "RFC 3056"),
    range("private", "unique local addresses", "fc00::/7", "RFC 4193"),
    range("link-local", "link-local unicast", "fe80::/10", "RFC 4291"),
    range("multicast", "multicast", "ff00::/8", "RFC 4291"),
];

fn in_cidr(address: IpAddr, cidr: &str) -> bool {
    let Some((network, prefix)) = cidr.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u32>() else {
        return false;
    };
    match (address, network.parse::<IpAddr>()) {
        (IpAddr::V4(address), Ok(IpAddr::V4(network))) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(address) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(address), Ok(IpAddr::V6(network))) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(address) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// Classifies one IP address.
pub fn classify_ip(address: IpAddr) -> Finding {
    let indicator_type = if address.is_ipv4() { "ipv4" } else { "ipv6" };
    // An IPv4-mapped IPv6 address is the IPv4 address it carries.
    if let IpAddr::V6(v6) = address
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        let mut finding = classify_ip(IpAddr::V4(v4));
        finding.indicator = address.to_string();
        finding.indicator_type = "ipv6";
        finding.reasons.insert(
            0,
            format!("IPv4-mapped IPv6 address (RFC 4291) carrying {v4}"),
        );
        return finding;
    }
    let ranges = if address.is_ipv4() {
        IPV4_RANGES
    } else {
        IPV6_RANGES
    };
    for range in ranges {
        if in_cidr(address, range.cidr) {
            let (severity, score, consequence) = match range.verdict {
                "private" | "shared" => (
                    "low",
                    0.2,
                    "an internal host: check which asset it is and what it did",
                ),
                "tunnel" => (
                    "medium",
                    0.5,
                    "traffic to it leaves the network through a tunnel; check who uses it",
                ),
                "documentation" => (
                    "info",
                    0.05,
                    "not routable on the internet; probably a placeholder or an example",
                ),
                _ => ("info", 0.05, "not a routable internet host"),
            };
            return Finding {
                indicator: address.to_string(),
                indicator_type,
                verdict: range.verdict,
                severity,
                score,
                reasons: vec![format!(
                    "{address} is in {} ({}, {}): {consequence}",
                    range.cidr, range.label, range.rfc
                )],
                details: json!({
                    "range": range.cidr,
                    "rfc": range.rfc,
                    "routable": range.verdict == "tunnel",
                }),
            };
        }
    }
    let public = match address {
        IpAddr::V4(_) => true,
        // Global unicast is 2000::/3; the rest of the space is unassigned.
        IpAddr::V6(v6) => in_cidr(IpAddr::V6(v6), "2000::/3"),
    };
    if public {
        Finding {
            indicator: address.to_string(),
            indicator_type,
            verdict: "public",
            severity: "medium",
            score: 0.5,
            reasons: vec![format!(
                "{address} is publicly routable: external infrastructure; check its reputation and the connections made to it"
            )],
            details: json!({ "routable": true }),
        }
    } else {
        Finding {
            indicator: address.to_string(),
            indicator_type,
            verdict: "reserved",
            severity: "info",
            score: 0.05,
            reasons: vec![format!(
                "{address} is outside global unicast space (2000::/3) and unassigned"
            )],
            details: json!({ "routable": false }),
        }
    }
}

// === domains ===

/// Reserved top-level names and where they are reserved.
const RESERVED_TLDS: &[(&str, &str)] = &[
    ("test", "RFC 2606/6761, reserved for testing"),
    ("example", "RFC 2606/6761, reserved for examples"),
    ("invalid", "RFC 2606/6761, guaranteed never to resolve"),
    ("localhost", "RFC 2606/6761, the local host"),
    ("local", "RFC 6762, multicast DNS on the local link"),
    ("onion", "RFC 7686, Tor onion services"),
    ("alt", "RFC 9476, non-DNS name systems"),
    ("internal", "ICANN (2024), private-use names"),
];

/// Second-level names reserved for examples (RFC 2606).
const RESERVED_DOMAINS: &[&str] = &["example.com", "example.net", "example.org", "home.arpa"];

/// Brands commonly impersonated in phishing, checked against names written
/// with look-alike characters.
const BRANDS: &[&str] = &[
    "microsoft",
    "office",
    "outlook",
    "paypal",
    "apple",
    "google",
    "amazon",
    "netflix",
    "facebook",
    "linkedin",
    "dropbox",
    "docusign",
    "adobe",
    "okta",
    "github",
    "wellsfargo",
    "chase",
];

/// Second-level labels under which ccTLDs register names (`co.uk`).
const SECOND_LEVEL_SUFFIXES: &[&str] = &["co", "com", "net", "org", "gov", "ac", "edu", "ne", "or"];

/// DGA score at or above which a name is reported as `dga-like`.
const DGA_THRESHOLD: f64 = 0.5;
/// Labels longer than this are reported as unusually long.
const LONG_LABEL: usize = 30;

/// Classifies one domain name.
pub fn classify_domain(domain: &str) -> Finding {
    let name = domain.trim_end_matches('.').to_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let tld = labels.last().copied().unwrap_or_default();
    let mut reasons = Vec::new();
    let mut details = serde_json::Map::new();

    for (reserved, why) in RESERVED_TLDS {
        if tld == *reserved {
            return reserved_finding(domain, &name, format!("`.{tld}` is reserved ({why})"));
        }
    }
    for reserved in RESERVED_DOMAINS {
        if name == *reserved || name.ends_with(&format!(".{reserved}")) {
            return reserved_finding(
                domain,
                &name,
                format!("`{reserved}` is reserved (RFC 2606/8375)"),
            );
        }
    }

    // Unicode form: decode punycode labels.
    let mut unicode_labels = Vec::with_capacity(labels.len());
    let mut punycode = false;
    let mut invalid_punycode = false;
    for label in &labels {
        match label.strip_prefix("xn--") {
            Some(encoded) => {
                punycode = true;
                match punycode_decode(encoded) {
                    Some(decoded) => unicode_labels.push(decoded),
                    None => {
                        invalid_punycode = true;
                        unicode_labels.push((*label).to_owned());
                    }
                }
            }
            None => unicode_labels.push((*label).to_owned()),
        }
    }
    let unicode = unicode_labels.join(".");
    if punycode {
        details.insert("unicode".into(), Value::from(unicode.clone()));
        reasons.push(format!(
            "punycode (internationalised) name; reads as `{unicode}`"
        ));
    }
    if invalid_punycode {
        reasons.push("a label starts with `xn--` but is not valid punycode (RFC 3492)".to_owned());
    }

    // Homoglyphs: mixed scripts within a label, or characters that look
    // like ASCII letters.
    let mut homoglyph = false;
    for label in &unicode_labels {
        let scripts = scripts_of(label);
        if scripts.len() > 1 {
            homoglyph = true;
            reasons.push(format!(
                "label `{label}` mixes scripts ({}), a classic homoglyph trick",
                scripts.join(" and ")
            ));
        }
    }
    let skeleton: String = unicode.chars().map(confusable_to_ascii).collect();
    if !unicode.is_ascii() && skeleton.is_ascii() && skeleton != unicode {
        homoglyph = true;
        details.insert("looks_like".into(), Value::from(skeleton.clone()));
        reasons.push(format!(
            "`{unicode}` is made to look like `{skeleton}` with non-Latin characters"
        ));
    }

    // Brand names written with digits or look-alikes (`micros0ft`).
    let registrable = registrable_label(&labels);
    let mut impersonation = None;
    for brand in BRANDS {
        if registrable.contains(brand) {
            continue;
        }
        for variant in leet_skeletons(&skeleton_of_label(&unicode_labels, registrable)) {
            if variant.contains(brand) {
                impersonation = Some(*brand);
            }
        }
    }
    if let Some(brand) = impersonation {
        details.insert("impersonates".into(), Value::from(brand));
        reasons.push(format!(
            "`{registrable}` reads as the brand `{brand}` with look-alike characters (typosquatting)"
        ));
    }

    // Randomness (DGA) and length.
    let lexical = lexical_features(registrable);
    details.insert("registrable_label".into(), Value::from(registrable));
    details.insert("entropy".into(), Value::from(round3(lexical.entropy)));
    details.insert("dga_score".into(), Value::from(round3(lexical.dga_score)));
    let long_labels: Vec<&str> = labels
        .iter()
        .copied()
        .filter(|label| label.chars().count() > LONG_LABEL)
        .collect();
    for label in &long_labels {
        reasons.push(format!(
            "label `{label}` is {} characters long (over {LONG_LABEL}), common in tunnelling and generated names",
            label.chars().count()
        ));
    }
    let dga_like = lexical.dga_score >= DGA_THRESHOLD;
    if dga_like {
        reasons.push(format!(
            "`{registrable}` looks machine-generated: Shannon entropy {:.2} bits/char, {} characters, {:.0}% digits, longest consonant run {} (DGA score {:.2} >= {DGA_THRESHOLD})",
            lexical.entropy,
            lexical.length,
            lexical.digit_ratio * 100.0,
            lexical.max_consonant_run,
            lexical.dga_score
        ));
    }

    let (verdict, severity, score) = if homoglyph || invalid_punycode {
        ("homoglyph", "high", 0.9)
    } else if impersonation.is_some() {
        ("impersonation", "high", 0.85)
    } else if dga_like {
        ("dga-like", "medium", lexical.dga_score.max(0.6))
    } else if !long_labels.is_empty() {
        ("long-label", "medium", 0.5)
    } else if punycode {
        ("punycode", "low", 0.3)
    } else {
        reasons.push(format!(
            "no lexical signal in `{name}` (entropy {:.2}); its reputation was not checked",
            lexical.entropy
        ));
        ("no-signal", "low", lexical.dga_score.min(0.3))
    };
    Finding {
        indicator: domain.to_owned(),
        indicator_type: "domain",
        verdict,
        severity,
        score,
        reasons,
        details: Value::Object(details),
    }
}

fn reserved_finding(domain: &str, name: &str, reason: String) -> Finding {
    Finding {
        indicator: domain.to_owned(),
        indicator_type: "domain",
        verdict: "reserved",
        severity: "info",
        score: 0.05,
        reasons: vec![format!(
            "{reason}: `{name}` is not a real internet name; probably a placeholder or internal"
        )],
        details: json!({ "reserved": true }),
    }
}

/// The label an organisation registers: the one before the TLD, or before
/// a ccTLD's second-level suffix (`evil` in `evil.co.uk`). An approximation
/// of the public suffix list, which the demo does not ship.
fn registrable_label<'a>(labels: &[&'a str]) -> &'a str {
    match labels {
        [] => "",
        [only] => only,
        [.., label, second, tld] if tld.len() == 2 && SECOND_LEVEL_SUFFIXES.contains(second) => {
            label
        }
        [.., label, _tld] => label,
    }
}

fn skeleton_of_label(unicode_labels: &[String], registrable: &str) -> String {
    // The registrable label's Unicode form, mapped to ASCII look-alikes.
    let unicode = unicode_labels
        .iter()
        .find(|label| label.as_str() == registrable)
        .cloned()
        .unwrap_or_else(|| registrable.to_owned());
    unicode.chars().map(confusable_to_ascii).collect()
}

/// Readings of a label with digits taken as the letters they resemble
/// (`1` as `l` and as `i`).
fn leet_skeletons(label: &str) -> [String; 2] {
    let read = |one: char| {
        label
            .chars()
            .map(|c| match c {
                '0' => 'o',
                '1' => one,
                '3' => 'e',
                '4' => 'a',
                '5' => 's',
                '7' => 't',
                '8' => 'b',
                other => other,
            })
            .collect::<String>()
            .replace("rn", "m")
            .replace("vv", "w")
    };
    [read('l'), read('i')]
}

/// ASCII letter a character is commonly confused with (itself otherwise).
fn confusable_to_ascii(c: char) -> char {
    match c {
        // Cyrillic
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' => 'e',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'у' => 'y',
        'х' => 'x',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'ԁ' => 'd',
        'һ' => 'h',
        'ӏ' => 'l',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'к' => 'k',
        'м' => 'm',
        'т' => 't',
        'п' => 'n',
        // Greek
        'α' => 'a',
        'ο' => 'o',
        'ρ' => 'p',
        'ν' => 'v',
        'ι' => 'i',
        'κ' => 'k',
        'υ' => 'u',
        'ε' => 'e',
        'χ' => 'x',
        'τ' => 't',
        // Latin look-alikes
        'ı' => 'i',
        'ɑ' => 'a',
        'ɡ' => 'g',
        'ⅼ' => 'l',
        other => other,
    }
}

/// Scripts of the letters in a label (digits and `-` belong to none).
fn scripts_of(label: &str) -> Vec<&'static str> {
    let mut scripts = Vec::new();
    for c in label.chars() {
        let script = match c as u32 {
            0x30..=0x39 | 0x2d => continue,
            0x41..=0x5a | 0x61..=0x7a | 0xc0..=0x24f | 0x1e00..=0x1eff => "Latin",
            0x370..=0x3ff | 0x1f00..=0x1fff => "Greek",
            0x400..=0x52f => "Cyrillic",
            0x530..=0x58f => "Armenian",
            _ => "other",
        };
        if !scripts.contains(&script) {
            scripts.push(script);
        }
    }
    scripts
}

/// Lexical features of a label, for the DGA score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lexical {
    /// Characters.
    pub length: usize,
    /// Shannon entropy, bits per character.
    pub entropy: f64,
    /// Share of digits, when letters and digits mix (0 otherwise).
    pub digit_ratio: f64,
    /// Longest run of consonants.
    pub max_consonant_run: usize,
    /// 0..1: weighted entropy, length, digits and consonant runs.
    pub dga_score: f64,
}

/// Shannon entropy (bits per character) of `text`.
pub fn shannon_entropy(text: &str) -> f64 {
    let mut counts: Vec<(char, usize)> = Vec::new();
    let mut total = 0usize;
    for c in text.chars() {
        total += 1;
        match counts.iter_mut().find(|(seen, _)| *seen == c) {
            Some((_, count)) => *count += 1,
            None => counts.push((c, 1)),
        }
    }
    if total == 0 {
        return 0.0;
    }
    let mut entropy = 0.0;
    for (_, count) in counts {
        let p = count as f64 / total as f64;
        entropy -= p * p.log2();
    }
    entropy
}

/// Computes [`Lexical`] features of one label.
pub fn lexical_features(label: &str) -> Lexical {
    let length = label.chars().count();
    let entropy = shannon_entropy(label);
    let digits = label.chars().filter(char::is_ascii_digit).count();
    let letters = label.chars().filter(|c| c.is_alphabetic()).count();
    let digit_ratio = if digits > 0 && letters > 0 {
        digits as f64 / length as f64
    } else {
        0.0
    };
    let mut max_consonant_run = 0;
    let mut run = 0;
    for c in label.chars() {
        let consonant = c.is_ascii_alphabetic() && !"aeiouy".contains(c.to_ascii_lowercase());
        run = if consonant { run + 1 } else { 0 };
        max_consonant_run = max_consonant_run.max(run);
    }
    let clamp = |value: f64| value.clamp(0.0, 1.0);
    let dga_score = 0.4 * clamp((entropy - 2.5) / 1.5)
        + 0.25 * clamp((length as f64 - 8.0) / 16.0)
        + 0.15 * clamp(digit_ratio * 2.0)
        + 0.2 * clamp((max_consonant_run as f64 - 3.0) / 4.0);
    Lexical {
        length,
        entropy,
        digit_ratio,
        max_consonant_run,
        dga_score,
    }
}

/// Decodes a punycode label (without its `xn--` prefix), per RFC 3492.
pub fn punycode_decode(input: &str) -> Option<String> {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    const INITIAL_BIAS: u32 = 72;
    const INITIAL_N: u32 = 128;

    let (basic, encoded) = match input.rfind('-') {
        Some(index) => (&input[..index], &input[index + 1..]),
        None => ("", input),
    };
    if !basic.is_ascii() {
        return None;
    }
    let mut output: Vec<char> = basic.chars().collect();
    let mut n = INITIAL_N;
    let mut i: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let mut digits = encoded.bytes().peekable();
    while digits.peek().is_some() {
        let old_i = i;
        let mut weight: u32 = 1;
        let mut k = BASE;
        loop {
            let byte = digits.next()?;
            let digit = match byte {
                b'a'..=b'z' => u32::from(byte - b'a'),
                b'A'..=b'Z' => u32::from(byte - b'A'),
                b'0'..=b'9' => u32::from(byte - b'0') + 26,
                _ => return None,
            };
            i = i.checked_add(digit.checked_mul(weight)?)?;
            let threshold = if k <= bias {
                T_MIN
            } else if k >= bias + T_MAX {
                T_MAX
            } else {
                k - bias
            };
            if digit < threshold {
                break;
            }
            weight = weight.checked_mul(BASE - threshold)?;
            k += BASE;
        }
        let length = u32::try_from(output.len()).ok()? + 1;
        bias = punycode_adapt(i - old_i, length, old_i == 0);
        n = n.checked_add(i / length)?;
        i %= length;
        output.insert(usize::try_from(i).ok()?, char::from_u32(n)?);
        i += 1;
    }
    Some(output.into_iter().collect())
}

fn punycode_adapt(delta: u32, num_points: u32, first_time: bool) -> u32 {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;
    let mut delta = if first_time { delta / DAMP } else { delta / 2 };
    delta += delta / num_points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
}

/// Parses an IP address as the extractor writes it (zone ids allowed).
pub fn parse_ip(value: &str) -> Option<IpAddr> {
    let without_zone = value.split('%').next().unwrap_or(value);
    without_zone
        .parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .or_else(|_| without_zone.parse::<Ipv6Addr>().map(IpAddr::V6))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Finding {
        classify_ip(text.parse().unwrap())
    }

    #[test]
    fn classifies_ipv4_special_ranges() {
        let cases = [
            ("10.20.4.17", "private", "RFC 1918"),
            ("172.31.255.1", "private", "RFC 1918"),
            ("192.168.1.1", "private", "RFC 1918"),
            ("100.64.0.1", "shared", "RFC 6598"),
            ("127.0.0.1", "loopback", "RFC 1122"),
            ("169.254.169.254", "link-local", "RFC 3927"),
            ("192.0.2.10", "documentation", "RFC 5737"),
            ("198.51.100.23", "documentation", "RFC 5737"),
            ("203.0.113.7", "documentation", "RFC 5737"),
            ("198.19.0.1", "benchmarking", "RFC 2544"),
            ("239.255.255.250", "multicast", "RFC 5771"),
            ("250.1.2.3", "reserved", "RFC 1112"),
            ("0.0.0.0", "unspecified", "RFC 1122"),
            ("255.255.255.255", "broadcast", "RFC 919"),
        ];
        for (address, verdict, rfc) in cases {
            let finding = ip(address);
            assert_eq!(finding.verdict, verdict, "{address}");
            assert_eq!(finding.details["rfc"], rfc, "{address}");
            assert!(finding.reasons[0].contains(rfc), "{:?}", finding.reasons);
        }
        let public = ip("185.220.101.47");
        assert_eq!(public.verdict, "public");
        assert_eq!(public.severity, "medium");
        assert!(!ip("172.32.0.1").verdict.contains("private"));
    }

    #[test]
    fn classifies_ipv6_special_ranges() {
        let cases = [
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("2001:db8::1", "documentation"),
            ("fd12:3456:789a::1", "private"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2002:c000:204::1", "tunnel"),
            ("2606:4700:4700::1111", "public"),
            ("4000::1", "reserved"),
        ];
        for (address, verdict) in cases {
            assert_eq!(ip(address).verdict, verdict, "{address}");
        }
        let mapped = ip("::ffff:10.0.0.1");
        assert_eq!(mapped.verdict, "private");
        assert_eq!(mapped.indicator_type, "ipv6");
        assert!(mapped.reasons[0].contains("IPv4-mapped"));
        assert_eq!(parse_ip("fe80::1%eth0"), Some("fe80::1".parse().unwrap()));
        assert_eq!(parse_ip("not-an-ip"), None);
    }

    #[test]
    fn decodes_punycode() {
        assert_eq!(punycode_decode("mnchen-3ya").as_deref(), Some("münchen"));
        assert_eq!(punycode_decode("80ak6aa92e").as_deref(), Some("аррӏе"));
        assert_eq!(punycode_decode("pple-43d").as_deref(), Some("аpple"));
        assert_eq!(punycode_decode("!!").as_deref(), None);
    }

    #[test]
    fn flags_reserved_names() {
        for name in [
            "intranet.test",
            "c2.example",
            "host.local",
            "x.onion",
            "example.com",
            "a.home.arpa",
        ] {
            assert_eq!(classify_domain(name).verdict, "reserved", "{name}");
        }
    }

    #[test]
    fn flags_homoglyphs_in_unicode_and_punycode() {
        let mixed = classify_domain("xn--pple-43d.com");
        assert_eq!(mixed.verdict, "homoglyph");
        assert_eq!(mixed.severity, "high");
        assert_eq!(mixed.details["unicode"], "аpple.com");
        assert_eq!(mixed.details["looks_like"], "apple.com");
        assert!(
            mixed
                .reasons
                .iter()
                .any(|r| r.contains("Cyrillic and Latin") || r.contains("Latin and Cyrillic"))
        );
        let whole_script = classify_domain("xn--80ak6aa92e.com");
        assert_eq!(whole_script.verdict, "homoglyph");
        assert_eq!(whole_script.details["looks_like"], "apple.com");
        let raw_unicode = classify_domain("pаypal.com");
        assert_eq!(raw_unicode.verdict, "homoglyph");
        let benign_idn = classify_domain("xn--mnchen-3ya.de");
        assert_eq!(benign_idn.verdict, "punycode");
        assert_eq!(benign_idn.severity, "low");
    }

    #[test]
    fn flags_brand_typosquats() {
        let finding = classify_domain("login-micros0ft.com");
        assert_eq!(finding.verdict, "impersonation");
        assert_eq!(finding.details["impersonates"], "microsoft");
        assert_eq!(
            classify_domain("paypa1-secure.co.uk").details["impersonates"],
            "paypal"
        );
        assert_eq!(classify_domain("microsoft.com").verdict, "no-signal");
        assert_eq!(
            classify_domain("rnicrosoft.net").details["impersonates"],
            "microsoft"
        );
    }

    #[test]
    fn scores_dga_like_names_and_long_labels() {
        let dga = classify_domain("a3f9k2lq8x7z0m4d.com");
        assert_eq!(dga.verdict, "dga-like", "{:?}", dga.reasons);
        assert!(dga.reasons.iter().any(|r| r.contains("Shannon entropy")));
        assert_eq!(classify_domain("xkqjzvtyhwpl.net").verdict, "dga-like");
        for benign in [
            "google.com",
            "stackoverflow.com",
            "microsoftonline.com",
            "wikipedia.org",
            "bbc.co.uk",
        ] {
            let finding = classify_domain(benign);
            assert_eq!(
                finding.verdict, "no-signal",
                "{benign}: {:?}",
                finding.details
            );
        }
        let long = classify_domain("thisisaverylonglabelthatkeepsgoingandgoing.example-cdn.net");
        assert!(
            long.reasons.iter().any(|r| r.contains("characters long")),
            "{:?}",
            long.reasons
        );
        assert_eq!(long.verdict, "long-label");
    }

    #[test]
    fn entropy_is_shannon() {
        assert_eq!(shannon_entropy(""), 0.0);
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-9);
        assert!((shannon_entropy("aabb") - 1.0).abs() < 1e-9);
    }
}
