//! The expert server: [`ExpertServerBuilder`] → [`ExpertServer`] → serving
//! `synod.expert.v1.Expert`, `grpc.health.v1.Health` and server reflection,
//! optionally registering itself with an orchestrator.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::Stream;
use serde_json::Value;
use synod_proto::expert as pb;
use synod_proto::expert::expert_server::{Expert as ExpertRpc, ExpertServer as ExpertRpcServer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::context::{Artifact, Feedback, ProgressSender, SkillContext};
use crate::error::{BuildError, ServeError, SkillError};
use crate::registration::{self, RegistrationConfig};
use crate::schema::CompiledSchema;
use crate::skill::{Skill, SkillDefinition, SkillOutput};
use crate::telemetry::{self, Telemetry};
use crate::trace::TraceContext;
use opentelemetry_sdk::trace::SdkTracer;

/// Default per-connection concurrency limit (calls handled at once).
pub const DEFAULT_CONCURRENCY_LIMIT: usize = 64;
/// Default upper bound on one call, applied even when the caller sets no
/// deadline.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Default heartbeat TTL asked of the orchestrator.
pub const DEFAULT_REGISTRATION_TTL: Duration = Duration::from_secs(30);

const HEALTH_SERVICE_NAME: &str = "grpc.health.v1.Health";
const REFLECTION_SERVICE_NAME: &str = "grpc.reflection.v1.ServerReflection";
/// Progress updates buffered per streaming call before the skill waits.
const PROGRESS_BUFFER: usize = 16;

// === ExpertServerBuilder ===

/// Describes an expert and how to serve it; [`ExpertServerBuilder::build`]
/// checks everything (names, schemas, URLs) once.
///
/// Created by [`ExpertServer::builder`]. Cloning is cheap (skills are shared),
/// so one builder can start several instances.
#[derive(Clone)]
pub struct ExpertServerBuilder {
    name: String,
    version: String,
    description: String,
    external: bool,
    skills: Vec<Arc<dyn Skill>>,
    concurrency_limit: usize,
    load_shed: bool,
    request_timeout: Duration,
    orchestrator_url: Option<String>,
    advertise: Option<String>,
    registration_ttl: Duration,
    tracer: Option<SdkTracer>,
    token: Option<String>,
}

impl fmt::Debug for ExpertServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skills: Vec<String> = self
            .skills
            .iter()
            .map(|skill| skill.definition().name)
            .collect();
        f.debug_struct("ExpertServerBuilder")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("external", &self.external)
            .field("skills", &skills)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("load_shed", &self.load_shed)
            .field("request_timeout", &self.request_timeout)
            .field("orchestrator_url", &self.orchestrator_url)
            .field("advertise", &self.advertise)
            .field("registration_ttl", &self.registration_ttl)
            .field("has_token", &self.token.is_some())
            .field("traced", &self.tracer.is_some())
            .finish()
    }
}

impl ExpertServerBuilder {
    /// One paragraph for operators and LLM planners.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Marks the expert as sending data outside the organisation (e.g. to a
    /// hosted LLM); the orchestrator then only sends it redacted data.
    #[must_use]
    pub fn external(mut self, external: bool) -> Self {
        self.external = external;
        self
    }

    /// Adds a skill.
    #[must_use]
    pub fn skill(mut self, skill: impl Skill) -> Self {
        self.skills.push(Arc::new(skill));
        self
    }

    /// Adds a skill that is already shared.
    #[must_use]
    pub fn shared_skill(mut self, skill: Arc<dyn Skill>) -> Self {
        self.skills.push(skill);
        self
    }

    /// Calls handled at once per connection (default
    /// [`DEFAULT_CONCURRENCY_LIMIT`]); further calls wait, or are rejected
    /// with `RESOURCE_EXHAUSTED` when [`load_shed`](Self::load_shed) is on.
    #[must_use]
    pub fn concurrency_limit(mut self, limit: usize) -> Self {
        self.concurrency_limit = limit.max(1);
        self
    }

    /// Rejects calls beyond the concurrency limit instead of queueing them.
    #[must_use]
    pub fn load_shed(mut self, load_shed: bool) -> Self {
        self.load_shed = load_shed;
        self
    }

    /// Records each call as an OpenTelemetry server span exported by
    /// `telemetry`, continuing the caller's W3C trace context (see
    /// [`crate::telemetry`]). The expert does not shut `telemetry` down:
    /// its owner does.
    #[must_use]
    pub fn telemetry(mut self, telemetry: &Telemetry) -> Self {
        self.tracer = Some(telemetry.tracer());
        self
    }

