//! Checking calls (I/O): [`Authenticator`] looks a presented token up in the
//! [`TokenStore`], applies the role table ([`super::policy`]) and the
//! per-token rate limit ([`super::bucket`]); [`http_layer`] and
//! [`GrpcAuthLayer`] put it in front of every HTTP route and gRPC method.
//! A refused call never reaches its handler, so it changes nothing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use synod_store::{AuditEntry, TokenRecord, TokenStore};

use super::bucket::{RateLimit, TokenBucket};
use super::policy::{Access, grpc_access, http_access, path_segments};
use super::role::{Role, grants};
use super::token;

/// Access-control settings of an orchestrator.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Check tokens on every call (the `synod serve`/`synod up` default).
    /// When false every call is allowed as an anonymous admin; the server
    /// refuses that on a non-loopback address.
    pub enabled: bool,
    /// Where to write an admin token when the token table is empty at start
    /// (mode 0600); the CLI reads it from there. `None`: no bootstrap token.
    pub bootstrap_token_file: Option<PathBuf>,
    /// Per-token request rate; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
}

impl Default for AuthConfig {
    /// Disabled (the library default, for tests and embedded use; the
    /// binary turns it on).
    fn default() -> Self {
        AuthConfig {
            enabled: false,
            bootstrap_token_file: None,
            rate_limit: Some(RateLimit::default()),
        }
    }
}

/// Who is calling: attached to every authorized request (HTTP request
/// extensions, gRPC `Request::extensions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject (`anonymous` with auth disabled).
    pub subject: String,
    /// The token's id (`None` with auth disabled).
    pub token_id: Option<String>,
    /// The token's roles.
    pub roles: Vec<String>,
}

impl Principal {
    /// The caller when access control is disabled: allowed everything.
    pub fn anonymous() -> Self {
        Principal {
            subject: "anonymous".to_owned(),
            token_id: None,
            roles: vec![Role::Admin.as_str().to_owned()],
        }
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Denial {
    /// No token, or not a valid one: HTTP 401, gRPC `UNAUTHENTICATED`.
    Unauthenticated(String),
    /// A valid token without the needed role: 403, `PERMISSION_DENIED`.
    Forbidden(String),
    /// The token's rate limit is spent: 429, `RESOURCE_EXHAUSTED`.
    RateLimited(Duration),
    /// The token store failed: 503, `UNAVAILABLE`.
    Unavailable(String),
}

const HOW_TO_GET_A_TOKEN: &str = "send `Authorization: Bearer <token>`; an admin creates \
     tokens with `synod token create --subject <name> --role <role>` (the first admin token \
     is in the file `synod serve` printed at start)";

impl Denial {
    /// The message shown to the caller.
    pub fn message(&self) -> String {
        match self {
            Denial::Unauthenticated(why) => format!("{why}; {HOW_TO_GET_A_TOKEN}"),
            Denial::Forbidden(why) => why.clone(),
            Denial::RateLimited(wait) => format!(
                "this token's rate limit is spent; retry after {} s (the limit is set with \
                 --rate-limit on the server)",
                retry_after_seconds(*wait)
            ),
            Denial::Unavailable(why) => format!("cannot check the token: {why}"),
        }
    }

    /// The HTTP status.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Denial::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Denial::Forbidden(_) => StatusCode::FORBIDDEN,
            Denial::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Denial::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The gRPC status (with `retry-after` metadata when rate limited).
    pub fn grpc_status(&self) -> tonic::Status {
        let message = self.message();
        match self {
            Denial::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            Denial::Forbidden(_) => tonic::Status::permission_denied(message),
            Denial::RateLimited(wait) => {
                let mut status = tonic::Status::resource_exhausted(message);
                if let Ok(value) = retry_after_seconds(*wait).to_string().parse() {
                    status.metadata_mut().insert("retry-after", value);
                }
                status
            }
            Denial::Unavailable(_) => tonic::Status::unavailable(message),
        }
    }
}

impl IntoResponse for Denial {
    fn into_response(self) -> Response {
        let mut response = (
            self.http_status(),
            axum::Json(json!({ "error": self.message() })),
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            Denial::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"synod\""),
                );
            }
            Denial::RateLimited(wait) => {
                headers.insert(header::RETRY_AFTER, retry_after_seconds(wait).into());
            }
            Denial::Forbidden(_) | Denial::Unavailable(_) => {}
        }
        response
    }
}

