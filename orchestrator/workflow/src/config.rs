//! The raw workflow: the YAML tree read into per-section structs that keep
//! spans, with shape problems (unknown or missing fields, wrong YAML types)
//! reported. Meaning (names, references, graph) is checked in
//! [`crate::validate`]. A new field is added by listing it in the section's
//! `*_FIELDS` table and reading it into the section's struct.

use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::format;
use crate::source::{SourceMap, Span};
use crate::suggest::{did_you_mean, name_list};
use crate::syntax::{Entry, Node, NodeKind, Spanned};

/// Collects diagnostics for one file.
#[derive(Debug)]
pub(crate) struct Reporter<'a> {
    pub(crate) file: &'a str,
    pub(crate) map: &'a SourceMap<'a>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(file: &'a str, map: &'a SourceMap<'a>) -> Self {
        Reporter {
            file,
            map,
            diagnostics: Vec::new(),
        }
    }

    /// Starts an error; push it with [`Reporter::push`].
    pub(crate) fn error(&self, code: &'static str, span: Span, message: String) -> Diagnostic {
        Diagnostic::error(code, self.file, span, message)
    }

    pub(crate) fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }
}

/// The whole file, as written.
#[derive(Debug)]
pub(crate) struct WorkflowConfig<'n> {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) description: Option<Spanned<String>>,
    pub(crate) on: Option<&'n Entry>,
    pub(crate) env: Option<&'n Entry>,
    pub(crate) secrets: Option<&'n Entry>,
    pub(crate) inputs: Vec<InputConfig<'n>>,
    pub(crate) steps: Vec<StepConfig<'n>>,
    pub(crate) outputs: Option<&'n Entry>,
    pub(crate) bindings: Option<&'n Entry>,
}

/// One entry of `inputs:`.
#[derive(Debug)]
pub(crate) struct InputConfig<'n> {
    pub(crate) name: Spanned<String>,
    pub(crate) ty: Option<Spanned<String>>,
    pub(crate) description: Option<Spanned<String>>,
    pub(crate) required: Option<Spanned<bool>>,
    pub(crate) default: Option<&'n Node>,
}

/// One entry of `steps:`.
#[derive(Debug)]
pub(crate) struct StepConfig<'n> {
    pub(crate) id: Spanned<String>,
    pub(crate) uses: Option<Spanned<String>>,
    pub(crate) plan: Option<&'n Entry>,
    pub(crate) with: Option<&'n Node>,
    pub(crate) needs: Vec<Spanned<String>>,
    pub(crate) condition: Option<&'n Entry>,
    pub(crate) for_each: Option<&'n Entry>,
    pub(crate) max_parallel: Option<&'n Entry>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) retry: Option<&'n Node>,
    /// Where the `retry` key is written.
    pub(crate) retry_key: Option<Span>,
    pub(crate) reflect: Option<&'n Entry>,
}

/// Reads the top-level mapping.
pub(crate) fn read_workflow<'n>(root: &'n Node, reporter: &mut Reporter<'_>) -> WorkflowConfig<'n> {
    let mut config = WorkflowConfig {
        name: None,
        description: None,
        on: None,
        env: None,
        secrets: None,
        inputs: Vec::new(),
        steps: Vec::new(),
        outputs: None,
        bindings: None,
    };
    let NodeKind::Mapping(entries) = &root.kind else {
        let message = format!(
            "a workflow file must be a YAML mapping, found {}",
            root.describe()
        );
        reporter.push(
            reporter
                .error(codes::WRONG_TYPE, root.span, message)
                .with_help("start with `name: my-workflow` and a `steps:` mapping"),
        );
        return config;
    };
    check_fields(
        entries,
        &format::names(format::WORKFLOW),
        &[],
        "the workflow",
        reporter,
    );
    let document_start = reporter.map.span(root.span.start, root.span.start);
    let mut steps_seen = false;
    for entry in entries {
        match entry.key.value.as_str() {
            "name" => config.name = read_string(entry, reporter),
            "description" => config.description = read_string(entry, reporter),
            "on" => config.on = Some(entry),
            "env" => config.env = Some(entry),
            "secrets" => config.secrets = Some(entry),
            "outputs" => config.outputs = Some(entry),
            "bindings" => config.bindings = Some(entry),
            "inputs" => {
                if entry.value.is_null() {
                    continue;
                }
                let Some(inputs) = read_mapping(entry, "`inputs`", reporter) else {
                    continue;
                };
                for input in inputs {
                    if let Some(input) = read_input(input, reporter) {
                        config.inputs.push(input);
                    }
                }
            }
            "steps" => {
                steps_seen = true;
                let Some(steps) = read_mapping(entry, "`steps`", reporter) else {
                    continue;
                };
                if steps.is_empty() {
                    let error = reporter
                        .error(
                            codes::NO_STEPS,
                            entry.key.span,
                            "`steps` is empty".to_owned(),
                        )
                        .with_help("add at least one step, e.g. `detect: { uses: expert/skill }`");
                    reporter.push(error);
                }
                for step in steps {
                    if let Some(step) = read_step(step, reporter) {
                        config.steps.push(step);
                    }
                }
            }
            _ => {}
        }
    }
    if config.name.is_none() && !entries.iter().any(|e| e.key.value == "name") {
        let error = reporter
            .error(
                codes::MISSING_FIELD,
                document_start,
                "the workflow has no `name`".to_owned(),
            )
            .with_help("add `name: my-workflow` (lowercase letters, digits and `-`)");
        reporter.push(error);
    }
    if !steps_seen {
        let error = reporter
            .error(
                codes::MISSING_FIELD,
                document_start,
                "the workflow has no `steps`".to_owned(),
            )
            .with_help("add a `steps:` mapping with at least one step");
        reporter.push(error);
    }
    config
}

