//! Meaning checks on the raw workflow: names, `uses`, durations, retry
//! policies, inputs, expressions and their references, and the dependency
//! graph. Pure; every problem is reported, none stops the others.

use std::collections::HashMap;
use std::time::Duration;

use synod_types::{HumanDuration, RetryPolicy, SkillRef, StepId};

use crate::codes;
use crate::config::{Reporter, StepConfig, WorkflowConfig, check_fields, value_span};
use crate::graph::dependency_cycles;
use crate::source::Span;
use crate::suggest::{name_list, unknown_name_help};
use crate::syntax::{Node, NodeKind, Scalar, Spanned};
use crate::template::{Expression, PathSegment, ValueTemplate, scan_expressions};
use crate::workflow::{
    ExpressionSite, InputSpec, InputType, StepSpans, StepSpec, Workflow, json_type,
};

const RETRY_POLICIES: &[&str] = &["none", "fixed", "exponential"];

/// Checks `config` and builds the workflow when no error was found.
pub(crate) fn validate(
    config: &WorkflowConfig<'_>,
    reporter: &mut Reporter<'_>,
) -> Option<Workflow> {
    if let Some(name) = &config.name
        && !is_workflow_name(&name.value)
    {
        let error = reporter
            .error(
                codes::INVALID_NAME,
                name.span,
                format!("workflow name `{}` is not allowed", name.value),
            )
            .with_help("use lowercase letters, digits and `-`, e.g. `ioc-triage`");
        reporter.push(error);
    }
    let inputs = validate_inputs(config, reporter);
    let input_names: Vec<&str> = inputs.iter().map(|input| input.name.as_str()).collect();
    let step_ids: Vec<&str> = config
        .steps
        .iter()
        .map(|step| step.id.value.as_str())
        .collect();

    let mut steps = Vec::with_capacity(config.steps.len());
    let mut edges = Vec::with_capacity(config.steps.len());
    for step in &config.steps {
        let (spec, step_edges) = validate_step(step, &input_names, &step_ids, reporter);
        edges.push(step_edges);
        if let Some(spec) = spec {
            steps.push(spec);
        }
    }
    report_cycles(&edges, reporter);
    if reporter.has_errors() {
        return None;
    }
    Some(Workflow {
        name: config.name.as_ref()?.value.clone(),
        description: config.description.as_ref().map(|d| d.value.clone()),
        inputs,
        steps,
        file: reporter.file.to_owned(),
        warnings: Vec::new(),
    })
}