/// Whole seconds to wait, at least 1.
fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The token in an `Authorization: Bearer <token>` header value.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Checks tokens against the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Authenticator {
    inner: Arc<AuthInner>,
}

#[derive(Debug)]
struct AuthInner {
    enabled: bool,
    tokens: Arc<dyn TokenStore>,
    rate_limit: Option<RateLimit>,
    buckets: Mutex<HashMap<String, TokenBucket>>,
    random: ring::rand::SystemRandom,
}

/// A token just created: its text (show it once) and its record.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// `synod_<id>_<secret>`; never logged.
    pub text: String,
    /// What was stored.
    pub record: TokenRecord,
}

impl Authenticator {
    /// Checks calls against `tokens` as `config` says.
    pub fn new(config: &AuthConfig, tokens: Arc<dyn TokenStore>) -> Self {
        Authenticator {
            inner: Arc::new(AuthInner {
                enabled: config.enabled,
                tokens,
                rate_limit: config.rate_limit,
                buckets: Mutex::new(HashMap::new()),
                random: ring::rand::SystemRandom::new(),
            }),
        }
    }

    /// True when tokens are checked.
    pub fn enabled(&self) -> bool {
        self.inner.enabled
    }

    /// The token and audit store.
    pub fn tokens(&self) -> &Arc<dyn TokenStore> {
        &self.inner.tokens
    }

    /// Decides on a call needing `access`, presenting `token` (the bearer
    /// token, if any). `Ok(None)` for public and webhook calls.
    pub async fn authorize(
        &self,
        token: Option<&str>,
        access: Access,
    ) -> Result<Option<Principal>, Denial> {
        if matches!(access, Access::Public | Access::Webhook) {
            return Ok(None);
        }
        if !self.inner.enabled {
            return Ok(Some(Principal::anonymous()));
        }
        let Some(text) = token else {
            return Err(Denial::Unauthenticated(
                "this call needs an API token and none was sent".to_owned(),
            ));
        };
        let principal = self.authenticate(text).await?;
        if let Access::Role(needed) = access
            && !grants(&principal.roles, needed)
        {
            return Err(Denial::Forbidden(format!(
                "this call needs the `{needed}` role; token `{}` of `{}` holds [{}]; ask an \
                 admin for one: `synod token create --subject {} --role {needed}`",
                principal.token_id.as_deref().unwrap_or_default(),
                principal.subject,
                principal.roles.join(", "),
                principal.subject,
            )));
        }
        self.take_rate(&principal)?;
        Ok(Some(principal))
    }

    /// Looks `text` up: it must be a synod token that exists, matches its
    /// stored hash, and is neither revoked nor expired.
    async fn authenticate(&self, text: &str) -> Result<Principal, Denial> {
        let invalid = || {
            Denial::Unauthenticated(
                "the API token is not valid (malformed, unknown, or wrong secret)".to_owned(),
            )
        };
        let presented = token::parse(text).ok_or_else(invalid)?;
        let record = self
            .inner
            .tokens
            .get_token(presented.token_id)
            .await
            .map_err(|error| Denial::Unavailable(error.to_string()))?
            .ok_or_else(invalid)?;
        if !token::verify_secret(presented.secret, &record.secret_hash) {
            return Err(invalid());
        }
        if record.revoked_at.is_some() {
            return Err(Denial::Unauthenticated(format!(
                "API token `{}` was revoked",
                record.token_id
            )));
        }
        if !record.is_usable_at(chrono::Utc::now()) {
            return Err(Denial::Unauthenticated(format!(
                "API token `{}` expired",
                record.token_id
            )));
        }
        Ok(Principal {
            subject: record.subject,
            token_id: Some(record.token_id),
            roles: record.roles,
        })
    }

    fn take_rate(&self, principal: &Principal) -> Result<(), Denial> {
        let (Some(limit), Some(token_id)) = (self.inner.rate_limit, &principal.token_id) else {
            return Ok(());
        };
        let now = Instant::now();
        let mut buckets = self
            .inner
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets
            .entry(token_id.clone())
            .or_insert_with(|| TokenBucket::full(limit, now))
            .take(limit, now)
            .map_err(Denial::RateLimited)
    }

