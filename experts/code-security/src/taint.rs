//! Intra-procedural taint analysis over a tree-sitter syntax tree.
//!
//! Each function body (and the module's top level) is walked in source
//! order with an environment mapping variables to their taint. Assignments
//! are strong updates (a variable reassigned to a constant is clean again),
//! branches are analysed separately and merged, branches whose condition is
//! a constant are pruned, and allow-list / regex checks clean the checked
//! variable inside the guarded branch (or after an early exit). Lists and
//! dictionaries with constant indices and keys are tracked element by
//! element. Calls that are not sources, sinks or sanitizers propagate the
//! taint of their receiver and arguments.

use std::collections::{BTreeMap, BTreeSet};

use tree_sitter::{Node, Tree};

use crate::lang::Language;
use crate::path::any_suffix;
use crate::rules::{Conditions, LanguageRules, Pattern, Sink, Target};

/// Where tainted data came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taint {
    /// Kind of input (`request parameter`, ...).
    pub(crate) kind: String,
    /// The source expression's text.
    pub(crate) text: String,
    /// 1-based line of the source.
    pub(crate) line: usize,
    /// 1-based column of the source.
    pub(crate) column: usize,
    /// Categories the value has been sanitized for.
    pub(crate) sanitized: BTreeSet<String>,
}

type T = Option<Taint>;

/// Joins two taints: tainted if either is; sanitized only for what both are.
fn join(a: T, b: T) -> T {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(mut a), Some(b)) => {
            a.sanitized = a.sanitized.intersection(&b.sanitized).cloned().collect();
            Some(a)
        }
    }
}

/// What the analysis knows about one variable.
#[derive(Debug, Clone, Default, PartialEq)]
struct Var {
    /// Taint of the value as a whole (or of elements at unknown positions).
    taint: T,
    /// Values stored under constant keys (dicts, maps, config sections).
    keys: BTreeMap<String, T>,
    /// Values at known list positions, when every position is known.
    elems: Option<Vec<T>>,
    /// Integer constant value.
    constant: Option<i64>,
    /// String constant value.
    text: Option<String>,
    /// The variable this one was computed from (for guards on derived values).
    alias: Option<String>,
}

impl Var {
    fn scalar(taint: T) -> Var {
        Var {
            taint,
            ..Var::default()
        }
    }

    /// Taint of the whole value, all elements included.
    fn whole(&self) -> T {
        let mut taint = self.taint.clone();
        for value in self.keys.values() {
            taint = join(taint, value.clone());
        }
        for value in self.elems.iter().flatten() {
            taint = join(taint, value.clone());
        }
        taint
    }

    /// Forgets element positions (after an operation the model does not know).
    fn collapse(&mut self) {
        if let Some(elems) = self.elems.take() {
            for value in elems {
                self.taint = join(self.taint.take(), value);
            }
        }
    }
}

fn merge_var(a: &Var, b: &Var) -> Var {
    if a == b {
        return a.clone();
    }
    let mut keys = BTreeMap::new();
    for key in a.keys.keys().chain(b.keys.keys()) {
        let left = a.keys.get(key).cloned().unwrap_or_else(|| a.taint.clone());
        let right = b.keys.get(key).cloned().unwrap_or_else(|| b.taint.clone());
        keys.insert(key.clone(), join(left, right));
    }
    let mut merged = Var {
        taint: join(a.taint.clone(), b.taint.clone()),
        keys,
        elems: None,
        constant: if a.constant == b.constant {
            a.constant
        } else {
            None
        },
        text: if a.text == b.text {
            a.text.clone()
        } else {
            None
        },
        alias: if a.alias == b.alias {
            a.alias.clone()
        } else {
            None
        },
    };
    match (&a.elems, &b.elems) {
        (Some(x), Some(y)) if x.len() == y.len() => {
            merged.elems = Some(
                x.iter()
                    .zip(y)
                    .map(|(l, r)| join(l.clone(), r.clone()))
                    .collect(),
            );
        }
        _ => {
            for value in a.elems.iter().chain(&b.elems).flatten() {
                merged.taint = join(merged.taint.take(), value.clone());
            }
        }
    }
    merged
}

type Env = BTreeMap<String, Var>;

fn merge_envs(envs: &[Env]) -> Env {
    let mut names = BTreeSet::new();
    for env in envs {
        names.extend(env.keys().cloned());
    }
    let mut out = Env::new();
    for name in names {
        let mut merged: Option<Var> = None;
        for env in envs {
            let var = env.get(&name).cloned().unwrap_or_default();
            merged = Some(match merged {
                None => var,
                Some(m) => merge_var(&m, &var),
            });
        }
        out.insert(name, merged.unwrap_or_default());
    }
    out
}

/// A finding before it is given a file path and CWE.
#[derive(Debug, Clone)]
pub(crate) struct RawFinding {
    pub(crate) rule_id: String,
    pub(crate) category: String,
    pub(crate) message: String,
    pub(crate) start: (usize, usize),
    pub(crate) end: (usize, usize),
    pub(crate) snippet: String,
    pub(crate) source: Option<Taint>,
}

/// The parts of a call the analysis needs.
struct Call<'t> {
    path: Vec<String>,
    /// The path with a receiver variable replaced by the call it was
    /// assigned from (`out.println` after `out = response.getWriter()` is
    /// `response.getWriter.println`); used to match sinks and patterns.
    resolved: Vec<String>,
    callee: Option<Node<'t>>,
    receiver: Option<Node<'t>>,
    positional: Vec<Node<'t>>,
    keywords: Vec<(String, Node<'t>)>,
}

impl Call<'_> {
    /// Whether a pattern matches the end of the call's path or resolved path.
    fn matches(&self, patterns: &[crate::path::PathPattern]) -> bool {
        any_suffix(patterns, &self.path) || any_suffix(patterns, &self.resolved)
    }
}

/// Analyses one parsed file.
pub(crate) fn analyse(
    language: Language,
    rules: &LanguageRules,
    source: &str,
    tree: &Tree,
) -> Vec<RawFinding> {
    let mut analysis = Analysis {
        lang: language,
        rules,
        src: source,
        func_text: source,
        decorators: Vec::new(),
        findings: Vec::new(),
        seen: BTreeSet::new(),
        origins: BTreeMap::new(),
    };
    let root = tree.root_node();
    analysis.visit(root, &mut Env::new());
    let mut functions = Vec::new();
    collect_functions(language, root, &mut functions);
    for function in functions {
        analysis.analyse_function(function);
    }
    analysis.findings
}

fn collect_functions<'t>(language: Language, node: Node<'t>, out: &mut Vec<Node<'t>>) {
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        if language.is_function(child.kind()) {
            out.push(child);
        }
        collect_functions(language, child, out);
    }
}

struct Analysis<'a> {
    lang: Language,
    rules: &'a LanguageRules,
    src: &'a str,
    func_text: &'a str,
    decorators: Vec<Vec<String>>,
    findings: Vec<RawFinding>,
    seen: BTreeSet<(String, usize)>,
    /// Variables last assigned from a call: the call's path.
    origins: BTreeMap<String, Vec<String>>,
}

