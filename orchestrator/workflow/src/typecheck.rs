//! Static types of expressions. Inputs have their declared types, `run`,
//! `env` and `secrets` are strings, and step outputs have the type their
//! skill's output JSON Schema gives when an [`OutputSchemas`] lookup knows
//! it (otherwise any type). Reports operators applied to the wrong types,
//! field access on scalars, unknown fields of closed output schemas, and
//! conditions / `for_each` lists of the wrong type. Unknown types (`dyn`)
//! never cause an error: the checker only reports what is certainly wrong.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use serde_json::Value;
use synod_types::SkillRef;

use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::suggest::unknown_name_help;
use crate::workflow::{ExpressionSite, InputType, StepSpec, Workflow};

/// Where output JSON Schemas of skills come from (the registry's catalog,
/// a file, a test table). Validation works without one.
pub trait OutputSchemas {
    /// The output JSON Schema of `uses`, if known.
    fn output_schema(&self, uses: &SkillRef) -> Option<Value>;
}

/// A static type.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// Unknown: anything goes.
    Dyn,
    /// `null`.
    Null,
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `uint`.
    Uint,
    /// `double`.
    Double,
    /// A JSON number: `int` or `double`.
    Number,
    /// `string`.
    String,
    /// `bytes`.
    Bytes,
    /// A list of one element type.
    List(Box<Type>),
    /// A map with values of one type.
    Map(Box<Type>),
    /// An object with known fields; `closed` when no others exist.
    Object {
        /// Known fields.
        fields: BTreeMap<String, Type>,
        /// Whether other fields are absent for sure.
        closed: bool,
        /// Where the fields come from, for messages (e.g. "the output of `demo/x`").
        origin: String,
    },
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Dyn => f.write_str("dyn"),
            Type::Null => f.write_str("null"),
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Uint => f.write_str("uint"),
            Type::Double => f.write_str("double"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Bytes => f.write_str("bytes"),
            Type::List(item) => write!(f, "list({item})"),
            Type::Map(value) => write!(f, "map(string, {value})"),
            Type::Object { .. } => f.write_str("object"),
        }
    }
}

impl Type {
    fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Uint | Type::Double | Type::Number)
    }

    /// A JSON Schema as a type (at most `depth` levels deep).
    pub fn from_schema(schema: &Value, origin: &str) -> Type {
        schema_type(schema, origin, 12)
    }
}

fn schema_type(schema: &Value, origin: &str, depth: usize) -> Type {
    if depth == 0 {
        return Type::Dyn;
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let ty = schema.get("type").and_then(Value::as_str);
    match (ty, properties) {
        (Some("string"), _) => Type::String,
        (Some("integer"), _) => Type::Int,
        (Some("number"), _) => Type::Number,
        (Some("boolean"), _) => Type::Bool,
        (Some("null"), _) => Type::Null,
        (Some("array"), _) => {
            let item = schema
                .get("items")
                .map_or(Type::Dyn, |items| schema_type(items, origin, depth - 1));
            Type::List(Box::new(item))
        }
        (Some("object"), None) => match schema.get("additionalProperties") {
            Some(value @ Value::Object(_)) => {
                Type::Map(Box::new(schema_type(value, origin, depth - 1)))
            }
            _ => Type::Map(Box::new(Type::Dyn)),
        },
        (Some("object") | None, Some(properties)) => {
            let mut fields = BTreeMap::new();
            for (name, property) in properties {
                fields.insert(name.clone(), schema_type(property, origin, depth - 1));
            }
            let closed = !matches!(
                schema.get("additionalProperties"),
                Some(Value::Bool(true)) | Some(Value::Object(_))
            );
            Type::Object {
                fields,
                closed,
                origin: origin.to_owned(),
            }
        }
        _ => Type::Dyn,
    }
}

fn input_type(ty: InputType) -> Type {
    match ty {
        InputType::String => Type::String,
        InputType::Number => Type::Number,
        InputType::Integer => Type::Int,
        InputType::Boolean => Type::Bool,
        InputType::Array => Type::List(Box::new(Type::Dyn)),
        InputType::Object => Type::Map(Box::new(Type::Dyn)),
    }
}

/// What a site's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Any,
    Bool,
    List,
}