    /// Creates a token for `subject` with `roles` (checked), valid for
    /// `valid_for` (`None`: until revoked).
    pub async fn issue(
        &self,
        subject: &str,
        roles: &[String],
        valid_for: Option<Duration>,
    ) -> anyhow::Result<IssuedToken> {
        issue_token(
            &*self.inner.tokens,
            &self.inner.random,
            subject,
            roles,
            valid_for,
        )
        .await
    }

    /// Records an audit entry (in the store and as a `synod::audit` log
    /// line). Never fails the call it describes: a store failure is logged.
    pub async fn audit(&self, principal: &Principal, action: &str, target: &str, detail: Value) {
        record_audit(&*self.inner.tokens, principal, action, target, detail).await;
    }
}

/// Creates and stores a token (shared by the server and `synod token create`).
pub async fn issue_token(
    tokens: &dyn TokenStore,
    random: &dyn ring::rand::SecureRandom,
    subject: &str,
    roles: &[String],
    valid_for: Option<Duration>,
) -> anyhow::Result<IssuedToken> {
    let subject = subject.trim();
    if subject.is_empty() || subject.len() > 128 || subject.chars().any(char::is_control) {
        anyhow::bail!(
            "`{subject}` is not a valid subject; name the person or service holding the token, e.g. `--subject alice`"
        );
    }
    if roles.is_empty() {
        anyhow::bail!(
            "a token needs at least one role: --role {}",
            Role::ALL.map(Role::as_str).join("|")
        );
    }
    for role in roles {
        super::role::check_role_name(role).map_err(anyhow::Error::msg)?;
    }
    let new = token::generate(random)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let created_at = chrono::Utc::now();
    let expires_at = match valid_for {
        Some(valid_for) => Some(
            created_at
                + chrono::Duration::from_std(valid_for)
                    .map_err(|_| anyhow::anyhow!("the expiry is too far in the future"))?,
        ),
        None => None,
    };
    let mut unique_roles: Vec<String> = Vec::new();
    for role in roles {
        if !unique_roles.contains(role) {
            unique_roles.push(role.clone());
        }
    }
    let record = TokenRecord {
        token_id: new.token_id.clone(),
        subject: subject.to_owned(),
        roles: unique_roles,
        secret_hash: new.secret_hash.clone(),
        created_at,
        expires_at,
        revoked_at: None,
    };
    tokens.create_token(record.clone()).await?;
    Ok(IssuedToken {
        text: new.text,
        record,
    })
}

/// Records an audit entry in `tokens` and logs it (target `synod::audit`).
pub async fn record_audit(
    tokens: &dyn TokenStore,
    principal: &Principal,
    action: &str,
    target: &str,
    detail: Value,
) {
    tracing::info!(
        target: "synod::audit",
        subject = %principal.subject,
        token_id = principal.token_id.as_deref().unwrap_or("-"),
        action,
        target_name = target,
        detail = %detail,
        "audit"
    );
    let entry = AuditEntry {
        time: chrono::Utc::now(),
        subject: principal.subject.clone(),
        token_id: principal.token_id.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    };
    if let Err(error) = tokens.record_audit(entry).await {
        tracing::error!(error = %error, action, "cannot record an audit entry");
    }
}

// === HTTP ===

/// The query parameter that may carry the token on the SSE route only
/// (`EventSource` cannot send headers).
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

/// axum middleware (with `axum::middleware::from_fn_with_state`): checks
/// the call and attaches its [`Principal`], or answers 401/403/429.
pub async fn http_layer(
    State(auth): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let access = http_access(request.method(), &path);
    let from_header = header_token(request.headers());
    let from_query = if from_header.is_none() && is_event_stream(&path) {
        query_token(request.uri().query().unwrap_or_default())
    } else {
        None
    };
    let token = from_header.or(from_query);
    match auth.authorize(token.as_deref(), access).await {
        Ok(principal) => {
            if let Some(principal) = principal {
                request.extensions_mut().insert(principal);
            }
            next.run(request).await
        }
        Err(denial) => denial.into_response(),
    }
}