fn is_workflow_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Step ids and input names: usable in expressions (`steps.<id>`).
fn is_identifier(name: &str) -> bool {
    let mut characters = name.chars();
    match characters.next() {
        Some(first) if first.is_ascii_alphabetic() || first == '_' => {}
        _ => return false,
    }
    characters.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_identifier(name: &Spanned<String>, kind: &str, reporter: &mut Reporter<'_>) {
    if is_identifier(&name.value) {
        return;
    }
    let error = reporter
        .error(
            codes::INVALID_NAME,
            name.span,
            format!("{kind} `{}` is not a valid name", name.value),
        )
        .with_help("start with a letter or `_`, then letters, digits, `_` or `-`");
    reporter.push(error);
}

// === inputs ===

fn validate_inputs(config: &WorkflowConfig<'_>, reporter: &mut Reporter<'_>) -> Vec<InputSpec> {
    let mut inputs = Vec::with_capacity(config.inputs.len());
    for input in &config.inputs {
        check_identifier(&input.name, "input", reporter);
        let ty = match &input.ty {
            None => {
                let error = reporter
                    .error(
                        codes::MISSING_FIELD,
                        input.name.span,
                        format!("input `{}` has no `type`", input.name.value),
                    )
                    .with_help(format!("add `type:` with one of: {}", type_list()));
                reporter.push(error);
                None
            }
            Some(ty) => match InputType::from_name(&ty.value) {
                Some(parsed) => Some(parsed),
                None => {
                    let names: Vec<&str> = InputType::ALL.iter().map(|t| t.name()).collect();
                    let error = reporter
                        .error(
                            codes::INVALID_INPUT,
                            ty.span,
                            format!(
                                "input `{}` has unknown type `{}`",
                                input.name.value, ty.value
                            ),
                        )
                        .with_label("unknown type")
                        .with_help(unknown_name_help(&ty.value, &names, "types"));
                    reporter.push(error);
                    None
                }
            },
        };
        let default = input.default.map(Node::to_json);
        if let (Some(ty), Some(value), Some(node)) = (ty, &default, input.default)
            && !ty.matches(value)
        {
            let error = reporter
                .error(
                    codes::INVALID_INPUT,
                    node.span,
                    format!(
                        "the default of input `{}` must be of type {ty}, found {}",
                        input.name.value,
                        json_type(value)
                    ),
                )
                .with_label(format!("not {ty}"));
            reporter.push(error);
        }
        if let Some(ty) = ty {
            inputs.push(InputSpec {
                name: input.name.value.clone(),
                ty,
                description: input.description.as_ref().map(|d| d.value.clone()),
                required: input.required.as_ref().is_some_and(|r| r.value),
                default,
                span: input.name.span,
            });
        }
    }
    inputs
}

fn type_list() -> String {
    let names: Vec<&str> = InputType::ALL.iter().map(|t| t.name()).collect();
    name_list(&names)
}

// === steps ===

fn validate_step(
    step: &StepConfig<'_>,
    input_names: &[&str],
    step_ids: &[&str],
    reporter: &mut Reporter<'_>,
) -> (Option<StepSpec>, StepEdges) {
    let id = step.id.value.as_str();
    check_identifier(&step.id, "step id", reporter);
    let uses = match &step.uses {
        Some(uses) => match uses.value.parse::<SkillRef>() {
            Ok(parsed) => Some((parsed, uses.span)),
            Err(error) => {
                let diagnostic = reporter
                    .error(
                        codes::INVALID_USES,
                        uses.span,
                        format!("step `{id}`: {error}"),
                    )
                    .with_label("expected `expert/skill`");
                reporter.push(diagnostic);
                None
            }
        },
        None => None,
    };

    let mut needs: Vec<StepId> = Vec::new();
    let mut need_spans: Vec<Span> = Vec::new();
    for need in &step.needs {
        let name = need.value.as_str();
        if name == id {
            let error = reporter
                .error(
                    codes::SELF_NEED,
                    need.span,
                    format!("step `{id}` needs itself"),
                )
                .with_label("this step")
                .with_help("remove it from `needs`");
            reporter.push(error);
            continue;
        }
        if !step_ids.contains(&name) {
            let others: Vec<&str> = step_ids.to_vec();
            let error = reporter
                .error(
                    codes::UNKNOWN_NEED,
                    need.span,
                    format!("step `{id}` needs unknown step `{name}`"),
                )
                .with_label("unknown step")
                .with_help(unknown_name_help(name, &others, "steps"));
            reporter.push(error);
            continue;
        }
        if needs.iter().any(|known| known.as_str() == name) {
            let warning = crate::Diagnostic::warning(
                codes::DUPLICATE_NEED,
                reporter.file,
                need.span,
                format!("step `{id}` lists need `{name}` more than once"),
            )
            .with_label("listed again")
            .with_help("remove the repeated entry");
            reporter.push(warning);
            continue;
        }
        needs.push(StepId::new(name));
        need_spans.push(need.span);
    }

    let mut expressions = Vec::new();
    let with = match step.with {
        None => ValueTemplate::Literal(serde_json::Value::Object(serde_json::Map::new())),
        Some(node) => {
            if !matches!(node.kind, NodeKind::Mapping(_)) {
                let error = reporter
                    .error(
                        codes::WRONG_TYPE,
                        node.span,
                        format!(
                            "`with` of step `{id}` must be a mapping, found {}",
                            node.describe()
                        ),
                    )
                    .with_help("write `with: { name: value }`");
                reporter.push(error);
            }
            collect_expressions(node, "with", &mut expressions, reporter);
            match ValueTemplate::from_value(&node.to_json()) {
                Ok(template) => template,
                // Every parse error was reported with its position above.
                Err(_) => ValueTemplate::Literal(serde_json::Value::Null),
            }
        }
    };

    for site in &expressions {
        check_reference(
            id,
            site,
            input_names,
            step_ids,
            reporter,
            &mut needs,
            &mut need_spans,
        );
    }

    let mut timeout = None;
    let mut timeout_span = None;
    if let Some(text) = &step.timeout {
        timeout_span = Some(text.span);
        timeout = parse_duration(text, "timeout", id, reporter);
        if timeout == Some(Duration::ZERO) {
            let error = reporter
                .error(
                    codes::INVALID_DURATION,
                    text.span,
                    format!("the `timeout` of step `{id}` is zero"),
                )
                .with_help(
                    "give a positive duration such as `30s`, or remove `timeout` for the default",
                );
            reporter.push(error);
        }
    }
    let mut retry = None;
    let mut retry_span = None;
    if let Some(node) = step.retry {
        let span = if node.is_null() {
            step.retry_key.unwrap_or(node.span)
        } else {
            node.span
        };
        retry_span = Some(span);
        retry = read_retry(node, span, id, reporter);
    }

    let edges = StepEdges {
        id: id.to_owned(),
        id_span: step.id.span,
        needs: needs.iter().map(|need| need.as_str().to_owned()).collect(),
        need_spans: need_spans.clone(),
    };
    let Some((uses, uses_span)) = uses else {
        return (None, edges);
    };
    let spec = StepSpec {
        id: StepId::new(id),
        uses,
        with,
        needs,
        timeout,
        retry,
        expressions,
        spans: StepSpans {
            id: step.id.span,
            uses: uses_span,
            needs: need_spans,
            timeout: timeout_span,
            retry: retry_span,
        },
    };
    (Some(spec), edges)
}

fn parse_duration(
    text: &Spanned<String>,
    field: &str,
    step: &str,
    reporter: &mut Reporter<'_>,
) -> Option<Duration> {
    match text.value.parse::<HumanDuration>() {
        Ok(duration) => Some(duration.get()),
        Err(error) => {
            let diagnostic = reporter
                .error(
                    codes::INVALID_DURATION,
                    text.span,
                    format!("`{field}` of step `{step}`: {error}"),
                )
                .with_label("not a duration");
            reporter.push(diagnostic);
            None
        }
    }
}

// === retry ===

fn read_retry(
    node: &Node,
    span: Span,
    step: &str,
    reporter: &mut Reporter<'_>,
) -> Option<RetryPolicy> {
    let NodeKind::Mapping(entries) = &node.kind else {
        let error = reporter
            .error(
                codes::WRONG_TYPE,
                span,
                format!("`retry` of step `{step}` must be a mapping, found {}", node.describe()),
            )
            .with_help("write e.g. `retry: { policy: exponential, initial_interval: 200ms, max_attempts: 4 }`");
        reporter.push(error);
        return None;
    };
    let errors_before = reporter.diagnostics.len();
    let Some(policy_entry) = entries.iter().find(|entry| entry.key.value == "policy") else {
        let error = reporter
            .error(
                codes::MISSING_FIELD,
                span,
                format!("`retry` of step `{step}` has no `policy`"),
            )
            .with_help(format!(
                "add `policy:` with one of: {}",
                name_list(RETRY_POLICIES)
            ));
        reporter.push(error);
        return None;
    };
    let policy = match &policy_entry.value.kind {
        NodeKind::Scalar(Scalar { text, .. }) => text.as_str(),
        _ => "",
    };
    let fields: &[&str] = match policy {
        "none" => &["policy"],
        "fixed" => &["policy", "interval", "max_attempts"],
        "exponential" => &[
            "policy",
            "initial_interval",
            "factor",
            "max_interval",
            "max_attempts",
        ],
        _ => {
            let error = reporter
                .error(
                    codes::INVALID_RETRY,
                    value_span(policy_entry),
                    format!("step `{step}` has unknown retry policy `{policy}`"),
                )
                .with_label("unknown policy")
                .with_help(unknown_name_help(policy, RETRY_POLICIES, "policies"));
            reporter.push(error);
            return None;
        }
    };
    check_fields(
        entries,
        fields,
        &[],
        &format!("the `{policy}` retry policy"),
        reporter,
    );
    for entry in entries {
        if entry.key.value.ends_with("interval")
            && fields.contains(&entry.key.value.as_str())
            && let NodeKind::Scalar(scalar) = &entry.value.kind
        {
            let text = Spanned {
                value: scalar.text.clone(),
                span: value_span(entry),
            };
            parse_duration(&text, &entry.key.value, step, reporter);
        }
    }
    if reporter.diagnostics.len() > errors_before {
        return None;
    }
    let policy: RetryPolicy = match serde_json::from_value(node.to_json()) {
        Ok(policy) => policy,
        Err(error) => {
            let diagnostic = reporter
                .error(
                    codes::INVALID_RETRY,
                    span,
                    format!("invalid `retry` for step `{step}`: {error}"),
                )
                .with_help(retry_example(policy));
            reporter.push(diagnostic);
            return None;
        }
    };
    let problems = policy.problems();
    if problems.is_empty() {
        return Some(policy);
    }
    for problem in problems {
        let diagnostic = reporter.error(
            codes::INVALID_RETRY,
            span,
            format!("invalid `retry` for step `{step}`: {problem}"),
        );
        reporter.push(diagnostic);
    }
    None
}

fn retry_example(policy: &str) -> &'static str {
    match policy {
        "fixed" => "write e.g. `retry: { policy: fixed, interval: 1s, max_attempts: 3 }`",
        _ => {
            "write e.g. `retry: { policy: exponential, initial_interval: 200ms, max_attempts: 4 }`"
        }
    }
}