fn read_input<'n>(entry: &'n Entry, reporter: &mut Reporter<'_>) -> Option<InputConfig<'n>> {
    let what = format!("input `{}`", entry.key.value);
    let fields = read_mapping(entry, &what, reporter)?;
    check_fields(fields, &format::names(format::INPUT), &[], &what, reporter);
    let mut input = InputConfig {
        name: entry.key.clone(),
        ty: None,
        description: None,
        required: None,
        default: None,
    };
    for field in fields {
        match field.key.value.as_str() {
            "type" => input.ty = read_string(field, reporter),
            "description" => input.description = read_string(field, reporter),
            "required" => input.required = read_bool(field, reporter),
            "default" => input.default = Some(&field.value),
            _ => {}
        }
    }
    Some(input)
}

fn read_step<'n>(entry: &'n Entry, reporter: &mut Reporter<'_>) -> Option<StepConfig<'n>> {
    let what = format!("step `{}`", entry.key.value);
    let fields = read_mapping(entry, &what, reporter)?;
    check_fields(fields, &format::names(format::STEP), &[], &what, reporter);
    let mut step = StepConfig {
        id: entry.key.clone(),
        uses: None,
        plan: None,
        with: None,
        needs: Vec::new(),
        condition: None,
        for_each: None,
        max_parallel: None,
        timeout: None,
        retry: None,
        retry_key: None,
        reflect: None,
    };
    for field in fields {
        match field.key.value.as_str() {
            "uses" => step.uses = read_string(field, reporter),
            "with" if !field.value.is_null() => step.with = Some(&field.value),
            "needs" => step.needs = read_needs(field, reporter),
            "plan" => step.plan = Some(field),
            "if" => step.condition = Some(field),
            "for_each" => step.for_each = Some(field),
            "max_parallel" => step.max_parallel = Some(field),
            "reflect" => step.reflect = Some(field),
            "timeout" => step.timeout = read_string(field, reporter),
            "retry" => {
                step.retry = Some(&field.value);
                step.retry_key = Some(field.key.span);
            }
            _ => {}
        }
    }
    let has_uses = fields.iter().any(|f| f.key.value == "uses");
    if !has_uses && step.plan.is_none() {
        let error = reporter
            .error(
                codes::MISSING_FIELD,
                entry.key.span,
                format!("step `{}` has no `uses`", entry.key.value),
            )
            .with_label("this step")
            .with_help("add `uses: expert/skill`, e.g. `uses: attack-detection/detect`, or `plan: { goal: … }`");
        reporter.push(error);
    }
    if let (true, Some(plan)) = (has_uses, step.plan) {
        let error = reporter
            .error(
                codes::CONFLICTING_FIELDS,
                plan.key.span,
                format!("step `{}` has both `uses` and `plan`", entry.key.value),
            )
            .with_label("second action")
            .with_help("a step either invokes one skill (`uses`) or asks the planner for a goal (`plan`); remove one");
        reporter.push(error);
    }
    Some(step)
}