fn field<'t>(node: Node<'t>, name: &str) -> Option<Node<'t>> {
    node.child_by_field_name(name)
}

fn named_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
        .filter(|c| c.kind() != "comment")
        .collect()
}

fn is_identifier(kind: &str) -> bool {
    matches!(kind, "identifier" | "shorthand_property_identifier")
}

/// Strips string prefixes and quotes (`r'x'`, `"x"`, `` `x` ``).
fn unquote(text: &str) -> &str {
    let text = text.trim_start_matches(['r', 'b', 'u', 'R', 'B', 'U']);
    for quote in ["\"\"\"", "'''", "\"", "'", "`"] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner;
        }
    }
    text
}

impl<'a> Analysis<'a> {
    fn text(&self, node: Node<'_>) -> &'a str {
        node.utf8_text(self.src.as_bytes()).unwrap_or_default()
    }

    fn analyse_function(&mut self, function: Node<'_>) {
        let Some(body) = field(function, "body") else {
            return;
        };
        self.func_text = self.text(function);
        self.decorators = Vec::new();
        self.origins.clear();
        if let Some(parent) = function.parent()
            && parent.kind() == "decorated_definition"
        {
            for decorator in named_children(parent) {
                if decorator.kind() == "decorator"
                    && let Some(expr) = named_children(decorator).first()
                {
                    self.decorators.push(self.path_of(*expr));
                }
            }
        }
        let mut env = Env::new();
        self.visit(body, &mut env);
        self.func_text = self.src;
        self.decorators.clear();
    }

    // === paths ===

    /// The dotted access path of an expression (`request.args.get`);
    /// call parentheses and subscripts are skipped.
    fn path_of(&self, node: Node<'_>) -> Vec<String> {
        let kind = node.kind();
        let join_field = |object: Option<Node<'_>>, name: Option<Node<'_>>| {
            let mut path = object.map(|o| self.path_of(o)).unwrap_or_default();
            if let Some(name) = name {
                path.push(self.text(name).to_owned());
            }
            path
        };
        match kind {
            "identifier"
            | "field_identifier"
            | "property_identifier"
            | "type_identifier"
            | "package_identifier"
            | "this"
            | "self"
            | "super"
            | "shorthand_property_identifier" => vec![self.text(node).to_owned()],
            "attribute" => join_field(field(node, "object"), field(node, "attribute")),
            "field_access" => join_field(field(node, "object"), field(node, "field")),
            "member_expression" => join_field(field(node, "object"), field(node, "property")),
            "selector_expression" => join_field(field(node, "operand"), field(node, "field")),
            "method_invocation" => join_field(field(node, "object"), field(node, "name")),
            "call" | "call_expression" => field(node, "function")
                .map(|f| self.path_of(f))
                .unwrap_or_default(),
            "object_creation_expression" | "new_expression" => {
                let ty = field(node, "type").or_else(|| field(node, "constructor"));
                vec!["new".to_owned(), self.simple_type(ty)]
            }
            "subscript" | "array_access" | "subscript_expression" | "index_expression" => {
                let base = field(node, "value")
                    .or_else(|| field(node, "array"))
                    .or_else(|| field(node, "object"))
                    .or_else(|| field(node, "operand"));
                base.map(|b| self.path_of(b)).unwrap_or_default()
            }
            "parenthesized_expression" => named_children(node)
                .first()
                .map(|n| self.path_of(*n))
                .unwrap_or_default(),
            "qualified_type" | "scoped_type_identifier" | "generic_type" => self
                .text(node)
                .split('<')
                .next()
                .unwrap_or_default()
                .split('.')
                .map(str::to_owned)
                .collect(),
            _ => vec!["?".to_owned()],
        }
    }

    /// The unqualified type name of a constructor (`java.io.File` -> `File`).
    fn simple_type(&self, node: Option<Node<'_>>) -> String {
        let text = node.map(|n| self.text(n)).unwrap_or_default();
        let base = text.split('<').next().unwrap_or_default();
        base.rsplit('.')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// The variable an expression is rooted at (`url.netloc` -> `url`).
    fn base_variable(&self, node: Node<'_>) -> Option<String> {
        let kind = node.kind();
        if is_identifier(kind) {
            return Some(self.text(node).to_owned());
        }
        let inner = match kind {
            "attribute" | "field_access" | "member_expression" => field(node, "object"),
            "selector_expression" => field(node, "operand"),
            "method_invocation" => field(node, "object"),
            "call" | "call_expression" => field(node, "function"),
            "subscript" | "array_access" | "subscript_expression" | "index_expression" => {
                field(node, "value")
                    .or_else(|| field(node, "array"))
                    .or_else(|| field(node, "object"))
                    .or_else(|| field(node, "operand"))
            }
            "parenthesized_expression" => named_children(node).first().copied(),
            _ => None,
        };
        inner.and_then(|n| self.base_variable(n))
    }

    fn source_taint(&self, path: &[String], node: Node<'_>) -> T {
        let source = self
            .rules
            .sources
            .iter()
            .find(|s| s.pattern.matches_prefix(path))?;
        let start = node.start_position();
        Some(Taint {
            kind: source.kind.clone(),
            text: self.text(node).chars().take(120).collect(),
            line: start.row + 1,
            column: start.column + 1,
            sanitized: BTreeSet::new(),
        })
    }

    // === constants ===

    fn const_string(&self, node: Node<'_>) -> Option<String> {
        let kind = node.kind();
        let is_string = matches!(
            kind,
            "string" | "string_literal" | "interpreted_string_literal" | "raw_string_literal"
        );
        if !is_string {
            return None;
        }
        let interpolated = named_children(node)
            .iter()
            .any(|c| matches!(c.kind(), "interpolation" | "template_substitution"));
        if interpolated || self.text(node).starts_with(['f', 'F']) {
            return None;
        }
        Some(unquote(self.text(node)).to_owned())
    }

    fn const_eval(&self, node: Node<'_>, env: &Env) -> Option<i64> {
        let kind = node.kind();
        let text = self.text(node);
        match kind {
            "integer" | "decimal_integer_literal" | "number" | "int_literal" => {
                text.replace('_', "").parse().ok()
            }
            "true" => Some(1),
            "false" => Some(0),
            "identifier" => env.get(text)?.constant,
            "parenthesized_expression" => self.const_eval(*named_children(node).first()?, env),
            "not_operator" => Some(i64::from(
                self.const_eval(field(node, "argument")?, env)? == 0,
            )),
            "unary_operator" | "unary_expression" => {
                let operand = field(node, "argument").or_else(|| field(node, "operand"))?;
                let value = self.const_eval(operand, env)?;
                match self.text(field(node, "operator")?) {
                    "-" => value.checked_neg(),
                    "+" => Some(value),
                    "!" | "not" => Some(i64::from(value == 0)),
                    _ => None,
                }
            }
            "binary_operator" | "binary_expression" | "boolean_operator" => {
                let left = self.const_eval(field(node, "left")?, env)?;
                let right = self.const_eval(field(node, "right")?, env)?;
                binary(self.text(field(node, "operator")?), left, right)
            }
            "comparison_operator" => {
                let mut cursor = node.walk();
                let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
                if children.len() != 3 {
                    return None;
                }
                let left = self.const_eval(children[0], env)?;
                let right = self.const_eval(children[2], env)?;
                binary(self.text(children[1]), left, right)
            }
            _ => None,
        }
    }

    // === statements and expressions ===

    fn visit_children(&mut self, node: Node<'_>, env: &mut Env) -> T {
        let mut taint = None;
        for child in named_children(node) {
            let t = self.visit(child, env);
            taint = join(taint, t);
        }
        taint
    }

    fn visit(&mut self, node: Node<'_>, env: &mut Env) -> T {
        let kind = node.kind();
        if self.lang.is_function(kind) || kind == "comment" {
            return None;
        }
        match kind {
            "identifier" | "shorthand_property_identifier" => {
                env.get(self.text(node)).and_then(Var::whole)
            }
            "string_content" | "escape_sequence" | "integer" | "float" | "true" | "false"
            | "none" | "null" | "null_literal" | "nil" => None,
            "assignment"
            | "augmented_assignment"
            | "assignment_expression"
            | "augmented_assignment_expression"
            | "assignment_statement" => self.visit_assignment(node, env),
            "variable_declarator" => {
                let (Some(name), Some(value)) = (field(node, "name"), field(node, "value")) else {
                    return None;
                };
                self.assign_from(name, value, false, env)
            }
            "short_var_declaration" | "var_spec" | "const_spec" => {
                self.visit_go_declaration(node, env)
            }
            "call"
            | "call_expression"
            | "method_invocation"
            | "object_creation_expression"
            | "new_expression" => self.visit_call(node, env),
            "attribute" | "field_access" | "member_expression" | "selector_expression" => {
                let path = self.path_of(node);
                if path.len() >= 2
                    && let Some(taint) = self.source_taint(&path, node)
                {
                    return Some(taint);
                }
                let object = field(node, "object").or_else(|| field(node, "operand"))?;
                self.visit(object, env)
            }
            "subscript" | "array_access" | "subscript_expression" | "index_expression" => {
                self.visit_subscript(node, env)
            }
            "if_statement" => self.visit_if(node, env),
            "match_statement" | "switch_expression" | "switch_statement" => {
                self.visit_switch(node, env)
            }
            "conditional_expression" | "ternary_expression" => self.visit_ternary(node, env),
            "for_statement" | "enhanced_for_statement" | "for_in_statement" => {
                self.visit_for(node, env)
            }
            "return_statement" => {
                let taint = self.visit_children(node, env);
                self.check_return(node, &taint);
                taint
            }
            "composite_literal" => {
                self.check_composite(node);
                self.visit_children(node, env)
            }
            _ => self.visit_children(node, env),
        }
    }

    fn visit_assignment(&mut self, node: Node<'_>, env: &mut Env) -> T {
        let (Some(left), Some(right)) = (field(node, "left"), field(node, "right")) else {
            return self.visit_children(node, env);
        };
        let augmented = match field(node, "operator") {
            Some(op) => self.text(op) != "=" && self.text(op) != ":=",
            None => node.kind().starts_with("augmented"),
        };
        if left.kind() == "expression_list" {
            return self.assign_lists(named_children(left), right, env);
        }
        self.assign_from(left, right, augmented, env)
    }

    fn visit_go_declaration(&mut self, node: Node<'_>, env: &mut Env) -> T {
        if node.kind() == "short_var_declaration" {
            let (Some(left), Some(right)) = (field(node, "left"), field(node, "right")) else {
                return None;
            };
            return self.assign_lists(named_children(left), right, env);
        }
        let mut cursor = node.walk();
        let names: Vec<Node<'_>> = node.children_by_field_name("name", &mut cursor).collect();
        let value = field(node, "value")?;
        self.assign_lists(names, value, env)
    }

    /// `a, b = x, y`: pairwise when the counts agree, else every target gets
    /// the whole value.
    fn assign_lists(&mut self, targets: Vec<Node<'_>>, right: Node<'_>, env: &mut Env) -> T {
        let values = if right.kind() == "expression_list" {
            named_children(right)
        } else {
            vec![right]
        };
        if targets.len() == values.len() {
            let mut taint = None;
            for (target, value) in targets.into_iter().zip(values) {
                taint = join(taint, self.assign_from(target, value, false, env));
            }
            return taint;
        }
        let var = self.eval_value(right, env);
        let taint = var.whole();
        for target in targets {
            self.assign_var(target, var.clone(), None, env);
        }
        taint
    }

    /// Evaluates `value` and assigns it to `target`.
    fn assign_from(
        &mut self,
        target: Node<'_>,
        value: Node<'_>,
        augmented: bool,
        env: &mut Env,
    ) -> T {
        let mut var = self.eval_value(value, env);
        if augmented {
            let current = self.visit(target, env);
            var = Var::scalar(join(current, var.whole()));
        }
        let taint = var.whole();
        self.check_secret(target, value);
        self.assign_var(target, var, Some(value), env);
        taint
    }

    /// The value of an expression with the structure the model tracks.
    fn eval_value(&mut self, node: Node<'_>, env: &mut Env) -> Var {
        let kind = node.kind();
        let mut var = match kind {
            "list" | "array" | "array_initializer" | "tuple" => {
                let elems = named_children(node)
                    .into_iter()
                    .map(|c| self.visit(c, env))
                    .collect();
                Var {
                    elems: Some(elems),
                    ..Var::default()
                }
            }
            "dictionary" | "object" => {
                let mut var = Var::default();
                for pair in named_children(node) {
                    let key = field(pair, "key").and_then(|k| {
                        self.const_string(k).or_else(|| {
                            (k.kind() == "property_identifier").then(|| self.text(k).to_owned())
                        })
                    });
                    let taint = match field(pair, "value") {
                        Some(v) => self.visit(v, env),
                        None => self.visit(pair, env),
                    };
                    match key {
                        Some(key) if pair.kind() == "pair" => {
                            var.keys.insert(key, taint);
                        }
                        _ => var.taint = join(var.taint.take(), taint),
                    }
                }
                var
            }
            "object_creation_expression" if self.is_empty_container(node) => {
                let _ = self.visit(node, env);
                Var {
                    elems: Some(Vec::new()),
                    ..Var::default()
                }
            }
            _ => Var::scalar(self.visit(node, env)),
        };
        var.constant = self.const_eval(node, env);
        var.text = self.const_text(node, env);
        if var.whole().is_some() {
            var.alias = self.tainted_identifier(node, env);
        }
        var
    }

    fn is_empty_container(&self, node: Node<'_>) -> bool {
        let name = self.simple_type(field(node, "type"));
        let empty_args = field(node, "arguments").is_none_or(|a| named_children(a).is_empty());
        empty_args
            && [
                "List",
                "Map",
                "Set",
                "Deque",
                "Queue",
                "Stack",
                "Vector",
                "Properties",
            ]
            .iter()
            .any(|suffix| name.ends_with(suffix))
    }

    /// The first identifier in `node` that names a tainted variable.
    fn tainted_identifier(&self, node: Node<'_>, env: &Env) -> Option<String> {
        if is_identifier(node.kind()) {
            let name = self.text(node);
            return env
                .get(name)
                .filter(|v| v.whole().is_some())
                .map(|_| name.to_owned());
        }
        named_children(node)
            .into_iter()
            .find_map(|c| self.tainted_identifier(c, env))
    }

    fn assign_var(&mut self, target: Node<'_>, var: Var, value: Option<Node<'_>>, env: &mut Env) {
        let kind = target.kind();
        match kind {
            "identifier" => {
                let name = self.text(target).to_owned();
                let from_call = value.filter(|v| {
                    matches!(
                        v.kind(),
                        "call"
                            | "call_expression"
                            | "method_invocation"
                            | "object_creation_expression"
                            | "new_expression"
                    )
                });
                match from_call {
                    Some(call) => {
                        let path = self.path_of(call);
                        self.origins.insert(name.clone(), path);
                    }
                    None => {
                        self.origins.remove(&name);
                    }
                }
                env.insert(name, var);
            }
            "pattern_list" | "tuple_pattern" | "list_pattern" | "array_pattern"
            | "object_pattern" | "expression_list" | "list_splat_pattern" => {
                let targets = named_children(target);
                let values = value
                    .filter(|v| matches!(v.kind(), "tuple" | "list" | "expression_list" | "array"))
                    .map(named_children)
                    .unwrap_or_default();
                if targets.len() == values.len() && !values.is_empty() {
                    for (t, v) in targets.into_iter().zip(values) {
                        let var = self.eval_value(v, env);
                        self.assign_var(t, var, Some(v), env);
                    }
                } else {
                    let whole = Var::scalar(var.whole());
                    for t in targets {
                        self.assign_var(t, whole.clone(), None, env);
                    }
                }
            }
            "shorthand_property_identifier_pattern" => {
                env.insert(self.text(target).to_owned(), Var::scalar(var.whole()));
            }
            "pair_pattern" => {
                if let Some(v) = field(target, "value") {
                    self.assign_var(v, Var::scalar(var.whole()), None, env);
                }
            }
            "subscript" | "array_access" | "subscript_expression" | "index_expression" => {
                self.assign_subscript(target, var, env);
            }
            "attribute" | "field_access" | "member_expression" | "selector_expression" => {
                let path = self.path_of(target);
                let taint = var.whole();
                self.check_assign_sinks(&path, target, &taint);
                if let Some(base) = self.base_variable(target) {
                    let entry = env.entry(base).or_default();
                    entry.taint = join(entry.taint.take(), taint);
                }
            }
            _ => {}
        }
    }

    fn subscript_parts<'t>(&self, node: Node<'t>) -> (Option<Node<'t>>, Option<Node<'t>>) {
        let base = field(node, "value")
            .or_else(|| field(node, "array"))
            .or_else(|| field(node, "object"))
            .or_else(|| field(node, "operand"));
        let index = field(node, "subscript").or_else(|| field(node, "index"));
        (base, index)
    }

    fn assign_subscript(&mut self, target: Node<'_>, var: Var, env: &mut Env) {
        let (base, index) = self.subscript_parts(target);
        let key = index.and_then(|i| self.const_string(i));
        let position = index.and_then(|i| self.const_eval(i, env));
        let index_taint = index.and_then(|i| self.visit(i, env));
        let mut path = base.map(|b| self.path_of(b)).unwrap_or_default();
        if let Some(key) = &key {
            path.push(key.clone());
        }
        let taint = var.whole();
        self.check_assign_sinks(&path, target, &join(taint.clone(), index_taint));
        let Some(base) = base.filter(|b| is_identifier(b.kind())) else {
            if let Some(name) = base.and_then(|b| self.base_variable(b)) {
                let entry = env.entry(name).or_default();
                entry.taint = join(entry.taint.take(), taint);
            }
            return;
        };
        let entry = env.entry(self.text(base).to_owned()).or_default();
        if let Some(key) = key {
            entry.keys.insert(key, taint);
            return;
        }
        if let (Some(position), Some(elems)) = (position, entry.elems.as_mut())
            && let Some(slot) = normalise_index(position, elems.len())
        {
            elems[slot] = taint;
            return;
        }
        entry.collapse();
        entry.taint = join(entry.taint.take(), taint);
    }

    fn visit_subscript(&mut self, node: Node<'_>, env: &mut Env) -> T {
        let path = self.path_of(node);
        let (base, index) = self.subscript_parts(node);
        if path.len() >= 2
            && let Some(taint) = self.source_taint(&path, node)
        {
            if let Some(index) = index {
                let _ = self.visit(index, env);
            }
            return Some(taint);
        }
        let base = base?;
        if let Some(index) = index {
            let _ = self.visit(index, env);
        }
        if is_identifier(base.kind())
            && let Some(var) = env.get(self.text(base))
        {
            if let Some(key) = index.and_then(|i| self.const_string(i))
                && let Some(value) = var.keys.get(&key)
            {
                return join(value.clone(), var.taint.clone());
            }
            if index.is_some_and(|i| i.kind() != "slice")
                && let Some(position) = index.and_then(|i| self.const_eval(i, env))
                && let Some(elems) = &var.elems
                && let Some(slot) = normalise_index(position, elems.len())
            {
                return join(elems[slot].clone(), var.taint.clone());
            }
            return var.whole();
        }
        self.visit(base, env)
    }

    // === calls ===

    fn call_parts<'t>(&self, node: Node<'t>) -> Call<'t> {
        let kind = node.kind();
        let (callee, receiver, arguments) = match kind {
            "method_invocation" => (None, field(node, "object"), field(node, "arguments")),
            "object_creation_expression" | "new_expression" => {
                (None, None, field(node, "arguments"))
            }
            _ => {
                let function = field(node, "function");
                let receiver = function.and_then(|f| {
                    field(f, "object").or_else(|| {
                        (f.kind() == "selector_expression")
                            .then(|| field(f, "operand"))
                            .flatten()
                    })
                });
                (function, receiver, field(node, "arguments"))
            }
        };
        let mut positional = Vec::new();
        let mut keywords = Vec::new();
        for argument in arguments.map(named_children).unwrap_or_default() {
            match argument.kind() {
                "keyword_argument" => {
                    if let (Some(name), Some(value)) =
                        (field(argument, "name"), field(argument, "value"))
                    {
                        keywords.push((self.text(name).to_owned(), value));
                    }
                }
                "object" if self.lang == Language::JavaScript => {
                    for pair in named_children(argument) {
                        if let (Some(key), Some(value)) = (field(pair, "key"), field(pair, "value"))
                        {
                            keywords.push((unquote(self.text(key)).to_owned(), value));
                        }
                    }
                    positional.push(argument);
                }
                _ => positional.push(argument),
            }
        }
        let path = self.path_of(node);
        let resolved = receiver
            .filter(|r| is_identifier(r.kind()))
            .and_then(|r| self.origins.get(self.text(r)))
            .map(|origin| {
                let mut resolved = origin.clone();
                resolved.extend(path.last().cloned());
                resolved
            })
            .unwrap_or_else(|| path.clone());
        Call {
            path,
            resolved,
            callee,
            receiver,
            positional,
            keywords,
        }
    }

    fn keyword<'t>(&self, call: &Call<'t>, name: &str) -> Option<Node<'t>> {
        call.keywords
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    fn conditions_hold(&self, conditions: &Conditions, call: Option<&Call<'_>>) -> bool {
        if let Some(call) = call {
            for (name, values) in &conditions.when_keyword {
                let value = self.keyword(call, name).map(|v| self.text(v));
                if !value.is_some_and(|v| values.iter().any(|x| x == v)) {
                    return false;
                }
            }
            for (name, values) in &conditions.unless_keyword {
                let value = self.keyword(call, name).map(|v| self.text(v));
                if value.is_some_and(|v| values.iter().any(|x| x == v)) {
                    return false;
                }
            }
            for (index, regex) in &conditions.unless_args {
                if call
                    .positional
                    .get(*index)
                    .is_some_and(|a| regex.is_match(self.text(*a)))
                {
                    return false;
                }
            }
        }
        if conditions
            .when_text
            .as_ref()
            .is_some_and(|r| !r.is_match(self.func_text))
        {
            return false;
        }
        if conditions
            .unless_text
            .as_ref()
            .is_some_and(|r| r.is_match(self.func_text))
        {
            return false;
        }
        conditions
            .file_regex
            .as_ref()
            .is_none_or(|r| r.is_match(self.src))
    }

    fn visit_call(&mut self, node: Node<'_>, env: &mut Env) -> T {
        let call = self.call_parts(node);
        let receiver_node = call.receiver.or(call.callee.filter(|c| {
            !is_identifier(c.kind()) && c.kind() != "attribute" && c.kind() != "member_expression"
        }));
        let receiver = match receiver_node {
            Some(r) => self.visit(r, env),
            None => None,
        };
        let positional: Vec<T> = call
            .positional
            .iter()
            .map(|a| self.visit(*a, env))
            .collect();
        let keywords: Vec<T> = call
            .keywords
            .iter()
            .map(|(_, v)| self.visit(*v, env))
            .collect();
        self.check_call_sinks(node, &call, &receiver, &positional, &keywords);
        self.check_call_patterns(node, &call);
        if let Some(taint) = self.source_taint(&call.path, node) {
            return Some(taint);
        }
        let mut result = receiver.clone();
        for t in positional.iter().chain(&keywords) {
            result = join(result, t.clone());
        }
        if let Some(value) = self.container_op(&call, &positional, env) {
            result = value;
        }
        if let Some(sanitizer) = self
            .rules
            .sanitizers
            .iter()
            .find(|s| s.pattern.matches_suffix(&call.path))
        {
            if sanitizer.categories.is_empty() {
                return None;
            }
            if let Some(taint) = result.as_mut() {
                taint.sanitized.extend(sanitizer.categories.iter().cloned());
            }
        }
        result
    }

    /// Container models on a receiver variable; returns the call's value when
    /// the model knows it more precisely than "all of the receiver".
    fn container_op(&mut self, call: &Call<'_>, args: &[T], env: &mut Env) -> Option<T> {
        let receiver = call.receiver.filter(|r| is_identifier(r.kind()))?;
        let name = self.text(receiver).to_owned();
        let containers = &self.rules.containers;
        let path = &call.path;
        let arg_taint = args.iter().cloned().fold(None, join);
        let constant_arg = |i: usize| {
            call.positional
                .get(i)
                .and_then(|a| self.const_eval(*a, env))
        };
        if any_suffix(&containers.insert, path) && args.len() == 2 {
            let position = constant_arg(0);
            let var = env.entry(name).or_default();
            match (position, var.elems.as_mut()) {
                (Some(p), Some(elems)) if p >= 0 && (p as usize) <= elems.len() => {
                    elems.insert(p as usize, args[1].clone());
                }
                _ => {
                    var.collapse();
                    var.taint = join(var.taint.take(), args[1].clone());
                }
            }
            return Some(None);
        }
        if any_suffix(&containers.append, path) && args.len() == 1 {
            let var = env.entry(name).or_default();
            match var.elems.as_mut() {
                Some(elems) => elems.push(arg_taint),
                None => var.taint = join(var.taint.take(), arg_taint),
            }
            return Some(None);
        }
        if any_suffix(&containers.extend, path) {
            let var = env.entry(name).or_default();
            var.collapse();
            var.taint = join(var.taint.take(), arg_taint);
            return Some(None);
        }
        let front = any_suffix(&containers.pop_front, path);
        if front || any_suffix(&containers.pop, path) {
            let position = if front {
                Some(0)
            } else if call.positional.is_empty() {
                Some(-1)
            } else {
                constant_arg(0)
            };
            let var = env.get_mut(&name)?;
            if let (Some(p), Some(elems)) = (position, var.elems.as_mut())
                && let Some(slot) = normalise_index(p, elems.len())
            {
                let removed = elems.remove(slot);
                return Some(join(removed, var.taint.clone()));
            }
            let whole = var.whole();
            var.collapse();
            return Some(whole);
        }
        for keyed in &containers.key_set {
            if !keyed.pattern.matches_suffix(path) {
                continue;
            }
            let (Some(key), Some(value)) = (self.constant_key(call, &keyed.keys), keyed.value)
            else {
                continue;
            };
            let taint = args.get(value).cloned().flatten();
            env.entry(name).or_default().keys.insert(key, taint);
            return Some(None);
        }
        let var = env.get(&name)?;
        for keyed in &containers.key_get {
            if !keyed.pattern.matches_suffix(path) {
                continue;
            }
            if let Some(key) = self.constant_key(call, &keyed.keys)
                && let Some(value) = var.keys.get(&key)
            {
                return Some(join(value.clone(), var.taint.clone()));
            }
            if keyed.keys.len() == 1
                && let Some(position) = constant_arg(keyed.keys[0])
                && let Some(elems) = &var.elems
                && let Some(slot) = normalise_index(position, elems.len())
            {
                return Some(join(elems[slot].clone(), var.taint.clone()));
            }
        }
        let known = containers
            .key_get
            .iter()
            .any(|k| k.pattern.matches_suffix(path));
        if !known && var.elems.is_some() {
            // An operation the model does not know may reorder the elements.
            if let Some(var) = env.get_mut(&name) {
                var.collapse();
            }
        }
        None
    }

    fn constant_key(&self, call: &Call<'_>, positions: &[usize]) -> Option<String> {
        let mut parts = Vec::new();
        for position in positions {
            parts.push(self.const_string(*call.positional.get(*position)?)?);
        }
        Some(parts.join("\u{0}"))
    }

    // === control flow ===

    fn visit_if(&mut self, node: Node<'_>, env: &mut Env) -> T {
        if let Some(init) = field(node, "initializer") {
            let _ = self.visit(init, env);
        }
        let mut arms: Vec<(Option<Node<'_>>, Node<'_>)> = Vec::new();
        if let Some(consequence) = field(node, "consequence") {
            arms.push((field(node, "condition"), consequence));
        }
        let mut cursor = node.walk();
        let alternatives: Vec<Node<'_>> = node
            .children_by_field_name("alternative", &mut cursor)
            .collect();
        for alternative in alternatives {
            match alternative.kind() {
                "elif_clause" => {
                    if let Some(consequence) = field(alternative, "consequence") {
                        arms.push((field(alternative, "condition"), consequence));
                    }
                }
                "else_clause" => {
                    let body = field(alternative, "body")
                        .or_else(|| named_children(alternative).first().copied());
                    if let Some(body) = body {
                        arms.push((None, body));
                    }
                }
                _ => arms.push((None, alternative)),
            }
        }
        let mut fallthrough = env.clone();
        let mut outcomes = Vec::new();
        let mut exhaustive = false;
        for (condition, body) in arms {
            let Some(condition) = condition else {
                let mut arm_env = fallthrough.clone();
                let _ = self.visit(body, &mut arm_env);
                if !self.terminates(body) {
                    outcomes.push(arm_env);
                }
                exhaustive = true;
                break;
            };
            let _ = self.visit(condition, &mut fallthrough);
            let constant = self.const_eval(condition, &fallthrough);
            let (when_true, when_false) = self.guards(condition, &fallthrough);
            if constant == Some(0) {
                continue;
            }
            let mut arm_env = fallthrough.clone();
            clean(&mut arm_env, &when_true);
            let _ = self.visit(body, &mut arm_env);
            if !self.terminates(body) {
                outcomes.push(arm_env);
            }
            if constant.is_some() {
                exhaustive = true;
                break;
            }
            clean(&mut fallthrough, &when_false);
        }
        if !exhaustive {
            outcomes.push(fallthrough.clone());
        }
        *env = if outcomes.is_empty() {
            fallthrough
        } else {
            merge_envs(&outcomes)
        };
        None
    }

    /// `match` / `switch`: every case is analysed from the state before the
    /// statement and the outcomes are merged (with the state before, unless
    /// a default case exists).
    fn visit_switch(&mut self, node: Node<'_>, env: &mut Env) -> T {
        let subject = field(node, "subject")
            .or_else(|| field(node, "condition"))
            .or_else(|| field(node, "value"));
        let subject_text = subject.and_then(|s| self.const_text(s, env));
        if let Some(subject) = subject {
            let _ = self.visit(subject, env);
        }
        let Some(body) = field(node, "body") else {
            return self.visit_children(node, env);
        };
        let cases: Vec<(Node<'_>, Vec<String>, bool)> = named_children(body)
            .into_iter()
            .map(|case| {
                let (labels, default) = self.case_labels(case);
                (case, labels, default)
            })
            .collect();
        let has_default = cases.iter().any(|(_, _, default)| *default);
        // A constant subject selects its case (or the default) only.
        let selected: Option<Vec<usize>> = subject_text.map(|text| {
            let matching: Vec<usize> = (0..cases.len())
                .filter(|i| cases[*i].1.contains(&text))
                .collect();
            if matching.is_empty() {
                (0..cases.len()).filter(|i| cases[*i].2).collect()
            } else {
                matching
            }
        });
        let mut outcomes = Vec::new();
        for (i, (case, _, _)) in cases.iter().enumerate() {
            let Some(selected) = &selected else {
                let mut arm_env = env.clone();
                let _ = self.visit(*case, &mut arm_env);
                outcomes.push(arm_env);
                continue;
            };
            if !selected.contains(&i) {
                continue;
            }
            // The selected case runs, then falls through (Java, JavaScript)
            // until a case ends with `break`, `return` or `throw`.
            let mut arm_env = env.clone();
            for (next, _, _) in &cases[i..] {
                let _ = self.visit(*next, &mut arm_env);
                let ends = named_children(*next).last().is_some_and(|last| {
                    matches!(
                        last.kind(),
                        "break_statement" | "return_statement" | "throw_statement"
                    )
                });
                if ends || next.kind() == "case_clause" {
                    break;
                }
            }
            outcomes.push(arm_env);
        }
        let all_covered = selected.as_ref().is_some_and(|s| !s.is_empty()) || has_default;
        if !all_covered {
            outcomes.push(env.clone());
        }
        *env = merge_envs(&outcomes);
        None
    }

    /// The constant labels of a `case` and whether it is the default.
    fn case_labels(&self, case: Node<'_>) -> (Vec<String>, bool) {
        let mut labels = Vec::new();
        let mut default = matches!(case.kind(), "switch_default");
        let mut label_nodes: Vec<Node<'_>> = named_children(case)
            .into_iter()
            .filter(|c| matches!(c.kind(), "case_pattern" | "switch_label"))
            .collect();
        label_nodes.extend(field(case, "value"));
        for label in label_nodes {
            let text = self.text(label).trim();
            let text = text.strip_prefix("case").unwrap_or(text).trim();
            if text == "_" || text == "default" {
                default = true;
            } else {
                labels.push(unquote(text).to_owned());
            }
        }
        (labels, default)
    }

    /// The value of a string expression known at analysis time.
    fn const_text(&self, node: Node<'_>, env: &Env) -> Option<String> {
        if let Some(text) = self.const_string(node) {
            return Some(text);
        }
        match node.kind() {
            "character_literal" => Some(unquote(self.text(node)).to_owned()),
            "identifier" => env.get(self.text(node))?.text.clone(),
            "parenthesized_expression" => self.const_text(*named_children(node).first()?, env),
            "method_invocation" => {
                let name = self.text(field(node, "name")?);
                let object = self.const_text(field(node, "object")?, env)?;
                let args = named_children(field(node, "arguments")?);
                if name != "charAt" || args.len() != 1 {
                    return None;
                }
                let index = self.const_eval(args[0], env)?;
                char_at(&object, index)
            }
            "subscript" => {
                let base = self.const_text(field(node, "value")?, env)?;
                let index = field(node, "subscript").filter(|i| i.kind() != "slice")?;
                char_at(&base, self.const_eval(index, env)?)
            }
            _ => None,
        }
    }

    fn visit_ternary(&mut self, node: Node<'_>, env: &mut Env) -> T {
        let (condition, consequence, alternative) = if node.kind() == "conditional_expression" {
            let children = named_children(node);
            if children.len() != 3 {
                return self.visit_children(node, env);
            }
            (children[1], children[0], children[2])
        } else {
            match (
                field(node, "condition"),
                field(node, "consequence"),
                field(node, "alternative"),
            ) {
                (Some(c), Some(t), Some(f)) => (c, t, f),
                _ => return self.visit_children(node, env),
            }
        };
        let _ = self.visit(condition, env);
        let (when_true, when_false) = self.guards(condition, env);
        let mut true_env = env.clone();
        clean(&mut true_env, &when_true);
        let mut false_env = env.clone();
        clean(&mut false_env, &when_false);
        match self.const_eval(condition, env) {
            Some(0) => self.visit(alternative, &mut false_env),
            Some(_) => self.visit(consequence, &mut true_env),
            None => {
                let t = self.visit(consequence, &mut true_env);
                join(t, self.visit(alternative, &mut false_env))
            }
        }
    }

    fn visit_for(&mut self, node: Node<'_>, env: &mut Env) -> T {
        let (target, iterable) = match node.kind() {
            "enhanced_for_statement" => (field(node, "name"), field(node, "value")),
            _ => {
                let range = named_children(node)
                    .into_iter()
                    .find(|c| c.kind() == "range_clause");
                match range {
                    Some(r) => (field(r, "left"), field(r, "right")),
                    None => (field(node, "left"), field(node, "right")),
                }
            }
        };
        let (Some(target), Some(iterable), Some(body)) = (target, iterable, field(node, "body"))
        else {
            return self.visit_children(node, env);
        };
        let taint = self.visit(iterable, env);
        let before = env.clone();
        self.assign_var(target, Var::scalar(taint), None, env);
        let _ = self.visit(body, env);
        *env = merge_envs(&[before, env.clone()]);
        None
    }

    /// Whether a statement always leaves the function or loop iteration.
    fn terminates(&self, node: Node<'_>) -> bool {
        match node.kind() {
            "return_statement" | "raise_statement" | "throw_statement" | "continue_statement"
            | "break_statement" => true,
            "block" | "statement_block" | "statement_list" | "else_clause" => named_children(node)
                .last()
                .is_some_and(|last| self.terminates(*last)),
            "expression_statement" => named_children(node)
                .first()
                .is_some_and(|expr| self.terminates(*expr)),
            "call" | "call_expression" | "method_invocation" => {
                any_suffix(&self.rules.terminators, &self.path_of(node))
            }
            _ => false,
        }
    }

    /// Variables a condition validates: (when it is true, when it is false).
    fn guards(&self, condition: Node<'_>, env: &Env) -> (Vec<String>, Vec<String>) {
        let kind = condition.kind();
        let operator = field(condition, "operator").map(|o| self.text(o));
        match kind {
            "parenthesized_expression" => named_children(condition)
                .first()
                .map(|c| self.guards(*c, env))
                .unwrap_or_default(),
            "not_operator" => field(condition, "argument")
                .map(|a| {
                    let (t, f) = self.guards(a, env);
                    (f, t)
                })
                .unwrap_or_default(),
            "unary_expression" if operator == Some("!") => field(condition, "argument")
                .or_else(|| field(condition, "operand"))
                .map(|a| {
                    let (t, f) = self.guards(a, env);
                    (f, t)
                })
                .unwrap_or_default(),
            "boolean_operator" | "binary_expression"
                if matches!(operator, Some("and" | "&&" | "or" | "||")) =>
            {
                let (Some(left), Some(right)) =
                    (field(condition, "left"), field(condition, "right"))
                else {
                    return Default::default();
                };
                let (lt, lf) = self.guards(left, env);
                let (rt, rf) = self.guards(right, env);
                if matches!(operator, Some("and" | "&&")) {
                    ([lt, rt].concat(), Vec::new())
                } else {
                    (Vec::new(), [lf, rf].concat())
                }
            }
            "comparison_operator" | "binary_expression" => self.comparison_guard(condition, env),
            "call" | "call_expression" | "method_invocation" => {
                let call = self.call_parts(condition);
                if !any_suffix(&self.rules.validators, &call.path) {
                    return Default::default();
                }
                let mut names = Vec::new();
                for node in call.positional.iter().chain(call.receiver.iter()) {
                    names.extend(self.with_aliases(*node, env));
                }
                (names, Vec::new())
            }
            _ => Default::default(),
        }
    }

    fn comparison_guard(&self, condition: Node<'_>, env: &Env) -> (Vec<String>, Vec<String>) {
        let mut cursor = condition.walk();
        let children: Vec<Node<'_>> = condition.children(&mut cursor).collect();
        if children.len() != 3 {
            return Default::default();
        }
        let (left, op, right) = (children[0], self.text(children[1]), children[2]);
        let literal =
            |n: Node<'_>| self.const_string(n).is_some() || self.const_eval(n, env).is_some();
        match op {
            "in" => (self.with_aliases(left, env), Vec::new()),
            "not in" => (Vec::new(), self.with_aliases(left, env)),
            "==" | "===" | "!=" | "!==" => {
                let checked = if literal(right) {
                    left
                } else if literal(left) {
                    right
                } else {
                    return Default::default();
                };
                let names = self.with_aliases(checked, env);
                if op.starts_with('=') {
                    (names, Vec::new())
                } else {
                    (Vec::new(), names)
                }
            }
            _ => Default::default(),
        }
    }

    /// The variable an expression is rooted at, and the variables it was
    /// computed from.
    fn with_aliases(&self, node: Node<'_>, env: &Env) -> Vec<String> {
        let mut names = Vec::new();
        let mut next = self.base_variable(node);
        while let Some(name) = next {
            if names.contains(&name) || names.len() > 4 {
                break;
            }
            next = env.get(&name).and_then(|v| v.alias.clone());
            names.push(name);
        }
        names
    }

    // === sinks and patterns ===

    fn report(&mut self, id: &str, category: &str, message: &str, node: Node<'_>, source: T) {
        if !self.seen.insert((id.to_owned(), node.start_byte())) {
            return;
        }
        let start = node.start_position();
        let end = node.end_position();
        let snippet = self.text(node).lines().next().unwrap_or_default();
        self.findings.push(RawFinding {
            rule_id: id.to_owned(),
            category: category.to_owned(),
            message: message.to_owned(),
            start: (start.row + 1, start.column + 1),
            end: (end.row + 1, end.column + 1),
            snippet: snippet.chars().take(200).collect(),
            source,
        });
    }

    fn report_taint(&mut self, sink: &Sink, node: Node<'_>, taint: &T) -> bool {
        let Some(t) = taint else {
            return false;
        };
        if t.sanitized.contains(&sink.head.category) {
            return false;
        }
        let message = format!(
            "{} ({} `{}` at line {} reaches this sink)",
            sink.head.message, t.kind, t.text, t.line
        );
        let (id, category) = (sink.head.id.clone(), sink.head.category.clone());
        self.report(&id, &category, &message, node, taint.clone());
        true
    }

    fn check_call_sinks(
        &mut self,
        node: Node<'_>,
        call: &Call<'_>,
        receiver: &T,
        positional: &[T],
        keywords: &[T],
    ) {
        let rules = self.rules;
        for sink in rules.sinks.iter().filter(|s| s.head.on == Target::Call) {
            if !call.matches(&sink.head.patterns) || call.matches(&sink.exclude) {
                continue;
            }
            if !self.conditions_hold(&sink.head.conditions, Some(call)) {
                continue;
            }
            if let Some(regex) = &sink.first_arg
                && !call
                    .positional
                    .first()
                    .is_some_and(|a| regex.is_match(self.text(*a)))
            {
                continue;
            }
            let mut checked: Vec<&T> = Vec::new();
            for (i, taint) in positional.iter().enumerate() {
                let wanted = match (&sink.args, sink.args_from) {
                    (Some(list), _) => list.contains(&i),
                    (None, Some(from)) => i >= from,
                    (None, None) => true,
                };
                if wanted {
                    checked.push(taint);
                }
            }
            for ((name, _), taint) in call.keywords.iter().zip(keywords) {
                if sink.keywords.contains(name) {
                    checked.push(taint);
                }
            }
            if sink.receiver {
                checked.push(receiver);
            }
            for taint in checked {
                if self.report_taint(sink, node, taint) {
                    break;
                }
            }
        }
    }

    fn check_call_patterns(&mut self, node: Node<'_>, call: &Call<'_>) {
        let rules = self.rules;
        for pattern in rules.patterns.iter().filter(|p| p.head.on == Target::Call) {
            if !call.matches(&pattern.head.patterns)
                || !self.conditions_hold(&pattern.head.conditions, Some(call))
            {
                continue;
            }
            if let Some(regex) = &pattern.arg_regex {
                let arg = call.positional.get(pattern.arg.unwrap_or(0));
                if !arg.is_some_and(|a| regex.is_match(self.text(*a).trim())) {
                    continue;
                }
            }
            if !self.keyword_fires(pattern, call.keywords.iter().map(|(k, v)| (k.as_str(), *v))) {
                continue;
            }
            self.report_pattern(pattern, node);
        }
    }

    fn report_pattern(&mut self, pattern: &Pattern, node: Node<'_>) {
        let head = &pattern.head;
        self.report(&head.id, &head.category, &head.message, node, None);
    }

    /// Whether a pattern's keyword test fires for these keyword arguments.
    fn keyword_fires<'t>(
        &self,
        pattern: &Pattern,
        mut keywords: impl Iterator<Item = (&'t str, Node<'t>)>,
    ) -> bool {
        let Some(name) = &pattern.keyword else {
            return true;
        };
        match keywords.find(|(k, _)| k == name) {
            Some((_, value)) => pattern
                .keyword_regex
                .as_ref()
                .is_none_or(|r| r.is_match(self.text(value).trim())),
            None => pattern.keyword_missing,
        }
    }

    fn check_composite(&mut self, node: Node<'_>) {
        let Some(ty) = field(node, "type") else {
            return;
        };
        let path = self.path_of(ty);
        let mut keywords = Vec::new();
        if let Some(body) = field(node, "body") {
            for element in named_children(body) {
                let parts = named_children(element);
                if element.kind() == "keyed_element" && parts.len() == 2 {
                    keywords.push((self.text(parts[0]).trim(), parts[1]));
                }
            }
        }
        let rules = self.rules;
        for pattern in rules
            .patterns
            .iter()
            .filter(|p| p.head.on == Target::Composite)
        {
            if any_suffix(&pattern.head.patterns, &path)
                && self.conditions_hold(&pattern.head.conditions, None)
                && self.keyword_fires(pattern, keywords.iter().copied())
            {
                self.report_pattern(pattern, node);
            }
        }
    }

    fn check_assign_sinks(&mut self, path: &[String], node: Node<'_>, taint: &T) {
        let rules = self.rules;
        for sink in rules.sinks.iter().filter(|s| s.head.on == Target::Assign) {
            let matches = sink
                .head
                .patterns
                .iter()
                .any(|p| p.matches_prefix(path) || p.matches_suffix(path));
            if matches && self.conditions_hold(&sink.head.conditions, None) {
                self.report_taint(sink, node, taint);
            }
        }
    }

    fn check_return(&mut self, node: Node<'_>, taint: &T) {
        if taint.is_none() || self.decorators.is_empty() {
            return;
        }
        let rules = self.rules;
        for sink in rules.sinks.iter().filter(|s| s.head.on == Target::Return) {
            let decorated = self
                .decorators
                .iter()
                .any(|d| any_suffix(&sink.decorators, d));
            if decorated && self.conditions_hold(&sink.head.conditions, None) {
                self.report_taint(sink, node, taint);
            }
        }
    }

    fn check_secret(&mut self, target: Node<'_>, value: Node<'_>) {
        let Some(name) = self.path_of(target).pop() else {
            return;
        };
        let value_text = self.text(value).trim();
        let rules = self.rules;
        for pattern in rules
            .patterns
            .iter()
            .filter(|p| p.head.on == Target::Assign)
        {
            let name_ok = pattern
                .name_regex
                .as_ref()
                .is_none_or(|r| r.is_match(&name));
            let value_ok = pattern
                .value_regex
                .as_ref()
                .is_none_or(|r| r.is_match(value_text));
            if name_ok && value_ok && self.conditions_hold(&pattern.head.conditions, None) {
                self.report_pattern(pattern, value);
            }
        }
    }
}