// === expressions ===

/// Finds every `${{ … }}` in string scalars under `node`, reporting the ones
/// that do not parse at their position.
fn collect_expressions(
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
                    Err(error) => {
                        let start = locate(reporter, node.span, scalar, error.offset);
                        let end = reporter.map.source()[start..]
                            .chars()
                            .next()
                            .filter(|c| *c != '\n')
                            .map_or(start, |c| start + c.len_utf8());
                        let diagnostic = reporter
                            .error(
                                codes::EXPRESSION_SYNTAX,
                                reporter.map.span(start, end),
                                format!("invalid expression in `{key_path}`: {}", error.message),
                            )
                            .with_help("expressions are reference paths such as `${{ inputs.text }}` or `${{ steps.extract.output.iocs }}`");
                        reporter.push(diagnostic);
                    }
                }
            }
        }
        NodeKind::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_expressions(item, &format!("{key_path}[{index}]"), sites, reporter);
            }
        }
        NodeKind::Mapping(entries) => {
            for entry in entries {
                let path = format!("{key_path}.{}", entry.key.value);
                collect_expressions(&entry.value, &path, sites, reporter);
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
        return span.start + found + inside;
    }
    span.start
}

fn check_reference(
    step: &str,
    site: &ExpressionSite,
    input_names: &[&str],
    step_ids: &[&str],
    reporter: &mut Reporter<'_>,
    needs: &mut Vec<StepId>,
    need_spans: &mut Vec<Span>,
) {
    let expression: &Expression = &site.expression;
    let root = match expression.path.first() {
        Some(PathSegment::Field(root)) => root.as_str(),
        _ => return,
    };
    match root {
        "inputs" => {
            if let Some(name) = expression.referenced_input()
                && !input_names.contains(&name)
            {
                let error = reporter
                    .error(
                        codes::UNKNOWN_INPUT_REF,
                        site.span,
                        format!("step `{step}` reads unknown input `{name}`"),
                    )
                    .with_label("unknown input")
                    .with_help(unknown_name_help(name, input_names, "inputs"));
                reporter.push(error);
            }
        }
        "steps" => {
            let Some(target) = expression.referenced_step() else {
                let error = reporter
                    .error(
                        codes::UNKNOWN_STEP_REF,
                        site.span,
                        format!("`{expression}` does not name a step"),
                    )
                    .with_help("write `steps.<id>.output…`, e.g. `steps.extract.output.iocs`");
                reporter.push(error);
                return;
            };
            if target == step {
                let error = reporter
                    .error(
                        codes::SELF_NEED,
                        site.span,
                        format!("step `{step}` reads its own output"),
                    )
                    .with_label("own output")
                    .with_help("a step can only read the output of steps that ran before it");
                reporter.push(error);
                return;
            }
            if !step_ids.contains(&target) {
                let error = reporter
                    .error(
                        codes::UNKNOWN_STEP_REF,
                        site.span,
                        format!("step `{step}` reads unknown step `{target}`"),
                    )
                    .with_label("unknown step")
                    .with_help(unknown_name_help(target, step_ids, "steps"));
                reporter.push(error);
                return;
            }
            let reads_output = matches!(
                expression.path.get(2),
                Some(PathSegment::Field(field)) if field == "output"
            );
            if !reads_output {
                let error = reporter
                    .error(
                        codes::UNKNOWN_STEP_REF,
                        site.span,
                        format!("`{expression}` must read step `{target}` through `.output`"),
                    )
                    .with_help(format!("write `steps.{target}.output…`"));
                reporter.push(error);
                return;
            }
            if !needs.iter().any(|need| need.as_str() == target) {
                needs.push(StepId::new(target));
                need_spans.push(site.span);
            }
        }
        _ => {}
    }
}

