//! `on:`: manual starts, signed webhooks and cron schedules.

use std::time::Duration;

use crate::codes;
use crate::config::{Reporter, read_string, value_span};
use crate::cron::CronSchedule;
use crate::format;
use crate::scope::{Names, Place, Reader, read_expression_field};
use crate::suggest::unknown_name_help;
use crate::syntax::{Entry, NodeKind};
use crate::validate::read_section;
use crate::values::read_duration;
use crate::workflow::{InputSpec, ScheduleTrigger, Triggers, WebhookTrigger, json_type};

const DEFAULT_SIGNATURE_HEADER: &str = "X-Synod-Signature";
const DEFAULT_TIMESTAMP_HEADER: &str = "X-Synod-Timestamp";
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Reads `on:`; without it, runs start manually only.
pub(crate) fn read(
    entry: Option<&Entry>,
    workflow_name: &str,
    names: &Names,
    inputs: &[InputSpec],
    reporter: &mut Reporter<'_>,
) -> Triggers {
    let mut triggers = Triggers::default();
    let Some(entry) = entry else {
        triggers.manual = true;
        return triggers;
    };
    let Some(fields) = read_section(entry, format::TRIGGERS, "`on`", reporter) else {
        return triggers;
    };
    if fields.is_empty() {
        let error = reporter
            .error(
                codes::MISSING_FIELD,
                entry.key.span,
                "`on` lists no trigger".to_owned(),
            )
            .with_help("add `manual: {}`, `webhook: { secret: … }` or `schedule: { cron: … }`, or remove `on`");
        reporter.push(error);
    }
    for field in fields {
        match field.key.value.as_str() {
            "manual" => {
                triggers.manual = true;
                if !field.value.is_null() {
                    read_section(field, &[], "`on.manual`", reporter);
                }
            }
            "webhook" => triggers.webhook = read_webhook(field, workflow_name, names, reporter),
            "schedule" => triggers.schedules = read_schedules(field, inputs, reporter),
            _ => {}
        }
    }
    triggers
}

fn read_webhook(
    entry: &Entry,
    workflow_name: &str,
    names: &Names,
    reporter: &mut Reporter<'_>,
) -> Option<WebhookTrigger> {
    let fields = read_section(entry, format::WEBHOOK, "`on.webhook`", reporter)?;
    let errors_before = reporter.diagnostics.len();
    let mut webhook = WebhookTrigger {
        name: workflow_name.to_owned(),
        secret: String::new(),
        signature_header: DEFAULT_SIGNATURE_HEADER.to_owned(),
        timestamp_header: DEFAULT_TIMESTAMP_HEADER.to_owned(),
        tolerance: DEFAULT_TOLERANCE,
    };
    let reader = Reader {
        what: "the webhook".to_owned(),
        place: Place::WebhookSecret,
        own_step: None,
        readable: None,
    };
    for field in fields {
        match field.key.value.as_str() {
            "name" => {
                if let Some(name) = read_string(field, reporter) {
                    let valid = !name.value.is_empty()
                        && name
                            .value
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                    if !valid {
                        let error = reporter
                            .error(
                                codes::INVALID_NAME,
                                name.span,
                                format!("webhook name `{}` is not allowed", name.value),
                            )
                            .with_help(
                                "use lowercase letters, digits and `-`; it becomes `/hooks/<name>`",
                            );
                        reporter.push(error);
                    }
                    webhook.name = name.value;
                }
            }
            "secret" => {
                let Some(site) =
                    read_expression_field(field, "on.webhook.secret", &reader, names, reporter)
                else {
                    continue;
                };
                let references = &site.expression.references;
                let is_one_secret = references.len() == 1
                    && references[0].root() == "secrets"
                    && references[0].path.len() == 2
                    && references[0].range == (0..site.expression.source.len());
                match references.first().and_then(|r| r.field(1)) {
                    Some(name) if is_one_secret => webhook.secret = name.to_owned(),
                    _ => {
                        let error = reporter
                            .error(
                                codes::INVALID_VALUE,
                                site.span,
                                "the webhook `secret` must be exactly `${{ secrets.NAME }}`"
                                    .to_owned(),
                            )
                            .with_help("declare the key under `secrets:` and write `secret: \"${{ secrets.HOOK_KEY }}\"`");
                        reporter.push(error);
                    }
                }
            }
            "signature_header" => {
                if let Some(text) = read_string(field, reporter) {
                    crate::bindings::check_header_name(&text.value, text.span, reporter);
                    webhook.signature_header = text.value;
                }
            }
            "timestamp_header" => {
                if let Some(text) = read_string(field, reporter) {
                    crate::bindings::check_header_name(&text.value, text.span, reporter);
                    webhook.timestamp_header = text.value;
                }
            }
            "tolerance" => {
                if let Some(tolerance) = read_duration(field, "the webhook", reporter) {
                    webhook.tolerance = tolerance;
                }
            }
            _ => {}
        }
    }
    if reporter.diagnostics.len() > errors_before || webhook.secret.is_empty() {
        return None;
    }
    Some(webhook)
}

