//! HTTPS delivery against a local TLS server whose certificate comes from a test CA
//! (`tests/fixtures/tls`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use synod_connectors::{
    Allowlist, BindingRequest, DeliveryOutcome, DeliveryPolicy, ErrorClass, HttpDelivery,
    HttpDeliveryError, Redactor, RequestBody, TlsRoots,
};
use synod_types::{HumanDuration, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CA: &[u8] = include_bytes!("fixtures/tls/ca.pem");
const SERVER_CERT: &[u8] = include_bytes!("fixtures/tls/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("fixtures/tls/server.key");

/// A minimal HTTPS/1.1 server: records each request's head and body, answers 201.
async fn https_receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(SERVER_CERT)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let log = log.clone();
            tokio::spawn(async move {
                // handshakes from clients that do not trust the CA fail here; that is expected
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let request = read_request(&mut tls).await;
                log.lock().unwrap().push(request);
                let response =
                    "HTTP/1.1 201 Created\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, received)
}

async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).await.unwrap_or(0);
        if read == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= head_end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

fn policy() -> DeliveryPolicy {
    DeliveryPolicy {
        retry: RetryPolicy::Exponential {
            initial_interval: HumanDuration(Duration::from_millis(10)),
            factor: 2.0,
            max_interval: HumanDuration(Duration::from_millis(20)),
            max_attempts: 3,
        },
        attempt_timeout: Duration::from_secs(2),
        total_deadline: Duration::from_secs(4),
        body_excerpt_bytes: 64,
    }
}

fn request(port: u16) -> BindingRequest {
    BindingRequest {
        binding: "firewall".to_owned(),
        method: "POST".to_owned(),
        url: format!("https://127.0.0.1:{port}/api/block"),
        headers: vec![],
        body: Some(RequestBody::Json(json!({"ip": "203.0.113.9"}))),
        idempotency_key: Some("run-7-firewall".to_owned()),
    }
}

fn allowlist() -> Allowlist {
    Allowlist::parse(&["https://127.0.0.1:*"]).unwrap()
}

#[tokio::test]
async fn delivers_over_https_to_a_destination_signed_by_a_configured_ca() {
    let (port, received) = https_receiver().await;
    let sender =
        HttpDelivery::with_tls_roots(allowlist(), policy(), &TlsRoots::Only(CA.to_vec())).unwrap();
    let report = sender.deliver(&request(port), &Redactor::new()).await;
    assert_eq!(
        report.outcome,
        DeliveryOutcome::Delivered {
            status: 201,
            attempts: 1
        },
        "{report:?}"
    );
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let text = received[0].to_ascii_lowercase();
    assert!(text.starts_with("post /api/block http/1.1\r\n"), "{text}");
    assert!(
        text.contains("\r\nidempotency-key: run-7-firewall\r\n"),
        "{text}"
    );
    assert!(text.ends_with(r#"{"ip":"203.0.113.9"}"#), "{text}");
}

#[tokio::test]
async fn untrusted_certificates_fail_without_retry() {
    let (port, received) = https_receiver().await;
    // the system trust store does not know the test CA
    let sender = HttpDelivery::new(allowlist(), policy()).unwrap();
    let report = sender.deliver(&request(port), &Redactor::new()).await;
    let DeliveryOutcome::Failed {
        error_class,
        attempts,
        retryable,
        error,
        ..
    } = &report.outcome
    else {
        panic!("expected failure: {report:?}");
    };
    assert_eq!(*error_class, ErrorClass::Certificate, "{error}");
    assert_eq!((*attempts, *retryable), (1, false));
    assert!(error.contains("internal CA"), "{error}");
    assert!(received.lock().unwrap().is_empty());
}

#[test]
fn invalid_ca_configuration_is_reported() {
    let error = HttpDelivery::with_tls_roots(
        allowlist(),
        policy(),
        &TlsRoots::SystemAnd(b"not a certificate".to_vec()),
    )
    .unwrap_err();
    assert!(
        matches!(error, HttpDeliveryError::Certificates(_)),
        "{error}"
    );
    assert!(error.to_string().contains("PEM"), "{error}");
}