/// Cleans the validated variables.
fn clean(env: &mut Env, names: &[String]) {
    for name in names {
        if let Some(var) = env.get_mut(name) {
            let constant = var.constant;
            *var = Var {
                constant,
                ..Var::default()
            };
        }
    }
}

/// The character at a Python-style index, as a string.
fn char_at(text: &str, index: i64) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let slot = normalise_index(index, chars.len())?;
    Some(chars[slot].to_string())
}

/// Python-style index (negative counts from the end) into `len` elements.
fn normalise_index(position: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let index = if position < 0 {
        len + position
    } else {
        position
    };
    (0..len).contains(&index).then_some(index as usize)
}

fn binary(operator: &str, left: i64, right: i64) -> Option<i64> {
    Some(match operator {
        "+" => left.checked_add(right)?,
        "-" => left.checked_sub(right)?,
        "*" => left.checked_mul(right)?,
        "/" | "//" => left.checked_div(right)?,
        "%" => left.checked_rem(right)?,
        "<" => i64::from(left < right),
        ">" => i64::from(left > right),
        "<=" => i64::from(left <= right),
        ">=" => i64::from(left >= right),
        "==" | "===" => i64::from(left == right),
        "!=" | "!==" => i64::from(left != right),
        "and" | "&&" => i64::from(left != 0 && right != 0),
        "or" | "||" => i64::from(left != 0 || right != 0),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_normalisation() {
        assert_eq!(normalise_index(-1, 3), Some(2));
        assert_eq!(normalise_index(3, 3), None);
        assert_eq!(normalise_index(0, 0), None);
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote("'abc'"), "abc");
        assert_eq!(unquote("r\"x\""), "x");
        assert_eq!(unquote("`t`"), "t");
    }
}