    /// Upper bound on one call (default [`DEFAULT_REQUEST_TIMEOUT`]). The
    /// caller's `grpc-timeout` applies when it is shorter.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Registers with the orchestrator's `synod.orchestrator.v1.Registry`
    /// at `orchestrator_url` (e.g. `http://127.0.0.1:7100`) once serving,
    /// heartbeats every TTL/3, registers again when the orchestrator forgot
    /// the instance, and deregisters on graceful shutdown. Failures are
    /// logged and retried with backoff; they never stop the expert.
    #[must_use]
    pub fn register_with(mut self, orchestrator_url: impl Into<String>) -> Self {
        self.orchestrator_url = Some(orchestrator_url.into());
        self
    }

    /// The API token sent on Register, Heartbeat and Deregister (an
    /// orchestrator with access control wants one with the `expert` role:
    /// `synod token create --subject <expert> --role expert`). Default: the
    /// `SYNOD_TOKEN` environment variable, if set.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The endpoint the orchestrator should call, e.g.
    /// `http://expert-7.internal:7101`. Defaults to `http://<bound address>`
    /// (with `127.0.0.1` for an unspecified address).
    #[must_use]
    pub fn advertise(mut self, endpoint: impl Into<String>) -> Self {
        self.advertise = Some(endpoint.into());
        self
    }

    /// Heartbeat TTL asked of the orchestrator (default
    /// [`DEFAULT_REGISTRATION_TTL`]); the orchestrator may grant another.
    #[must_use]
    pub fn registration_ttl(mut self, ttl: Duration) -> Self {
        self.registration_ttl = ttl;
        self
    }

    /// The expert's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks names, compiles every schema and builds the expert card.
    ///
    /// # Errors
    ///
    /// Invalid expert or skill names, no or duplicate skills, schemas that
    /// do not compile, bad cost hints, or malformed URLs.
    pub fn build(self) -> Result<ExpertServer, BuildError> {
        check_name("expert", &self.name)?;
        if self.skills.is_empty() {
            return Err(BuildError::NoSkills { expert: self.name });
        }
        let mut skills = BTreeMap::new();
        let mut card_skills = Vec::with_capacity(self.skills.len());
        for skill in self.skills {
            let definition = skill.definition();
            check_name("skill", &definition.name)?;
            if !definition.cost_hint.is_finite() || definition.cost_hint < 0.0 {
                return Err(BuildError::InvalidCostHint {
                    skill: definition.name,
                    cost_hint: definition.cost_hint,
                });
            }
            let input =
                CompiledSchema::compile(&definition.name, "input", &definition.input_schema)?;
            let output =
                CompiledSchema::compile(&definition.name, "output", &definition.output_schema)?;
            let proto = definition
                .to_proto()
                .map_err(|error| BuildError::InvalidSchema {
                    skill: definition.name.clone(),
                    which: "input or output",
                    reason: error.to_string(),
                })?;
            card_skills.push(proto);
            let name = definition.name.clone();
            let prepared = PreparedSkill {
                skill,
                definition,
                input,
                output,
            };
            if skills.insert(name.clone(), prepared).is_some() {
                return Err(BuildError::DuplicateSkill {
                    expert: self.name,
                    skill: name,
                });
            }
        }
        let registration = match self.orchestrator_url {
            Some(url) => {
                check_url("orchestrator URL", &url)?;
                let token = self
                    .token
                    .or_else(|| std::env::var("SYNOD_TOKEN").ok())
                    .filter(|token| !token.trim().is_empty());
                Some(RegistrationConfig {
                    orchestrator_url: url,
                    ttl: self.registration_ttl,
                    token: crate::registration::BearerToken::new(token.as_deref().map(str::trim)),
                })
            }
            None => None,
        };
        if let Some(endpoint) = &self.advertise {
            check_url("advertised endpoint", endpoint)?;
        }
        let card = pb::ExpertCard {
            name: self.name,
            version: self.version,
            description: self.description,
            skills: card_skills,
            external: self.external,
        };
        Ok(ExpertServer {
            inner: Arc::new(Inner {
                card,
                skills,
                concurrency_limit: self.concurrency_limit,
                load_shed: self.load_shed,
                request_timeout: self.request_timeout,
                registration,
                advertise: self.advertise,
                tracer: self.tracer,
            }),
        })
    }

