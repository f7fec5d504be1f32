//! Real-I/O delivery tests against a local axum receiver on an ephemeral port.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use synod_connectors::{
    Allowlist, BindingRequest, DeliveryOutcome, DeliveryPolicy, DeliveryReport, ErrorClass,
    HttpDelivery, Redactor, RequestBody, SecretValue,
};
use synod_types::{HumanDuration, RetryPolicy};
use tokio::net::TcpListener;
use tokio::time::Instant;

const SECRET: &str = "tk_live_9F8e7D6c";

// === receiver ===

#[derive(Debug, Clone)]
struct Received {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn reply(status: u16) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: String::new(),
        delay: Duration::ZERO,
    }
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

/// A receiver answering with `replies` in order, then 200.
struct Receiver {
    port: u16,
    script: Arc<Script>,
}

impl Receiver {
    async fn start(replies: Vec<Reply>) -> Receiver {
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into()),
            received: Mutex::default(),
        });
        let app = Router::new().fallback(record).with_state(script.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { port, script }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }
}

async fn record(
    State(script): State<Arc<Script>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    script.received.lock().unwrap().push(Received {
        method,
        uri: uri.to_string(),
        headers,
        body,
        at: Instant::now(),
    });
    let next = script.replies.lock().unwrap().pop_front();
    let reply = next.unwrap_or_else(|| reply(200));
    tokio::time::sleep(reply.delay).await;
    let mut headers = HeaderMap::new();
    for (name, value) in &reply.headers {
        headers.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    (
        StatusCode::from_u16(reply.status).unwrap(),
        headers,
        reply.body,
    )
        .into_response()
}

// === helpers ===

fn fast_policy(max_attempts: u32) -> DeliveryPolicy {
    DeliveryPolicy {
        retry: RetryPolicy::Exponential {
            initial_interval: HumanDuration(Duration::from_millis(10)),
            factor: 2.0,
            max_interval: HumanDuration(Duration::from_millis(50)),
            max_attempts,
        },
        attempt_timeout: Duration::from_secs(2),
        total_deadline: Duration::from_secs(4),
        body_excerpt_bytes: 256,
    }
}

fn sender(policy: DeliveryPolicy) -> HttpDelivery {
    let allowlist = Allowlist::parse(&["http://127.0.0.1:*"]).unwrap();
    HttpDelivery::new(allowlist, policy).unwrap()
}

fn redactor() -> Redactor {
    let mut redactor = Redactor::new();
    redactor.add(&SecretValue::new(SECRET));
    redactor
}

fn ticket(url: String) -> BindingRequest {
    BindingRequest {
        binding: "ticket".to_owned(),
        method: "POST".to_owned(),
        url,
        headers: vec![
            ("Authorization".to_owned(), format!("Bearer {SECRET}")),
            ("X-Source".to_owned(), "synod".to_owned()),
        ],
        body: Some(RequestBody::Json(json!({
            "title": "Credential dumping on host-7",
            "severity": "high",
            "techniques": ["T1003.001"],
        }))),
        idempotency_key: Some("run-0190-ticket".to_owned()),
    }
}

fn classes(report: &DeliveryReport) -> Vec<Option<ErrorClass>> {
    report.attempts.iter().map(|a| a.error_class).collect()
}

fn assert_no_secret(report: &DeliveryReport) {
    let text = format!("{} {report:?}", serde_json::to_string(report).unwrap());
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert!(
        !text.contains("tk_live"),
        "part of the secret leaked: {text}"
    );
}

// === tests ===

#[tokio::test]
async fn receiver_gets_exactly_the_rendered_request() {
    let receiver = Receiver::start(vec![Reply {
        body: r#"{"id": 42}"#.to_owned(),
        ..reply(201)
    }])
    .await;
    let request = ticket(receiver.url("/api/issues?src=synod"));
    let mut live = Vec::new();
    let report = sender(fast_policy(3))
        .deliver_with(&request, &redactor(), |record| live.push(record.clone()))
        .await;

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.method, Method::POST);
    assert_eq!(got.uri, "/api/issues?src=synod");
    assert_eq!(got.headers["idempotency-key"], "run-0190-ticket");
    assert_eq!(
        got.headers["authorization"],
        format!("Bearer {SECRET}").as_str()
    );
    assert_eq!(got.headers["x-source"], "synod");
    assert_eq!(got.headers["content-type"], "application/json");
    assert!(
        got.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("synod/")
    );
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        body,
        json!({"title": "Credential dumping on host-7", "severity": "high", "techniques": ["T1003.001"]})
    );

    assert_eq!(
        report.outcome,
        DeliveryOutcome::Delivered {
            status: 201,
            attempts: 1
        }
    );
    assert_eq!(report.idempotency_key.as_deref(), Some("run-0190-ticket"));
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.attempts[0].status, Some(201));
    assert_eq!(
        report.attempts[0].response_excerpt.as_deref(),
        Some(r#"{"id": 42}"#)
    );
    assert_eq!(live, report.attempts, "live callbacks see the same records");
    assert_no_secret(&report);
}

