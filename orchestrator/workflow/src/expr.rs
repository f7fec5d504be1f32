//! The expression language inside `${{ … }}`: CEL (the `cel` crate), parsed
//! at load with every error located, the names it reads extracted as
//! [`Reference`]s (for scope, `needs` and schema checks), and evaluated
//! against a JSON scope at run time.
//!
//! Limits that keep parsing and evaluation safe on hostile input (the CEL
//! parser recurses deeply per bracket level): at most
//! [`MAX_EXPRESSION_LENGTH`] bytes, brackets nested at most
//! [`MAX_NESTING`] deep, and a syntax tree at most [`MAX_TREE_DEPTH`] deep.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, SourceInfo};
use serde_json::{Map, Value};

/// Longest accepted expression text, in bytes.
pub const MAX_EXPRESSION_LENGTH: usize = 2000;
/// Deepest accepted nesting of `(`, `[` and `{`.
pub const MAX_NESTING: usize = 8;
/// Deepest accepted syntax tree (e.g. `a + b + …` chains).
pub const MAX_TREE_DEPTH: usize = 100;

/// Functions of the CEL standard library that expressions may call
/// (macros included). Anything else is reported at load.
pub const FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "string",
    "int",
    "uint",
    "double",
    "bytes",
    "bool",
    "dyn",
    "type",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
];

static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// A parsed CEL expression with the names it reads.
#[derive(Debug, Clone)]
pub struct Expression {
    /// The expression text (between `${{` and `}}`, trimmed).
    pub source: String,
    /// Every name path read from the scope, in source order.
    pub references: Vec<Reference>,
    /// Every function called by name, with where (for "unknown function").
    pub calls: Vec<(String, Range<usize>)>,
    ast: Arc<IdedExpr>,
    /// Byte range in `source` of each AST node id that has a position.
    positions: Arc<HashMap<u64, Range<usize>>>,
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// One name path an expression reads, e.g. `steps.detect.output.alerts[0]`:
/// a scope variable followed by constant field names and indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Segments from the root variable on; `path[0]` is always a field.
    pub path: Vec<PathSegment>,
    /// Byte range of the written path in the expression text.
    pub range: Range<usize>,
    /// True inside `has(…)`: the last segment may be absent.
    pub presence_test: bool,
}

/// One step of a reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// `.name` or `['name']`.
    Field(String),
    /// `[3]`.
    Index(usize),
}

impl Reference {
    /// The root variable (`inputs`, `steps`, `item`, …).
    pub fn root(&self) -> &str {
        match self.path.first() {
            Some(PathSegment::Field(root)) => root,
            _ => "",
        }
    }

    /// The field at `position`, if that segment is a field.
    pub fn field(&self, position: usize) -> Option<&str> {
        match self.path.get(position) {
            Some(PathSegment::Field(name)) => Some(name),
            _ => None,
        }
    }

    /// `steps.<id>…` → `<id>`.
    pub fn step(&self) -> Option<&str> {
        if self.root() == "steps" {
            self.field(1)
        } else {
            None
        }
    }

    /// The path as written in canonical form: `steps.a.output.x[0]`.
    pub fn display_path(&self) -> String {
        path_text(&self.path)
    }
}