fn read_schedules(
    entry: &Entry,
    inputs: &[InputSpec],
    reporter: &mut Reporter<'_>,
) -> Vec<ScheduleTrigger> {
    let mut schedules = Vec::new();
    match &entry.value.kind {
        NodeKind::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                let wrapped = Entry {
                    key: crate::syntax::Spanned {
                        value: format!("schedule[{index}]"),
                        span: item.span,
                    },
                    value: item.clone(),
                };
                if let Some(schedule) = read_schedule(&wrapped, inputs, reporter) {
                    schedules.push(schedule);
                }
            }
        }
        _ => {
            if let Some(schedule) = read_schedule(entry, inputs, reporter) {
                schedules.push(schedule);
            }
        }
    }
    schedules
}

fn read_schedule(
    entry: &Entry,
    inputs: &[InputSpec],
    reporter: &mut Reporter<'_>,
) -> Option<ScheduleTrigger> {
    let what = format!("`on.{}`", entry.key.value);
    let fields = read_section(entry, format::SCHEDULE, &what, reporter)?;
    let mut cron = None;
    let mut schedule_inputs = serde_json::Value::Object(serde_json::Map::new());
    for field in fields {
        match field.key.value.as_str() {
            "cron" => {
                let text = read_string(field, reporter)?;
                match CronSchedule::parse(&text.value) {
                    Ok(schedule) => cron = Some((text.value, schedule)),
                    Err(error) => {
                        // Quoted or plain, the cron text starts after any quote.
                        let source = reporter.map.source();
                        let quote = usize::from(source[text.span.start..].starts_with(['"', '\'']));
                        let start = text.span.start + quote + error.range.start;
                        let end = (text.span.start + quote + error.range.end)
                            .min(reporter.map.line_end(start));
                        let error_span = reporter.map.span(start, end);
                        let diagnostic = reporter
                            .error(
                                codes::INVALID_CRON,
                                error_span,
                                format!("invalid cron schedule `{}`: {}", text.value, error.message),
                            )
                            .with_label("here")
                            .with_help("five fields: minute hour day-of-month month day-of-week, e.g. `*/15 * * * MON-FRI`; or `@hourly`, `@daily`");
                        reporter.push(diagnostic);
                    }
                }
            }
            "inputs" => {
                if !matches!(field.value.kind, NodeKind::Mapping(_)) {
                    let error = reporter
                        .error(
                            codes::WRONG_TYPE,
                            value_span(field),
                            format!(
                                "`inputs` of {what} must be a mapping, found {}",
                                field.value.describe()
                            ),
                        )
                        .with_label("expected a mapping");
                    reporter.push(error);
                } else {
                    check_schedule_inputs(field, inputs, reporter);
                    schedule_inputs = field.value.to_json();
                }
            }
            _ => {}
        }
    }
    if !fields.iter().any(|f| f.key.value == "inputs") {
        for input in inputs {
            if input.required && input.default.is_none() {
                let error = reporter
                    .error(
                        codes::MISSING_FIELD,
                        entry.key.span,
                        format!(
                            "{what} gives no inputs, but input `{}` is required",
                            input.name
                        ),
                    )
                    .with_help(format!(
                        "add `inputs: {{ {}: … }}` to the schedule, or give the input a `default`",
                        input.name
                    ));
                reporter.push(error);
            }
        }
    }
    let (cron, schedule) = cron?;
    Some(ScheduleTrigger {
        cron,
        schedule,
        inputs: schedule_inputs,
    })
}

/// Scheduled runs have no caller to give inputs: the schedule's literal
/// inputs must name declared inputs with the right types.
fn check_schedule_inputs(field: &Entry, inputs: &[InputSpec], reporter: &mut Reporter<'_>) {
    let NodeKind::Mapping(given) = &field.value.kind else {
        return;
    };
    let declared: Vec<&str> = inputs.iter().map(|input| input.name.as_str()).collect();
    for item in given {
        let Some(input) = inputs.iter().find(|input| input.name == item.key.value) else {
            let error = reporter
                .error(
                    codes::UNKNOWN_INPUT_REF,
                    item.key.span,
                    format!("the schedule gives unknown input `{}`", item.key.value),
                )
                .with_label("unknown input")
                .with_help(unknown_name_help(&item.key.value, &declared, "inputs"));
            reporter.push(error);
            continue;
        };
        let value = item.value.to_json();
        if !input.ty.matches(&value) {
            let error = reporter
                .error(
                    codes::INVALID_INPUT,
                    value_span(item),
                    format!(
                        "the schedule gives input `{}` {}, but it is declared `{}`",
                        input.name,
                        json_type(&value),
                        input.ty
                    ),
                )
                .with_label(format!("not {}", input.ty));
            reporter.push(error);
        }
    }
    for input in inputs {
        let given_here = given.iter().any(|item| item.key.value == input.name);
        if input.required && input.default.is_none() && !given_here {
            let error = reporter
                .error(
                    codes::MISSING_FIELD,
                    field.key.span,
                    format!("the schedule does not give required input `{}`", input.name),
                )
                .with_help(format!(
                    "add `{}: …` to the schedule's `inputs`",
                    input.name
                ));
            reporter.push(error);
        }
    }
}