#[tokio::test]
async fn text_body_and_put_method() {
    let receiver = Receiver::start(vec![]).await;
    let request = BindingRequest {
        binding: "chat".to_owned(),
        method: "put".to_owned(),
        url: receiver.url("/rooms/soc/messages/1"),
        headers: vec![],
        body: Some(RequestBody::Text("incident INC-7 contained".to_owned())),
        idempotency_key: None,
    };
    let report = sender(fast_policy(1))
        .deliver(&request, &Redactor::new())
        .await;
    assert!(report.outcome.is_delivered(), "{report:?}");
    let got = &receiver.received()[0];
    assert_eq!(got.method, Method::PUT);
    assert_eq!(got.headers["content-type"], "text/plain; charset=utf-8");
    assert!(!got.headers.contains_key("idempotency-key"));
    assert_eq!(&got.body[..], b"incident INC-7 contained");
}

#[tokio::test]
async fn retries_503_then_succeeds_with_the_same_idempotency_key() {
    let receiver = Receiver::start(vec![reply(503), reply(503)]).await;
    let report = sender(fast_policy(5))
        .deliver(&ticket(receiver.url("/api/issues")), &redactor())
        .await;

    let received = receiver.received();
    assert_eq!(received.len(), 3);
    for got in &received {
        assert_eq!(got.headers["idempotency-key"], "run-0190-ticket");
        assert_eq!(got.body, received[0].body);
    }
    assert_eq!(
        report.outcome,
        DeliveryOutcome::Delivered {
            status: 200,
            attempts: 3
        }
    );
    assert_eq!(
        classes(&report),
        [
            Some(ErrorClass::ServerError),
            Some(ErrorClass::ServerError),
            None
        ]
    );
    let numbers: Vec<u32> = report.attempts.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert!(report.attempts[0].retry_in_ms.is_some());
    assert!(report.attempts[2].retry_in_ms.is_none());
    assert_eq!(report.attempts[0].status, Some(503));
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let receiver = Receiver::start(vec![Reply {
        headers: vec![("retry-after", "1".to_owned())],
        ..reply(429)
    }])
    .await;
    let report = sender(fast_policy(3))
        .deliver(&ticket(receiver.url("/api/issues")), &redactor())
        .await;

    assert!(report.outcome.is_delivered(), "{report:?}");
    assert_eq!(classes(&report), [Some(ErrorClass::RateLimited), None]);
    assert_eq!(report.attempts[0].retry_in_ms, Some(1000));
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "waited only {gap:?}, backoff alone is 10 ms"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_and_bodies_are_redacted() {
    let receiver = Receiver::start(vec![Reply {
        body: format!(r#"{{"error": "field `assignee` unknown", "echo": "Bearer {SECRET}"}}"#),
        ..reply(400)
    }])
    .await;
    let report = sender(fast_policy(5))
        .deliver(&ticket(receiver.url("/api/issues")), &redactor())
        .await;

    assert_eq!(receiver.received().len(), 1, "a 400 is not retried");
    let DeliveryOutcome::Failed {
        error_class,
        status,
        attempts,
        retryable,
        error,
    } = &report.outcome
    else {
        panic!("expected failure: {report:?}");
    };
    assert_eq!(*error_class, ErrorClass::ClientError);
    assert_eq!((*status, *attempts, *retryable), (Some(400), 1, false));
    assert!(error.contains("HTTP 400 Bad Request"), "{error}");
    let excerpt = report.attempts[0].response_excerpt.as_deref().unwrap();
    assert!(excerpt.contains("\"echo\": \"Bearer ***\""), "{excerpt}");
    assert_no_secret(&report);
}

#[tokio::test]
async fn disallowed_destinations_are_refused_without_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let allowlist =
        Allowlist::parse(&["https://tickets.example.org", "http://10.1.2.3:*"]).unwrap();
    let sender = HttpDelivery::new(allowlist, fast_policy(3)).unwrap();

    for url in [
        format!("http://127.0.0.1:{port}/api?token={SECRET}"),
        format!("http://localhost:{port}/api"),
        format!("https://tickets.example.org:{port}/api"),
    ] {
        let report = sender.deliver(&ticket(url.clone()), &redactor()).await;
        let DeliveryOutcome::Failed {
            error_class,
            error,
            attempts,
            ..
        } = &report.outcome
        else {
            panic!("{url} was not refused: {report:?}");
        };
        assert_eq!(*error_class, ErrorClass::Disallowed, "{url}");
        assert_eq!(*attempts, 0);
        assert!(report.attempts.is_empty());
        assert!(error.contains("bindings.allowed_destinations"), "{error}");
        assert!(error.contains("not allowed"), "{error}");
        assert_no_secret(&report);
    }
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "a connection was attempted");
}

