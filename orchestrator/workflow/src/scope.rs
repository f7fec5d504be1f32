//! Where each name may be read. Every `${{ … }}` is checked at load against
//! the scope of the place it is written:
//!
//! | place                                   | names in scope                                   |
//! |-----------------------------------------|--------------------------------------------------|
//! | step `with`                             | `inputs`, `steps`, `run`, `env` (+ `item`, `item_index` with `for_each`) |
//! | step `if`, `for_each`                   | `inputs`, `steps`, `run`, `env`                  |
//! | step `reflect.until`                    | the above + `output`, `confidence`, `round`      |
//! | workflow `outputs`                      | `inputs`, `steps`, `run`, `env`                  |
//! | binding `if`, `http.url`, `http.body`, `idempotency_key` | `inputs`, `steps`, `run`, `env` |
//! | binding `http.headers`                  | the above + `secrets`                            |
//! | `on.webhook.secret`                     | `secrets` only                                   |
//!
//! **Secrets** are readable only in binding headers and the webhook secret:
//! step inputs go to experts (possibly external) and are recorded in run
//! events, URLs and bodies are logged and recorded, while headers are
//! redacted. A workflow declares the secrets it reads under `secrets:`.
//!
//! **Steps** are readable only from the reader's `needs` ancestry (the steps
//! it needs, directly or transitively), through `steps.<id>.output`, so a
//! value is always there when the reader runs. Bindings without `needs` run
//! after every step and may read any step; workflow `outputs` too.

use std::collections::BTreeSet;

use crate::codes;
use crate::config::Reporter;
use crate::expr::{FUNCTIONS, Reference};
use crate::source::Span;
use crate::suggest::unknown_name_help;
use crate::syntax::{Entry, Node, NodeKind, Scalar};
use crate::template::{ValueTemplate, scan_expressions};
use crate::workflow::ExpressionSite;

/// Fields of `run`.
pub const RUN_FIELDS: &[&str] = &["id", "workflow", "trigger", "started_at"];

/// CEL type names, readable as identifiers (`type(x) == int`).
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// The place an expression is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    StepWith { for_each: bool },
    StepIf,
    StepForEach,
    ReflectUntil,
    Output,
    BindingValue,
    BindingHeader,
    WebhookSecret,
}

impl Place {
    pub(crate) fn roots(self) -> &'static [&'static str] {
        match self {
            Place::StepWith { for_each: true } => {
                &["inputs", "steps", "run", "env", "item", "item_index"]
            }
            Place::StepWith { for_each: false }
            | Place::StepIf
            | Place::StepForEach
            | Place::Output
            | Place::BindingValue => &["inputs", "steps", "run", "env"],
            Place::ReflectUntil => &[
                "inputs",
                "steps",
                "run",
                "env",
                "output",
                "confidence",
                "round",
            ],
            Place::BindingHeader => &["inputs", "steps", "run", "env", "secrets"],
            Place::WebhookSecret => &["secrets"],
        }
    }
}

/// The declared names expressions may refer to.
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub(crate) inputs: Vec<String>,
    pub(crate) steps: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) secrets: Vec<String>,
}

fn as_strs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}

/// Who reads: for messages and the `needs` check.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    /// "step `a`", "binding `ticket`", "output `report`".
    pub(crate) what: String,
    pub(crate) place: Place,
    /// The reading step (for "reads its own output").
    pub(crate) own_step: Option<&'a str>,
    /// Steps it may read; `None`: any step.
    pub(crate) readable: Option<&'a BTreeSet<String>>,
}

impl Reader<'_> {
    pub(crate) fn at(&self, place: Place) -> Reader<'_> {
        Reader {
            what: self.what.clone(),
            place,
            own_step: self.own_step,
            readable: self.readable,
        }
    }
}

/// Parses every `${{ … }}` in the strings under `node`, reporting syntax
/// errors and out-of-scope names at their position. Returns the template
/// (a literal `null` when an expression does not parse) and the sites.
pub(crate) fn collect_template(
    node: &Node,
    key_path: &str,
    reader: &Reader<'_>,
    names: &Names,
    reporter: &mut Reporter<'_>,
) -> (ValueTemplate, Vec<ExpressionSite>) {
    let mut sites = Vec::new();
    let errors_before = reporter.diagnostics.len();
    collect_sites(node, key_path, &mut sites, reporter);
    let parsed_cleanly = reporter.diagnostics.len() == errors_before;
    for site in &sites {
        check_site(site, reader, names, reporter);
    }
    let template = if parsed_cleanly {
        ValueTemplate::from_value(&node.to_json())
            .unwrap_or(ValueTemplate::Literal(serde_json::Value::Null))
    } else {
        ValueTemplate::Literal(serde_json::Value::Null)
    };
    (template, sites)
}

