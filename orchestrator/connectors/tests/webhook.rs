//! Webhook triggers over real HTTP: an axum `/hooks/{name}` endpoint that starts a "run"
//! only when `webhook::verify` accepts the request, as the server will.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use synod_connectors::SecretValue;
use synod_connectors::webhook::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use tokio::net::TcpListener;

const SECRET: &str = "whsec_5ecret_value_42";
const BODY: &str = r#"{"rule":"Mimikatz","host":"host-7"}"#;

#[derive(Default)]
struct Hooks {
    secrets: HashMap<String, SecretValue>,
    started: Mutex<Vec<(String, Bytes)>>,
}

async fn hook(
    State(hooks): State<Arc<Hooks>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(secret) = hooks.secrets.get(&name) else {
        return (StatusCode::NOT_FOUND, format!("no webhook `{name}`"));
    };
    match webhook::verify(
        &headers,
        &body,
        secret,
        SystemTime::now(),
        webhook::DEFAULT_WINDOW,
    ) {
        Ok(_) => {
            hooks.started.lock().unwrap().push((name, body));
            (StatusCode::ACCEPTED, "run started".to_owned())
        }
        Err(rejection) => (
            StatusCode::from_u16(rejection.http_status()).unwrap(),
            rejection.to_string(),
        ),
    }
}

struct Server {
    base: String,
    hooks: Arc<Hooks>,
    client: reqwest::Client,
}

impl Server {
    async fn start() -> Server {
        let hooks = Arc::new(Hooks {
            secrets: HashMap::from([("siem-alert".to_owned(), SecretValue::new(SECRET))]),
            started: Mutex::default(),
        });
        let app = Router::new()
            .route("/hooks/{name}", post(hook))
            .with_state(hooks.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            base,
            hooks,
            client: reqwest::Client::new(),
        }
    }

    async fn post(&self, headers: HeaderMap, body: &str) -> (u16, String) {
        let response = self
            .client
            .post(format!("{}/hooks/siem-alert", self.base))
            .headers(headers)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    fn started(&self) -> usize {
        self.hooks.started.lock().unwrap().len()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signed(secret: &str, timestamp: u64, body: &str) -> HeaderMap {
    webhook::signed_headers(&SecretValue::new(secret), timestamp, body.as_bytes())
}

#[tokio::test]
async fn valid_signature_starts_exactly_one_run_with_the_body() {
    let server = Server::start().await;
    let (status, text) = server.post(signed(SECRET, now_secs(), BODY), BODY).await;
    assert_eq!((status, text.as_str()), (202, "run started"));
    let started = server.hooks.started.lock().unwrap().clone();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].0, "siem-alert");
    assert_eq!(&started[0].1[..], BODY.as_bytes());
}

#[tokio::test]
async fn bad_requests_get_401_and_start_nothing() {
    let server = Server::start().await;
    let now = now_secs();
    let mut missing_signature = signed(SECRET, now, BODY);
    missing_signature.remove(SIGNATURE_HEADER);
    let mut missing_timestamp = signed(SECRET, now, BODY);
    missing_timestamp.remove(TIMESTAMP_HEADER);
    let cases = [
        (
            "wrong secret",
            signed("not-the-secret", now, BODY),
            BODY,
            "does not match",
        ),
        (
            "tampered body",
            signed(SECRET, now, BODY),
            r#"{"rule":"benign"}"#,
            "does not match",
        ),
        ("stale", signed(SECRET, now - 600, BODY), BODY, "too old"),
        (
            "future",
            signed(SECRET, now + 600, BODY),
            BODY,
            "in the future",
        ),
        (
            "no signature",
            missing_signature,
            BODY,
            "missing header `x-synod-signature`",
        ),
        (
            "no timestamp",
            missing_timestamp,
            BODY,
            "missing header `x-synod-timestamp`",
        ),
        ("no headers", HeaderMap::new(), BODY, "missing header"),
    ];
    for (case, headers, body, reason) in cases {
        let (status, text) = server.post(headers, body).await;
        assert_eq!(status, 401, "{case}: {text}");
        assert!(text.contains(reason), "{case}: {text}");
        assert!(!text.contains(SECRET), "{case}: the secret leaked: {text}");
    }
    assert_eq!(server.started(), 0, "no rejected request may start a run");

    // a replay of a once-valid request is refused once it is outside the window
    let old = signed(SECRET, now - webhook::DEFAULT_WINDOW.as_secs() - 1, BODY);
    assert_eq!(server.post(old, BODY).await.0, 401);
    assert_eq!(server.started(), 0);
}
