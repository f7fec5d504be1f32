//! `synod run --dry-run`: a binding request shown exactly as it would be sent, without
//! sending it. Secret values and credential headers appear as `***`.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;
use synod_types::redact::is_secret_key;

use crate::allowlist::Allowlist;
use crate::redact::{MASK, Redactor};
use crate::request::{BindingRequest, RequestBody};

/// A rendered, redacted, unsent binding request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRun {
    /// The binding name.
    pub binding: String,
    /// HTTP method as it would be sent.
    pub method: String,
    /// The URL (redacted).
    pub url: String,
    /// Headers in sending order, including `Idempotency-Key` and the default
    /// `Content-Type`; values redacted, credential headers fully masked.
    pub headers: Vec<DryRunHeader>,
    /// The body (redacted): JSON as JSON, text as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Whether the allowlist would let the request through.
    pub destination_allowed: bool,
    /// Why the request would not be sent (invalid request, refused destination).
    pub problems: Vec<String>,
}

/// One header of a [`DryRun`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRunHeader {
    /// Header name (lower-case when the request validated).
    pub name: String,
    /// Redacted value.
    pub value: String,
}

/// Renders `request` for display. Pure: nothing is sent, no DNS lookup.
pub fn render_dry_run(
    request: &BindingRequest,
    redactor: &Redactor,
    allowlist: &Allowlist,
) -> DryRun {
    let header = |name: &str, value: &str| DryRunHeader {
        name: name.to_owned(),
        value: if is_secret_key(name) {
            MASK.to_owned()
        } else {
            redactor.redact(value)
        },
    };
    let mut problems = Vec::new();
    let (method, headers, destination_allowed) = match request.validate() {
        Ok(valid) => {
            let headers = valid
                .headers()
                .iter()
                .map(|(name, value)| {
                    header(name.as_str(), &String::from_utf8_lossy(value.as_bytes()))
                })
                .collect();
            let allowed = match allowlist.check(valid.url()) {
                Ok(()) => true,
                Err(error) => {
                    problems.push(error.to_string());
                    false
                }
            };
            (valid.method().to_string(), headers, allowed)
        }
        Err(error) => {
            problems.push(error.to_string());
            let headers = request
                .headers
                .iter()
                .map(|(name, value)| header(name, value))
                .collect();
            (request.method.clone(), headers, false)
        }
    };
    let body = request.body.as_ref().map(|body| match body {
        RequestBody::Json(value) => redactor.redact_json(value),
        RequestBody::Text(text) => Value::String(redactor.redact(text)),
    });
    DryRun {
        binding: request.binding.clone(),
        method,
        url: redactor.redact(&request.url),
        headers,
        body,
        destination_allowed,
        problems: problems.iter().map(|p| redactor.redact(p)).collect(),
    }
}

impl DryRun {
    /// The machine-readable form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// An HTTP-message-like text for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "binding `{}` (dry run, nothing sent)", self.binding);
        let _ = writeln!(out, "{} {}", self.method, self.url);
        for header in &self.headers {
            let _ = writeln!(out, "{}: {}", header.name, header.value);
        }
        match &self.body {
            Some(Value::String(text)) => {
                let _ = writeln!(out, "\n{text}");
            }
            Some(json) => {
                let pretty = serde_json::to_string_pretty(json).unwrap_or_default();
                let _ = writeln!(out, "\n{pretty}");
            }
            None => {}
        }
        if self.destination_allowed {
            out.push_str("\ndestination: allowed\n");
        }
        for problem in &self.problems {
            let _ = writeln!(out, "\nwould not be sent: {problem}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretValue;
    use serde_json::json;

    fn request(url: &str) -> BindingRequest {
        BindingRequest {
            binding: "ticket".to_owned(),
            method: "POST".to_owned(),
            url: url.to_owned(),
            headers: vec![
                ("Authorization".to_owned(), "Bearer tk-9f8e7d".to_owned()),
                ("X-Reporter".to_owned(), "synod via tk-9f8e7d".to_owned()),
            ],
            body: Some(RequestBody::Json(
                json!({"note": "key tk-9f8e7d", "title": "alert"}),
            )),
            idempotency_key: Some("run-1-ticket".to_owned()),
        }
    }

    fn redactor() -> Redactor {
        let mut redactor = Redactor::new();
        redactor.add(&SecretValue::new("tk-9f8e7d"));
        redactor
    }

    #[test]
    fn renders_text_and_json_with_secrets_masked() {
        let allowlist = Allowlist::parse(&["tickets.example.org"]).unwrap();
        let dry = render_dry_run(
            &request("https://tickets.example.org/api/issues?t=tk-9f8e7d"),
            &redactor(),
            &allowlist,
        );
        let text = dry.to_text();
        assert_eq!(
            text,
            "binding `ticket` (dry run, nothing sent)\n\
             POST https://tickets.example.org/api/issues?t=***\n\
             authorization: ***\n\
             x-reporter: synod via ***\n\
             idempotency-key: run-1-ticket\n\
             content-type: application/json\n\
             \n{\n  \"note\": \"key ***\",\n  \"title\": \"alert\"\n}\n\
             \ndestination: allowed\n"
        );
        let json = dry.to_json();
        assert_eq!(
            json["headers"][2],
            json!({"name": "idempotency-key", "value": "run-1-ticket"})
        );
        assert_eq!(json["body"]["note"], "key ***");
        assert!(!json.to_string().contains("tk-9f8e7d"));
    }

    #[test]
    fn shows_why_it_would_not_be_sent() {
        let allowlist = Allowlist::parse(&["tickets.example.org"]).unwrap();
        let dry = render_dry_run(
            &request("https://evil.example.net/x"),
            &redactor(),
            &allowlist,
        );
        assert!(!dry.destination_allowed);
        assert!(
            dry.to_text()
                .contains("would not be sent: destination host `evil.example.net`")
        );

        let mut bad = request("https://tickets.example.org/x");
        bad.method = "NOT A METHOD".to_owned();
        let dry = render_dry_run(&bad, &redactor(), &allowlist);
        assert_eq!(dry.problems.len(), 1);
        assert_eq!(dry.headers[0].value, "***");
        assert!(!dry.to_text().contains("tk-9f8e7d"));
    }
}