pub(crate) fn path_text(path: &[PathSegment]) -> String {
    let mut text = String::new();
    for segment in path {
        match segment {
            PathSegment::Field(name) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(name);
            }
            PathSegment::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// Why an expression does not parse; `range` is a byte range in the text
/// given to [`Expression::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpressionError {
    /// What is wrong.
    pub message: String,
    /// Where, in the expression text.
    pub range: Range<usize>,
}

/// Why an expression could not be evaluated at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A path names a key that is not there.
    #[error("`{expression}`: `{missing}` is not present; available keys: {available}")]
    MissingKey {
        /// The whole expression.
        expression: String,
        /// The path up to and including the missing key.
        missing: String,
        /// Keys present at that level, comma-separated.
        available: String,
    },
    /// CEL raised an error (wrong types, division by zero, …).
    #[error("`{expression}`: {message}")]
    Failed {
        /// The whole expression.
        expression: String,
        /// CEL's explanation.
        message: String,
    },
    /// The value is not representable as JSON (e.g. a function or type).
    #[error("`{expression}` evaluates to {found}, which is not a JSON value")]
    NotJson {
        /// The whole expression.
        expression: String,
        /// What it evaluated to.
        found: String,
    },
    /// A condition did not evaluate to a boolean.
    #[error("`{expression}` must evaluate to true or false, found {found}")]
    NotBoolean {
        /// The whole expression.
        expression: String,
        /// The JSON type found.
        found: String,
    },
    /// A `for_each` expression did not evaluate to a list.
    #[error("`{expression}` must evaluate to a list, found {found}")]
    NotList {
        /// The whole expression.
        expression: String,
        /// The JSON type found.
        found: String,
    },
}

impl Expression {
    /// Parses CEL `text`. Every syntax error is returned, each with its byte
    /// range in `text`. Leading and trailing whitespace is ignored.
    pub fn parse(text: &str) -> Result<Expression, Vec<ExpressionError>> {
        let leading = text.len() - text.trim_start().len();
        let source = text.trim();
        let shift = |mut error: ExpressionError| {
            error.range = error.range.start + leading..error.range.end + leading;
            error
        };
        if source.is_empty() {
            return Err(vec![ExpressionError {
                message: "empty expression; write e.g. `${{ inputs.events }}`".into(),
                range: leading..leading,
            }]);
        }
        if source.len() > MAX_EXPRESSION_LENGTH {
            return Err(vec![shift(ExpressionError {
                message: format!(
                    "expression is {} bytes long; the limit is {MAX_EXPRESSION_LENGTH}",
                    source.len()
                ),
                range: 0..0,
            })]);
        }
        if let Some(error) = check_nesting(source) {
            return Err(vec![shift(error)]);
        }
        let parsed = ENV.parser().parse_with_source_info(source);
        let (ast, info) = match parsed {
            Ok(parsed) => parsed,
            Err(errors) => {
                // Only the first error: ANTLR's recovery makes the later
                // ones mostly consequences of the first.
                let mut out = Vec::new();
                if let Some(error) = errors.errors.first() {
                    out.push(shift(convert_parse_error(source, error)));
                }
                if out.is_empty() {
                    out.push(shift(ExpressionError {
                        message: "the expression does not parse".into(),
                        range: 0..source.len(),
                    }));
                }
                return Err(out);
            }
        };
        if tree_depth(&ast) > MAX_TREE_DEPTH {
            return Err(vec![shift(ExpressionError {
                message: format!(
                    "expression is too deeply nested (more than {MAX_TREE_DEPTH} levels); split it up"
                ),
                range: 0..source.len(),
            })]);
        }
        let positions = node_positions(source, &ast, &info);
        let mut walker = Walker {
            positions: &positions,
            source,
            references: Vec::new(),
            calls: Vec::new(),
            bound: Vec::new(),
        };
        walker.walk(&ast, false);
        let mut references = walker.references;
        references.sort_by_key(|reference| reference.range.start);
        let calls = walker.calls;
        Ok(Expression {
            source: source.to_owned(),
            references,
            calls,
            ast: Arc::new(ast),
            positions: Arc::new(positions),
        })
    }

    /// The syntax tree (for the type checker).
    pub(crate) fn ast(&self) -> &IdedExpr {
        &self.ast
    }

    /// Byte range in [`Expression::source`] of an AST node.
    pub(crate) fn position(&self, id: u64) -> Option<Range<usize>> {
        self.positions.get(&id).cloned()
    }

    /// The first step this expression reads (`steps.<id>…`), if any.
    pub fn referenced_step(&self) -> Option<&str> {
        self.references.iter().find_map(Reference::step)
    }

    /// The first input this expression reads (`inputs.<name>…`), if any.
    pub fn referenced_input(&self) -> Option<&str> {
        self.references
            .iter()
            .find(|reference| reference.root() == "inputs")
            .and_then(|reference| reference.field(1))
    }