    /// Builds and serves on `addr` until Ctrl-C or SIGTERM; see
    /// [`ExpertServer::serve`].
    ///
    /// # Errors
    ///
    /// See [`ExpertServer::serve`].
    pub async fn serve(self, addr: SocketAddr) -> Result<(), ServeError> {
        self.build()?.serve(addr).await
    }

    /// Builds and serves on `listener` until Ctrl-C or SIGTERM.
    ///
    /// # Errors
    ///
    /// See [`ExpertServer::serve`].
    pub async fn serve_with_listener(self, listener: TcpListener) -> Result<(), ServeError> {
        self.build()?.serve_with_listener(listener).await
    }

    /// Builds and serves on `listener` until `signal` completes; see
    /// [`ExpertServer::serve_with_shutdown`].
    ///
    /// # Errors
    ///
    /// See [`ExpertServer::serve`].
    pub async fn serve_with_shutdown<F>(
        self,
        listener: TcpListener,
        signal: F,
    ) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.build()?.serve_with_shutdown(listener, signal).await
    }
}

fn check_name(what: &'static str, name: &str) -> Result<(), BuildError> {
    let mut bytes = name.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(BuildError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

fn check_url(what: &'static str, url: &str) -> Result<(), BuildError> {
    let invalid = || BuildError::InvalidUrl {
        what,
        url: url.to_owned(),
    };
    let uri: tonic::transport::Uri = url.parse().map_err(|_| invalid())?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(()),
        _ => Err(invalid()),
    }
}

// === ExpertServer ===

/// A validated expert, ready to serve over gRPC or to call in-process.
///
/// Cloning is cheap and shares the compiled skills.
#[derive(Clone)]
pub struct ExpertServer {
    inner: Arc<Inner>,
}

struct Inner {
    card: pb::ExpertCard,
    skills: BTreeMap<String, PreparedSkill>,
    concurrency_limit: usize,
    load_shed: bool,
    request_timeout: Duration,
    registration: Option<RegistrationConfig>,
    advertise: Option<String>,
    tracer: Option<SdkTracer>,
}

struct PreparedSkill {
    skill: Arc<dyn Skill>,
    definition: SkillDefinition,
    input: CompiledSchema,
    output: CompiledSchema,
}

impl fmt::Debug for ExpertServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpertServer")
            .field("name", &self.inner.card.name)
            .field("version", &self.inner.card.version)
            .field("skills", &self.skill_names())
            .finish_non_exhaustive()
    }
}

impl ExpertServer {
    /// Starts describing an expert named `name` (lowercase with dashes) at
    /// `version` (semantic version of the implementation).
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> ExpertServerBuilder {
        ExpertServerBuilder {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            external: false,
            skills: Vec::new(),
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
            load_shed: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            orchestrator_url: None,
            advertise: None,
            registration_ttl: DEFAULT_REGISTRATION_TTL,
            tracer: None,
            token: None,
        }
    }

    /// The expert card served by `Describe`.
    pub fn card(&self) -> &pb::ExpertCard {
        &self.inner.card
    }

    /// The expert's name.
    pub fn name(&self) -> &str {
        &self.inner.card.name
    }

    /// Names of the skills, sorted.
    pub fn skill_names(&self) -> Vec<String> {
        self.inner.skills.keys().cloned().collect()
    }

    /// A skill's definition, if the expert has it.
    pub fn skill_definition(&self, skill: &str) -> Option<&SkillDefinition> {
        self.inner
            .skills
            .get(skill)
            .map(|prepared| &prepared.definition)
    }

    /// Runs a skill in-process exactly as `Invoke` would: input validation,
    /// the skill, output validation. Uses an empty [`SkillContext`].
    ///
    /// # Errors
    ///
    /// As over gRPC: unknown skill ([`SkillError::NotFound`]), invalid input,
    /// the skill's own error, or invalid output ([`SkillError::Internal`]).
    pub async fn call(&self, skill: &str, input: Value) -> Result<SkillOutput, SkillError> {
        self.call_with_context(SkillContext::default(), skill, input)
            .await
    }