/// `needs: [a, b]`, or one name as `needs: a`.
pub(crate) fn read_needs(entry: &Entry, reporter: &mut Reporter<'_>) -> Vec<Spanned<String>> {
    let mut needs = Vec::new();
    match &entry.value.kind {
        NodeKind::Scalar(scalar) if !entry.value.is_null() => needs.push(Spanned {
            value: scalar.text.clone(),
            span: entry.value.span,
        }),
        NodeKind::Sequence(items) => {
            for item in items {
                match &item.kind {
                    NodeKind::Scalar(scalar) if !item.is_null() => needs.push(Spanned {
                        value: scalar.text.clone(),
                        span: item.span,
                    }),
                    _ => {
                        let message = format!(
                            "`needs` entries must be step ids, found {}",
                            item.describe()
                        );
                        let error = reporter
                            .error(codes::WRONG_TYPE, item.span, message)
                            .with_help("write `needs: [step-a, step-b]`");
                        reporter.push(error);
                    }
                }
            }
        }
        _ => {
            let message = format!(
                "`needs` must be a list of step ids, found {}",
                entry.value.describe()
            );
            let error = reporter
                .error(codes::WRONG_TYPE, value_span(entry), message)
                .with_help("write `needs: [step-a, step-b]`");
            reporter.push(error);
        }
    }
    needs
}

/// Where to point for a problem with an entry's value: the value, or the key
/// when the value is empty.
pub(crate) fn value_span(entry: &Entry) -> Span {
    if entry.value.is_null() && entry.value.span.start == entry.value.span.end {
        entry.key.span
    } else {
        entry.value.span
    }
}

/// The entry's value as a mapping, or a wrong-type error.
pub(crate) fn read_mapping<'n>(
    entry: &'n Entry,
    what: &str,
    reporter: &mut Reporter<'_>,
) -> Option<&'n [Entry]> {
    if let NodeKind::Mapping(entries) = &entry.value.kind {
        return Some(entries);
    }
    let message = format!("{what} must be a mapping, found {}", entry.value.describe());
    let error = reporter
        .error(codes::WRONG_TYPE, value_span(entry), message)
        .with_label("expected a mapping");
    reporter.push(error);
    None
}

/// The entry's value as text (any non-null scalar), or a wrong-type error.
pub(crate) fn read_string(entry: &Entry, reporter: &mut Reporter<'_>) -> Option<Spanned<String>> {
    if let NodeKind::Scalar(scalar) = &entry.value.kind
        && !entry.value.is_null()
    {
        return Some(Spanned {
            value: scalar.text.clone(),
            span: entry.value.span,
        });
    }
    let message = format!(
        "`{}` must be a string, found {}",
        entry.key.value,
        entry.value.describe()
    );
    let error = reporter
        .error(codes::WRONG_TYPE, value_span(entry), message)
        .with_label("expected a string");
    reporter.push(error);
    None
}

pub(crate) fn read_bool(entry: &Entry, reporter: &mut Reporter<'_>) -> Option<Spanned<bool>> {
    if let serde_json::Value::Bool(value) = entry.value.to_json() {
        return Some(Spanned {
            value,
            span: entry.value.span,
        });
    }
    let message = format!(
        "`{}` must be `true` or `false`, found {}",
        entry.key.value,
        entry.value.describe()
    );
    let error = reporter
        .error(codes::WRONG_TYPE, value_span(entry), message)
        .with_label("expected a boolean");
    reporter.push(error);
    None
}

/// Reports every key of `entries` that is not in `allowed`, suggesting the
/// closest allowed name and listing them all. Keys in `later` get a note
/// that the field is not supported yet.
pub(crate) fn check_fields(
    entries: &[Entry],
    allowed: &[&str],
    later: &[&str],
    what: &str,
    reporter: &mut Reporter<'_>,
) {
    for entry in entries {
        let key = entry.key.value.as_str();
        if allowed.contains(&key) {
            continue;
        }
        let list = name_list(allowed);
        let help = if later.contains(&key) {
            format!("`{key}` is not supported yet; valid fields: {list}")
        } else {
            match did_you_mean(key, allowed) {
                Some(suggestion) => format!("did you mean `{suggestion}`? valid fields: {list}"),
                None => format!("valid fields: {list}"),
            }
        };
        let error = reporter
            .error(
                codes::UNKNOWN_FIELD,
                entry.key.span,
                format!("unknown field `{key}` in {what}"),
            )
            .with_label("unknown field")
            .with_help(help);
        reporter.push(error);
    }
}