#[tokio::test]
async fn connect_errors_are_retried_and_never_leak_the_secret() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed_port}/api?token={SECRET}&n=%20{SECRET}");
    let report = sender(fast_policy(3))
        .deliver(&ticket(url), &redactor())
        .await;

    assert_eq!(classes(&report), [Some(ErrorClass::Connect); 3]);
    let DeliveryOutcome::Failed {
        error_class,
        retryable,
        attempts,
        error,
        ..
    } = &report.outcome
    else {
        panic!("expected failure: {report:?}");
    };
    assert_eq!(
        (*error_class, *retryable, *attempts),
        (ErrorClass::Connect, true, 3)
    );
    assert!(error.contains("gave up after 3 attempts"), "{error}");
    assert!(
        report.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("connect"),
        "{report:?}"
    );
    assert_no_secret(&report);
}

#[tokio::test]
async fn attempt_timeout_is_retried() {
    let receiver = Receiver::start(vec![Reply {
        delay: Duration::from_millis(800),
        ..reply(200)
    }])
    .await;
    let policy = DeliveryPolicy {
        attempt_timeout: Duration::from_millis(200),
        ..fast_policy(3)
    };
    let report = sender(policy)
        .deliver(&ticket(receiver.url("/slow")), &redactor())
        .await;
    assert_eq!(classes(&report), [Some(ErrorClass::Timeout), None]);
    assert!(report.outcome.is_delivered());
}