/// `GET /whoami`: the calling token's subject, id and roles, for the
/// dashboard (it shows approve/reject only to approvers) and scripts.
pub fn whoami_router(auth: Authenticator) -> axum::Router {
    axum::Router::new()
        .route("/whoami", axum::routing::get(whoami))
        .with_state(auth)
}

async fn whoami(
    State(auth): State<Authenticator>,
    principal: Option<axum::Extension<Principal>>,
) -> axum::Json<Value> {
    let principal = principal.map_or_else(Principal::anonymous, |axum::Extension(p)| p);
    let can = |role: Role| grants(&principal.roles, role);
    axum::Json(json!({
        "subject": principal.subject,
        "token_id": principal.token_id,
        "roles": principal.roles,
        "auth_enabled": auth.enabled(),
        "can": {
            "read": can(Role::Viewer),
            "operate": can(Role::Operator),
            "approve": can(Role::Approver),
            "admin": can(Role::Admin),
        },
    }))
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    bearer_token(value).map(str::to_owned)
}

fn is_event_stream(path: &str) -> bool {
    matches!(path_segments(path).as_slice(), ["runs", _, "events"])
}

fn query_token(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        // Tokens use only URL-safe characters: no decoding needed.
        (name == ACCESS_TOKEN_PARAM).then(|| value.to_owned())
    })
}

// === gRPC ===

/// A tower layer for the tonic server: checks every call by its method path
/// and the `authorization` metadata, and attaches the [`Principal`] to the
/// request's extensions.
#[derive(Debug, Clone)]
pub struct GrpcAuthLayer {
    auth: Authenticator,
}

impl GrpcAuthLayer {
    /// Checks calls with `auth`.
    pub fn new(auth: Authenticator) -> Self {
        GrpcAuthLayer { auth }
    }
}

impl<S> tower::Layer<S> for GrpcAuthLayer {
    type Service = GrpcAuth<S>;

    fn layer(&self, inner: S) -> GrpcAuth<S> {
        GrpcAuth {
            auth: self.auth.clone(),
            inner,
        }
    }
}

/// The service [`GrpcAuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct GrpcAuth<S> {
    auth: Authenticator,
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<axum::http::Request<ReqBody>> for GrpcAuth<S>
where
    S: tower::Service<axum::http::Request<ReqBody>, Response = axum::http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<ReqBody>) -> Self::Future {
        // The ready service goes with this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let access = grpc_access(request.uri().path());
            let token = header_token(request.headers());
            match auth.authorize(token.as_deref(), access).await {
                Ok(principal) => {
                    if let Some(principal) = principal {
                        request.extensions_mut().insert(principal);
                    }
                    inner.call(request).await
                }
                Err(denial) => Ok(denial.grpc_status().into_http()),
            }
        })
    }
}

