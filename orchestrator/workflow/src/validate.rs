//! Meaning checks on the raw workflow: names, `uses`, durations, retry
//! policies, inputs, expressions and their scope, the dependency graph, and
//! the sections (`on`, `env`, `secrets`, `outputs`, `bindings`). Pure; every
//! problem is reported, none stops the others.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use synod_types::{SkillRef, StepId};

use crate::codes;
use crate::config::{Reporter, StepConfig, WorkflowConfig, check_fields, read_mapping, value_span};
use crate::format::{self, Field};
use crate::graph::dependency_cycles;
use crate::scope::{Names, Place, Reader, collect_template, read_expression_field};
use crate::source::Span;
use crate::suggest::{name_list, unknown_name_help};
use crate::syntax::{Entry, Node, NodeKind, Spanned};
use crate::template::ValueTemplate;
use crate::values::{
    parse_duration, read_choice, read_duration, read_fraction, read_integer, read_retry,
};
use crate::workflow::{
    ForEachSpec, InputSpec, InputType, OutputSpec, PlanSpec, ReflectSpec, ReflectStrategy,
    StepSpans, StepSpec, Workflow, json_type,
};

/// Checks `config` and builds the workflow (also when errors were found, so
/// that later passes such as type checking still run; the caller discards
/// it when the reporter holds errors).
pub(crate) fn validate(config: &WorkflowConfig<'_>, reporter: &mut Reporter<'_>) -> Workflow {
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
    let env = read_env(config.env, reporter);
    let declared_secrets = read_secrets(config.secrets, reporter);
    let secrets: Vec<String> = declared_secrets
        .iter()
        .map(|secret| secret.value.clone())
        .collect();
    let inputs = validate_inputs(config, reporter);
    let names = Names {
        inputs: inputs.iter().map(|input| input.name.clone()).collect(),
        steps: config
            .steps
            .iter()
            .map(|step| step.id.value.clone())
            .collect(),
        env: env.iter().map(|(name, _)| name.clone()).collect(),
        secrets: secrets.clone(),
    };
    let step_ids: Vec<&str> = config
        .steps
        .iter()
        .map(|step| step.id.value.as_str())
        .collect();

    let mut edges = Vec::with_capacity(config.steps.len());
    for step in &config.steps {
        edges.push(resolve_needs(step, &step_ids, reporter));
    }
    report_cycles(&edges, reporter);
    let ancestry = ancestry(&edges);

    let mut steps = Vec::with_capacity(config.steps.len());
    for (index, step) in config.steps.iter().enumerate() {
        if let Some(spec) = validate_step(step, &edges[index], &ancestry[index], &names, reporter) {
            steps.push(spec);
        }
    }
    let outputs = read_outputs(config.outputs, &names, reporter);
    let workflow_name = config
        .name
        .as_ref()
        .map(|name| name.value.clone())
        .unwrap_or_default();
    let triggers = crate::triggers::read(config.on, &workflow_name, &names, &inputs, reporter);
    let mut ancestry_by_id = HashMap::new();
    for (index, step) in edges.iter().enumerate() {
        ancestry_by_id.insert(step.id.as_str(), &ancestry[index]);
    }
    let bindings = crate::bindings::read(config.bindings, &names, &ancestry_by_id, reporter);
    let workflow = Workflow {
        name: workflow_name,
        description: config.description.as_ref().map(|d| d.value.clone()),
        triggers,
        env,
        secrets,
        inputs,
        steps,
        outputs,
        bindings,
        file: reporter.file.to_owned(),
        warnings: Vec::new(),
    };
    report_unused_secrets(&workflow, &declared_secrets, reporter);
    workflow
}

/// A declared secret nobody reads is probably a typo or left over.
fn report_unused_secrets(
    workflow: &Workflow,
    declared: &[Spanned<String>],
    reporter: &mut Reporter<'_>,
) {
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for site in workflow.expression_sites() {
        for reference in &site.expression.references {
            if reference.root() == "secrets"
                && let Some(name) = reference.field(1)
            {
                used.insert(name);
            }
        }
    }
    if let Some(webhook) = &workflow.triggers.webhook {
        used.insert(webhook.secret.as_str());
    }
    for secret in declared {
        if used.contains(secret.value.as_str()) {
            continue;
        }
        let warning = crate::Diagnostic::warning(
            codes::UNUSED_SECRET,
            reporter.file,
            secret.span,
            format!("secret `{}` is declared but never read", secret.value),
        )
        .with_label("unused")
        .with_help("read it in a binding header or `on.webhook.secret`, or remove it");
        reporter.push(warning);
    }
}

