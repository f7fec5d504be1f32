//! Sigma strings: wildcards (`*`, `?`) with backslash escapes, and their
//! compiled matchers.
//!
//! Escaping follows the Sigma specification: `\*`, `\?` and `\\` stand for
//! a literal `*`, `?` and `\`; a backslash before any other character is
//! itself literal (so `C:\Windows\` needs no escaping).
//!
//! A compiled [`Pattern`] picks the cheapest test that is exact for its
//! shape: equality, prefix, suffix, substring, or a linear-time wildcard
//! match with backtracking on the last `*` for the general case.

/// One piece of a Sigma string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A literal character.
    Lit(char),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters, possibly empty.
    Many,
}

/// Parses a Sigma string into pieces, honouring escapes.
pub(crate) fn parse(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => pieces.push(Piece::Many),
            '?' => pieces.push(Piece::One),
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    chars.next();
                    pieces.push(Piece::Lit(next));
                }
                _ => pieces.push(Piece::Lit('\\')),
            },
            other => pieces.push(Piece::Lit(other)),
        }
    }
    pieces
}

/// Pieces for a plain literal text (no wildcard interpretation), as produced
/// by encoding modifiers such as `base64`.
pub(crate) fn literal(text: &str) -> Vec<Piece> {
    text.chars().map(Piece::Lit).collect()
}

/// Adds `*` at the start and/or end unless already there.
pub(crate) fn wrap(mut pieces: Vec<Piece>, start: bool, end: bool) -> Vec<Piece> {
    if end && pieces.last() != Some(&Piece::Many) {
        pieces.push(Piece::Many);
    }
    if start && pieces.first() != Some(&Piece::Many) {
        pieces.insert(0, Piece::Many);
    }
    pieces
}

/// The literal text of pieces if they hold no wildcard.
fn as_literal(pieces: &[Piece]) -> Option<String> {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Lit(c) => Some(*c),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Everything, e.g. `*`.
    Any,
    /// General wildcard pattern over characters.
    Glob(Vec<Piece>),
}

/// A compiled Sigma string matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    kind: Kind,
    /// Case-sensitive (the `cased` modifier, or encoded values).
    cased: bool,
}

impl Pattern {
    /// Compiles pieces; unless `cased`, the pattern is lowercased and must be
    /// matched against lowercased text.
    pub(crate) fn compile(pieces: &[Piece], cased: bool) -> Self {
        let pieces: Vec<Piece> = if cased {
            pieces.to_vec()
        } else {
            pieces
                .iter()
                .flat_map(|p| match p {
                    Piece::Lit(c) => c.to_lowercase().map(Piece::Lit).collect::<Vec<_>>(),
                    other => vec![*other],
                })
                .collect()
        };
        // collapse runs of `*`
        let mut collapsed: Vec<Piece> = Vec::with_capacity(pieces.len());
        for p in pieces {
            if p == Piece::Many && collapsed.last() == Some(&Piece::Many) {
                continue;
            }
            collapsed.push(p);
        }
        let starts = collapsed.first() == Some(&Piece::Many);
        let ends = collapsed.len() > 1 && collapsed.last() == Some(&Piece::Many);
        let inner_from = usize::from(starts);
        let inner_to = collapsed.len() - usize::from(ends);
        let kind = if collapsed == [Piece::Many] {
            Kind::Any
        } else {
            match as_literal(&collapsed[inner_from..inner_to]) {
                Some(text) => match (starts, ends) {
                    (false, false) => Kind::Exact(text),
                    (false, true) => Kind::Prefix(text),
                    (true, false) => Kind::Suffix(text),
                    (true, true) => Kind::Contains(text),
                },
                None => Kind::Glob(collapsed),
            }
        };
        Pattern { kind, cased }
    }

    /// Whether the pattern is case-sensitive (then match the original text).
    pub(crate) fn cased(&self) -> bool {
        self.cased
    }

    /// The longest literal run every match must contain, lowercased; `None`
    /// when there is none or it is not ASCII (lowercasing a part of a
    /// non-ASCII text may differ from the same part of the lowercased text).
    pub(crate) fn literal(&self) -> Option<String> {
        let text = match &self.kind {
            Kind::Exact(p) | Kind::Prefix(p) | Kind::Suffix(p) | Kind::Contains(p) => p.clone(),
            Kind::Any => return None,
            Kind::Glob(pieces) => pieces
                .split(|p| !matches!(p, Piece::Lit(_)))
                .map(|run| {
                    run.iter()
                        .filter_map(|p| match p {
                            Piece::Lit(c) => Some(*c),
                            _ => None,
                        })
                        .collect::<String>()
                })
                .max_by_key(String::len)?,
        };
        (!text.is_empty() && text.is_ascii()).then(|| text.to_ascii_lowercase())
    }