/// Type-checks every expression of `workflow`.
pub fn check_workflow(workflow: &Workflow, schemas: Option<&dyn OutputSchemas>) -> Vec<Diagnostic> {
    let mut outputs: HashMap<&str, Type> = HashMap::new();
    for step in &workflow.steps {
        outputs.insert(step.id.as_str(), step_output(step, schemas));
    }
    let mut inputs = BTreeMap::new();
    for input in &workflow.inputs {
        inputs.insert(input.name.clone(), input_type(input.ty));
    }
    let base = Variables {
        inputs: Type::Object {
            fields: inputs,
            closed: false,
            origin: "the inputs".into(),
        },
        outputs,
        item: None,
        output: None,
    };
    let mut checker = Checker {
        file: &workflow.file,
        reader: String::new(),
        diagnostics: Vec::new(),
    };
    for step in &workflow.steps {
        checker.reader = format!("step `{}`", step.id);
        if let Some(site) = &step.condition {
            checker.check(site, &base, Expect::Bool, "if");
        }
        let mut with_variables = base.clone();
        if let Some(each) = &step.for_each {
            let list = checker.check(&each.items, &base, Expect::List, "for_each");
            let item = match list {
                Type::List(item) => *item,
                _ => Type::Dyn,
            };
            with_variables.item = Some(item);
        }
        for site in &step.expressions {
            checker.check(site, &with_variables, Expect::Any, "");
        }
        if let Some(until) = step.reflect.as_ref().and_then(|r| r.until.as_ref()) {
            let mut reflect_variables = base.clone();
            reflect_variables.output = Some(item_output(step, schemas));
            checker.check(until, &reflect_variables, Expect::Bool, "reflect.until");
        }
    }
    for output in &workflow.outputs {
        checker.reader = format!("output `{}`", output.name);
        for site in &output.expressions {
            checker.check(site, &base, Expect::Any, "");
        }
    }
    for binding in &workflow.bindings {
        checker.reader = format!("binding `{}`", binding.name);
        if let Some(site) = &binding.condition {
            checker.check(site, &base, Expect::Bool, "if");
        }
        for site in &binding.expressions {
            checker.check(site, &base, Expect::Any, "");
        }
    }
    checker.diagnostics
}

/// The type of `steps.<id>.output`: the skill's output schema, a list of it
/// for a `for_each` step (one output per item, in item order).
fn step_output(step: &StepSpec, schemas: Option<&dyn OutputSchemas>) -> Type {
    let one = item_output(step, schemas);
    if step.for_each.is_some() {
        Type::List(Box::new(one))
    } else {
        one
    }
}

/// The type of one call's output (what `reflect.until` sees as `output`).
fn item_output(step: &StepSpec, schemas: Option<&dyn OutputSchemas>) -> Type {
    let (Some(uses), Some(schemas)) = (&step.uses, schemas) else {
        return Type::Dyn;
    };
    match schemas.output_schema(uses) {
        Some(schema) => Type::from_schema(&schema, &format!("the output of `{uses}`")),
        None => Type::Dyn,
    }
}

#[derive(Debug, Clone)]
struct Variables<'a> {
    inputs: Type,
    outputs: HashMap<&'a str, Type>,
    item: Option<Type>,
    output: Option<Type>,
}

/// A `steps…` path being typed: the steps map, one step, or a value.
#[derive(Debug, Clone)]
enum Typed {
    Steps,
    Step(String),
    Value(Type),
}

struct Checker<'f> {
    file: &'f str,
    /// Who reads, for messages: "step `a`".
    reader: String,
    diagnostics: Vec<Diagnostic>,
}

