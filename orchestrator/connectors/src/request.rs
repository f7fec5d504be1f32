//! A binding's HTTP request after its templates were rendered, and its validated form.
//!
//! The workflow crate's `bindings.<name>.http` section renders into a [`BindingRequest`]
//! (method, URL, headers, body, `idempotency_key`); [`BindingRequest::validate`] turns it
//! into a [`ValidRequest`] whose headers are exactly the ones sent.

use http::Method;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;
use url::Url;

/// Name of the header carrying the binding's idempotency key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// A rendered binding request (strings may contain resolved secret values).
#[derive(Debug, Clone, PartialEq)]
pub struct BindingRequest {
    /// The binding's name in the workflow (`bindings.<name>`), used in records and errors.
    pub binding: String,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers in order; names are case-insensitive.
    pub headers: Vec<(String, String)>,
    /// Optional body.
    pub body: Option<RequestBody>,
    /// Sent as `Idempotency-Key` on every attempt.
    pub idempotency_key: Option<String>,
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestBody {
    /// Serialized as JSON; `Content-Type: application/json` unless a header sets it.
    Json(Value),
    /// Sent as is; `Content-Type: text/plain; charset=utf-8` unless a header sets it.
    Text(String),
}

/// A request that passed validation: parsed method and URL, checked headers.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    binding: String,
    method: Method,
    url: Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<RequestBody>,
    idempotency_key: Option<String>,
}

/// Why a rendered request cannot be sent. Messages never include header values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The method is not a valid HTTP method token.
    #[error(
        "binding `{binding}`: `{method}` is not a supported HTTP method; use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"
    )]
    Method {
        /// Binding name.
        binding: String,
        /// The method as rendered.
        method: String,
    },
    /// The URL does not parse as an absolute URL.
    #[error(
        "binding `{binding}`: the URL is not a valid absolute URL ({reason}); write it as `https://host/path`"
    )]
    Url {
        /// Binding name.
        binding: String,
        /// The parser's reason.
        reason: String,
    },
    /// A header name is invalid.
    #[error("binding `{binding}`: `{name}` is not a valid header name (letters, digits and `-`)")]
    HeaderName {
        /// Binding name.
        binding: String,
        /// The header name.
        name: String,
    },
    /// A header value (or the idempotency key) contains bytes HTTP forbids.
    #[error(
        "binding `{binding}`: the value of header `{name}` contains control characters or line breaks; remove them"
    )]
    HeaderValue {
        /// Binding name.
        binding: String,
        /// The header name.
        name: String,
    },
    /// `Idempotency-Key` is set both as a header and through `idempotency_key`.
    #[error(
        "binding `{binding}`: set the idempotency key once, with `idempotency_key`, not also as an `Idempotency-Key` header"
    )]
    DuplicateIdempotencyKey {
        /// Binding name.
        binding: String,
    },
    /// A header that controls routing or framing, which the client sets itself.
    #[error(
        "binding `{binding}`: header `{name}` cannot be set by a binding (synod sets routing and framing headers itself); remove it"
    )]
    ForbiddenHeader {
        /// Binding name.
        binding: String,
        /// The header name.
        name: String,
    },
}

/// Methods a binding may use.
const ALLOWED_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Headers a binding may not set: `Host` would let a template pick another virtual host
/// behind an allowlisted address; the others are connection-level framing.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

impl BindingRequest {
    /// Checks method, URL and headers and computes the headers to send.
    pub fn validate(&self) -> Result<ValidRequest, RequestError> {
        let binding = self.binding.clone();
        let method = Method::from_bytes(self.method.trim().to_ascii_uppercase().as_bytes())
            .ok()
            .filter(|method| ALLOWED_METHODS.contains(method))
            .ok_or_else(|| RequestError::Method {
                binding: binding.clone(),
                method: self.method.clone(),
            })?;
        let url = Url::parse(self.url.trim()).map_err(|error| RequestError::Url {
            binding: binding.clone(),
            reason: error.to_string(),
        })?;
        let mut headers = Vec::with_capacity(self.headers.len() + 2);
        for (name, value) in &self.headers {
            headers.push(header(&binding, name, value)?);
        }
        let has = |headers: &[(HeaderName, HeaderValue)], wanted: &HeaderName| {
            headers.iter().any(|(name, _)| name == wanted)
        };
        let idempotency = HeaderName::from_static(IDEMPOTENCY_KEY_HEADER);
        if let Some(key) = &self.idempotency_key {
            if has(&headers, &idempotency) {
                return Err(RequestError::DuplicateIdempotencyKey { binding });
            }
            headers.push(header(&binding, IDEMPOTENCY_KEY_HEADER, key)?);
        }
        if let Some(body) = &self.body
            && !has(&headers, &CONTENT_TYPE)
        {
            let content_type = match body {
                RequestBody::Json(_) => "application/json",
                RequestBody::Text(_) => "text/plain; charset=utf-8",
            };
            headers.push((CONTENT_TYPE, HeaderValue::from_static(content_type)));
        }
        Ok(ValidRequest {
            binding,
            method,
            url,
            headers,
            body: self.body.clone(),
            idempotency_key: self.idempotency_key.clone(),
        })
    }
}