/// Reads a field that must be exactly one `${{ … }}` (e.g. `if`).
pub(crate) fn read_expression_field(
    entry: &Entry,
    key_path: &str,
    reader: &Reader<'_>,
    names: &Names,
    reporter: &mut Reporter<'_>,
) -> Option<ExpressionSite> {
    let node = &entry.value;
    let is_single = match &node.kind {
        NodeKind::Scalar(scalar) if !node.is_null() => {
            let text = scalar.text.trim();
            let slots = scan_expressions(text);
            text.starts_with("${{")
                && slots.len() == 1
                && slots[0].range.end == text.len()
                && text.ends_with("}}")
        }
        _ => false,
    };
    if !is_single {
        let span = crate::config::value_span(entry);
        let error = reporter
            .error(
                codes::NOT_AN_EXPRESSION,
                span,
                format!(
                    "`{key_path}` of {} must be one `${{{{ … }}}}` expression, found {}",
                    reader.what,
                    node.describe()
                ),
            )
            .with_label("expected `${{ … }}`")
            .with_help(match reader.place {
                Place::WebhookSecret => {
                    "write e.g. `secret: \"${{ secrets.HOOK_KEY }}\"` and declare `HOOK_KEY` under `secrets:`".to_owned()
                }
                Place::StepForEach => {
                    "write e.g. `for_each: \"${{ steps.detect.output.alerts }}\"`".to_owned()
                }
                _ => format!(
                    "write e.g. `{key_path}: \"${{{{ size(steps.detect.output.alerts) > 0 }}}}\"`"
                ),
            });
        reporter.push(error);
        return None;
    }
    let mut sites = Vec::new();
    let errors_before = reporter.diagnostics.len();
    collect_sites(node, key_path, &mut sites, reporter);
    if reporter.diagnostics.len() != errors_before {
        return None;
    }
    let site = sites.into_iter().next()?;
    check_site(&site, reader, names, reporter);
    Some(site)
}

/// Finds every `${{ … }}` in string scalars under `node`, reporting the
/// ones that do not parse at their position.
fn collect_sites(
    node: &Node,
    key_path: &str,
    sites: &mut Vec<ExpressionSite>,
    reporter: &mut Reporter<'_>,
) {
    match &node.kind {
        NodeKind::Scalar(scalar) => {
            if !scalar.text.contains("${{") {
                return;
            }
            for slot in scan_expressions(&scalar.text) {
                match slot.parsed {
                    Ok(expression) => {
                        let start = locate(reporter, node.span, scalar, slot.inner.start);
                        let length = slot.inner.end - slot.inner.start;
                        let end = (start + length).min(reporter.map.line_end(start));
                        sites.push(ExpressionSite {
                            expression,
                            span: reporter.map.span(start, end),
                            key_path: key_path.to_owned(),
                        });
                    }
                    Err(errors) => {
                        for error in errors {
                            let start = locate(reporter, node.span, scalar, error.range.start);
                            let length = error.range.end.saturating_sub(error.range.start);
                            let mut end = (start + length).min(reporter.map.line_end(start));
                            if end == start {
                                end = reporter.map.source()[start..]
                                    .chars()
                                    .next()
                                    .filter(|c| *c != '\n')
                                    .map_or(start, |c| start + c.len_utf8());
                            }
                            let diagnostic = reporter
                                .error(
                                    codes::EXPRESSION_SYNTAX,
                                    reporter.map.span(start, end),
                                    format!(
                                        "invalid expression in `{key_path}`: {}",
                                        error.message
                                    ),
                                )
                                .with_help("expressions are CEL, e.g. `${{ inputs.text }}`, `${{ size(steps.detect.output.alerts) > 0 }}`");
                            reporter.push(diagnostic);
                        }
                    }
                }
            }
        }
        NodeKind::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_sites(item, &format!("{key_path}[{index}]"), sites, reporter);
            }
        }
        NodeKind::Mapping(entries) => {
            for entry in entries {
                let path = format!("{key_path}.{}", entry.key.value);
                collect_sites(&entry.value, &path, sites, reporter);
            }
        }
    }
}