struct Site<'s, 'v> {
    site: &'s ExpressionSite,
    reader: &'s str,
    variables: &'s Variables<'v>,
    bound: Vec<(String, Type)>,
    /// Errors found in this expression (each subtree reports at most once).
    errors: Vec<(Range<usize>, String, &'static str, Option<String>)>,
}

impl Checker<'_> {
    fn check(
        &mut self,
        site: &ExpressionSite,
        variables: &Variables<'_>,
        expect: Expect,
        field: &str,
    ) -> Type {
        let mut state = Site {
            site,
            reader: &self.reader,
            variables,
            bound: Vec::new(),
            errors: Vec::new(),
        };
        let ty = state.infer(site.expression.ast());
        let whole = 0..site.expression.source.len();
        let wrong = match (expect, &ty) {
            (_, Type::Dyn) | (Expect::Any, _) => None,
            (Expect::Bool, Type::Bool) => None,
            (Expect::List, Type::List(_)) => None,
            (Expect::Bool, other) => Some(format!("`{field}` must be a boolean, found {other}")),
            (Expect::List, other) => Some(format!("`{field}` must be a list, found {other}")),
        };
        if let Some(message) = wrong
            && state.errors.is_empty()
        {
            let help = match expect {
                Expect::Bool => "compare the value, e.g. `size(x) > 0` or `x == 'done'`",
                _ => "give a list, e.g. `steps.detect.output.alerts`",
            };
            state
                .errors
                .push((whole, message, codes::EXPRESSION_TYPE, Some(help.into())));
        }
        for (range, message, code, help) in state.errors {
            let mut diagnostic = Diagnostic::error(code, self.file, site.sub_span(&range), message)
                .with_label(if code == codes::UNKNOWN_OUTPUT_FIELD {
                    "unknown output field"
                } else {
                    "type error"
                });
            if let Some(help) = help {
                diagnostic = diagnostic.with_help(help);
            }
            self.diagnostics.push(diagnostic);
        }
        ty
    }
}

impl Site<'_, '_> {
    fn range(&self, node: &IdedExpr) -> Range<usize> {
        self.site.expression.position(node.id).unwrap_or(0..0)
    }

    /// The written path up to `field` (e.g. `steps.c.output.verdict`) of the
    /// reference holding `range`; `field` alone when there is none.
    fn path_to(&self, range: &Range<usize>, field: &str) -> String {
        for reference in &self.site.expression.references {
            if reference.range.start <= range.start && range.end <= reference.range.end {
                let wanted = crate::expr::PathSegment::Field(field.to_owned());
                if let Some(position) = reference.path.iter().rposition(|s| *s == wanted) {
                    return crate::expr::path_text(&reference.path[..=position]);
                }
            }
        }
        field.to_owned()
    }

    fn error(&mut self, node: &IdedExpr, message: String, help: Option<String>) -> Type {
        let range = self.range(node);
        self.errors
            .push((range, message, codes::EXPRESSION_TYPE, help));
        Type::Dyn
    }

    fn infer(&mut self, node: &IdedExpr) -> Type {
        match self.infer_typed(node) {
            Typed::Value(ty) => ty,
            Typed::Steps | Typed::Step(_) => Type::Dyn,
        }
    }