fn header(
    binding: &str,
    name: &str,
    value: &str,
) -> Result<(HeaderName, HeaderValue), RequestError> {
    let parsed_name =
        HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| RequestError::HeaderName {
            binding: binding.to_owned(),
            name: name.to_owned(),
        })?;
    if FORBIDDEN_HEADERS.contains(&parsed_name.as_str()) {
        return Err(RequestError::ForbiddenHeader {
            binding: binding.to_owned(),
            name: name.to_owned(),
        });
    }
    let parsed_value = HeaderValue::from_str(value).map_err(|_| RequestError::HeaderValue {
        binding: binding.to_owned(),
        name: name.to_owned(),
    })?;
    Ok((parsed_name, parsed_value))
}

impl ValidRequest {
    /// The binding name.
    pub fn binding(&self) -> &str {
        &self.binding
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The destination.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Every header that is sent, including `Idempotency-Key` and the default `Content-Type`.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> Option<&RequestBody> {
        self.body.as_ref()
    }

    /// The idempotency key.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// The body's bytes on the wire.
    pub fn body_bytes(&self) -> Option<Vec<u8>> {
        match self.body.as_ref()? {
            RequestBody::Json(value) => Some(value.to_string().into_bytes()),
            RequestBody::Text(text) => Some(text.clone().into_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> BindingRequest {
        BindingRequest {
            binding: "ticket".to_owned(),
            method: "post".to_owned(),
            url: "https://tickets.example.org/api/issues".to_owned(),
            headers: vec![("Authorization".to_owned(), "Bearer s3cret".to_owned())],
            body: Some(RequestBody::Json(json!({"title": "alert"}))),
            idempotency_key: Some("run-1-ticket".to_owned()),
        }
    }

    #[test]
    fn adds_idempotency_key_and_content_type() {
        let valid = request().validate().unwrap();
        assert_eq!(valid.method(), Method::POST);
        let names: Vec<&str> = valid.headers().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["authorization", "idempotency-key", "content-type"]);
        assert_eq!(valid.body_bytes().unwrap(), br#"{"title":"alert"}"#);
    }

    #[test]
    fn explicit_content_type_is_kept() {
        let mut req = request();
        req.headers.push((
            "Content-Type".to_owned(),
            "application/vnd.x+json".to_owned(),
        ));
        let valid = req.validate().unwrap();
        let types: Vec<_> = valid
            .headers()
            .iter()
            .filter(|(n, _)| n == CONTENT_TYPE)
            .collect();
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].1, "application/vnd.x+json");
    }

    #[test]
    fn errors_never_echo_header_values() {
        let mut req = request();
        req.headers[0].1 = "Bearer s3cret\r\nX-Evil: 1".to_owned();
        let message = req.validate().unwrap_err().to_string();
        assert!(
            message.contains("`Authorization`") && !message.contains("s3cret"),
            "{message}"
        );

        let mut req = request();
        req.headers
            .push(("Idempotency-Key".to_owned(), "k".to_owned()));
        assert!(matches!(
            req.validate(),
            Err(RequestError::DuplicateIdempotencyKey { .. })
        ));

        for forbidden in ["Host", "Content-Length", "transfer-encoding"] {
            let mut req = request();
            req.headers.push((forbidden.to_owned(), "x".to_owned()));
            let message = req.validate().unwrap_err().to_string();
            assert!(message.contains("cannot be set by a binding"), "{message}");
        }
        for method in ["CONNECT", "TRACE", "FOO"] {
            let mut req = request();
            req.method = method.to_owned();
            assert!(
                matches!(req.validate(), Err(RequestError::Method { .. })),
                "{method}"
            );
        }

        let mut req = request();
        req.method = "PO ST".to_owned();
        assert!(
            req.validate()
                .unwrap_err()
                .to_string()
                .contains("not a supported HTTP method")
        );
        let mut req = request();
        req.url = "/relative".to_owned();
        assert!(
            req.validate()
                .unwrap_err()
                .to_string()
                .contains("absolute URL")
        );
    }
}
