//! Access control over real gRPC and HTTP: each role allowed or refused on
//! each API family (401 without a valid token, 403 without the role, and
//! the refused call changes nothing), revoked and expired tokens, expert
//! registration needing the `expert` role, per-token rate limits (429 /
//! RESOURCE_EXHAUSTED), approval roles of a workflow, and audit entries that
//! name the subject and never hold a token.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use synod_integration_tests::experts::serve;
use synod_integration_tests::receiver::Receiver;
use synod_integration_tests::{eventually, fast_config};
use synod_proto::orchestrator as pb;
use synod_proto::orchestrator::registry_client::RegistryClient;
use synod_proto::orchestrator::runs_client::RunsClient;
use synod_proto::orchestrator::workflows_client::WorkflowsClient;
use synod_server::app::{Orchestrator, ServerConfig};
use synod_server::auth::client::{AuthChannel, BearerInterceptor};
use synod_server::auth::guard::IssuedToken;
use synod_server::auth::{AuthConfig, RateLimit, Role};
use synod_store::{MemoryStore, RunStore};
use synod_types::RunEventKind;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::bindings::intel_expert;

/// A run id no run has.
const UNKNOWN_RUN: &str = "0190a1b2-0000-7000-8000-000000000000";

fn auth_config(rate_limit: Option<RateLimit>) -> ServerConfig {
    let mut config = fast_config();
    config.auth = AuthConfig {
        enabled: true,
        bootstrap_token_file: None,
        rate_limit,
    };
    config
}

struct Secured {
    orchestrator: Orchestrator,
    store: Arc<dyn RunStore>,
    http: reqwest::Client,
}

impl Secured {
    async fn start(config: ServerConfig) -> anyhow::Result<Secured> {
        let store: Arc<dyn RunStore> = Arc::new(MemoryStore::new());
        let orchestrator = Orchestrator::start_with_store(config, store.clone()).await?;
        Ok(Secured {
            orchestrator,
            store,
            http: reqwest::Client::new(),
        })
    }

    async fn token(&self, subject: &str, roles: &[&str]) -> anyhow::Result<IssuedToken> {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        self.orchestrator.auth.issue(subject, &roles, None).await
    }

    async fn channel(&self, token: Option<&str>) -> anyhow::Result<AuthChannel> {
        let channel = Channel::from_shared(self.orchestrator.grpc_url())?
            .connect()
            .await?;
        Ok(InterceptedService::new(
            channel,
            BearerInterceptor::new(token),
        ))
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.orchestrator.http_url()));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn run_count(&self) -> anyhow::Result<usize> {
        Ok(self.store.list_runs(1000).await?.len())
    }
}

/// What one call answered, reduced to: refused for lack of a token, refused
/// for lack of a role, rate limited, or let through (whatever the handler said).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Unauthenticated,
    Forbidden,
    Limited,
    Through,
}

fn grpc_outcome<T>(result: Result<T, tonic::Status>) -> Outcome {
    match result {
        Err(status) if status.code() == Code::Unauthenticated => Outcome::Unauthenticated,
        Err(status) if status.code() == Code::PermissionDenied => {
            assert!(
                status.message().contains("synod token create"),
                "403 message says how to get a token: {}",
                status.message()
            );
            Outcome::Forbidden
        }
        Err(status) if status.code() == Code::ResourceExhausted => Outcome::Limited,
        _ => Outcome::Through,
    }
}

fn http_outcome(status: StatusCode) -> Outcome {
    match status {
        StatusCode::UNAUTHORIZED => Outcome::Unauthenticated,
        StatusCode::FORBIDDEN => Outcome::Forbidden,
        StatusCode::TOO_MANY_REQUESTS => Outcome::Limited,
        _ => Outcome::Through,
    }
}