    /// Evaluates against `scope`, a JSON object whose keys are the variables
    /// (`inputs`, `steps`, `run`, `env`, `item`, …).
    pub fn evaluate(&self, scope: &Value) -> Result<Value, EvalError> {
        let mut context = cel::Context::with_env(Arc::clone(&ENV));
        // Only the variables the expression reads are converted: a run's
        // scope holds every step output, most of them irrelevant here.
        if let Value::Object(variables) = scope {
            let mut added: Vec<&str> = Vec::new();
            for reference in &self.references {
                let root = reference.root();
                if added.contains(&root) {
                    continue;
                }
                if let Some(value) = variables.get(root) {
                    context.add_variable_from_value(root, to_cel(value));
                    added.push(root);
                }
            }
        }
        let result = match cel::Value::resolve(&self.ast, &context) {
            Ok(result) => result,
            Err(error) => return Err(self.explain(scope, &error)),
        };
        match result.json() {
            Ok(value) => Ok(value),
            Err(_) => Err(EvalError::NotJson {
                expression: self.source.clone(),
                found: format!("{result:?}").chars().take(60).collect(),
            }),
        }
    }

    /// Evaluates a condition (`if`, `reflect.until`): must be a boolean.
    pub fn evaluate_bool(&self, scope: &Value) -> Result<bool, EvalError> {
        match self.evaluate(scope)? {
            Value::Bool(value) => Ok(value),
            other => Err(EvalError::NotBoolean {
                expression: self.source.clone(),
                found: crate::workflow::json_type(&other).to_owned(),
            }),
        }
    }

    /// A missing key gets the path and the keys that are there; other
    /// errors keep CEL's message.
    fn explain(&self, scope: &Value, error: &cel::ExecutionError) -> EvalError {
        if let cel::ExecutionError::NoSuchKey(_) | cel::ExecutionError::UndeclaredReference(_) =
            error
        {
            for reference in &self.references {
                if reference.presence_test {
                    continue;
                }
                if let Some(missing) = find_missing(scope, &reference.path, &self.source) {
                    return missing;
                }
            }
        }
        EvalError::Failed {
            expression: self.source.clone(),
            message: error.to_string(),
        }
    }
}

fn find_missing(scope: &Value, path: &[PathSegment], expression: &str) -> Option<EvalError> {
    let mut current = scope;
    for (position, segment) in path.iter().enumerate() {
        let next = match (segment, current) {
            (PathSegment::Field(name), Value::Object(map)) => match map.get(name) {
                Some(next) => next,
                None => {
                    return Some(EvalError::MissingKey {
                        expression: expression.to_owned(),
                        missing: path_text(&path[..=position]),
                        available: available_keys(map),
                    });
                }
            },
            (PathSegment::Index(index), Value::Array(items)) => items.get(*index)?,
            _ => return None,
        };
        current = next;
    }
    None
}

fn available_keys(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return "(none)".to_owned();
    }
    let keys: Vec<String> = map.keys().map(|key| format!("`{key}`")).collect();
    keys.join(", ")
}

/// JSON to CEL: integers that fit `i64` become `int` (so `x + 1` works),
/// larger ones `uint`, the rest `double`.
pub(crate) fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(flag) => cel::Value::Bool(*flag),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                cel::Value::Int(integer)
            } else if let Some(integer) = number.as_u64() {
                cel::Value::UInt(integer)
            } else {
                cel::Value::Float(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(text) => cel::Value::from(text.as_str()),
        Value::Array(items) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                list.push(to_cel(item));
            }
            cel::Value::List(Arc::new(list))
        }
        Value::Object(map) => {
            let mut entries: HashMap<String, cel::Value> = HashMap::with_capacity(map.len());
            for (key, item) in map {
                entries.insert(key.clone(), to_cel(item));
            }
            cel::Value::from(entries)
        }
    }
}

// === parsing helpers ===

