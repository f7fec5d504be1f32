//! `bindings:`: HTTP deliveries into business systems. The URL's scheme and
//! host are static (expressions only in path and query), secrets only in
//! headers, approvals name at least one role.

use std::collections::{BTreeSet, HashMap};

use synod_types::StepId;

use crate::codes;
use crate::config::{Reporter, check_fields, read_mapping, read_needs, read_string, value_span};
use crate::format;
use crate::scope::{Names, Place, Reader, collect_template, read_expression_field};
use crate::source::Span;
use crate::suggest::unknown_name_help;
use crate::syntax::Entry;
use crate::template::ValueTemplate;
use crate::validate::{check_identifier, read_section};
use crate::values::{read_choice, read_duration, read_retry, read_string_list};
use crate::workflow::{ApprovalSpec, BindingSpec, BindingWhen, ExpressionSite, HttpSpec};

/// Reads every binding.
pub(crate) fn read(
    entry: Option<&Entry>,
    names: &Names,
    ancestry: &HashMap<&str, &BTreeSet<String>>,
    reporter: &mut Reporter<'_>,
) -> Vec<BindingSpec> {
    let mut bindings = Vec::new();
    let Some(entry) = entry else {
        return bindings;
    };
    let Some(entries) = read_mapping(entry, "`bindings`", reporter) else {
        return bindings;
    };
    for item in entries {
        if let Some(binding) = read_binding(item, names, ancestry, reporter) {
            bindings.push(binding);
        }
    }
    bindings
}

fn read_binding(
    entry: &Entry,
    names: &Names,
    ancestry: &HashMap<&str, &BTreeSet<String>>,
    reporter: &mut Reporter<'_>,
) -> Option<BindingSpec> {
    check_identifier(&entry.key, "binding name", reporter);
    let name = entry.key.value.clone();
    let what = format!("binding `{name}`");
    let fields = read_section(entry, format::BINDING, &what, reporter)?;

    // Needs first: they decide which steps the expressions may read.
    let mut needs: Vec<StepId> = Vec::new();
    let mut readable = BTreeSet::new();
    if let Some(field) = fields.iter().find(|f| f.key.value == "needs") {
        for need in read_needs(field, reporter) {
            match ancestry.get(need.value.as_str()) {
                Some(ancestors) => {
                    readable.insert(need.value.clone());
                    readable.extend(ancestors.iter().cloned());
                    if !needs.iter().any(|known| known.as_str() == need.value) {
                        needs.push(StepId::new(&need.value));
                    }
                }
                None => {
                    let steps: Vec<&str> = names.steps.iter().map(String::as_str).collect();
                    let error = reporter
                        .error(
                            codes::UNKNOWN_NEED,
                            need.span,
                            format!("{what} needs unknown step `{}`", need.value),
                        )
                        .with_label("unknown step")
                        .with_help(unknown_name_help(&need.value, &steps, "steps"));
                    reporter.push(error);
                }
            }
        }
    }
    let has_needs = fields.iter().any(|f| f.key.value == "needs");
    let reader = Reader {
        what: what.clone(),
        place: Place::BindingValue,
        own_step: None,
        readable: has_needs.then_some(&readable),
    };

    let mut expressions: Vec<ExpressionSite> = Vec::new();
    let mut condition = None;
    let mut when = BindingWhen::OnSuccess;
    let mut http = None;
    let mut idempotency_key = None;
    let mut retry = None;
    let mut approval = None;
    for field in fields {
        match field.key.value.as_str() {
            "if" => condition = read_expression_field(field, "if", &reader, names, reporter),
            "when" => {
                when = match read_choice(field, format::BINDING_WHEN, &what, reporter) {
                    Some("on_failure") => BindingWhen::OnFailure,
                    Some("always") => BindingWhen::Always,
                    _ => BindingWhen::OnSuccess,
                };
            }
            "http" => http = read_http(field, &reader, names, &mut expressions, reporter),
            "idempotency_key" => {
                let (template, sites) =
                    collect_template(&field.value, "idempotency_key", &reader, names, reporter);
                expressions.extend(sites);
                idempotency_key = Some(template);
            }
            "retry" => {
                let span = value_span(field);
                retry = read_retry(&field.value, span, &what, reporter);
            }
            "approval" => approval = read_approval(field, &what, reporter),
            _ => {}
        }
    }
    // Kept even when a field was wrong, so its expressions are still
    // type-checked (the load fails on the errors reported above anyway).
    Some(BindingSpec {
        name,
        needs,
        condition,
        when,
        http: http?,
        idempotency_key,
        retry,
        approval,
        expressions,
        span: entry.key.span,
    })
}