/// Every gRPC family, called with `token`; each call's needed role.
async fn grpc_calls(
    secured: &Secured,
    token: Option<&str>,
) -> anyhow::Result<Vec<(&'static str, Role, Outcome)>> {
    let channel = secured.channel(token).await?;
    let mut runs = RunsClient::new(channel.clone());
    let mut workflows = WorkflowsClient::new(channel.clone());
    let mut registry = RegistryClient::new(channel);
    let mut out = Vec::new();
    let list = runs.list_runs(pb::ListRunsRequest { limit: 5 }).await;
    out.push(("Runs/ListRuns", Role::Viewer, grpc_outcome(list)));
    let get = runs
        .get_run(pb::GetRunRequest {
            run_id: UNKNOWN_RUN.to_owned(),
        })
        .await;
    out.push(("Runs/GetRun", Role::Viewer, grpc_outcome(get)));
    let start = runs
        .start_run(pb::StartRunRequest {
            source: Some(pb::start_run_request::Source::WorkflowName(
                "no-such-workflow".to_owned(),
            )),
            ..Default::default()
        })
        .await;
    out.push(("Runs/StartRun", Role::Operator, grpc_outcome(start)));
    let cancel = runs
        .cancel_run(pb::CancelRunRequest {
            run_id: UNKNOWN_RUN.to_owned(),
            reason: String::new(),
        })
        .await;
    out.push(("Runs/CancelRun", Role::Operator, grpc_outcome(cancel)));
    let decide = runs
        .decide(pb::DecideRequest {
            run_id: UNKNOWN_RUN.to_owned(),
            binding: "block".to_owned(),
            approve: true,
            comment: String::new(),
        })
        .await;
    out.push(("Runs/Decide", Role::Approver, grpc_outcome(decide)));
    let list = workflows.list(pb::ListWorkflowsRequest {}).await;
    out.push(("Workflows/List", Role::Viewer, grpc_outcome(list)));
    let validate = workflows
        .validate(pb::ValidateWorkflowRequest {
            workflow_yaml: "name: x\n".to_owned(),
            file_name: String::new(),
        })
        .await;
    out.push(("Workflows/Validate", Role::Operator, grpc_outcome(validate)));
    let experts = registry.list_experts(pb::ListExpertsRequest {}).await;
    out.push(("Registry/ListExperts", Role::Viewer, grpc_outcome(experts)));
    let register = registry
        .register(pb::RegisterRequest {
            endpoint: String::new(),
            card: None,
            ttl_ms: 0,
        })
        .await;
    out.push(("Registry/Register", Role::Expert, grpc_outcome(register)));
    let heartbeat = registry
        .heartbeat(pb::HeartbeatRequest {
            instance_id: "unknown".to_owned(),
        })
        .await;
    out.push(("Registry/Heartbeat", Role::Expert, grpc_outcome(heartbeat)));
    let deregister = registry
        .deregister(pb::DeregisterRequest {
            instance_id: "unknown".to_owned(),
        })
        .await;
    out.push((
        "Registry/Deregister",
        Role::Expert,
        grpc_outcome(deregister),
    ));
    Ok(out)
}