/// The source offset of byte `offset` of a scalar's decoded text. Exact for
/// plain and simply quoted single-line strings; otherwise finds the text of
/// the enclosing `${{ …` in the source, falling back to the scalar's start.
fn locate(reporter: &Reporter<'_>, span: Span, scalar: &Scalar, offset: usize) -> usize {
    let source = reporter.map.source();
    let text = scalar.text.as_str();
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let written = &source[span.start..];
    if scalar.plain && written.starts_with(text) {
        return span.start + offset;
    }
    if !scalar.plain
        && (written.starts_with('"') || written.starts_with('\''))
        && written[1..].starts_with(text)
    {
        return span.start + 1 + offset;
    }
    let hole_start = if text[offset..].starts_with("${{") {
        offset
    } else {
        text[..offset].rfind("${{").unwrap_or(0)
    };
    let needle_end = text[hole_start..]
        .find('\n')
        .map_or(text.len(), |relative| hole_start + relative);
    let needle = &text[hole_start..needle_end];
    if needle.is_empty() {
        return span.start;
    }
    let occurrence = text[..hole_start].matches(needle).count();
    let window_end = reporter.map.clamp(span.start + 4 * text.len() + 256);
    let window = &source[span.start..window_end];
    if let Some((found, _)) = window.match_indices(needle).nth(occurrence) {
        let inside = (offset - hole_start).min(needle.len());
        return reporter.map.clamp(span.start + found + inside);
    }
    span.start
}

/// Checks the functions and names one expression uses.
fn check_site(
    site: &ExpressionSite,
    reader: &Reader<'_>,
    names: &Names,
    reporter: &mut Reporter<'_>,
) {
    for (function, range) in &site.expression.calls {
        if FUNCTIONS.contains(&function.as_str()) {
            continue;
        }
        let span = site.sub_span(range);
        let error = reporter
            .error(
                codes::UNKNOWN_FUNCTION,
                span,
                format!("unknown function `{function}` in `{}`", site.key_path),
            )
            .with_label("unknown function")
            .with_help(unknown_name_help(function, FUNCTIONS, "functions"));
        reporter.push(error);
    }
    for reference in &site.expression.references {
        check_reference(site, reference, reader, names, reporter);
    }
}