    /// Matches `text` (lowercased unless the pattern is cased).
    pub(crate) fn is_match(&self, text: &str) -> bool {
        match &self.kind {
            Kind::Exact(p) => text == p,
            Kind::Prefix(p) => text.starts_with(p.as_str()),
            Kind::Suffix(p) => text.ends_with(p.as_str()),
            Kind::Contains(p) => text.contains(p.as_str()),
            Kind::Any => true,
            Kind::Glob(pieces) => glob(pieces, text),
        }
    }
}

/// Wildcard matching over characters: linear except when backtracking to
/// the last `*`, which makes it O(n·m) in the worst case.
/// `t` and the star's text position are byte offsets on character boundaries.
fn glob(pattern: &[Piece], text: &str) -> bool {
    let char_len = |at: usize| text[at..].chars().next().map_or(0, char::len_utf8);
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(current) = text[t..].chars().next() {
        match pattern.get(p) {
            Some(Piece::Many) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Piece::One) => {
                p += 1;
                t += current.len_utf8();
            }
            Some(Piece::Lit(c)) if *c == current => {
                p += 1;
                t += current.len_utf8();
            }
            _ => match star {
                Some((sp, st)) => {
                    let next = st + char_len(st);
                    p = sp + 1;
                    t = next;
                    star = Some((sp, next));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|piece| *piece == Piece::Many)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Pattern::compile(&parse(pattern), false).is_match(&text.to_lowercase())
    }

    #[test]
    fn escapes() {
        assert_eq!(
            parse(r"a\*b\?c\\d\e"),
            vec![
                Piece::Lit('a'),
                Piece::Lit('*'),
                Piece::Lit('b'),
                Piece::Lit('?'),
                Piece::Lit('c'),
                Piece::Lit('\\'),
                Piece::Lit('d'),
                Piece::Lit('\\'),
                Piece::Lit('e')
            ]
        );
        assert!(matches(r"C:\Windows\\*", r"c:\windows\x.exe"));
        assert!(!matches(r"C:\Windows\*", r"c:\windows\x.exe"));
        assert!(matches(r"C:\Windows\System32\", r"c:\windows\system32\"));
        assert!(matches(r"\\\\server\\*", r"\\server\share"));
        assert!(matches(r"what\*", "WHAT*"));
        assert!(!matches(r"what\*", "whatever"));
    }

    #[test]
    fn shapes() {
        assert!(matches("*\\cmd.exe", r"C:\Windows\System32\CMD.EXE"));
        assert!(matches("cmd*", "cmd /c"));
        assert!(matches("*whoami*", "x whoami /all"));
        assert!(matches("*", "anything"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYYcd"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*a?c*", "zzabczz"));
        assert!(matches("*aab", "aaab"));
        assert!(matches("ß*", "ßx"));
    }

    #[test]
    fn wildcards_step_over_multibyte_characters() {
        assert!(matches("a?c", "aéc"));
        assert!(!matches("a?c", "aééc"));
        assert!(matches("*ü?b", "üüxüéb"));
        assert!(matches("x*€?z*", "x€€€€yz!"));
        assert!(!matches("x*€?z", "x€€€€yz!"));
    }

    #[test]
    fn literals() {
        let lit = |p: &str| Pattern::compile(&parse(p), false).literal();
        assert_eq!(lit("*\\Whoami.exe"), Some("\\whoami.exe".to_owned()));
        assert_eq!(lit("a*longer?x"), Some("longer".to_owned()));
        assert_eq!(lit("*"), None);
        assert_eq!(lit(""), None);
        assert_eq!(lit("*ß*"), None);
    }

    #[test]
    fn cased() {
        let p = Pattern::compile(&wrap(literal("SGVsbG8"), true, true), true);
        assert!(p.cased());
        assert!(p.is_match("xx SGVsbG8 yy"));
        assert!(!p.is_match("xx sgvsbg8 yy"));
    }
}