/// Every HTTP family, called with `token`; each call's needed role.
async fn http_calls(
    secured: &Secured,
    token: Option<&str>,
) -> anyhow::Result<Vec<(String, Role, Outcome)>> {
    use reqwest::Method;
    let calls: Vec<(Method, String, Option<Value>, Role)> = vec![
        (Method::GET, "/runs".into(), None, Role::Viewer),
        (
            Method::GET,
            format!("/runs/{UNKNOWN_RUN}"),
            None,
            Role::Viewer,
        ),
        (
            Method::GET,
            format!("/runs/{UNKNOWN_RUN}/events"),
            None,
            Role::Viewer,
        ),
        (Method::GET, "/experts".into(), None, Role::Viewer),
        (Method::GET, "/metrics".into(), None, Role::Viewer),
        (
            Method::POST,
            "/runs".into(),
            Some(json!({ "workflow": "no-such-workflow" })),
            Role::Operator,
        ),
        (
            Method::POST,
            format!("/runs/{UNKNOWN_RUN}/cancel"),
            None,
            Role::Operator,
        ),
        (
            Method::POST,
            "/workflows/validate".into(),
            None,
            Role::Operator,
        ),
        (
            Method::POST,
            format!("/runs/{UNKNOWN_RUN}/approvals/block"),
            Some(json!({ "approve": true })),
            Role::Approver,
        ),
    ];
    let mut out = Vec::new();
    for (method, path, body, role) in calls {
        let mut request = secured.request(method.clone(), &path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED {
            let body: Value = response.json().await?;
            let message = body["error"].as_str().unwrap_or_default();
            assert!(
                message.contains("synod token create"),
                "{method} {path}: {message}"
            );
            if let Some(token) = token {
                assert!(
                    !message.contains(token),
                    "the answer never echoes the token"
                );
            }
            if status == StatusCode::FORBIDDEN {
                assert!(
                    message.contains(&format!("`{role}` role")),
                    "{method} {path}: {message}"
                );
            }
        }
        out.push((format!("{method} {path}"), role, http_outcome(status)));
    }
    Ok(out)
}

#[tokio::test]
async fn each_role_is_allowed_exactly_what_it_grants_over_grpc_and_http() -> anyhow::Result<()> {
    let secured = Secured::start(auth_config(None)).await?;
    for role in Role::ALL {
        let token = secured
            .token(&format!("{role}-user"), &[role.as_str()])
            .await?;
        for (call, needed, outcome) in grpc_calls(&secured, Some(&token.text)).await? {
            let expected = if role.includes(needed) {
                Outcome::Through
            } else {
                Outcome::Forbidden
            };
            assert_eq!(outcome, expected, "gRPC {call} with a `{role}` token");
        }
        for (call, needed, outcome) in http_calls(&secured, Some(&token.text)).await? {
            let expected = if role.includes(needed) {
                Outcome::Through
            } else {
                Outcome::Forbidden
            };
            assert_eq!(outcome, expected, "HTTP {call} with a `{role}` token");
        }
        let whoami: Value = secured
            .request(reqwest::Method::GET, "/whoami", Some(&token.text))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(whoami["subject"], format!("{role}-user"));
        assert_eq!(whoami["roles"], json!([role.as_str()]));
        assert_eq!(whoami["can"]["approve"], role.includes(Role::Approver));
    }
    assert_eq!(
        secured.run_count().await?,
        0,
        "no refused call started a run"
    );
    secured.orchestrator.shutdown().await
}

#[tokio::test]
async fn without_a_valid_token_every_call_gets_401_and_changes_nothing() -> anyhow::Result<()> {
    let secured = Secured::start(auth_config(None)).await?;
    secured
        .orchestrator
        .manager
        .put_workflow(
            "name: stored\nsteps:\n  a: { uses: intel/lookup, with: { ioc: x } }\n",
            "stored.yaml",
        )
        .ok();
    for token in [
        None,
        Some("synod_0123456789abcdef_not-the-secret"),
        Some("garbage"),
    ] {
        for (call, _, outcome) in grpc_calls(&secured, token).await? {
            assert_eq!(
                outcome,
                Outcome::Unauthenticated,
                "gRPC {call} with {token:?}"
            );
        }
        for (call, _, outcome) in http_calls(&secured, token).await? {
            assert_eq!(
                outcome,
                Outcome::Unauthenticated,
                "HTTP {call} with {token:?}"
            );
        }
        let response = secured
            .request(reqwest::Method::POST, "/runs", token)
            .json(&json!({ "workflow": "stored" }))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let status = RunsClient::new(secured.channel(None).await?)
        .start_run(pb::StartRunRequest {
            source: Some(pb::start_run_request::Source::WorkflowName("stored".into())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("synod token create"),
        "{}",
        status.message()
    );
    assert_eq!(secured.run_count().await?, 0, "nothing started");

    // Public: liveness and the dashboard page (it holds no data).
    for path in ["/healthz", "/", "/ui/assets/dashboard.js"] {
        let response = secured
            .request(reqwest::Method::GET, path, None)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    secured.orchestrator.shutdown().await
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused() -> anyhow::Result<()> {
    let secured = Secured::start(auth_config(None)).await?;
    let admin = secured.token("root", &["admin"]).await?;
    let list = |token: String| {
        let secured = &secured;
        async move {
            let response = secured
                .request(reqwest::Method::GET, "/runs", Some(&token))
                .send()
                .await?;
            let status = response.status();
            let body: Value = response.json().await?;
            anyhow::Ok((
                status,
                body["error"].as_str().unwrap_or_default().to_owned(),
            ))
        }
    };
    assert_eq!(list(admin.text.clone()).await?.0, StatusCode::OK);
    let tokens = secured.orchestrator.auth.tokens().clone();
    assert!(
        tokens
            .revoke_token(&admin.record.token_id, chrono::Utc::now())
            .await?
    );
    let (status, message) = list(admin.text.clone()).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("revoked"), "{message}");

    let expired = secured
        .orchestrator
        .auth
        .issue("temp", &["viewer".to_owned()], Some(Duration::ZERO))
        .await?;
    let (status, message) = list(expired.text.clone()).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("expired"), "{message}");
    let status = RunsClient::new(secured.channel(Some(&expired.text)).await?)
        .list_runs(pb::ListRunsRequest { limit: 1 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    secured.orchestrator.shutdown().await
}

#[tokio::test]
async fn an_expert_registers_only_with_an_expert_token_and_is_audited() -> anyhow::Result<()> {
    let secured = Secured::start(auth_config(None)).await?;
    let operator = secured.token("ops", &["operator"]).await?;
    let expert_token = secured.token("intel-team", &["expert"]).await?;

    // A real expert asking with an operator token is refused.
    let intel = serve(intel_expert()).await?;
    let refused = RegistryClient::new(secured.channel(Some(&operator.text)).await?)
        .register(pb::RegisterRequest {
            endpoint: intel.endpoint().to_owned(),
            card: None,
            ttl_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("`expert` role"),
        "{}",
        refused.message()
    );
    assert!(
        secured.orchestrator.registry.list().is_empty(),
        "nothing registered"
    );

    // The SDK with an expert token registers itself.
    let registered = serve(
        intel_expert()
            .register_with(secured.orchestrator.grpc_url())
            .token(expert_token.text.clone()),
    )
    .await?;
    let registry = secured.orchestrator.registry.clone();
    eventually("the expert to register with its expert token", || {
        let registry = registry.clone();
        async move { Ok((!registry.list().is_empty()).then_some(())) }
    })
    .await?;
    let tokens = secured.orchestrator.auth.tokens().clone();
    let entry = eventually("the registration audit entry", || {
        let tokens = tokens.clone();
        async move {
            let log = tokens.audit_log(100).await?;
            Ok(log.into_iter().find(|e| e.action == "expert.registered"))
        }
    })
    .await?;
    assert_eq!(entry.subject, "intel-team");
    assert_eq!(
        entry.token_id.as_deref(),
        Some(expert_token.record.token_id.as_str())
    );
    assert_eq!(entry.detail["expert"], "intel");
    let log_text = serde_json::to_string(&tokens.audit_log(100).await?)?;
    assert!(!log_text.contains(&expert_token.text));
    drop(registered);
    drop(intel);
    secured.orchestrator.shutdown().await
}

#[tokio::test]
async fn over_the_rate_limit_calls_get_429_and_resource_exhausted() -> anyhow::Result<()> {
    let limit = RateLimit {
        per_second: 0.01,
        burst: 3,
    };
    let secured = Secured::start(auth_config(Some(limit))).await?;
    let viewer = secured.token("busy", &["viewer"]).await?;
    for _ in 0..3 {
        let response = secured
            .request(reqwest::Method::GET, "/runs", Some(&viewer.text))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = secured
        .request(reqwest::Method::GET, "/runs", Some(&viewer.text))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .context("429 carries Retry-After")?
        .to_str()?
        .parse()?;
    assert!(retry_after >= 1);
    let status = RunsClient::new(secured.channel(Some(&viewer.text)).await?)
        .list_runs(pb::ListRunsRequest { limit: 1 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.metadata().get("retry-after").is_some());
    // Another token has its own bucket.
    let other = secured.token("calm", &["viewer"]).await?;
    let response = secured
        .request(reqwest::Method::GET, "/runs", Some(&other.text))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    secured.orchestrator.shutdown().await
}

#[tokio::test]
async fn approvals_need_the_workflows_role_and_are_audited_by_subject() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[]).await?;
    let intel = serve(intel_expert()).await?;
    let mut config = auth_config(None);
    config.static_experts = vec![intel.endpoint().to_owned()];
    config.allowed_destinations = vec![receiver.origin()];
    let secured = Secured::start(config).await?;
    let operator = secured.token("ops", &["operator"]).await?;
    let approver = secured.token("bob", &["approver"]).await?;
    let lead = secured.token("dana", &["approver", "soc-lead"]).await?;

    let started = RunsClient::new(secured.channel(Some(&operator.text)).await?)
        .start_run(pb::StartRunRequest {
            source: Some(pb::start_run_request::Source::WorkflowYaml(
                crate::approvals::workflow(&receiver.origin(), "5m"),
            )),
            inputs: Some(synod_proto::json::json_to_struct(
                &json!({ "iocs": ["evil.example"] }),
            )?),
            file_name: "gated.yaml".to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let run_id: synod_types::RunId = started.run_id.parse()?;
    let store = secured.store.clone();
    eventually("the approval request", || {
        let store = store.clone();
        async move {
            let events = store.events(run_id, 0).await?;
            Ok(events
                .iter()
                .any(|e| matches!(e.kind, RunEventKind::ApprovalRequested { .. }))
                .then_some(()))
        }
    })
    .await?;

    // An operator cannot decide; an approver outside `soc-lead` cannot either.
    for (token, code) in [
        (&operator, Code::PermissionDenied),
        (&approver, Code::PermissionDenied),
    ] {
        let status = RunsClient::new(secured.channel(Some(&token.text)).await?)
            .decide(pb::DecideRequest {
                run_id: run_id.to_string(),
                binding: "block".to_owned(),
                approve: true,
                comment: "sure".to_owned(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{}", token.record.subject);
    }
    let response = secured
        .request(
            reqwest::Method::POST,
            &format!("/runs/{run_id}/approvals/block"),
            Some(&approver.text),
        )
        .json(&json!({ "approve": true }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await?;
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("soc-lead"),
        "{body}"
    );
    let decided = |events: &[synod_types::RunEvent]| {
        events
            .iter()
            .any(|e| matches!(e.kind, RunEventKind::ApprovalDecided { .. }))
    };
    assert!(
        !decided(&secured.store.events(run_id, 0).await?),
        "refused decisions change nothing"
    );
    assert!(receiver.received().is_empty(), "nothing was sent");

    // A soc-lead approver decides over HTTP.
    let response = secured
        .request(
            reqwest::Method::POST,
            &format!("/runs/{run_id}/approvals/block"),
            Some(&lead.text),
        )
        .json(&json!({ "approve": true, "comment": "checked" }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let store = secured.store.clone();
    eventually("the run to finish", || {
        let store = store.clone();
        async move {
            let record = store.get_run(run_id).await?;
            Ok(record.filter(|r| r.status.is_terminal()).map(|_| ()))
        }
    })
    .await?;
    let entries = secured.orchestrator.auth.tokens().audit_log(100).await?;
    let approval = entries
        .iter()
        .find(|e| e.action == "approval.decided")
        .context("an approval.decided audit entry")?;
    assert_eq!(approval.subject, "dana");
    assert_eq!(
        approval.token_id.as_deref(),
        Some(lead.record.token_id.as_str())
    );
    assert_eq!(approval.detail["approved"], true);
    assert_eq!(approval.detail["binding"], "block");

    // No token appears in the audit log, the events, or what the receiver got.
    let events = secured.store.events(run_id, 0).await?;
    let mut everything = serde_json::to_string(&entries)?;
    for event in &events {
        everything.push_str(&event.to_cloud_event_json());
    }
    everything.push_str(&format!("{:?}", receiver.received()));
    for token in [&operator, &approver, &lead] {
        assert!(
            !everything.contains(&token.text),
            "token of {} leaked",
            token.record.subject
        );
        assert!(
            !everything.contains(&token.record.secret_hash),
            "hash of {} leaked",
            token.record.subject
        );
    }
    drop(intel);
    secured.orchestrator.shutdown().await
}

/// The dashboard with access control on, in headless Chromium: without a
/// token it asks for one; a viewer token shows the live run but no
/// approve/reject; an approver token of the workflow's group approves with
/// the page's button. The token never appears in the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_asks_for_a_token_and_shows_approvals_only_to_approvers() -> anyhow::Result<()>
{
    use synod_integration_tests::browser::{Browser, artifact_path};

    let browser = Browser::start(1400, 1700).await?;
    let experts = synod_server::demo::start_demo_experts().await?;
    let tickets = Receiver::start(&[]).await?;
    let mut config = auth_config(None);
    config.static_experts = experts.iter().map(|e| e.endpoint.clone()).collect();
    config.allowed_destinations = vec![tickets.origin()];
    let secured = Secured::start(config).await?;
    let operator = secured.token("ops", &["operator"]).await?;
    let viewer = secured.token("watcher", &["viewer"]).await?;
    let lead = secured.token("dana", &["approver", "soc-lead"]).await?;
    let workflow = crate::dashboard::WORKFLOW.replace("{origin}", &tickets.origin());
    let run_id = RunsClient::new(secured.channel(Some(&operator.text)).await?)
        .start_run(pb::StartRunRequest {
            source: Some(pb::start_run_request::Source::WorkflowYaml(workflow)),
            inputs: Some(synod_proto::json::json_to_struct(
                &json!({ "text": "see 203.0.113.9 and evil.example", "api_token": "x" }),
            )?),
            file_name: "dashboard.yaml".to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .run_id;

    browser
        .goto(&format!(
            "{}/#/runs/{run_id}",
            secured.orchestrator.http_url()
        ))
        .await?;
    let asks = |expected: &'static str| {
        let browser = &browser;
        async move {
            eventually("the top bar's token state", || async {
                let text = browser
                    .execute(
                        "return document.getElementById('whoami').textContent;",
                        json!([]),
                    )
                    .await?;
                Ok((text.as_str() == Some(expected)).then_some(()))
            })
            .await
        }
    };
    asks("enter an API token").await?;
    let use_token = |token: String| {
        let browser = &browser;
        async move {
            browser
                .execute(
                    "document.getElementById('token-clear').click();                     document.getElementById('token-input').value = arguments[0];                     document.getElementById('token-form').requestSubmit();",
                    json!([token]),
                )
                .await
        }
    };
    use_token(viewer.text.clone()).await?;
    asks("watcher · viewer").await?;
    let page = eventually("the live run with its approval, for a viewer", || async {
        let page = browser
            .execute(crate::dashboard::READ_PAGE, json!([]))
            .await?;
        let nodes = page["nodes"].as_array().cloned().unwrap_or_default();
        let all_succeeded = nodes.len() == 4 && nodes.iter().all(|n| n["state"] == "succeeded");
        Ok((all_succeeded && page["approvals"] == json!(["ticket"])).then_some(page))
    })
    .await?;
    let buttons = browser
        .execute(
            "return document.querySelectorAll('#approvals button.approve').length;",
            json!([]),
        )
        .await?;
    assert_eq!(buttons, json!(0), "a viewer gets no approve button");
    assert!(
        !page["html"]
            .as_str()
            .unwrap_or_default()
            .contains(&viewer.text)
    );

    use_token(lead.text.clone()).await?;
    asks("dana · approver, soc-lead").await?;
    eventually("the approve button for an approver", || async {
        let clicked = browser
            .execute(
                "const button = document.querySelector('#approvals .approval[data-binding=\"ticket\"] button.approve');\
                 if (!button) return false; button.click(); return true;",
                json!([]),
            )
            .await?;
        Ok((clicked == json!(true)).then_some(()))
    })
    .await?;
    let page = eventually("the run to succeed after the approval", || async {
        let page = browser
            .execute(crate::dashboard::READ_PAGE, json!([]))
            .await?;
        let done = page["status"] == "succeeded" && page["bindings"]["ticket"] == "delivered";
        Ok(done.then_some(page))
    })
    .await?;
    let html = page["html"].as_str().unwrap_or_default();
    for token in [&operator, &viewer, &lead] {
        assert!(!html.contains(&token.text), "a token is in the page");
    }
    browser
        .screenshot(&artifact_path("dashboard-auth-run.png"))
        .await?;
    let entries = secured.orchestrator.auth.tokens().audit_log(100).await?;
    assert!(
        entries
            .iter()
            .any(|e| e.action == "approval.decided" && e.subject == "dana")
    );
    browser.quit().await?;
    for expert in experts {
        expert.stop().await;
    }
    secured.orchestrator.shutdown().await
}

#[tokio::test]
async fn signed_webhooks_need_no_token_and_bad_signatures_still_get_401() -> anyhow::Result<()> {
    use synod_connectors::SecretValue;
    use synod_connectors::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

    let dir = synod_integration_tests::TempDir::new()?;
    let workflow = "name: siem-alert\non:\n  webhook: { name: siem, secret: \"${{ secrets.HOOK_KEY }}\" }\n\
                    secrets:\n  HOOK_KEY: { description: shared with the SIEM }\n\
                    steps:\n  tag: { uses: text/tag, with: { text: x, tag: hook } }\n";
    std::fs::write(dir.path().join("siem-alert.yaml"), workflow)?;
    std::fs::write(dir.path().join("HOOK_KEY"), "whk-secret")?;
    let expert = serve(synod_integration_tests::experts::text_expert()).await?;
    let mut config = auth_config(None);
    config.static_experts = vec![expert.endpoint().to_owned()];
    config.workflow_paths = vec![dir.path().join("siem-alert.yaml")];
    config.secrets_dir = Some(dir.path().to_owned());
    let secured = Secured::start(config).await?;
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let post = |signature: String| {
        secured
            .request(reqwest::Method::POST, "/hooks/siem", None)
            .header(TIMESTAMP_HEADER, timestamp.clone())
            .header(SIGNATURE_HEADER, signature)
            .body("{}")
            .send()
    };
    let wrong = sign(&SecretValue::new("not-the-key"), &timestamp, b"{}");
    assert_eq!(post(wrong).await?.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(secured.run_count().await?, 0);
    let right = sign(&SecretValue::new("whk-secret"), &timestamp, b"{}");
    assert_eq!(post(right).await?.status(), StatusCode::ACCEPTED);
    assert_eq!(secured.run_count().await?, 1);
    secured.orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn tokens_persist_in_sqlite_and_the_bootstrap_token_is_written_once() -> anyhow::Result<()> {
    let dir = synod_integration_tests::TempDir::new()?;
    let db = dir.path().join("synod.db");
    let file = dir.path().join("synod-admin.token");
    let start = || async {
        let mut config = auth_config(None);
        config.auth.bootstrap_token_file = Some(file.clone());
        let store = synod_store::open(&format!("sqlite://{}", db.display())).await?;
        Orchestrator::start_with_store(config, store).await
    };
    let orchestrator = start().await?;
    let admin = std::fs::read_to_string(&file)?.trim().to_owned();
    let alice = orchestrator
        .auth
        .issue("alice", &["viewer".to_owned()], None)
        .await?;
    orchestrator.shutdown().await?;

    let orchestrator = start().await?;
    assert_eq!(
        std::fs::read_to_string(&file)?.trim(),
        admin,
        "tokens exist: no new bootstrap token"
    );
    let http = reqwest::Client::new();
    for token in [&admin, &alice.text] {
        let response = http
            .get(format!("{}/runs", orchestrator.http_url()))
            .bearer_auth(token)
            .send()
            .await?;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "a token from before the restart"
        );
    }
    let listed = orchestrator.auth.tokens().list_tokens().await?;
    let subjects: Vec<&str> = listed.iter().map(|t| t.subject.as_str()).collect();
    assert_eq!(subjects, ["bootstrap-admin", "alice"]);
    let needle = alice.text.as_bytes();
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        if path == file {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        assert!(
            !bytes.windows(needle.len()).any(|window| window == needle),
            "the token itself is in {}",
            path.display()
        );
    }
    orchestrator.shutdown().await
}

#[tokio::test]
async fn auth_disabled_is_refused_on_a_non_loopback_address() -> anyhow::Result<()> {
    let mut config = fast_config();
    config.http_addr = ([0, 0, 0, 0], 0).into();
    let error = Orchestrator::start(config).await.unwrap_err().to_string();
    assert!(error.contains("access control disabled"), "{error}");
    Ok(())
}