// === graph ===

/// A step's resolved needs, kept even when the step has other errors so
/// that cycles are still found.
struct StepEdges {
    id: String,
    id_span: Span,
    needs: Vec<String>,
    need_spans: Vec<Span>,
}

fn report_cycles(steps: &[StepEdges], reporter: &mut Reporter<'_>) {
    let mut index_of = HashMap::new();
    for (index, step) in steps.iter().enumerate() {
        index_of.insert(step.id.as_str(), index);
    }
    let mut needs: Vec<Vec<usize>> = Vec::with_capacity(steps.len());
    for step in steps {
        let mut list = Vec::new();
        for need in &step.needs {
            if let Some(index) = index_of.get(need.as_str()) {
                list.push(*index);
            }
        }
        needs.push(list);
    }
    for cycle in dependency_cycles(&needs) {
        // Self-needs were reported as SELF_NEED where written.
        if cycle.path.len() < 2 {
            continue;
        }
        let mut names = Vec::new();
        let mut links = Vec::new();
        for (position, from) in cycle.path.iter().enumerate() {
            let from_step = &steps[*from];
            let to_id = steps[cycle.path[(position + 1) % cycle.path.len()]]
                .id
                .as_str();
            let span = match from_step.needs.iter().position(|need| need == to_id) {
                Some(index) => from_step.need_spans[index],
                None => from_step.id_span,
            };
            let link = format!("`{}` needs `{to_id}`", from_step.id);
            names.push(link.clone());
            links.push((span, link));
        }
        let first = steps[cycle.path[0]].id.as_str();
        let mut error = reporter
            .error(
                codes::DEPENDENCY_CYCLE,
                links[0].0,
                format!(
                    "dependency cycle through step `{first}`: {}",
                    names.join(", ")
                ),
            )
            .with_label(links[0].1.clone());
        for (span, message) in links.iter().skip(1) {
            error = error.with_secondary(*span, message.clone());
        }
        let mut help =
            "remove one of these needs (or the output reference that implies it)".to_owned();
        if cycle.members.len() > cycle.path.len() {
            let members: Vec<&str> = cycle
                .members
                .iter()
                .map(|m| steps[*m].id.as_str())
                .collect();
            help.push_str(&format!(
                "; steps {} all depend on each other",
                name_list(&members)
            ));
        }
        reporter.push(error.with_help(help));
    }
}