/// Rejects bracket nesting deeper than [`MAX_NESTING`] before the parser
/// sees it (the parser would exhaust the stack).
fn check_nesting(source: &str) -> Option<ExpressionError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (offset, character) in source.char_indices() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == open {
                quote = None;
            }
            continue;
        }
        match character {
            '"' | '\'' => quote = Some(character),
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(ExpressionError {
                        message: format!(
                            "brackets are nested more than {MAX_NESTING} deep; split the expression up"
                        ),
                        range: offset..offset + 1,
                    });
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Maximum depth of the tree, computed without recursion.
fn tree_depth(root: &IdedExpr) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&IdedExpr, usize)> = vec![(root, 1)];
    while let Some((node, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        if deepest > MAX_TREE_DEPTH {
            return deepest;
        }
        for child in children(node) {
            stack.push((child, depth + 1));
        }
    }
    deepest
}

fn children(node: &IdedExpr) -> Vec<&IdedExpr> {
    let mut out = Vec::new();
    match &node.expr {
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                out.push(target.as_ref());
            }
            out.extend(call.args.iter());
        }
        Expr::Comprehension(comprehension) => {
            out.push(&comprehension.iter_range);
            out.push(&comprehension.accu_init);
            out.push(&comprehension.loop_cond);
            out.push(&comprehension.loop_step);
            out.push(&comprehension.result);
        }
        Expr::List(list) => out.extend(list.elements.iter()),
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(entry) = &entry.expr {
                    out.push(&entry.key);
                    out.push(&entry.value);
                }
            }
        }
        Expr::Struct(structure) => {
            for entry in &structure.entries {
                if let EntryExpr::StructField(field) = &entry.expr {
                    out.push(&field.value);
                }
            }
        }
        Expr::Select(select) => out.push(&select.operand),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    out
}

/// Byte offset of character `index` of `text` (clamped to the end).
fn char_to_byte(text: &str, index: usize) -> usize {
    text.char_indices()
        .nth(index)
        .map_or(text.len(), |(offset, _)| offset)
}

fn node_positions(source: &str, root: &IdedExpr, info: &SourceInfo) -> HashMap<u64, Range<usize>> {
    let mut positions = HashMap::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if let Some((start, stop)) = info.offset_for(node.id) {
            let start_byte = char_to_byte(source, start as usize);
            let end_byte = char_to_byte(source, stop as usize + 1).max(start_byte);
            positions.insert(node.id, start_byte..end_byte);
        }
        stack.extend(children(node));
    }
    positions
}

/// Converts a CEL parse error (1-based line, 1-based character column) to
/// a byte range and a message without ANTLR's token lists.
fn convert_parse_error(source: &str, error: &cel::ParseError) -> ExpressionError {
    let (line, column) = error.pos;
    let mut offset = 0;
    if line >= 1 {
        let mut line_start = 0;
        for (index, text) in source.split_inclusive('\n').enumerate() {
            if index + 1 == line as usize {
                break;
            }
            line_start += text.len();
        }
        let rest = &source[line_start.min(source.len())..];
        offset = line_start.min(source.len())
            + char_to_byte(rest, usize::try_from(column.max(1) - 1).unwrap_or(0));
    }
    let offset = offset.min(source.len());
    let end = source[offset..]
        .chars()
        .next()
        .map_or(offset, |c| offset + c.len_utf8());
    ExpressionError {
        message: clean_message(&error.msg),
        range: offset..end,
    }
}

fn clean_message(message: &str) -> String {
    let message = message.strip_prefix("Syntax error: ").unwrap_or(message);
    for prefix in [
        "no viable alternative at input ",
        "extraneous input ",
        "mismatched input ",
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (token, expecting) = match rest.find(" expecting ") {
                Some(index) => (&rest[..index], Some(&rest[index + 11..])),
                None => (rest, None),
            };
            let token = token.trim_matches('\'');
            let found = if token == "<EOF>" {
                "the expression ends too early".to_owned()
            } else {
                format!("unexpected `{token}`")
            };
            return match expecting {
                Some("<EOF>") => format!("{found}; expected the end of the expression"),
                Some(list) if list.starts_with('{') => {
                    format!("{found}; expected an operand (a name, literal, `(`, `[` or `{{`)")
                }
                Some(other) => format!("{found}; expected {}", other.trim_matches('\'')),
                None => found,
            };
        }
    }
    if message.starts_with("token recognition error at: ") {
        let token = message.trim_start_matches("token recognition error at: ");
        let token = token.trim_matches('\'');
        let first = token.chars().next().unwrap_or(' ');
        return format!("unexpected character `{first}`");
    }
    message.replace("'<EOF>'", "end of expression")
}