/// Reads a sub-mapping of a section: its entries, with unknown fields and
/// missing required fields (from the format table) reported.
pub(crate) fn read_section<'n>(
    entry: &'n Entry,
    fields: &[Field],
    what: &str,
    reporter: &mut Reporter<'_>,
) -> Option<&'n [Entry]> {
    let entries = read_mapping(entry, what, reporter)?;
    check_fields(entries, &format::names(fields), &[], what, reporter);
    for field in fields {
        if field.required && !entries.iter().any(|e| e.key.value == field.name) {
            let error = reporter
                .error(
                    codes::MISSING_FIELD,
                    entry.key.span,
                    format!("{what} has no `{}`", field.name),
                )
                .with_label(format!("`{}` missing", field.name))
                .with_help(format!("add `{}`: {}", field.name, field.doc));
            reporter.push(error);
        }
    }
    Some(entries)
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

pub(crate) fn check_identifier(name: &Spanned<String>, kind: &str, reporter: &mut Reporter<'_>) {
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
        if let Some(node) = input.default
            && default
                .as_ref()
                .is_some_and(|value| value.to_string().contains("${{"))
        {
            let error = reporter
                .error(
                    codes::INVALID_INPUT,
                    node.span,
                    format!(
                        "the default of input `{}` holds an expression; defaults are literal values",
                        input.name.value
                    ),
                )
                .with_help("compute derived values in step `with` instead, e.g. `${{ has(inputs.x) ? inputs.x : … }}`");
            reporter.push(error);
        }
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

// === env, secrets, outputs ===

fn read_env(entry: Option<&Entry>, reporter: &mut Reporter<'_>) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let Some(entry) = entry else {
        return env;
    };
    if entry.value.is_null() {
        return env;
    }
    let Some(entries) = read_mapping(entry, "`env`", reporter) else {
        return env;
    };
    for item in entries {
        check_identifier(&item.key, "env name", reporter);
        let value = match (&item.value.kind, item.value.to_json()) {
            (NodeKind::Scalar(_), serde_json::Value::String(text)) => text,
            (NodeKind::Scalar(_), serde_json::Value::Number(number)) => number.to_string(),
            (NodeKind::Scalar(_), serde_json::Value::Bool(flag)) => flag.to_string(),
            _ => {
                let error = reporter
                    .error(
                        codes::WRONG_TYPE,
                        value_span(item),
                        format!(
                            "`env.{}` must be a string, found {}",
                            item.key.value,
                            item.value.describe()
                        ),
                    )
                    .with_label("expected a string");
                reporter.push(error);
                continue;
            }
        };
        if value.contains("${{") {
            let error = reporter
                .error(
                    codes::INVALID_VALUE,
                    value_span(item),
                    format!(
                        "`env.{}` holds an expression; env values are constants",
                        item.key.value
                    ),
                )
                .with_help("compute values in step `with` or workflow `outputs` instead");
            reporter.push(error);
            continue;
        }
        env.push((item.key.value.clone(), value));
    }
    env
}

fn read_secrets(entry: Option<&Entry>, reporter: &mut Reporter<'_>) -> Vec<Spanned<String>> {
    let mut secrets = Vec::new();
    let Some(entry) = entry else {
        return secrets;
    };
    if entry.value.is_null() {
        return secrets;
    }
    let Some(entries) = read_mapping(entry, "`secrets`", reporter) else {
        return secrets;
    };
    for item in entries {
        check_identifier(&item.key, "secret name", reporter);
        if !item.value.is_null() {
            let what = format!("secret `{}`", item.key.value);
            read_section(item, format::SECRET, &what, reporter);
        }
        secrets.push(item.key.clone());
    }
    secrets
}

fn read_outputs(
    entry: Option<&Entry>,
    names: &Names,
    reporter: &mut Reporter<'_>,
) -> Vec<OutputSpec> {
    let mut outputs = Vec::new();
    let Some(entry) = entry else {
        return outputs;
    };
    let Some(entries) = read_mapping(entry, "`outputs`", reporter) else {
        return outputs;
    };
    for item in entries {
        check_identifier(&item.key, "output name", reporter);
        let reader = Reader {
            what: format!("output `{}`", item.key.value),
            place: Place::Output,
            own_step: None,
            readable: None,
        };
        let key_path = format!("outputs.{}", item.key.value);
        let (value, expressions) =
            collect_template(&item.value, &key_path, &reader, names, reporter);
        outputs.push(OutputSpec {
            name: item.key.value.clone(),
            value,
            expressions,
        });
    }
    outputs
}

// === steps ===