    fn infer_typed(&mut self, node: &IdedExpr) -> Typed {
        let ty = match &node.expr {
            Expr::Literal(literal) => match literal {
                LiteralValue::Boolean(_) => Type::Bool,
                LiteralValue::Bytes(_) => Type::Bytes,
                LiteralValue::Double(_) => Type::Double,
                LiteralValue::Int(_) => Type::Int,
                LiteralValue::Null => Type::Null,
                LiteralValue::String(_) => Type::String,
                LiteralValue::UInt(_) => Type::Uint,
            },
            Expr::Ident(name) => return self.identifier(name),
            Expr::Select(select) => {
                let operand = self.infer_typed(&select.operand);
                if select.test {
                    return Typed::Value(Type::Bool);
                }
                return self.select(node, operand, &select.field);
            }
            Expr::Call(call) => {
                self.call(node, &call.func_name, call.target.as_deref(), &call.args)
            }
            Expr::List(list) => {
                let mut item: Option<Type> = None;
                for element in &list.elements {
                    let ty = self.infer(element);
                    item = Some(match item {
                        None => ty,
                        Some(previous) if previous == ty => previous,
                        Some(_) => Type::Dyn,
                    });
                }
                Type::List(Box::new(item.unwrap_or(Type::Dyn)))
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        self.infer(&entry.key);
                        self.infer(&entry.value);
                    }
                }
                Type::Map(Box::new(Type::Dyn))
            }
            Expr::Comprehension(comprehension) => {
                let range = self.infer(&comprehension.iter_range);
                let element = match &range {
                    Type::List(item) => (**item).clone(),
                    Type::Map(_) | Type::Object { .. } => Type::String,
                    Type::Dyn => Type::Dyn,
                    other => {
                        let message = format!(
                            "cannot iterate over {other}; macros like `exists`, `all`, `map`, `filter` need a list or map"
                        );
                        self.error(&comprehension.iter_range, message, None);
                        Type::Dyn
                    }
                };
                let accumulator = self.infer(&comprehension.accu_init);
                let before = self.bound.len();
                self.bound.push((comprehension.iter_var.clone(), element));
                if let Some(second) = &comprehension.iter_var2 {
                    self.bound.push((second.clone(), Type::Dyn));
                }
                self.bound
                    .push((comprehension.accu_var.clone(), accumulator.clone()));
                self.infer(&comprehension.loop_cond);
                let step = self.infer(&comprehension.loop_step);
                if let Some(last) = self.bound.last_mut() {
                    // `map`/`filter` grow a list whose element type the step shows.
                    if matches!(accumulator, Type::List(_)) && matches!(step, Type::List(_)) {
                        last.1 = step;
                    }
                }
                let result = self.infer(&comprehension.result);
                self.bound.truncate(before);
                result
            }
            Expr::Struct(_) | Expr::Unspecified => Type::Dyn,
        };
        Typed::Value(ty)
    }

    fn identifier(&mut self, name: &str) -> Typed {
        for (bound, ty) in self.bound.iter().rev() {
            if bound == name {
                return Typed::Value(ty.clone());
            }
        }
        Typed::Value(match name {
            "inputs" => self.variables.inputs.clone(),
            "steps" => return Typed::Steps,
            "run" => Type::Object {
                fields: crate::scope::RUN_FIELDS
                    .iter()
                    .map(|field| ((*field).to_owned(), Type::String))
                    .collect(),
                closed: false,
                origin: "`run`".into(),
            },
            "env" | "secrets" => Type::Map(Box::new(Type::String)),
            "item" => self.variables.item.clone().unwrap_or(Type::Dyn),
            "item_index" | "round" => Type::Int,
            "confidence" => Type::Double,
            "output" => self.variables.output.clone().unwrap_or(Type::Dyn),
            _ => Type::Dyn,
        })
    }

    fn select(&mut self, node: &IdedExpr, operand: Typed, field: &str) -> Typed {
        let ty = match operand {
            Typed::Steps => return Typed::Step(field.to_owned()),
            Typed::Step(step) => {
                if field != "output" {
                    return Typed::Value(Type::Dyn);
                }
                self.variables
                    .outputs
                    .get(step.as_str())
                    .cloned()
                    .unwrap_or(Type::Dyn)
            }
            Typed::Value(value) => self.field_of(node, &value, field),
        };
        Typed::Value(ty)
    }

    /// The type of `value.field`, reporting impossible accesses.
    fn field_of(&mut self, node: &IdedExpr, value: &Type, field: &str) -> Type {
        match value {
            Type::Dyn => Type::Dyn,
            Type::Map(item) => (**item).clone(),
            Type::Object {
                fields,
                closed,
                origin,
            } => match fields.get(field) {
                Some(ty) => ty.clone(),
                None if *closed => {
                    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                    let mut range = self.range(node);
                    // A select's position is its `.`; underline the field.
                    let source = &self.site.expression.source;
                    if source.get(range.start..range.start + 1) == Some(".") {
                        range = range.start + 1..(range.start + 1 + field.len()).min(source.len());
                    }
                    let message = format!(
                        "{} reads `{}`, but {origin} has no field `{field}`",
                        self.reader,
                        self.path_to(&range, field)
                    );
                    self.errors.push((
                        range,
                        message,
                        codes::UNKNOWN_OUTPUT_FIELD,
                        Some(unknown_name_help(field, &names, "fields")),
                    ));
                    Type::Dyn
                }
                None => Type::Dyn,
            },
            Type::List(_) => self.error(
                node,
                format!("a list has no field `{field}`"),
                Some("index it (`[0]`) or map over it (`.map(x, x.field)`)".into()),
            ),
            other => self.error(
                node,
                format!("{other} has no field `{field}`"),
                Some(format!(
                    "a {other} has no fields; use functions such as `size(x)`, `x.contains('…')` or `string(x)`"
                )),
            ),
        }
    }

    fn call(
        &mut self,
        node: &IdedExpr,
        function: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
    ) -> Type {
        let target_type = target.map(|target| self.infer(target));
        let mut types = Vec::with_capacity(args.len());
        if function != "_[_]" {
            for argument in args {
                types.push(self.infer(argument));
            }
        }
        let symbol = operator_symbol(function);
        match (function, types.as_slice()) {
            ("_+_", [left, right]) => self.arithmetic(node, symbol, left, right, true),
            ("_-_" | "_*_" | "_/_" | "_%_", [left, right]) => {
                self.arithmetic(node, symbol, left, right, false)
            }
            ("-_", [value]) => {
                if value.is_numeric() || *value == Type::Dyn {
                    value.clone()
                } else {
                    self.error(node, format!("cannot negate {value}"), None)
                }
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", [left, right]) => {
                let comparable = *left == Type::Dyn
                    || *right == Type::Dyn
                    || (left.is_numeric() && right.is_numeric())
                    || (left == right && matches!(left, Type::String | Type::Bytes | Type::Bool));
                if !comparable {
                    self.error(
                        node,
                        format!("cannot compare {left} with {right} using `{symbol}`"),
                        Some("convert one side, e.g. `int(x)` or `string(x)`".into()),
                    );
                }
                Type::Bool
            }
            ("_==_" | "_!=_" | "@not_strictly_false", _) => Type::Bool,
            ("_&&_" | "_||_", _) | ("!_", _) => {
                for (argument, ty) in args.iter().zip(&types) {
                    if *ty != Type::Bool && *ty != Type::Dyn {
                        self.error(
                            argument,
                            format!("`{symbol}` needs booleans, found {ty}"),
                            Some("compare the value, e.g. `size(x) > 0`".into()),
                        );
                    }
                }
                Type::Bool
            }
            ("_?_:_", [condition, yes, no]) => {
                if *condition != Type::Bool && *condition != Type::Dyn {
                    self.error(
                        &args[0],
                        format!("the condition of `? :` must be a boolean, found {condition}"),
                        None,
                    );
                }
                if yes == no { yes.clone() } else { Type::Dyn }
            }
            ("@in", [_, container]) => {
                if !matches!(
                    container,
                    Type::Dyn | Type::List(_) | Type::Map(_) | Type::Object { .. }
                ) {
                    self.error(
                        node,
                        format!("`in` needs a list or map on the right, found {container}"),
                        None,
                    );
                }
                Type::Bool
            }
            ("_[_]", _) => self.index(node, args),
            ("size", _) => {
                let subject = target_type.as_ref().or(types.first());
                if let Some(subject) = subject
                    && !matches!(
                        subject,
                        Type::Dyn
                            | Type::String
                            | Type::Bytes
                            | Type::List(_)
                            | Type::Map(_)
                            | Type::Object { .. }
                    )
                {
                    let message =
                        format!("`size` needs a string, bytes, list or map, found {subject}");
                    self.error(node, message, None);
                }
                Type::Int
            }
            ("contains" | "startsWith" | "endsWith" | "matches", _) => {
                let subject = target_type.as_ref().or(types.first());
                if let Some(subject) = subject
                    && *subject != Type::String
                    && *subject != Type::Dyn
                {
                    let message = format!("`{function}` works on strings, found {subject}");
                    self.error(node, message, Some("convert with `string(x)` first".into()));
                }
                Type::Bool
            }
            ("int", _) => Type::Int,
            ("uint", _) => Type::Uint,
            ("double", _) => Type::Double,
            ("string", _) => Type::String,
            ("bytes", _) => Type::Bytes,
            ("bool", _) => Type::Bool,
            _ => Type::Dyn,
        }
    }

    fn arithmetic(
        &mut self,
        node: &IdedExpr,
        symbol: &str,
        left: &Type,
        right: &Type,
        addition: bool,
    ) -> Type {
        match (left, right) {
            (Type::Dyn, other) | (other, Type::Dyn) => {
                if other.is_numeric() || (addition && !matches!(other, Type::Bool | Type::Null)) {
                    Type::Dyn
                } else {
                    self.error(node, format!("cannot use `{symbol}` with {other}"), None)
                }
            }
            (Type::Number, other) | (other, Type::Number) if other.is_numeric() => {
                if matches!(other, Type::Uint) {
                    Type::Dyn
                } else {
                    Type::Number
                }
            }
            (left, right) if left == right && left.is_numeric() => left.clone(),
            (Type::String, Type::String) | (Type::Bytes, Type::Bytes) if addition => left.clone(),
            (Type::List(_), Type::List(_)) if addition => left.clone(),
            _ => {
                let help = if left.is_numeric() && right.is_numeric() {
                    "CEL does not mix int, uint and double; convert with `double(x)` or `int(x)`"
                } else if *left == Type::String || *right == Type::String {
                    "convert the other side with `string(x)`"
                } else {
                    "both sides must have the same type"
                };
                self.error(
                    node,
                    format!("cannot use `{symbol}` on {left} and {right}"),
                    Some(help.into()),
                )
            }
        }
    }

    fn index(&mut self, node: &IdedExpr, args: &[IdedExpr]) -> Type {
        let [container, key] = args else {
            return Type::Dyn;
        };
        let container_type = match self.infer_typed(container) {
            Typed::Value(ty) => ty,
            Typed::Steps => {
                return match &key.expr {
                    Expr::Literal(LiteralValue::String(_)) => Type::Dyn,
                    _ => Type::Dyn,
                };
            }
            Typed::Step(_) => Type::Dyn,
        };
        let key_type = self.infer(key);
        match &container_type {
            Type::Dyn => Type::Dyn,
            Type::List(item) => {
                if !matches!(key_type, Type::Int | Type::Uint | Type::Dyn | Type::Number) {
                    self.error(
                        key,
                        format!("a list index must be an integer, found {key_type}"),
                        None,
                    );
                }
                (**item).clone()
            }
            Type::Map(item) => (**item).clone(),
            Type::Object { .. } => match &key.expr {
                Expr::Literal(LiteralValue::String(text)) => {
                    let field = text.to_string();
                    self.field_of(node, &container_type, &field)
                }
                _ => Type::Dyn,
            },
            other => self.error(node, format!("cannot index {other} with `[…]`"), None),
        }
    }
}

fn operator_symbol(function: &str) -> &str {
    match function {
        "_+_" => "+",
        "_-_" | "-_" => "-",
        "_*_" => "*",
        "_/_" => "/",
        "_%_" => "%",
        "_<_" => "<",
        "_<=_" => "<=",
        "_>_" => ">",
        "_>=_" => ">=",
        "_&&_" => "&&",
        "_||_" => "||",
        "!_" => "!",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_become_types() {
        let ty = Type::from_schema(
            &json!({"type": "object", "properties": {
                "alerts": {"type": "array", "items": {"type": "object", "properties": {"rule": {"type": "string"}}}},
                "count": {"type": "integer"}
            }}),
            "x",
        );
        let Type::Object { fields, closed, .. } = ty else {
            panic!("{ty:?}")
        };
        assert!(closed);
        assert_eq!(fields["count"], Type::Int);
        assert!(
            matches!(&fields["alerts"], Type::List(item) if matches!(**item, Type::Object { .. }))
        );
        assert_eq!(
            Type::from_schema(
                &json!({"type": "object", "additionalProperties": true, "properties": {}}),
                "x"
            )
            .to_string(),
            "object"
        );
        assert_eq!(Type::from_schema(&json!({}), "x"), Type::Dyn);
    }
}
