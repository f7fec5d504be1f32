//! Sigma conditions: `and`, `or`, `not`, parentheses, `1 of sel*`,
//! `all of sel*`, `any of`, `N of`, `1 of them`, `all of them`.
//!
//! Precedence, highest first: `not`, `and`, `or`. `them` means every
//! selection whose name does not start with `_`. Aggregations (`| count()`)
//! are rejected with a reason: they belong to correlation rules.

/// A parsed condition over selection indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Sel(usize),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// At least `n` of the selections.
    AtLeast(usize, Vec<usize>),
    /// Every one of the selections.
    All(Vec<usize>),
}

impl Expr {
    /// Evaluates with `sel(i)` telling whether selection `i` matched.
    pub(crate) fn eval(&self, sel: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Expr::Sel(i) => sel(*i),
            Expr::Not(e) => !e.eval(sel),
            Expr::And(es) => es.iter().all(|e| e.eval(sel)),
            Expr::Or(es) => es.iter().any(|e| e.eval(sel)),
            Expr::AtLeast(n, ids) => {
                let mut hits = 0;
                for i in ids {
                    if sel(*i) {
                        hits += 1;
                        if hits >= *n {
                            return true;
                        }
                    }
                }
                false
            }
            Expr::All(ids) => ids.iter().all(|i| sel(*i)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Of,
    All,
    Any,
    Them,
    Number(usize),
    Ident(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '(' || c == ')' {
            tokens.push(if c == '(' { Token::Open } else { Token::Close });
            chars.next();
            continue;
        }
        if c == '|' {
            return Err(format!(
                "aggregation `{}` is not supported (Sigma v1 count/near); rewrite it as a correlation rule",
                text[start..].trim()
            ));
        }
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c.is_whitespace() || c == '(' || c == ')' || c == '|' {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let word = &text[start..end];
        tokens.push(match word.to_ascii_lowercase().as_str() {
            "and" => Token::And,
            "or" => Token::Or,
            "not" => Token::Not,
            "of" => Token::Of,
            "all" => Token::All,
            "any" => Token::Any,
            "them" => Token::Them,
            _ => match word.parse::<usize>() {
                Ok(n) => Token::Number(n),
                Err(_) => Token::Ident(word.to_owned()),
            },
        });
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    names: &'a [String],
}

/// Parses `condition` over the selections called `names`.
pub(crate) fn parse(condition: &str, names: &[String]) -> Result<Expr, String> {
    let tokens = tokenize(condition)?;
    if tokens.is_empty() {
        return Err("the condition is empty".to_owned());
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        names,
    };
    let expr = parser.or()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(expr),
        Some(token) => Err(format!("unexpected {token:?} in condition `{condition}`")),
    }
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.chain(&Token::Or, Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, String> {
        self.chain(&Token::And, Self::not, Expr::And)
    }

    /// `operand (op operand)*`, wrapped by `combine` when there are several.
    fn chain(
        &mut self,
        op: &Token,
        operand: fn(&mut Self) -> Result<Expr, String>,
        combine: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, String> {
        let mut items = vec![operand(self)?];
        while self.peek() == Some(op) {
            self.pos += 1;
            items.push(operand(self)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            combine(items)
        })
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Open) => {
                let expr = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(expr),
                    _ => Err("missing `)`".to_owned()),
                }
            }
            Some(Token::Ident(name)) => self.resolve(&name).and_then(|ids| match ids.as_slice() {
                [one] if !name.contains('*') => Ok(Expr::Sel(*one)),
                _ => Err(format!(
                    "`{name}` is a pattern; use `1 of {name}` or `all of {name}`"
                )),
            }),
            Some(quantifier @ (Token::All | Token::Any | Token::Number(_))) => {
                if self.next() != Some(Token::Of) {
                    return Err(format!("expected `of` after {quantifier:?}"));
                }
                let ids = match self.next() {
                    Some(Token::Them) => (0..self.names.len())
                        .filter(|i| !self.names[*i].starts_with('_'))
                        .collect(),
                    Some(Token::Ident(pattern)) => self.resolve(&pattern)?,
                    other => {
                        return Err(format!(
                            "expected a selection or `them` after `of`, found {other:?}"
                        ));
                    }
                };
                Ok(match quantifier {
                    Token::All => Expr::All(ids),
                    Token::Number(0) => {
                        return Err("`0 of` never makes sense; use `not 1 of`".to_owned());
                    }
                    Token::Number(n) => Expr::AtLeast(n, ids),
                    _ => Expr::AtLeast(1, ids),
                })
            }
            other => Err(format!(
                "expected a selection, `not` or `(`, found {other:?}"
            )),
        }
    }

    /// Selection indices whose names match `pattern` (`*` wildcards).
    fn resolve(&self, pattern: &str) -> Result<Vec<usize>, String> {
        let ids: Vec<usize> = self
            .names
            .iter()
            .enumerate()
            .filter(|(_, name)| wildcard_match(pattern, name))
            .map(|(i, _)| i)
            .collect();
        if ids.is_empty() {
            Err(format!(
                "the condition names `{pattern}` but no selection matches it (selections: {})",
                self.names.join(", ")
            ))
        } else {
            Ok(ids)
        }
    }
}

/// `*`-only wildcard matching for selection names (case-sensitive).
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    name.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn eval(condition: &str, names_list: &[&str], hits: &[&str]) -> bool {
        let n = names(names_list);
        let expr = parse(condition, &n).unwrap();
        expr.eval(&mut |i| hits.contains(&n[i].as_str()))
    }

    #[test]
    fn precedence_and_parentheses() {
        let n = &["a", "b", "c"];
        assert!(eval("a or b and c", n, &["a"]));
        assert!(!eval("(a or b) and c", n, &["a"]));
        assert!(eval("not a and b", n, &["b"]));
        assert!(!eval("not (a or b)", n, &["b"]));
        assert!(eval("a and not b", n, &["a", "c"]));
    }

    #[test]
    fn quantifiers() {
        let n = &["selection_img", "selection_cli", "filter_main", "_private"];
        assert!(eval(
            "all of selection_* and not 1 of filter_*",
            n,
            &["selection_img", "selection_cli"]
        ));
        assert!(!eval("all of selection_*", n, &["selection_img"]));
        assert!(eval("1 of them", n, &["filter_main"]));
        assert!(!eval("1 of them", n, &["_private"]));
        assert!(eval(
            "2 of selection*",
            n,
            &["selection_img", "selection_cli"]
        ));
        assert!(!eval("2 of selection*", n, &["selection_img"]));
        assert!(eval("any of sel*", n, &["selection_cli"]));
        assert!(eval("all of them", &["a", "b"], &["a", "b"]));
    }

    #[test]
    fn errors_name_the_problem() {
        let n = names(&["selection"]);
        assert!(
            parse("selection | count() > 5", &n)
                .unwrap_err()
                .contains("aggregation")
        );
        assert!(
            parse("selectoin", &n)
                .unwrap_err()
                .contains("no selection matches")
        );
        assert!(parse("(selection", &n).unwrap_err().contains(")"));
        assert!(parse("selection and", &n).is_err());
        assert!(parse("", &n).is_err());
        assert!(parse("sel*", &n).unwrap_err().contains("1 of"));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("sel*", "selection"));
        assert!(wildcard_match("*_img", "selection_img"));
        assert!(wildcard_match("a*b*c", "a_x_b_y_c"));
        assert!(!wildcard_match("a*b*c", "a_x_c"));
        assert!(!wildcard_match("ab*ba", "aba"));
    }
}
