//! Validators: checks a candidate match must pass to become a finding
//! (checksums, structure, std address parsing). All are pure functions of
//! the matched text.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A named validator a rule file can ask for (`validator: luhn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validator {
    /// Payment card: 12–19 digits, known brand prefix, Luhn checksum.
    Luhn,
    /// IBAN: country length table and ISO 7064 mod 97-10.
    Iban,
    /// IPv4 address (std parser: four decimal octets, no leading zeros).
    Ipv4,
    /// IPv6 address (std parser), at least three groups (or `::1`).
    Ipv6,
    /// US Social Security number: area, group and serial rules.
    UsSsn,
    /// Chinese resident identity number: GB 11643 checksum, valid birth date.
    CnResidentId,
    /// Email address: dotted domain with an alphabetic TLD, local-part rules.
    Email,
    /// Phone number: 7–15 digits, not date-shaped, separators or a `+`.
    Phone,
    /// Secret-looking value: has a letter and a digit, at most two `/`,
    /// no `:`, `&` or `<` (paths, URLs, markup and placeholders are not secrets).
    TokenShape,
    /// Chinese mobile number: `1[3-9]` and 11 digits (optional +86).
    CnMobile,
}

impl Validator {
    /// Names accepted in rule files.
    pub const NAMES: [&'static str; 10] = [
        "luhn",
        "iban",
        "ipv4",
        "ipv6",
        "us_ssn",
        "cn_resident_id",
        "email",
        "phone",
        "cn_mobile",
        "token_shape",
    ];

    /// The validator called `name` in rule files.
    pub fn from_name(name: &str) -> Option<Validator> {
        Some(match name {
            "luhn" => Validator::Luhn,
            "iban" => Validator::Iban,
            "ipv4" => Validator::Ipv4,
            "ipv6" => Validator::Ipv6,
            "us_ssn" => Validator::UsSsn,
            "cn_resident_id" => Validator::CnResidentId,
            "email" => Validator::Email,
            "phone" => Validator::Phone,
            "cn_mobile" => Validator::CnMobile,
            "token_shape" => Validator::TokenShape,
            _ => return None,
        })
    }

    /// Its name in rule files and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Validator::Luhn => "luhn",
            Validator::Iban => "iban",
            Validator::Ipv4 => "ipv4",
            Validator::Ipv6 => "ipv6",
            Validator::UsSsn => "us_ssn",
            Validator::CnResidentId => "cn_resident_id",
            Validator::Email => "email",
            Validator::Phone => "phone",
            Validator::CnMobile => "cn_mobile",
            Validator::TokenShape => "token_shape",
        }
    }

    /// Whether `candidate` passes.
    pub fn check(self, candidate: &str) -> bool {
        match self {
            Validator::Luhn => is_payment_card(candidate),
            Validator::Iban => is_iban(candidate),
            Validator::Ipv4 => candidate.parse::<Ipv4Addr>().is_ok(),
            Validator::Ipv6 => is_ipv6(candidate),
            Validator::UsSsn => is_us_ssn(candidate),
            Validator::CnResidentId => is_cn_resident_id(candidate),
            Validator::Email => is_email(candidate),
            Validator::Phone => is_phone(candidate),
            Validator::CnMobile => is_cn_mobile(candidate),
            Validator::TokenShape => is_token_shaped(candidate),
        }
    }
}

fn digits(text: &str) -> Vec<u8> {
    text.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// Luhn checksum over decimal digits.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, digit) in digits.iter().rev().enumerate() {
        let mut d = u32::from(*digit);
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Issuer prefixes (IIN ranges) of the common brands, with their lengths.
fn known_card_brand(d: &[u8]) -> bool {
    let prefix = |n: usize| {
        d.iter()
            .take(n)
            .fold(0u32, |acc, x| acc * 10 + u32::from(*x))
    };
    let len = d.len();
    let p1 = prefix(1);
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    let p6 = prefix(6);
    match () {
        // Visa
        () if p1 == 4 => matches!(len, 13 | 16 | 19),
        // Mastercard (51-55, 2221-2720)
        () if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) => len == 16,
        // American Express
        () if p2 == 34 || p2 == 37 => len == 15,
        // Diners Club
        () if p2 == 36 || p2 == 38 || p2 == 39 || (300..=305).contains(&p3) || p3 == 309 => {
            (14..=19).contains(&len)
        }
        // Discover
        () if p4 == 6011
            || p2 == 65
            || (644..=649).contains(&p3)
            || (622126..=622925).contains(&p6) =>
        {
            (16..=19).contains(&len)
        }
        // JCB (assigned 3528-3589; generators use all of 35xx), and the old
        // 15-digit 2131/1800 ranges
        () if p2 == 35 => (16..=19).contains(&len),
        () if p4 == 2131 || p4 == 1800 => len == 15,
        // UnionPay
        () if p2 == 62 => (16..=19).contains(&len),
        // Maestro (incl. the 0604 range)
        () if p2 == 50 || (56..=69).contains(&p2) || p4 == 604 => (12..=19).contains(&len),
        () => false,
    }
}