fn read_http(
    entry: &Entry,
    reader: &Reader<'_>,
    names: &Names,
    expressions: &mut Vec<ExpressionSite>,
    reporter: &mut Reporter<'_>,
) -> Option<HttpSpec> {
    let what = format!("`http` of {}", reader.what);
    let fields = read_section(entry, format::HTTP, &what, reporter)?;
    let mut method = "POST".to_owned();
    let mut target = None;
    let mut headers = Vec::new();
    let mut body = None;
    for field in fields {
        match field.key.value.as_str() {
            "method" => {
                if let Some(chosen) = read_choice(field, format::METHODS, &reader.what, reporter) {
                    method = chosen.to_owned();
                }
            }
            "url" => {
                let Some(url) = read_string(field, reporter) else {
                    continue;
                };
                let (_, sites) =
                    collect_template(&field.value, "http.url", reader, names, reporter);
                expressions.extend(sites);
                target = split_url(&url.value, url.span, &reader.what, reporter);
            }
            "headers" => {
                let Some(items) = read_mapping(
                    field,
                    &format!("`http.headers` of {}", reader.what),
                    reporter,
                ) else {
                    continue;
                };
                let header_reader = reader.at(Place::BindingHeader);
                for (index, item) in items.iter().enumerate() {
                    check_header_name(&item.key.value, item.key.span, reporter);
                    if let Some(first) = items[..index]
                        .iter()
                        .find(|earlier| earlier.key.value.eq_ignore_ascii_case(&item.key.value))
                    {
                        let error = reporter
                            .error(
                                codes::DUPLICATE_KEY,
                                item.key.span,
                                format!(
                                    "header `{}` is set twice (header names ignore case)",
                                    item.key.value
                                ),
                            )
                            .with_label("second definition")
                            .with_secondary(first.key.span, "first set here")
                            .with_help("keep one of them");
                        reporter.push(error);
                    }
                    if read_string(item, reporter).is_none() {
                        continue;
                    }
                    let key_path = format!("http.headers.{}", item.key.value);
                    let (template, sites) =
                        collect_template(&item.value, &key_path, &header_reader, names, reporter);
                    expressions.extend(sites);
                    headers.push((item.key.value.clone(), template));
                }
            }
            "body" => {
                let (template, sites) =
                    collect_template(&field.value, "http.body", reader, names, reporter);
                expressions.extend(sites);
                body = Some(template);
            }
            _ => {}
        }
    }
    let (origin, path) = target?;
    Some(HttpSpec {
        method,
        origin,
        path,
        headers,
        body,
    })
}