    /// Like [`ExpertServer::call`], with a given context (run id,
    /// artifacts, feedback, deadline, progress sender).
    ///
    /// # Errors
    ///
    /// See [`ExpertServer::call`].
    pub async fn call_with_context(
        &self,
        ctx: SkillContext,
        skill: &str,
        input: Value,
    ) -> Result<SkillOutput, SkillError> {
        let Some(prepared) = self.inner.skills.get(skill) else {
            return Err(SkillError::NotFound(format!(
                "expert `{}` has no skill `{skill}`; its skills are: {}",
                self.inner.card.name,
                self.skill_names().join(", ")
            )));
        };
        let violations = prepared.input.violations(&input);
        if !violations.is_empty() {
            return Err(SkillError::invalid_input_fields(
                format!("input for skill `{skill}` does not match its input schema"),
                violations,
            ));
        }
        let ctx = ctx.with_skill(skill);
        let remaining = ctx.remaining();
        let started = Instant::now();
        let invocation = AssertUnwindSafe(prepared.skill.invoke(ctx, input)).catch_unwind();
        let outcome = match remaining {
            Some(remaining) => match tokio::time::timeout(remaining, invocation).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    return Err(SkillError::DeadlineExceeded(format!(
                        "skill `{skill}` did not finish within its deadline ({} ms); the caller's `grpc-timeout` or the server's request timeout ran out",
                        remaining.as_millis()
                    )));
                }
            },
            None => invocation.await,
        };
        let mut output = match outcome {
            Ok(result) => result?,
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(skill, panic = %message, "skill panicked");
                return Err(SkillError::internal(format!(
                    "skill `{skill}` panicked: {message}"
                )));
            }
        };
        if !output.output.is_object() {
            return Err(SkillError::internal(format!(
                "skill `{skill}` returned a {} as output; outputs must be JSON objects",
                synod_proto::json::json_type_name(&output.output)
            )));
        }
        let violations = prepared.output.violations(&output.output);
        if !violations.is_empty() {
            let mut message = format!(
                "skill `{skill}` returned output that does not match its output schema (a bug in the expert)"
            );
            for (index, violation) in violations.iter().enumerate() {
                message.push_str(if index == 0 { ": " } else { "; " });
                message.push_str(&format!(
                    "`{}`: {}",
                    violation.pointer, violation.description
                ));
            }
            return Err(SkillError::internal(message));
        }
        if !(0.0..=1.0).contains(&output.confidence) {
            return Err(SkillError::internal(format!(
                "skill `{skill}` returned confidence {}; it must be within 0..1",
                output.confidence
            )));
        }
        if output.usage.duration_ms == 0 {
            output.usage.duration_ms =
                u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        }
        Ok(output)
    }

    /// Serves on `addr` until Ctrl-C or SIGTERM, then shuts down gracefully
    /// (deregisters, lets calls in flight finish).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound or the gRPC server fails.
    pub async fn serve(self, addr: SocketAddr) -> Result<(), ServeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        self.serve_with_listener(listener).await
    }

    /// Serves on an already bound listener until Ctrl-C or SIGTERM.
    ///
    /// # Errors
    ///
    /// When the gRPC server fails.
    pub async fn serve_with_listener(self, listener: TcpListener) -> Result<(), ServeError> {
        self.serve_with_shutdown(listener, termination_signal())
            .await
    }

    /// Serves on `listener` until `signal` completes. Then the health status
    /// turns `NOT_SERVING`, the instance deregisters (if registered), and
    /// calls in flight finish before this returns.
    ///
    /// # Errors
    ///
    /// When the listener's address cannot be read or the gRPC server fails.
    pub async fn serve_with_shutdown<F>(
        self,
        listener: TcpListener,
        signal: F,
    ) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let local_addr = listener.local_addr().map_err(ServeError::LocalAddr)?;
        let endpoint = self.advertised_endpoint(local_addr);
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_service_status(
                synod_proto::EXPERT_SERVICE_NAME,
                tonic_health::ServingStatus::Serving,
            )
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(synod_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(synod_proto::EXPERT_SERVICE_NAME)
            .with_service_name(HEALTH_SERVICE_NAME)
            .with_service_name(REFLECTION_SERVICE_NAME)
            .build_v1()
            .map_err(ServeError::Reflection)?;

        let registration_stop = CancellationToken::new();
        let registration_task = self.inner.registration.clone().map(|config| {
            tokio::spawn(registration::run(
                config,
                self.inner.card.clone(),
                endpoint.clone(),
                registration_stop.clone(),
            ))
        });

        let expert_name = self.inner.card.name.clone();
        tracing::info!(
            synod.expert.name = %expert_name,
            address = %local_addr,
            endpoint = %endpoint,
            "expert serving"
        );
        let shutdown = async move {
            signal.await;
            tracing::info!(synod.expert.name = %expert_name, "expert shutting down");
            health_reporter
                .set_service_status(
                    synod_proto::EXPERT_SERVICE_NAME,
                    tonic_health::ServingStatus::NotServing,
                )
                .await;
            registration_stop.cancel();
            if let Some(task) = registration_task
                && let Err(error) = task.await
            {
                tracing::warn!(error = %error, "registration task failed");
            }
        };

        let concurrency_limit = self.inner.concurrency_limit;
        let load_shed = self.inner.load_shed;
        let request_timeout = self.inner.request_timeout;
        let service = ExpertRpcServer::new(ExpertService { server: self });
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .concurrency_limit_per_connection(concurrency_limit)
            .load_shed(load_shed)
            .timeout(request_timeout)
            .add_service(service)
            .add_service(health_service)
            .add_service(reflection)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(ServeError::Transport)
    }

    /// Serves on `listener` in a background task; the returned handle says
    /// where and shuts the server down (gracefully) when asked or dropped.
    ///
    /// Must be called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// When the listener's address cannot be read.
    pub fn spawn(self, listener: TcpListener) -> Result<ExpertHandle, ServeError> {
        let local_addr = listener.local_addr().map_err(ServeError::LocalAddr)?;
        let endpoint = self.advertised_endpoint(local_addr);
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone().cancelled_owned();
        let task = tokio::spawn(self.serve_with_shutdown(listener, signal));
        Ok(ExpertHandle {
            local_addr,
            endpoint,
            shutdown,
            task: Some(task),
        })
    }

    /// Binds `addr` and [`spawn`](Self::spawn)s the server on it, e.g. on
    /// `127.0.0.1:0` for a free port.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn spawn_on(self, addr: SocketAddr) -> Result<ExpertHandle, ServeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        self.spawn(listener)
    }

    fn advertised_endpoint(&self, local_addr: SocketAddr) -> String {
        if let Some(endpoint) = &self.inner.advertise {
            return endpoint.clone();
        }
        let mut addr = local_addr;
        if addr.ip().is_unspecified() {
            let loopback: std::net::IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            addr.set_ip(loopback);
            if self.inner.registration.is_some() {
                tracing::warn!(
                    endpoint = %addr,
                    "listening on an unspecified address: advertising loopback; set `.advertise(..)` so the orchestrator can reach this expert from elsewhere"
                );
            }
        }
        format!("http://{addr}")
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

async fn termination_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

// === ExpertHandle ===

/// A server running in the background (from [`ExpertServer::spawn`]).
/// Dropping the handle starts a graceful shutdown without waiting for it;
/// [`ExpertHandle::shutdown`] waits.
#[derive(Debug)]
pub struct ExpertHandle {
    local_addr: SocketAddr,
    endpoint: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl ExpertHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The endpoint clients and the orchestrator use, e.g.
    /// `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Shuts down gracefully (health `NOT_SERVING`, deregister, drain) and
    /// waits for the server to stop.
    ///
    /// # Errors
    ///
    /// When the server had failed.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        self.shutdown.cancel();
        self.join().await
    }

    /// Waits for the server to stop (after a shutdown or a failure).
    ///
    /// # Errors
    ///
    /// When the server failed.
    pub async fn wait(mut self) -> Result<(), ServeError> {
        self.join().await
    }

    async fn join(&mut self) -> Result<(), ServeError> {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => Ok(()),
            },
            None => Ok(()),
        }
    }
}