/// Collects references and calls, skipping comprehension variables.
struct Walker<'a> {
    positions: &'a HashMap<u64, Range<usize>>,
    source: &'a str,
    references: Vec<Reference>,
    calls: Vec<(String, Range<usize>)>,
    bound: Vec<String>,
}

impl Walker<'_> {
    fn range(&self, id: u64) -> Range<usize> {
        self.positions.get(&id).cloned().unwrap_or(0..0)
    }

    fn walk(&mut self, node: &IdedExpr, presence_test: bool) {
        if let Some((path, range)) = self.reference_path(node) {
            if !self.bound.contains(&path_root(&path)) {
                self.references.push(Reference {
                    path,
                    range,
                    presence_test,
                });
            }
            // Walk dynamic index arguments below the path (e.g. `a[i]`).
            self.walk_index_arguments(node);
            return;
        }
        match &node.expr {
            Expr::Select(select) if select.test => {
                // `has(a.b.c)`: the reference is `a.b.c`, `c` may be absent.
                if let Some((mut path, range)) = self.reference_path(&select.operand) {
                    if !self.bound.contains(&path_root(&path)) {
                        path.push(PathSegment::Field(select.field.clone()));
                        let end = (range.end + 1 + select.field.len()).min(self.source.len());
                        self.references.push(Reference {
                            path,
                            range: range.start..end,
                            presence_test: true,
                        });
                    }
                    self.walk_index_arguments(&select.operand);
                } else {
                    self.walk(&select.operand, false);
                }
            }
            Expr::Select(select) => {
                self.walk(&select.operand, presence_test);
            }
            Expr::Call(call) => {
                // Operators (`_+_`, `!_`, `-_`, `@in`) are not named calls.
                if call
                    .func_name
                    .starts_with(|c: char| c.is_ascii_alphabetic())
                {
                    self.calls.push((
                        call.func_name.clone(),
                        self.call_range(node, &call.func_name),
                    ));
                }
                if let Some(target) = &call.target {
                    self.walk(target, false);
                }
                for argument in &call.args {
                    self.walk(argument, false);
                }
            }
            Expr::Comprehension(comprehension) => {
                self.walk(&comprehension.iter_range, false);
                self.walk(&comprehension.accu_init, false);
                let bound_before = self.bound.len();
                self.bound.push(comprehension.iter_var.clone());
                if let Some(second) = &comprehension.iter_var2 {
                    self.bound.push(second.clone());
                }
                self.bound.push(comprehension.accu_var.clone());
                self.walk(&comprehension.loop_cond, false);
                self.walk(&comprehension.loop_step, false);
                self.walk(&comprehension.result, false);
                self.bound.truncate(bound_before);
            }
            _ => {
                for child in children(node) {
                    self.walk(child, false);
                }
            }
        }
    }

    /// The range of a named call: from the function name (members: after
    /// the dot) as written.
    fn call_range(&self, node: &IdedExpr, name: &str) -> Range<usize> {
        let at = self.range(node.id);
        // The recorded position of a call is its `(`; the name ends there.
        let end = at.start.min(self.source.len());
        let start = end.saturating_sub(name.len());
        if self.source.get(start..end) == Some(name) {
            start..end
        } else {
            at
        }
    }

    fn walk_index_arguments(&mut self, node: &IdedExpr) {
        let mut current = node;
        loop {
            match &current.expr {
                Expr::Select(select) => current = &select.operand,
                Expr::Call(call) if call.func_name == "_[_]" && call.args.len() == 2 => {
                    if constant_index(&call.args[1]).is_none() {
                        self.walk(&call.args[1], false);
                    }
                    current = &call.args[0];
                }
                _ => return,
            }
        }
    }

    /// `a.b[0]['c']` → path and byte range; dynamic indices end the path
    /// (the part before them is the reference).
    fn reference_path(&self, node: &IdedExpr) -> Option<(Vec<PathSegment>, Range<usize>)> {
        let mut segments: Vec<PathSegment> = Vec::new();
        let mut end = self.range(node.id).end;
        let mut current = node;
        let mut first = true;
        loop {
            match &current.expr {
                Expr::Ident(name) => {
                    segments.push(PathSegment::Field(name.clone()));
                    segments.reverse();
                    let start = self.range(current.id).start;
                    return Some((segments, start..end.max(start)));
                }
                Expr::Select(select) if !select.test => {
                    if first {
                        // The node's position is its `.`; the field follows.
                        let dot = self.range(current.id).start;
                        end = dot + 1 + select.field.len();
                        end = end.min(self.source.len());
                    }
                    segments.push(PathSegment::Field(select.field.clone()));
                    current = &select.operand;
                }
                Expr::Call(call) if call.func_name == "_[_]" && call.args.len() == 2 => {
                    match constant_index(&call.args[1]) {
                        Some(segment) => {
                            if first {
                                end = closing_bracket(self.source, self.range(current.id).start);
                            }
                            segments.push(segment);
                        }
                        None => {
                            // Dynamic index: the reference is the operand.
                            segments.clear();
                            first = true;
                            current = &call.args[0];
                            end = self.operand_end(current);
                            continue;
                        }
                    }
                    current = &call.args[0];
                }
                _ => return None,
            }
            first = false;
        }
    }

    fn operand_end(&self, node: &IdedExpr) -> usize {
        match &node.expr {
            Expr::Select(select) => {
                (self.range(node.id).start + 1 + select.field.len()).min(self.source.len())
            }
            Expr::Call(_) => closing_bracket(self.source, self.range(node.id).start),
            _ => self.range(node.id).end,
        }
    }
}