/// Splits `https://host:port/path?q` into the static origin and the path
/// template, reporting a templated or missing scheme/host.
fn split_url(
    url: &str,
    span: Span,
    what: &str,
    reporter: &mut Reporter<'_>,
) -> Option<(String, ValueTemplate)> {
    let source = reporter.map.source();
    let quote = usize::from(source[span.start..].starts_with(['"', '\'']));
    let at = |offset: usize, length: usize, reporter: &Reporter<'_>| {
        let start = reporter.map.clamp(span.start + quote + offset);
        let end = (start + length).min(reporter.map.line_end(start));
        reporter.map.span(start, end)
    };
    let hole = url.find("${{");
    let Some(scheme_end) = url.find("://") else {
        let (location, length) = match hole {
            Some(offset) => (offset, 3),
            None => (0, url.len()),
        };
        let error = reporter
            .error(
                codes::INVALID_URL,
                at(location, length, reporter),
                format!("the URL of {what} must start with `https://` or `http://` and a host"),
            )
            .with_help("write e.g. `url: \"https://tickets.example.org/api/issues\"`; only the path and query may hold `${{ }}`");
        reporter.push(error);
        return None;
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |relative| authority_start + relative);
    if let Some(offset) = hole
        && offset < authority_end
    {
        let error = reporter
            .error(
                codes::TEMPLATED_HOST,
                at(offset, 3, reporter),
                format!("the URL of {what} computes its scheme or host from an expression"),
            )
            .with_label("expression in scheme or host")
            .with_help("the destination must be fixed in the workflow so it can be reviewed and allowlisted; write the host literally and use `${{ }}` only in the path or query");
        reporter.push(error);
        return None;
    }
    let scheme = &url[..scheme_end];
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        let error = reporter
            .error(
                codes::INVALID_URL,
                at(0, scheme_end, reporter),
                format!("the URL of {what} uses scheme `{scheme}`; only `https` and `http` are supported"),
            )
            .with_label("unsupported scheme");
        reporter.push(error);
        return None;
    }
    let authority = &url[authority_start..authority_end];
    let host_ok = !authority.is_empty()
        && !authority.starts_with(':')
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok {
        let message = if authority.contains('@') {
            format!("the URL of {what} holds credentials (`user@host`)")
        } else {
            format!("the URL of {what} has no valid host (`{authority}`)")
        };
        let error = reporter
            .error(
                codes::INVALID_URL,
                at(authority_start, authority.len().max(1), reporter),
                message,
            )
            .with_label("host")
            .with_help("write a host name or address, e.g. `https://tickets.example.org/…`; pass credentials in `headers` with `${{ secrets.X }}`");
        reporter.push(error);
        return None;
    }
    let origin = format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    );
    let rest = &url[authority_end..];
    let path = ValueTemplate::from_value(&serde_json::Value::String(rest.to_owned()))
        .unwrap_or(ValueTemplate::Literal(serde_json::Value::Null));
    Some((origin, path))
}

pub(crate) fn check_header_name(name: &str, span: Span, reporter: &mut Reporter<'_>) {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    if valid {
        return;
    }
    let error = reporter
        .error(
            codes::INVALID_VALUE,
            span,
            format!("`{name}` is not a valid HTTP header name"),
        )
        .with_help("use letters, digits and `-`, e.g. `Authorization`, `X-Request-Id`");
    reporter.push(error);
}

fn read_approval(entry: &Entry, what: &str, reporter: &mut Reporter<'_>) -> Option<ApprovalSpec> {
    let section = format!("`approval` of {what}");
    let fields = read_mapping(entry, &section, reporter)?;
    check_fields(
        fields,
        &format::names(format::APPROVAL),
        &[],
        &section,
        reporter,
    );
    let mut roles = Vec::new();
    let mut timeout = None;
    let mut roles_span = None;
    for field in fields {
        match field.key.value.as_str() {
            "roles" => {
                roles_span = Some(value_span(field));
                if let Some(list) = read_string_list(field, what, reporter) {
                    roles = list.into_iter().map(|role| role.value).collect();
                }
            }
            "timeout" => timeout = read_duration(field, what, reporter),
            _ => {}
        }
    }
    if roles.is_empty() {
        let span = roles_span.unwrap_or(entry.key.span);
        let error = reporter
            .error(
                codes::INVALID_APPROVAL,
                span,
                format!("the `approval` of {what} names no role that may approve"),
            )
            .with_label("no roles")
            .with_help(
                "list who may approve, e.g. `approval: { roles: [soc-lead], timeout: 30m }`",
            );
        reporter.push(error);
        return None;
    }
    Some(ApprovalSpec { roles, timeout })
}