/// Pass 1: a step's resolved `needs`.
fn resolve_needs(
    step: &StepConfig<'_>,
    step_ids: &[&str],
    reporter: &mut Reporter<'_>,
) -> StepEdges {
    let id = step.id.value.as_str();
    let mut needs: Vec<String> = Vec::new();
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
            let error = reporter
                .error(
                    codes::UNKNOWN_NEED,
                    need.span,
                    format!("step `{id}` needs unknown step `{name}`"),
                )
                .with_label("unknown step")
                .with_help(unknown_name_help(name, step_ids, "steps"));
            reporter.push(error);
            continue;
        }
        if needs.iter().any(|known| known == name) {
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
        needs.push(name.to_owned());
        need_spans.push(need.span);
    }
    StepEdges {
        id: id.to_owned(),
        id_span: step.id.span,
        needs,
        need_spans,
    }
}

/// For each step, every step it needs directly or transitively (cycles
/// are tolerated: they were reported).
fn ancestry(steps: &[StepEdges]) -> Vec<BTreeSet<String>> {
    let mut index_of = HashMap::new();
    for (index, step) in steps.iter().enumerate() {
        index_of.insert(step.id.as_str(), index);
    }
    let mut all = Vec::with_capacity(steps.len());
    for step in steps {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = step.needs.iter().map(String::as_str).collect();
        while let Some(next) = stack.pop() {
            if !seen.insert(next.to_owned()) {
                continue;
            }
            if let Some(index) = index_of.get(next) {
                for need in &steps[*index].needs {
                    stack.push(need);
                }
            }
        }
        seen.remove(&step.id);
        all.push(seen);
    }
    all
}