impl Drop for ExpertHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

// === ExpertService (gRPC) ===

struct ExpertService {
    server: ExpertServer,
}

type InvokeStream = Pin<Box<dyn Stream<Item = Result<pb::InvokeStreamMessage, Status>> + Send>>;

#[tonic::async_trait]
impl ExpertRpc for ExpertService {
    async fn describe(
        &self,
        _request: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::ExpertCard>, Status> {
        Ok(Response::new(self.server.inner.card.clone()))
    }

    async fn invoke(
        &self,
        request: Request<pb::InvokeRequest>,
    ) -> Result<Response<pb::InvokeResponse>, Status> {
        let (ctx, skill, input) = decode_request(
            request,
            self.server.inner.request_timeout,
            ProgressSender::discard(),
        )?;
        let span = call_span(&self.server, &ctx, "Invoke");
        let (ctx, handler) = self.server.start_handler_span(ctx, "Invoke");
        let result = self
            .server
            .call_with_context(ctx, &skill, input)
            .instrument(span.clone())
            .await;
        let response = finish(&span, &skill, result);
        if let Some(handler) = &handler {
            telemetry::end_handler_span(handler, &response);
        }
        Ok(Response::new(response?))
    }

    type InvokeStreamStream = InvokeStream;

    async fn invoke_stream(
        &self,
        request: Request<pb::InvokeRequest>,
    ) -> Result<Response<Self::InvokeStreamStream>, Status> {
        let (messages, receiver) = mpsc::channel(PROGRESS_BUFFER);
        let (progress_sender, mut progress) = mpsc::channel(PROGRESS_BUFFER);
        let (ctx, skill, input) = decode_request(
            request,
            self.server.inner.request_timeout,
            ProgressSender::new(progress_sender),
        )?;
        let span = call_span(&self.server, &ctx, "InvokeStream");
        let (ctx, handler) = self.server.start_handler_span(ctx, "InvokeStream");
        let server = self.server.clone();
        let task = async move {
            let call = server.call_with_context(ctx, &skill, input);
            tokio::pin!(call);
            // Forward progress until the call finishes; stop early when the
            // caller goes away (dropping the call cancels the skill).
            let result = loop {
                tokio::select! {
                    result = &mut call => break result,
                    Some(update) = progress.recv() => {
                        let message = pb::InvokeStreamMessage {
                            message: Some(pb::invoke_stream_message::Message::Progress(pb::Progress {
                                fraction: update.fraction,
                                message: update.message,
                            })),
                        };
                        if messages.send(Ok(message)).await.is_err() {
                            tracing::debug!("caller went away; cancelling the skill");
                            return;
                        }
                    }
                    () = messages.closed() => {
                        tracing::debug!("caller went away; cancelling the skill");
                        return;
                    }
                }
            };
            // Progress sent just before the result still goes out first.
            while let Ok(update) = progress.try_recv() {
                let message = pb::InvokeStreamMessage {
                    message: Some(pb::invoke_stream_message::Message::Progress(pb::Progress {
                        fraction: update.fraction,
                        message: update.message,
                    })),
                };
                if messages.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            let last = finish(&tracing::Span::current(), &skill, result).map(|response| {
                pb::InvokeStreamMessage {
                    message: Some(pb::invoke_stream_message::Message::Response(response)),
                }
            });
            if let Some(handler) = &handler {
                telemetry::end_handler_span(handler, &last);
            }
            let _ = messages.send(last).await;
        };
        tokio::spawn(task.instrument(span));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

impl ExpertServer {
    /// The OpenTelemetry server span of one call, when tracing.
    fn start_handler_span(
        &self,
        ctx: SkillContext,
        method: &'static str,
    ) -> (SkillContext, Option<opentelemetry::Context>) {
        match &self.inner.tracer {
            Some(tracer) => {
                let (ctx, handler) =
                    telemetry::start_handler_span(tracer, self.name(), method, ctx);
                (ctx, Some(handler))
            }
            None => (ctx, None),
        }
    }
}

fn call_span(server: &ExpertServer, ctx: &SkillContext, method: &'static str) -> tracing::Span {
    tracing::info_span!(
        "expert call",
        otel.name = %format!("synod.expert.v1.Expert/{method}"),
        rpc.system = "grpc",
        rpc.service = synod_proto::EXPERT_SERVICE_NAME,
        rpc.method = method,
        synod.expert.name = %server.name(),
        synod.skill = %ctx.skill(),
        synod.run.id = %ctx.run_id(),
        synod.step.id = %ctx.step_id(),
        synod.round = ctx.round(),
        synod.attempt = ctx.attempt(),
        trace_id = ctx.trace().map(|trace| tracing::field::display(trace.trace_id().to_owned())),
    )
}

fn finish(
    span: &tracing::Span,
    skill: &str,
    result: Result<SkillOutput, SkillError>,
) -> Result<pb::InvokeResponse, Status> {
    let _entered = span.enter();
    match result {
        Ok(output) => match encode_output(output) {
            Ok(response) => {
                tracing::debug!(skill, "skill succeeded");
                Ok(response)
            }
            Err(error) => {
                tracing::error!(skill, error = %error, "skill output cannot be encoded");
                Err(error.to_status())
            }
        },
        Err(error) => {
            if matches!(error, SkillError::Internal(_)) {
                tracing::error!(skill, error = %error, "skill failed");
            } else {
                tracing::info!(skill, code = ?error.code(), error = %error, "skill failed");
            }
            Err(error.to_status())
        }
    }
}

/// Reads the call into a context, the skill name and the input. The
/// deadline is the caller's `grpc-timeout` or the server's request timeout,
/// whichever is sooner.
fn decode_request(
    request: Request<pb::InvokeRequest>,
    request_timeout: Duration,
    progress: ProgressSender,
) -> Result<(SkillContext, String, Value), Status> {
    let timeout = match grpc_timeout(request.metadata()) {
        Some(caller) => caller.min(request_timeout),
        None => request_timeout,
    };
    let deadline = Instant::now().checked_add(timeout);
    let trace = TraceContext::from_metadata(request.metadata());
    let message = request.into_inner();
    let input = synod_proto::json::opt_struct_to_json(message.input.as_ref())
        .map_err(|error| SkillError::invalid_input("/", error.to_string()).to_status())?;
    let mut artifacts = Vec::with_capacity(message.context.len());
    for (index, artifact) in message.context.into_iter().enumerate() {
        let data =
            synod_proto::json::opt_struct_to_json(artifact.data.as_ref()).map_err(|error| {
                Status::invalid_argument(format!(
                    "context artifact {index} has invalid data: {error}"
                ))
            })?;
        artifacts.push(Artifact {
            artifact_type: artifact.r#type,
            source: artifact.source,
            data,
        });
    }
    let mut feedback = Vec::with_capacity(message.feedback.len());
    for (index, item) in message.feedback.into_iter().enumerate() {
        let details =
            synod_proto::json::opt_struct_to_json(item.details.as_ref()).map_err(|error| {
                Status::invalid_argument(format!("feedback {index} has invalid details: {error}"))
            })?;
        feedback.push(Feedback {
            critic: item.critic,
            message: item.message,
            round: item.round,
            details,
        });
    }
    let ctx = SkillContext::default()
        .with_run_id(message.run_id)
        .with_step_id(message.step_id)
        .with_skill(message.skill.clone())
        .with_round(message.round)
        .with_attempt(message.attempt)
        .with_artifacts(artifacts)
        .with_feedback(feedback)
        .with_deadline(deadline)
        .with_trace(trace)
        .with_progress(progress);
    Ok((ctx, message.skill, input))
}

fn encode_output(output: SkillOutput) -> Result<pb::InvokeResponse, SkillError> {
    let encoded = synod_proto::json::json_to_struct(&output.output).map_err(|error| {
        SkillError::internal(format!("skill output cannot be sent over gRPC: {error}"))
    })?;
    Ok(pb::InvokeResponse {
        output: Some(encoded),
        confidence: output.confidence,
        evidence: output
            .evidence
            .into_iter()
            .map(|evidence| pb::Evidence {
                pointer: evidence.pointer,
                note: evidence.note,
            })
            .collect(),
        needs: output
            .needs
            .into_iter()
            .map(|need| pb::Need {
                artifact_type: need.artifact_type,
                query: need.query,
                reason: need.reason,
            })
            .collect(),
        usage: Some(pb::Usage {
            input_tokens: output.usage.input_tokens,
            output_tokens: output.usage.output_tokens,
            duration_ms: output.usage.duration_ms,
        }),
    })
}

/// Parses the `grpc-timeout` header: up to 8 digits and a unit (`H`, `M`,
/// `S`, `m`, `u`, `n`), per the gRPC over HTTP/2 specification.
fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skill::skill_fn;
    use serde_json::json;

    fn echo() -> impl Skill {
        skill_fn(SkillDefinition::new("echo"), |_ctx, input| async move {
            Ok(SkillOutput::new(input))
        })
    }

    #[test]
    fn parses_grpc_timeout() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        assert_eq!(grpc_timeout(&metadata), None);
        for (value, expected) in [
            ("5S", Some(Duration::from_secs(5))),
            ("250m", Some(Duration::from_millis(250))),
            ("2H", Some(Duration::from_secs(7200))),
            ("3M", Some(Duration::from_secs(180))),
            ("10u", Some(Duration::from_micros(10))),
            ("7n", Some(Duration::from_nanos(7))),
            ("123456789S", None),
            ("5s", None),
            ("S", None),
            ("-5S", None),
        ] {
            metadata.insert("grpc-timeout", value.parse().unwrap());
            assert_eq!(grpc_timeout(&metadata), expected, "{value}");
        }
    }

    #[test]
    fn rejects_bad_definitions_at_build() {
        let error = ExpertServer::builder("Bad Name", "1.0.0")
            .skill(echo())
            .build()
            .unwrap_err();
        assert!(matches!(
            error,
            BuildError::InvalidName { what: "expert", .. }
        ));
        let error = ExpertServer::builder("x", "1").build().unwrap_err();
        assert_eq!(
            error.to_string(),
            "expert `x` has no skills; add one with `.skill(...)`"
        );
        let error = ExpertServer::builder("x", "1")
            .skill(echo())
            .skill(echo())
            .build()
            .unwrap_err();
        assert!(
            matches!(error, BuildError::DuplicateSkill { .. }),
            "{error}"
        );
        let error = ExpertServer::builder("x", "1")
            .skill(skill_fn(
                SkillDefinition::new("s").cost_hint(f64::NAN),
                |_ctx, input| async move { Ok(SkillOutput::new(input)) },
            ))
            .build()
            .unwrap_err();
        assert!(
            matches!(error, BuildError::InvalidCostHint { .. }),
            "{error}"
        );
        let error = ExpertServer::builder("x", "1")
            .skill(echo())
            .register_with("not a url")
            .build()
            .unwrap_err();
        assert!(matches!(error, BuildError::InvalidUrl { .. }), "{error}");
        let error = ExpertServer::builder("x", "1")
            .skill(echo())
            .advertise("127.0.0.1:80")
            .build()
            .unwrap_err();
        assert!(matches!(error, BuildError::InvalidUrl { .. }), "{error}");
    }

    #[tokio::test]
    async fn call_reports_unknown_skills_with_the_list() {
        let server = ExpertServer::builder("x", "1")
            .skill(echo())
            .build()
            .unwrap();
        let error = server.call("nope", json!({})).await.unwrap_err();
        assert_eq!(
            error,
            SkillError::NotFound("expert `x` has no skill `nope`; its skills are: echo".into())
        );
    }

    #[tokio::test]
    async fn call_catches_panics_and_bad_outputs() {
        let server = ExpertServer::builder("x", "1")
            .skill(skill_fn(
                SkillDefinition::new("boom"),
                |_ctx, _input| async move { panic!("kaboom") },
            ))
            .skill(skill_fn(
                SkillDefinition::new("array"),
                |_ctx, _input| async move { Ok(SkillOutput::new(json!([1]))) },
            ))
            .skill(skill_fn(
                SkillDefinition::new("unsure"),
                |_ctx, _input| async move { Ok(SkillOutput::new(json!({})).with_confidence(1.5)) },
            ))
            .build()
            .unwrap();
        let error = server.call("boom", json!({})).await.unwrap_err();
        assert_eq!(error, SkillError::internal("skill `boom` panicked: kaboom"));
        let error = server.call("array", json!({})).await.unwrap_err();
        assert_eq!(
            error,
            SkillError::internal(
                "skill `array` returned a array as output; outputs must be JSON objects"
            )
        );
        let error = server.call("unsure", json!({})).await.unwrap_err();
        assert!(error.to_string().contains("confidence 1.5"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn call_enforces_the_context_deadline() {
        let server = ExpertServer::builder("x", "1")
            .skill(skill_fn(
                SkillDefinition::new("slow"),
                |_ctx, _input| async move {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(SkillOutput::new(json!({})))
                },
            ))
            .build()
            .unwrap();
        let ctx = SkillContext::default().with_timeout(Duration::from_secs(1));
        let error = server
            .call_with_context(ctx, "slow", json!({}))
            .await
            .unwrap_err();
        assert!(matches!(error, SkillError::DeadlineExceeded(_)), "{error}");
        assert!(error.is_retryable());
    }

    #[test]
    fn advertises_loopback_for_unspecified_addresses() {
        let server = ExpertServer::builder("x", "1")
            .skill(echo())
            .build()
            .unwrap();
        assert_eq!(
            server.advertised_endpoint("0.0.0.0:7101".parse().unwrap()),
            "http://127.0.0.1:7101"
        );
        assert_eq!(
            server.advertised_endpoint("[::]:7101".parse().unwrap()),
            "http://[::1]:7101"
        );
        let server = ExpertServer::builder("x", "1")
            .skill(echo())
            .advertise("http://expert.internal:7101")
            .build()
            .unwrap();
        assert_eq!(
            server.advertised_endpoint("0.0.0.0:7101".parse().unwrap()),
            "http://expert.internal:7101"
        );
    }
}