fn path_root(path: &[PathSegment]) -> String {
    match path.first() {
        Some(PathSegment::Field(root)) => root.clone(),
        _ => String::new(),
    }
}

/// The offset after the `]` matching the `[` at `open`.
fn closing_bracket(source: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (offset, character) in source.get(open..).unwrap_or("").char_indices() {
        match character {
            '[' => depth += 1,
            ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return open + offset + 1;
                }
            }
            _ => {}
        }
    }
    source.len()
}

fn constant_index(node: &IdedExpr) -> Option<PathSegment> {
    match &node.expr {
        Expr::Literal(LiteralValue::Int(value)) => {
            usize::try_from(*value.inner()).ok().map(PathSegment::Index)
        }
        Expr::Literal(LiteralValue::UInt(value)) => {
            usize::try_from(*value.inner()).ok().map(PathSegment::Index)
        }
        Expr::Literal(LiteralValue::String(text)) => Some(PathSegment::Field(text.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Expression {
        Expression::parse(text).unwrap_or_else(|errors| panic!("{text}: {errors:?}"))
    }

    #[test]
    fn extracts_references_with_ranges() {
        let text = "size(steps.detect.output.alerts) > 0 && inputs.limit >= 2";
        let expression = parse(text);
        let paths: Vec<(String, &str)> = expression
            .references
            .iter()
            .map(|r| (r.display_path(), &text[r.range.clone()]))
            .collect();
        assert_eq!(
            paths,
            [
                (
                    "steps.detect.output.alerts".to_owned(),
                    "steps.detect.output.alerts"
                ),
                ("inputs.limit".to_owned(), "inputs.limit"),
            ]
        );
        assert_eq!(expression.calls[0].0, "size");
        assert_eq!(&text[expression.calls[0].1.clone()], "size");

        let text = "steps.a.output.items[0]['k'].x + item";
        let expression = parse(text);
        assert_eq!(
            expression.references[0].display_path(),
            "steps.a.output.items[0].k.x"
        );
        assert_eq!(
            &text[expression.references[0].range.clone()],
            "steps.a.output.items[0]['k'].x"
        );
        assert_eq!(expression.references[1].root(), "item");
    }

    #[test]
    fn comprehension_variables_are_not_references() {
        let expression = parse("steps.a.output.list.exists(x, x.score > inputs.min)");
        let roots: Vec<&str> = expression.references.iter().map(Reference::root).collect();
        assert_eq!(roots, ["steps", "inputs"]);
        let expression = parse("has(steps.a.output.x) && inputs.v[inputs.i] == 1");
        assert!(expression.references[0].presence_test);
        assert_eq!(expression.references[0].display_path(), "steps.a.output.x");
        let paths: Vec<String> = expression
            .references
            .iter()
            .map(Reference::display_path)
            .collect();
        assert_eq!(paths, ["steps.a.output.x", "inputs.v", "inputs.i"]);
    }

    #[test]
    fn parse_errors_are_located() {
        let errors = Expression::parse("inputs..x").unwrap_err();
        assert_eq!(errors[0].range, 7..8);
        let errors = Expression::parse("  a | b").unwrap_err();
        assert_eq!(errors[0].range, 4..5);
        assert_eq!(errors[0].message, "unexpected character `|`");
        let errors = Expression::parse("size(x) >").unwrap_err();
        assert_eq!(
            errors[0].message,
            "the expression ends too early; expected an operand (a name, literal, `(`, `[` or `{`)"
        );
        assert_eq!(errors[0].range, 9..9);
        let deep = format!("{}1{}", "(".repeat(20), ")".repeat(20));
        let errors = Expression::parse(&deep).unwrap_err();
        assert_eq!(errors[0].range, 8..9);
        let long = vec!["1"; 150].join(" + ");
        assert!(
            Expression::parse(&long).unwrap_err()[0]
                .message
                .contains("deeply")
        );
    }

    #[test]
    fn evaluates_against_json() {
        let scope = json!({
            "inputs": {"limit": 2, "name": "ws1", "ratio": 0.5},
            "steps": {"a": {"output": {"alerts": [{"rule": "r1"}, {"rule": "r2"}]}}},
        });
        let value = |text: &str| parse(text).evaluate(&scope).unwrap();
        assert_eq!(
            value("size(steps.a.output.alerts) >= inputs.limit"),
            json!(true)
        );
        assert_eq!(value("inputs.limit + 1"), json!(3));
        assert_eq!(value("'host-' + inputs.name"), json!("host-ws1"));
        assert_eq!(
            value("steps.a.output.alerts.map(a, a.rule)"),
            json!(["r1", "r2"])
        );
        assert_eq!(value("{'n': inputs.ratio * 2.0}"), json!({"n": 1.0}));
        for function in [
            "size('ab') == 2",
            "'ab'.contains('a')",
            "'ab'.startsWith('a')",
            "'ab'.endsWith('b')",
            "'ab'.matches('^a')",
            "string(1) == '1'",
            "int('2') == 2",
            "uint(2) == 2u",
            "double(1) == 1.0",
            "bool('true')",
            "dyn(1) == 1",
            "type(1) == int",
            "has(inputs.name)",
            "[1].all(x, x > 0)",
            "[1].exists(x, x > 0)",
            "[1].exists_one(x, x > 0)",
            "[1].filter(x, x > 0) == [1]",
            "bytes('a') == b'a'",
        ] {
            assert_eq!(value(function), json!(true), "{function}");
        }
        let error = parse("steps.a.output.alert").evaluate(&scope).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`steps.a.output.alert`: `steps.a.output.alert` is not present; available keys: `alerts`"
        );
        let error = parse("inputs.limit / 0").evaluate(&scope).unwrap_err();
        assert!(matches!(error, EvalError::Failed { .. }), "{error}");
        let error = parse("inputs.limit").evaluate_bool(&scope).unwrap_err();
        assert!(error.to_string().contains("true or false"), "{error}");
    }
}