fn is_payment_card(candidate: &str) -> bool {
    let d = digits(candidate);
    (12..=19).contains(&d.len()) && known_card_brand(&d) && luhn(&d)
}

/// IBAN lengths per country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

fn is_iban(candidate: &str) -> bool {
    let compact: Vec<u8> = candidate
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'-')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if compact.len() < 4 || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let country = std::str::from_utf8(&compact[..2]).unwrap_or_default();
    let Some((_, length)) = IBAN_LENGTHS.iter().find(|(code, _)| *code == country) else {
        return false;
    };
    if compact.len() != *length || !compact[2].is_ascii_digit() || !compact[3].is_ascii_digit() {
        return false;
    }
    // Move the first four characters to the end, letters to 10..35, mod 97.
    let mut remainder = 0u32;
    for byte in compact[4..].iter().chain(&compact[..4]) {
        let value = if byte.is_ascii_digit() {
            u32::from(byte - b'0')
        } else {
            u32::from(byte - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

fn is_ipv6(candidate: &str) -> bool {
    let groups = candidate.split(':').filter(|g| !g.is_empty()).count();
    (groups >= 3 || candidate == "::1") && candidate.parse::<Ipv6Addr>().is_ok()
}

fn is_us_ssn(candidate: &str) -> bool {
    let d = digits(candidate);
    if d.len() != 9 {
        return false;
    }
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = u32::from(d[3]) * 10 + u32::from(d[4]);
    let serial = d[5..].iter().fold(0u32, |acc, x| acc * 10 + u32::from(*x));
    // Never issued: area 000, 666, 900-999; group 00; serial 0000; and
    // advertising/sample numbers (078-05-1120, 219-09-9999, 123-45-6789).
    let sample = matches!(
        (area, group, serial),
        (78, 5, 1120) | (219, 9, 9999) | (123, 45, 6789)
    );
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 && !sample
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Whether `year-month-day` is a real calendar date.
fn valid_date(year: u32, month: u32, day: u32) -> bool {
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

fn is_cn_resident_id(candidate: &str) -> bool {
    let bytes = candidate.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let d: Vec<u32> = bytes[..17].iter().map(|b| u32::from(b - b'0')).collect();
    // Region: province codes start with 1-8.
    if !(1..=8).contains(&d[0]) {
        return false;
    }
    let number = |range: std::ops::Range<usize>| d[range].iter().fold(0u32, |acc, x| acc * 10 + x);
    let (year, month, day) = (number(6..10), number(10..12), number(12..14));
    if !(1900..=2100).contains(&year) || !valid_date(year, month, day) {
        return false;
    }
    // GB 11643-1999: weights 2^(17-i) mod 11, check = (12 - sum mod 11) mod 11.
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = d.iter().zip(WEIGHTS).map(|(x, w)| x * w).sum();
    let check = (12 - sum % 11) % 11;
    let expected = if check == 10 {
        b'X'
    } else {
        b'0' + check as u8
    };
    bytes[17].to_ascii_uppercase() == expected
}

fn is_email(candidate: &str) -> bool {
    let Some((local, domain)) = candidate.rsplit_once('@') else {
        return false;
    };
    if local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || domain.len() > 253
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let tld = labels[labels.len() - 1];
    labels
        .iter()
        .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'))
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Whether digit groups look like a date (`12-10-2020`, `2020.10.12`).
fn date_shaped(groups: &[&str]) -> bool {
    if groups.len() != 3 {
        return false;
    }
    let n = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
    let (a, b, c) = (groups[0], groups[1], groups[2]);
    let year_like = |s: &str| s.len() == 4 && (1900..=2100).contains(&n(s));
    let small = |s: &str, max: u32| s.len() <= 2 && (1..=max).contains(&n(s));
    (year_like(a) && small(b, 12) && small(c, 31)) || (year_like(c) && small(a, 31) && small(b, 31))
}

fn is_phone(candidate: &str) -> bool {
    let body = match candidate.find(['x', 'X']) {
        Some(ext) => &candidate[..ext],
        None => candidate,
    }
    .trim_end();
    let count = body.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&count) {
        return false;
    }
    let groups: Vec<&str> = body
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    if date_shaped(&groups) {
        return false;
    }
    let international = body.starts_with('+') || body.starts_with("00");
    if groups.len() == 1 && !international {
        // An unseparated national number: 10 digits (NANP) or a CN mobile.
        return count == 10 || is_cn_mobile(body);
    }
    // Dotted quads are IPv4 addresses or version numbers, not phones.
    let dots = body.bytes().filter(|b| *b == b'.').count();
    !(dots == 3 && groups.len() == 4 && groups.iter().all(|g| g.len() <= 3))
}

fn is_cn_mobile(candidate: &str) -> bool {
    let d = digits(candidate);
    let national = match d.len() {
        11 => &d[..],
        13 if d[..2] == [8, 6] => &d[2..],
        _ => return false,
    };
    national[0] == 1 && (3..=9).contains(&national[1])
}

fn is_token_shaped(candidate: &str) -> bool {
    let bytes = candidate.as_bytes();
    bytes.iter().any(u8::is_ascii_alphabetic)
        && bytes.iter().any(u8::is_ascii_digit)
        && bytes.iter().filter(|b| **b == b'/').count() <= 2
        && !bytes.iter().any(|b| matches!(b, b':' | b'&' | b'<' | b'>'))
}

/// Shannon entropy of `bytes` in bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for b in bytes {
        counts[usize::from(*b)] += 1;
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / len;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: &str, valid: &[&str], invalid: &[&str]) {
        let validator = Validator::from_name(v).unwrap();
        for c in valid {
            assert!(validator.check(c), "{v} should accept {c:?}");
        }
        for c in invalid {
            assert!(!validator.check(c), "{v} should reject {c:?}");
        }
    }

    #[test]
    fn luhn_cards() {
        check(
            "luhn",
            &[
                "4111 1111 1111 1111",
                "4111-1111-1111-1111",
                "5555555555554444",
                "378282246310005",
                "6011111111111117",
                "3530111333300000",
                "2223003122003222",
            ],
            &[
                "4111 1111 1111 1112", // checksum
                "1234567812345670",    // valid Luhn, no brand
                "411111111111",        // Visa with a wrong length
                "0000000000000000",
            ],
        );
    }

    #[test]
    fn iban_checksum_and_length() {
        check(
            "iban",
            &[
                "GB82 WEST 1234 5698 7654 32",
                "DE89370400440532013000",
                "gb82west12345698765432",
            ],
            &[
                "GB82 WEST 1234 5698 7654 33", // checksum
                "GB82WEST123456987654",        // length
                "XX82WEST12345698765432",      // country
            ],
        );
    }

    #[test]
    fn ip_addresses() {
        check(
            "ipv4",
            &["192.168.0.1", "8.8.8.8"],
            &["256.1.1.1", "1.2.3", "01.2.3.4"],
        );
        check(
            "ipv6",
            &[
                "2001:db8::1",
                "6e40:4041:c617:e898:c11:40d2:c669:2eb4",
                "::1",
            ],
            &["a::b", "12:30:45", "2001:db8:::1", "gggg::1:2"],
        );
    }

    #[test]
    fn ssn_rules() {
        check(
            "us_ssn",
            &["460-89-9847", "853 37 1694", "001-01-0001"],
            &[
                "000-12-3456",
                "666-12-3456",
                "912-12-3456",
                "123-00-4567",
                "123-45-0000",
                "078-05-1120",
                "12-345-678",
            ],
        );
    }

    #[test]
    fn cn_resident_id_checksum_and_date() {
        check(
            "cn_resident_id",
            &["11010519491231002X", "11010519491231002x"],
            &[
                "110105194912310021", // checksum
                "110105194902300027", // 30 February
                "910105194912310025", // region
                "1101051949123100",   // length
            ],
        );
    }

    #[test]
    fn email_structure() {
        check(
            "email",
            &[
                "a.b@example.com",
                "UtaKortig@jourrapide.com",
                "x+tag@sub.example.co.uk",
            ],
            &[
                "a..b@example.com",
                ".a@example.com",
                "a@localhost",
                "a@example.c0m",
                "a@-x.com",
            ],
        );
    }

    #[test]
    fn phone_shapes() {
        check(
            "phone",
            &[
                "905-674-3793",
                "+46 (0)8 928 571 38",
                "(579)888-3058",
                "9498777106",
                "467 3395",
                "345-899-3560x4587",
            ],
            &[
                "12-10-2020",
                "2020.10.12",
                "123 456",
                "192.168.100.200",
                "12345678",
                "1234567890123456",
            ],
        );
        check(
            "cn_mobile",
            &["13812345678", "+86 138 1234 5678", "19912345678"],
            &["12812345678", "1381234567", "23812345678"],
        );
    }

    #[test]
    fn token_shape() {
        check(
            "token_shape",
            &[
                "h7Gq2!xLp9#vRt4zW",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ],
            &[
                "/en/enterprise/3.0/authentication/x",
                "arn:aws:iam::aws:policy/X1",
                "&lt;YOURPASSWORD1&gt;",
                "abcdefghijklmnopq",
            ],
        );
    }

    #[test]
    fn entropy_of_uniform_and_constant() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    }
}
