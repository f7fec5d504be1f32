//! Small value readers shared by the sections: durations, retry policies,
//! integers, fractions, one-of-these words, name lists.

use std::time::Duration;

use synod_types::{HumanDuration, RetryPolicy};

use crate::codes;
use crate::config::{Reporter, check_fields, value_span};
use crate::format::RETRY_POLICIES;
use crate::source::Span;
use crate::suggest::{name_list, unknown_name_help};
use crate::syntax::{Entry, Node, NodeKind, Scalar, Spanned};

pub(crate) fn parse_duration(
    text: &Spanned<String>,
    field: &str,
    what: &str,
    reporter: &mut Reporter<'_>,
) -> Option<Duration> {
    match text.value.parse::<HumanDuration>() {
        Ok(duration) => Some(duration.get()),
        Err(error) => {
            let diagnostic = reporter
                .error(
                    codes::INVALID_DURATION,
                    text.span,
                    format!("`{field}` of {what}: {error}"),
                )
                .with_label("not a duration");
            reporter.push(diagnostic);
            None
        }
    }
}

// === retry ===

pub(crate) fn read_retry(
    node: &Node,
    span: Span,
    what: &str,
    reporter: &mut Reporter<'_>,
) -> Option<RetryPolicy> {
    let NodeKind::Mapping(entries) = &node.kind else {
        let error = reporter
            .error(
                codes::WRONG_TYPE,
                span,
                format!("`retry` of {what} must be a mapping, found {}", node.describe()),
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
                format!("`retry` of {what} has no `policy`"),
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
                    format!("{what} has unknown retry policy `{policy}`"),
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
            parse_duration(&text, &entry.key.value, what, reporter);
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
                    format!("invalid `retry` for {what}: {error}"),
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
            format!("invalid `retry` for {what}: {problem}"),
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

/// A duration field (`timeout: 30s`), rejecting zero.
pub(crate) fn read_duration(
    entry: &Entry,
    what: &str,
    reporter: &mut Reporter<'_>,
) -> Option<Duration> {
    let text = crate::config::read_string(entry, reporter)?;
    let duration = parse_duration(&text, &entry.key.value, what, reporter)?;
    if duration == Duration::ZERO {
        let error = reporter
            .error(
                codes::INVALID_DURATION,
                text.span,
                format!("the `{}` of {what} is zero", entry.key.value),
            )
            .with_help(
                "give a positive duration such as `30s`, or remove the field for the default",
            );
        reporter.push(error);
        return None;
    }
    Some(duration)
}

/// An integer field of at least `minimum`.
pub(crate) fn read_integer(
    entry: &Entry,
    minimum: i64,
    what: &str,
    reporter: &mut Reporter<'_>,
) -> Option<i64> {
    let value = entry.value.to_json();
    match value.as_i64() {
        Some(number) if number >= minimum => Some(number),
        Some(number) => {
            let error = reporter
                .error(
                    codes::INVALID_VALUE,
                    value_span(entry),
                    format!(
                        "`{}` of {what} must be at least {minimum}, found {number}",
                        entry.key.value
                    ),
                )
                .with_label("too small");
            reporter.push(error);
            None
        }
        None => {
            let error = reporter
                .error(
                    codes::WRONG_TYPE,
                    value_span(entry),
                    format!(
                        "`{}` of {what} must be an integer, found {}",
                        entry.key.value,
                        entry.value.describe()
                    ),
                )
                .with_label("expected an integer");
            reporter.push(error);
            None
        }
    }
}

/// A number between 0 and 1.
pub(crate) fn read_fraction(entry: &Entry, what: &str, reporter: &mut Reporter<'_>) -> Option<f64> {
    match entry.value.to_json().as_f64() {
        Some(number) if (0.0..=1.0).contains(&number) => Some(number),
        _ => {
            let error = reporter
                .error(
                    codes::INVALID_VALUE,
                    value_span(entry),
                    format!(
                        "`{}` of {what} must be a number from 0 to 1, found `{}`",
                        entry.key.value,
                        entry.value.to_json()
                    ),
                )
                .with_label("expected 0..1");
            reporter.push(error);
            None
        }
    }
}

/// One of `allowed` (exact spelling), with did-you-mean.
pub(crate) fn read_choice(
    entry: &Entry,
    allowed: &[&'static str],
    what: &str,
    reporter: &mut Reporter<'_>,
) -> Option<&'static str> {
    let text = crate::config::read_string(entry, reporter)?;
    if let Some(found) = allowed.iter().find(|choice| **choice == text.value) {
        return Some(found);
    }
    let error = reporter
        .error(
            codes::INVALID_VALUE,
            text.span,
            format!("`{}` of {what} cannot be `{}`", entry.key.value, text.value),
        )
        .with_label("unknown value")
        .with_help(unknown_name_help(&text.value, allowed, "values"));
    reporter.push(error);
    None
}

/// A list of non-empty strings (`roles: [a, b]`).
pub(crate) fn read_string_list(
    entry: &Entry,
    what: &str,
    reporter: &mut Reporter<'_>,
) -> Option<Vec<Spanned<String>>> {
    let NodeKind::Sequence(items) = &entry.value.kind else {
        let error = reporter
            .error(
                codes::WRONG_TYPE,
                value_span(entry),
                format!(
                    "`{}` of {what} must be a list of names, found {}",
                    entry.key.value,
                    entry.value.describe()
                ),
            )
            .with_help(format!("write `{}: [name-a, name-b]`", entry.key.value));
        reporter.push(error);
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match &item.kind {
            NodeKind::Scalar(scalar) if !item.is_null() && !scalar.text.trim().is_empty() => out
                .push(Spanned {
                    value: scalar.text.clone(),
                    span: item.span,
                }),
            _ => {
                let error = reporter
                    .error(
                        codes::WRONG_TYPE,
                        item.span,
                        format!(
                            "`{}` entries of {what} must be names, found {}",
                            entry.key.value,
                            item.describe()
                        ),
                    )
                    .with_label("expected a name");
                reporter.push(error);
            }
        }
    }
    Some(out)
}