#[tokio::test]
async fn total_deadline_stops_retries() {
    let receiver = Receiver::start(vec![Reply {
        // absurdly large: must neither overflow nor wait
        headers: vec![("retry-after", "99999999999999999999".to_owned())],
        ..reply(503)
    }])
    .await;
    let started = Instant::now();
    let report = sender(fast_policy(5))
        .deliver(&ticket(receiver.url("/api")), &redactor())
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait 30 s"
    );
    assert_eq!(receiver.received().len(), 1);
    let DeliveryOutcome::Failed {
        error_class,
        retryable,
        error,
        ..
    } = &report.outcome
    else {
        panic!("expected failure: {report:?}");
    };
    assert_eq!(
        (*error_class, *retryable),
        (ErrorClass::DeadlineExceeded, true)
    );
    assert!(error.contains("deadline of 4s"), "{error}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let receiver = Receiver::start(vec![Reply {
        headers: vec![(
            "location",
            "http://169.254.169.254/latest/meta-data".to_owned(),
        )],
        ..reply(302)
    }])
    .await;
    let report = sender(fast_policy(3))
        .deliver(&ticket(receiver.url("/api")), &redactor())
        .await;
    assert_eq!(receiver.received().len(), 1);
    let DeliveryOutcome::Failed {
        error_class, error, ..
    } = &report.outcome
    else {
        panic!("expected failure: {report:?}");
    };
    assert_eq!(*error_class, ErrorClass::Redirect);
    assert!(
        error.contains("169.254.169.254") && error.contains("do not follow redirects"),
        "{error}"
    );
}

#[tokio::test]
async fn invalid_requests_are_not_sent() {
    let receiver = Receiver::start(vec![]).await;
    let mut request = ticket(receiver.url("/api"));
    request
        .headers
        .push(("X-Bad".to_owned(), format!("{SECRET}\r\nInjected: 1")));
    let report = sender(fast_policy(3)).deliver(&request, &redactor()).await;
    assert!(matches!(
        report.outcome,
        DeliveryOutcome::Failed {
            error_class: ErrorClass::InvalidRequest,
            attempts: 0,
            ..
        }
    ));
    assert!(receiver.received().is_empty());
    assert_no_secret(&report);
}

#[tokio::test]
async fn https_uses_tls_and_fails_cleanly_against_a_plain_http_server() {
    // Proves the rustls crypto provider is installed and TLS errors are classified,
    // without needing certificates: the receiver speaks plain HTTP.
    let receiver = Receiver::start(vec![]).await;
    let allowlist = Allowlist::parse(&["https://127.0.0.1:*"]).unwrap();
    let sender = HttpDelivery::new(allowlist, fast_policy(2)).unwrap();
    let url = format!("https://127.0.0.1:{}/api", receiver.port);
    let report = sender.deliver(&ticket(url), &redactor()).await;
    let DeliveryOutcome::Failed {
        error_class,
        attempts,
        ..
    } = &report.outcome
    else {
        panic!("expected failure: {report:?}");
    };
    assert_eq!(*attempts, 2, "{report:?}");
    assert!(error_class.is_retryable(), "{report:?}");
    assert!(
        receiver.received().is_empty(),
        "no HTTP request got through"
    );
    assert_no_secret(&report);
}

#[tokio::test]
async fn honours_retry_after_as_http_date_on_503() {
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    let receiver = Receiver::start(vec![Reply {
        headers: vec![("retry-after", httpdate::fmt_http_date(at))],
        ..reply(503)
    }])
    .await;
    let report = sender(fast_policy(3))
        .deliver(&ticket(receiver.url("/api")), &redactor())
        .await;
    assert!(report.outcome.is_delivered(), "{report:?}");
    let received = receiver.received();
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_millis(900), "waited only {gap:?}");
    assert!(gap <= Duration::from_millis(2500), "waited {gap:?}");
}

#[tokio::test]
async fn excerpts_are_bounded_and_never_hold_part_of_a_secret() {
    // the secret straddles the 256-byte excerpt limit
    let body = format!("{}{SECRET}{}", "x".repeat(250), "y".repeat(4000));
    let receiver = Receiver::start(vec![Reply { body, ..reply(500) }]).await;
    let report = sender(fast_policy(2))
        .deliver(&ticket(receiver.url("/api")), &redactor())
        .await;
    let excerpt = report.attempts[0].response_excerpt.as_deref().unwrap();
    assert!(excerpt.len() <= 256 + '…'.len_utf8(), "{}", excerpt.len());
    assert!(excerpt.ends_with('…'), "{excerpt}");
    assert!(excerpt.starts_with(&"x".repeat(250)));
    assert!(!excerpt.contains("tk_"), "{excerpt}");
    assert_no_secret(&report);
}