/// The caller of a gRPC request (anonymous admin when the layer is absent,
/// e.g. a service used without the orchestrator's server).
pub fn grpc_principal<T>(request: &tonic::Request<T>) -> Principal {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_else(Principal::anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_query_tokens() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("abc"), None);
        assert_eq!(
            query_token("after_seq=3&access_token=synod_x"),
            Some("synod_x".to_owned())
        );
        assert_eq!(query_token("after_seq=3"), None);
        assert!(is_event_stream("/runs/abc/events"));
        assert!(!is_event_stream("/runs/abc"));
    }

    #[tokio::test]
    async fn unauthenticated_forbidden_expired_revoked_and_rate_limited() {
        let store: Arc<dyn TokenStore> = Arc::new(synod_store::MemoryTokenStore::new());
        let config = AuthConfig {
            enabled: true,
            bootstrap_token_file: None,
            rate_limit: Some(RateLimit {
                per_second: 0.001,
                burst: 2,
            }),
        };
        let auth = Authenticator::new(&config, store.clone());
        let viewer = auth
            .issue("alice", &["viewer".to_owned()], None)
            .await
            .unwrap();
        let needs_operator = Access::Role(Role::Operator);
        let missing = auth.authorize(None, needs_operator).await.unwrap_err();
        assert_eq!(missing.http_status(), StatusCode::UNAUTHORIZED);
        assert!(missing.message().contains("synod token create"));
        let wrong = auth
            .authorize(Some("synod_0123456789abcdef_nope"), needs_operator)
            .await
            .unwrap_err();
        assert_eq!(wrong.http_status(), StatusCode::UNAUTHORIZED);
        let forbidden = auth
            .authorize(Some(&viewer.text), needs_operator)
            .await
            .unwrap_err();
        assert_eq!(forbidden.http_status(), StatusCode::FORBIDDEN);
        assert!(forbidden.message().contains("`operator` role"));
        assert!(!forbidden.message().contains(&viewer.text));
        let principal = auth
            .authorize(Some(&viewer.text), Access::Role(Role::Viewer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(principal.subject, "alice");
        // Burst of 2: the forbidden call did not count, this one does.
        auth.authorize(Some(&viewer.text), Access::Authenticated)
            .await
            .unwrap();
        let limited = auth
            .authorize(Some(&viewer.text), Access::Authenticated)
            .await
            .unwrap_err();
        assert!(matches!(limited, Denial::RateLimited(_)));
        assert_eq!(limited.grpc_status().code(), tonic::Code::ResourceExhausted);

        let expired = auth
            .issue("bob", &["viewer".to_owned()], Some(Duration::ZERO))
            .await
            .unwrap();
        let denial = auth
            .authorize(Some(&expired.text), Access::Authenticated)
            .await
            .unwrap_err();
        assert!(denial.message().contains("expired"), "{}", denial.message());

        let revoked = auth
            .issue("carol", &["admin".to_owned()], None)
            .await
            .unwrap();
        store
            .revoke_token(&revoked.record.token_id, chrono::Utc::now())
            .await
            .unwrap();
        let denial = auth
            .authorize(Some(&revoked.text), Access::Authenticated)
            .await
            .unwrap_err();
        assert!(denial.message().contains("revoked"));
        assert_eq!(denial.grpc_status().code(), tonic::Code::Unauthenticated);
    }

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn logs_and_audit_entries_never_hold_the_token() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || sink.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        // Other tests may have cached "no subscriber" for these callsites.
        tracing::callsite::rebuild_interest_cache();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn TokenStore> = Arc::new(synod_store::MemoryTokenStore::new());
        let config = AuthConfig {
            enabled: true,
            ..AuthConfig::default()
        };
        let auth = Authenticator::new(&config, store.clone());
        let file = dir.path().join("admin.token");
        super::super::bootstrap::ensure_bootstrap_token(&auth, &file)
            .await
            .unwrap();
        let admin = std::fs::read_to_string(&file).unwrap().trim().to_owned();
        let principal = auth
            .authorize(Some(&admin), Access::Role(Role::Admin))
            .await
            .unwrap()
            .unwrap();
        auth.audit(&principal, "approval.decided", "run/x/binding/y", json!({}))
            .await;
        let issued = auth
            .issue("alice", &["viewer".to_owned()], None)
            .await
            .unwrap();
        let denied = auth
            .authorize(Some(&issued.text), Access::Role(Role::Admin))
            .await
            .unwrap_err();
        tracing::info!(denial = ?denied, issued = ?issued.record.token_id, "after the calls");
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            logs.contains("after the calls"),
            "logs are captured: {logs}"
        );
        assert!(logs.contains("synod::audit"), "{logs}");
        let audit = serde_json::to_string(&store.audit_log(10).await.unwrap()).unwrap();
        assert!(audit.contains("bootstrap-admin"));
        for text in [&admin, &issued.text] {
            let secret = token::parse(text).unwrap().secret;
            assert!(
                !logs.contains(secret),
                "a token secret is in the logs: {logs}"
            );
            assert!(
                !audit.contains(secret),
                "a token secret is in the audit log"
            );
            assert!(!denied.message().contains(secret));
        }
        assert!(!logs.contains(&issued.record.secret_hash), "{logs}");
    }

    #[tokio::test]
    async fn disabled_auth_allows_everything_as_anonymous() {
        let auth = Authenticator::new(
            &AuthConfig::default(),
            Arc::new(synod_store::MemoryTokenStore::new()),
        );
        let principal = auth
            .authorize(None, Access::Role(Role::Admin))
            .await
            .unwrap();
        assert_eq!(principal, Some(Principal::anonymous()));
    }
}