/// Pass 2: everything else of a step.
fn validate_step(
    step: &StepConfig<'_>,
    edges: &StepEdges,
    readable: &BTreeSet<String>,
    names: &Names,
    reporter: &mut Reporter<'_>,
) -> Option<StepSpec> {
    let id = step.id.value.as_str();
    let what = format!("step `{id}`");
    check_identifier(&step.id, "step id", reporter);
    let mut valid = true;
    let mut uses = None;
    let mut uses_span = step.id.span;
    if let Some(written) = &step.uses {
        uses_span = written.span;
        match parse_skill(written, &what, reporter) {
            Some(parsed) => uses = Some(parsed),
            None => valid = false,
        }
    }
    let mut plan = None;
    if let Some(entry) = step.plan {
        if step.uses.is_none() {
            uses_span = entry.key.span;
        }
        plan = read_plan(entry, &what, reporter);
        valid &= plan.is_some();
    }
    if uses.is_none() && plan.is_none() {
        valid = false;
    }

    let reader = Reader {
        what: what.clone(),
        place: Place::StepWith {
            for_each: step.for_each.is_some(),
        },
        own_step: Some(id),
        readable: Some(readable),
    };
    let (with, expressions) = match step.with {
        None => (
            ValueTemplate::Literal(serde_json::Value::Object(serde_json::Map::new())),
            Vec::new(),
        ),
        Some(node) => {
            if !matches!(node.kind, NodeKind::Mapping(_)) {
                let error = reporter
                    .error(
                        codes::WRONG_TYPE,
                        node.span,
                        format!(
                            "`with` of {what} must be a mapping, found {}",
                            node.describe()
                        ),
                    )
                    .with_help("write `with: { name: value }`");
                reporter.push(error);
            }
            collect_template(node, "with", &reader, names, reporter)
        }
    };
    let condition = step.condition.and_then(|entry| {
        read_expression_field(entry, "if", &reader.at(Place::StepIf), names, reporter)
    });
    let for_each_site = step.for_each.and_then(|entry| {
        read_expression_field(
            entry,
            "for_each",
            &reader.at(Place::StepForEach),
            names,
            reporter,
        )
    });
    let mut max_parallel = None;
    if let Some(entry) = step.max_parallel {
        max_parallel =
            read_integer(entry, 1, &what, reporter).map(|n| n.min(i64::from(u32::MAX)) as u32);
        if step.for_each.is_none() {
            let error = reporter
                .error(
                    codes::CONFLICTING_FIELDS,
                    entry.key.span,
                    format!("{what} has `max_parallel` but no `for_each`"),
                )
                .with_label("needs `for_each`")
                .with_help("`max_parallel` limits how many `for_each` items run at once; add `for_each` or remove it");
            reporter.push(error);
        }
    }
    let for_each = for_each_site.map(|items| ForEachSpec {
        items,
        max_parallel,
    });

    let mut timeout = None;
    let mut timeout_span = None;
    if let Some(text) = &step.timeout {
        timeout_span = Some(text.span);
        timeout = parse_duration(text, "timeout", &what, reporter);
        if timeout == Some(Duration::ZERO) {
            let error = reporter
                .error(
                    codes::INVALID_DURATION,
                    text.span,
                    format!("the `timeout` of {what} is zero"),
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
        retry = read_retry(node, span, &what, reporter);
    }
    let reflect = step
        .reflect
        .and_then(|entry| read_reflect(entry, &reader, names, reporter));

    if !valid {
        return None;
    }
    Some(StepSpec {
        id: StepId::new(id),
        uses,
        plan,
        with,
        needs: edges.needs.iter().map(StepId::new).collect(),
        condition,
        for_each,
        timeout,
        retry,
        reflect,
        expressions,
        spans: StepSpans {
            id: step.id.span,
            uses: uses_span,
            needs: edges.need_spans.clone(),
            timeout: timeout_span,
            retry: retry_span,
        },
    })
}

pub(crate) fn parse_skill(
    written: &Spanned<String>,
    what: &str,
    reporter: &mut Reporter<'_>,
) -> Option<SkillRef> {
    match written.value.parse::<SkillRef>() {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let diagnostic = reporter
                .error(
                    codes::INVALID_USES,
                    written.span,
                    format!("{what}: {error}"),
                )
                .with_label("expected `expert/skill`");
            reporter.push(diagnostic);
            None
        }
    }
}

fn read_plan(entry: &Entry, what: &str, reporter: &mut Reporter<'_>) -> Option<PlanSpec> {
    let section = format!("`plan` of {what}");
    let fields = read_section(entry, format::PLAN, &section, reporter)?;
    let mut goal = None;
    let mut max_steps = None;
    for field in fields {
        match field.key.value.as_str() {
            "goal" => {
                if let Some(text) = crate::config::read_string(field, reporter) {
                    if text.value.trim().is_empty() {
                        let error = reporter
                            .error(
                                codes::INVALID_VALUE,
                                text.span,
                                format!("the `goal` of {what} is empty"),
                            )
                            .with_help("name an artifact type, e.g. `goal: response_plan`");
                        reporter.push(error);
                    } else {
                        goal = Some(text.value);
                    }
                }
            }
            "max_steps" => {
                max_steps = read_integer(field, 1, what, reporter)
                    .map(|n| n.min(i64::from(u32::MAX)) as u32);
            }
            _ => {}
        }
    }
    Some(PlanSpec {
        goal: goal?,
        max_steps,
    })
}

fn read_reflect(
    entry: &Entry,
    reader: &Reader<'_>,
    names: &Names,
    reporter: &mut Reporter<'_>,
) -> Option<ReflectSpec> {
    let what = &reader.what;
    let section = format!("`reflect` of {what}");
    let fields = read_section(entry, format::REFLECT, &section, reporter)?;
    let mut spec = ReflectSpec {
        until: None,
        min_confidence: None,
        max_rounds: 3,
        critic: None,
        critic_span: None,
        strategy: ReflectStrategy::RetryWithFeedback,
        budget_tokens: None,
        budget_duration: None,
    };
    for field in fields {
        match field.key.value.as_str() {
            "until" => {
                spec.until = read_expression_field(
                    field,
                    "reflect.until",
                    &reader.at(Place::ReflectUntil),
                    names,
                    reporter,
                );
            }
            "min_confidence" => spec.min_confidence = read_fraction(field, what, reporter),
            "max_rounds" => {
                if let Some(rounds) = read_integer(field, 1, what, reporter) {
                    spec.max_rounds = rounds.min(i64::from(u32::MAX)) as u32;
                }
            }
            "critic" => {
                if let Some(text) = crate::config::read_string(field, reporter) {
                    spec.critic_span = Some(text.span);
                    spec.critic = parse_skill(&text, &format!("the critic of {what}"), reporter);
                }
            }
            "strategy" => {
                spec.strategy = match read_choice(field, format::STRATEGIES, what, reporter) {
                    Some("second_opinion") => ReflectStrategy::SecondOpinion,
                    Some("replan") => ReflectStrategy::Replan,
                    _ => ReflectStrategy::RetryWithFeedback,
                }
            }
            "budget" => {
                let budget_what = format!("`reflect.budget` of {what}");
                if let Some(items) = read_section(field, format::BUDGET, &budget_what, reporter) {
                    for item in items {
                        match item.key.value.as_str() {
                            "tokens" => {
                                spec.budget_tokens =
                                    read_integer(item, 1, what, reporter).map(|n| n.unsigned_abs());
                            }
                            "duration" => {
                                spec.budget_duration = read_duration(item, what, reporter);
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let has_stop = fields
        .iter()
        .any(|f| matches!(f.key.value.as_str(), "until" | "min_confidence" | "critic"));
    if !has_stop {
        let error = reporter
            .error(
                codes::MISSING_FIELD,
                entry.key.span,
                format!("`reflect` of {what} has nothing to judge the output by"),
            )
            .with_label("no stopping rule")
            .with_help("add `until: \"${{ confidence >= 0.8 }}\"`, `min_confidence: 0.8` or `critic: expert/skill`");
        reporter.push(error);
    }
    // Kept even when a field was wrong, so `until` is still type-checked
    // (the load fails on the errors reported above anyway).
    Some(spec)
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
        let mut help = "remove one of these needs".to_owned();
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