fn check_reference(
    site: &ExpressionSite,
    reference: &Reference,
    reader: &Reader<'_>,
    names: &Names,
    reporter: &mut Reporter<'_>,
) {
    let root = reference.root();
    let span = site.sub_span(&reference.range);
    let what = &reader.what;
    let roots = reader.place.roots();
    if TYPE_NAMES.contains(&root) {
        return;
    }
    if !roots.contains(&root) {
        let diagnostic = match root {
            "secrets" => reporter
                .error(
                    codes::SECRET_NOT_ALLOWED,
                    span,
                    format!(
                        "{what} reads a secret in `{}`; secrets may only be read in binding `http.headers` and `on.webhook.secret`",
                        site.key_path
                    ),
                )
                .with_label("secret read here")
                .with_help("values here are sent to experts or recorded in run events; pass the secret in a binding header, e.g. `Authorization: \"Bearer ${{ secrets.TOKEN }}\"`"),
            "item" | "item_index" => {
                let message = if reader.place == Place::StepForEach {
                    format!("`{root}` is not defined inside `for_each` itself")
                } else {
                    format!(
                        "`{root}` is only defined in the `with` of a step that has `for_each`; {what} reads it in `{}`",
                        site.key_path
                    )
                };
                reporter
                    .error(codes::ITEM_OUTSIDE_FOR_EACH, span, message)
                    .with_label("not in scope here")
                    .with_help("add `for_each: \"${{ <list> }}\"` to the step and read `item` in its `with`")
            }
            "output" | "confidence" | "round" => reporter
                .error(
                    codes::UNKNOWN_NAME,
                    span,
                    format!("`{root}` is only defined in `reflect.until`"),
                )
                .with_label("not in scope here")
                .with_help("read a step's result as `steps.<id>.output`"),
            _ => reporter
                .error(
                    codes::UNKNOWN_NAME,
                    span,
                    format!("unknown name `{root}` in `{}` of {what}", site.key_path),
                )
                .with_label("unknown name")
                .with_help(unknown_name_help(root, roots, "names here")),
        };
        reporter.push(diagnostic);
        return;
    }
    let member = reference.field(1);
    match root {
        "inputs" => {
            if let Some(name) = member
                && !names.inputs.iter().any(|input| input == name)
            {
                let inputs = as_strs(&names.inputs);
                let error = reporter
                    .error(
                        codes::UNKNOWN_INPUT_REF,
                        span,
                        format!("{what} reads unknown input `{name}`"),
                    )
                    .with_label("unknown input")
                    .with_help(unknown_name_help(name, &inputs, "inputs"));
                reporter.push(error);
            }
        }
        "env" => check_declared(
            member,
            &names.env,
            span,
            codes::UNKNOWN_ENV,
            "env entry",
            what,
            "declare it under `env:` at the top of the workflow",
            reporter,
        ),
        "secrets" => check_declared(
            member,
            &names.secrets,
            span,
            codes::UNKNOWN_SECRET,
            "secret",
            what,
            "declare it under `secrets:` at the top of the workflow",
            reporter,
        ),
        "run" => {
            if let Some(name) = member
                && !RUN_FIELDS.contains(&name)
            {
                let error = reporter
                    .error(
                        codes::UNKNOWN_NAME,
                        span,
                        format!("`run` has no field `{name}`"),
                    )
                    .with_label("unknown field")
                    .with_help(unknown_name_help(name, RUN_FIELDS, "run fields"));
                reporter.push(error);
            }
        }
        "steps" => check_step_reference(site, reference, reader, names, span, reporter),
        _ => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn check_declared(
    member: Option<&str>,
    declared: &[String],
    span: Span,
    code: &'static str,
    kind: &str,
    what: &str,
    fix: &str,
    reporter: &mut Reporter<'_>,
) {
    let Some(name) = member else {
        let error = reporter
            .error(
                code,
                span,
                format!("{what} reads every {kind} at once; name one"),
            )
            .with_help(format!(
                "write `{}.NAME`",
                if kind == "secret" { "secrets" } else { "env" }
            ));
        reporter.push(error);
        return;
    };
    if declared.iter().any(|known| known == name) {
        return;
    }
    let known = as_strs(declared);
    let plural = if kind == "secret" {
        "secrets"
    } else {
        "env entries"
    };
    let help = format!("{}; {fix}", unknown_name_help(name, &known, plural));
    let error = reporter
        .error(code, span, format!("{what} reads unknown {kind} `{name}`"))
        .with_label(format!("unknown {kind}"))
        .with_help(help);
    reporter.push(error);
}

fn check_step_reference(
    site: &ExpressionSite,
    reference: &Reference,
    reader: &Reader<'_>,
    names: &Names,
    span: Span,
    reporter: &mut Reporter<'_>,
) {
    let what = &reader.what;
    let Some(target) = reference.step() else {
        let error = reporter
            .error(
                codes::UNKNOWN_STEP_REF,
                span,
                format!("`{}` does not name a step", reference.display_path()),
            )
            .with_help("write `steps.<id>.output…`, e.g. `steps.extract.output.iocs`");
        reporter.push(error);
        return;
    };
    if reader.own_step == Some(target) {
        let error = reporter
            .error(
                codes::SELF_NEED,
                span,
                format!("{what} reads its own output"),
            )
            .with_label("own output")
            .with_help("a step can only read the output of steps that ran before it; in `reflect.until` use `output`");
        reporter.push(error);
        return;
    }
    if !names.steps.iter().any(|step| step == target) {
        let steps = as_strs(&names.steps);
        let error = reporter
            .error(
                codes::UNKNOWN_STEP_REF,
                span,
                format!("{what} reads unknown step `{target}`"),
            )
            .with_label("unknown step")
            .with_help(unknown_name_help(target, &steps, "steps"));
        reporter.push(error);
        return;
    }
    if reference.field(2) != Some("output") {
        let error = reporter
            .error(
                codes::UNKNOWN_STEP_REF,
                span,
                format!(
                    "`{}` must read step `{target}` through `.output`",
                    reference.display_path()
                ),
            )
            .with_help(format!("write `steps.{target}.output…`"));
        reporter.push(error);
        return;
    }
    if let Some(readable) = reader.readable
        && !readable.contains(target)
    {
        let error = reporter
            .error(
                codes::NOT_IN_NEEDS,
                span,
                format!(
                    "{what} reads step `{target}` in `{}`, but does not need it",
                    site.key_path
                ),
            )
            .with_label("not in `needs`")
            .with_help(format!(
                "add `{target}` to `needs` so that its output exists when {what} runs"
            ));
        reporter.push(error);
    }
}
