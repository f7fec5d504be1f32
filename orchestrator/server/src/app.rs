//! Wiring: the orchestrator's gRPC and HTTP servers on one registry, store
//! and run manager. Used by `synod serve`, `synod up`, embedded `synod run`
//! and the integration tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use synod_executor::ExecutorConfig;
use synod_proto::orchestrator::registry_server::RegistryServer;
use synod_proto::orchestrator::runs_server::RunsServer;
use synod_proto::orchestrator::workflows_server::WorkflowsServer;
use synod_registry::{Registry, RegistryConfig, RegistryService};
use synod_store::{MemoryStore, RunStore};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::grpc::{RunsService, WorkflowsService};
use crate::http::{HttpState, router};
use crate::runs::RunManager;

/// Largest gRPC message the orchestrator accepts or sends (64 MiB): step
/// inputs and outputs can be large (event batches).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What the orchestrator needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// gRPC listen address (`:0` picks a free port).
    pub grpc_addr: SocketAddr,
    /// HTTP listen address (`:0` picks a free port).
    pub http_addr: SocketAddr,
    /// Expert endpoints registered at start and never expired.
    pub static_experts: Vec<String>,
    /// Workflow files (or directories of `*.yaml`) stored at start, so runs
    /// can name them.
    pub workflow_paths: Vec<PathBuf>,
    /// Executor settings.
    pub executor: ExecutorConfig,
    /// Registry settings.
    pub registry: RegistryConfig,
    /// Destinations workflow bindings may be sent to
    /// (`[scheme://]host[:port]`, `*.` wildcards; `--allow-destination`).
    /// Empty refuses every binding.
    pub allowed_destinations: Vec<String>,
    /// Directory of binding secrets, one file per secret (`--secrets-dir`);
    /// `SYNOD_SECRET_<NAME>` environment variables are read too.
    pub secrets_dir: Option<PathBuf>,
    /// This replica's id in run leases (replicas sharing a database need
    /// distinct ids; a restarted replica with the same id takes its runs
    /// back at once). `None`: `<host>/<gRPC address>`, or a random id when
    /// the port is picked at start.
    pub replica_id: Option<String>,
    /// How long a replica's lease on a run lasts unless renewed (it renews
    /// every third); a dead replica's runs are taken over after it.
    pub lease: std::time::Duration,
    /// Exports OpenTelemetry traces (`--otlp-endpoint`, see
    /// [`crate::telemetry::start_tracing`]); `None`: no spans. The caller
    /// owns it and shuts it down after the orchestrator.
    pub telemetry: Option<synod_expert_sdk::Telemetry>,
    /// Access control (API tokens, roles, rate limits). Off by default in
    /// the library (tests, embedded use); `synod serve`/`synod up` turn it
    /// on. Off is refused on a non-loopback address.
    pub auth: crate::auth::AuthConfig,
    /// The LLM planner's repair rounds and budget (`synod task`).
    pub llm_planner: synod_planner::LlmPlannerConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 7100)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 7180)),
            static_experts: Vec::new(),
            workflow_paths: Vec::new(),
            executor: ExecutorConfig::default(),
            registry: RegistryConfig::default(),
            allowed_destinations: Vec::new(),
            secrets_dir: None,
            replica_id: None,
            lease: crate::lease::DEFAULT_LEASE,
            telemetry: None,
            auth: crate::auth::AuthConfig::default(),
            llm_planner: synod_planner::LlmPlannerConfig::default(),
        }
    }
}

/// How long a run resumed after a restart waits for the experts it uses to
/// register again before it continues (their steps fail if they do not).
pub const RESUME_EXPERT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// This replica's lease owner id (see [`ServerConfig::replica_id`]).
fn replica_id(config: &ServerConfig) -> String {
    if let Some(id) = &config.replica_id {
        return id.clone();
    }
    if config.grpc_addr.port() == 0 {
        return format!("synod-{}", uuid::Uuid::new_v4());
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "synod".to_owned());
    format!("{host}/{}", config.grpc_addr)
}

/// A running orchestrator.
#[derive(Debug)]
pub struct Orchestrator {
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
    /// Runs.
    pub manager: RunManager,
    /// Experts.
    pub registry: Registry,
    /// Token checks, token issuing and the audit log.
    pub auth: crate::auth::Authenticator,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Orchestrator {
    /// Binds both listeners, registers static experts, loads workflows and
    /// starts serving. Returns once the servers accept connections.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Orchestrator> {
        Self::start_with_store(config, Arc::new(MemoryStore::new())).await
    }

    /// Like [`Orchestrator::start`], keeping runs in `store` (e.g. from
    /// `synod_store::open("sqlite://synod.db")`) instead of in memory.
    pub async fn start_with_store(
        config: ServerConfig,
        store: Arc<dyn RunStore>,
    ) -> anyhow::Result<Orchestrator> {
        if !config.auth.enabled {
            for addr in [config.grpc_addr, config.http_addr] {
                anyhow::ensure!(
                    addr.ip().is_loopback(),
                    "refusing to serve {addr} with access control disabled: anyone who can reach \
                     it could start runs and approve actions; drop --auth disabled, or bind a \
                     loopback address (127.0.0.1)"
                );
            }
            tracing::warn!(
                "ACCESS CONTROL IS DISABLED: every call is allowed without a token (loopback only)"
            );
        }
        let token_store = store
            .token_store()
            .unwrap_or_else(|| Arc::new(synod_store::MemoryTokenStore::new()));
        let auth = crate::auth::Authenticator::new(&config.auth, token_store);
        if config.auth.enabled
            && let Some(file) = &config.auth.bootstrap_token_file
        {
            crate::auth::bootstrap::ensure_bootstrap_token(&auth, file).await?;
        }
        let shutdown = CancellationToken::new();
        let registry = Registry::new(config.registry.clone());
        let metrics = crate::metrics::Metrics::default();
        let store = metrics.observe_store(store);
        let tracer = crate::telemetry::tracer(config.telemetry.as_ref());
        let mut invoker = registry
            .invoker()
            .with_guard(Arc::new(crate::guard::DataProtectionGuard::builtin()));
        if let Some(tracer) = &tracer {
            invoker = invoker.with_tracer(tracer.clone());
        }
        let manager = RunManager::new(
            store,
            Arc::new(invoker),
            Arc::new(registry.clone()),
            config.executor.clone(),
            shutdown.child_token(),
            replica_id(&config),
            config.lease,
        );
        // One snapshot of the secrets for bindings and webhooks alike.
        let secrets = synod_connectors::Secrets::from_process_env(config.secrets_dir.clone());
        let bindings = crate::bindings::HttpBindings::with_secrets(
            &crate::bindings::BindingSettings {
                allowed_destinations: config.allowed_destinations.clone(),
                secrets_dir: config.secrets_dir.clone(),
            },
            secrets.clone(),
        )
        .context("invalid binding settings (--allow-destination)")?;
        manager.set_deliverer(Arc::new(bindings));
        manager.set_tracer(tracer);
        manager.set_llm_planner(config.llm_planner.clone());

        let grpc_listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("cannot listen for gRPC on {}; is another synod running? pick another port with --grpc-addr", config.grpc_addr))?;
        let http_listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}; is another synod running? pick another port with --http-addr", config.http_addr))?;
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;

        for endpoint in &config.static_experts {
            // Registered before the servers answer, so a client that sees
            // the orchestrator up can use them. An expert that is not up yet
            // is retried by the registry's maintenance task; it must not keep
            // the orchestrator down.
            if let Err(error) = registry.add_static(endpoint).await {
                tracing::warn!(endpoint = %endpoint, error = %error, "static expert not reachable yet; will keep trying");
            }
        }

        let mut tasks = JoinSet::new();
        let maintenance = registry.spawn_maintenance(shutdown.child_token());
        tasks.spawn(async move {
            maintenance
                .await
                .context("registry maintenance task panicked")
        });

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<RunsServer<RunsService>>()
            .await;
        health_reporter
            .set_serving::<RegistryServer<crate::auth::registry::AuditedRegistry>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(synod_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building the gRPC reflection service")?;
        let runs = RunsServer::new(RunsService::new(manager.clone()).with_auth(auth.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let workflows = WorkflowsServer::new(WorkflowsService::new(manager.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let registry_service = RegistryServer::new(crate::auth::registry::AuditedRegistry::new(
            RegistryService::new(registry.clone()),
            auth.clone(),
        ));
        let grpc_shutdown = shutdown.clone();
        let grpc_auth = crate::auth::GrpcAuthLayer::new(auth.clone());
        tasks.spawn(async move {
            tonic::transport::Server::builder()
                .layer(grpc_auth)
                .add_service(health_service)
                .add_service(reflection)
                .add_service(runs)
                .add_service(workflows)
                .add_service(registry_service)
                .serve_with_incoming_shutdown(
                    TcpListenerStream::new(grpc_listener),
                    grpc_shutdown.cancelled_owned(),
                )
                .await
                .context("gRPC server failed")
        });

        let hooks = crate::hooks::router(crate::hooks::HooksState {
            manager: manager.clone(),
            secrets: Arc::new(secrets),
        });
        let app = router(HttpState {
            manager: manager.clone(),
            registry: registry.clone(),
        })
        .merge(hooks)
        .merge(crate::approvals::router(manager.clone(), auth.clone()))
        .merge(crate::auth::guard::whoami_router(auth.clone()))
        .merge(crate::metrics::router(crate::metrics::MetricsState {
            metrics,
            manager: manager.clone(),
            registry: registry.clone(),
        }))
        .merge(crate::dashboard::router())
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            crate::auth::guard::http_layer,
        ));
        let http_shutdown = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(http_listener, app)
                .with_graceful_shutdown(http_shutdown.cancelled_owned())
                .await
                .context("HTTP server failed")
        });

        let scheduler = manager.clone();
        let schedule_shutdown = shutdown.child_token();
        tasks.spawn(async move {
            crate::schedules::run_schedules(
                &crate::schedules::SystemClock,
                || scheduler.workflows(),
                |run| {
                    let scheduler = scheduler.clone();
                    async move {
                        scheduler
                            .start_stored(&run.workflow, run.inputs)
                            .await
                            .map(|run_id| run_id.to_string())
                            .map_err(|error| error.to_string())
                    }
                },
                schedule_shutdown,
            )
            .await;
            Ok(())
        });

        for path in &config.workflow_paths {
            load_workflows(&manager, path)?;
        }
        let resumed = manager
            .resume_unfinished(RESUME_EXPERT_WAIT)
            .await
            .context("cannot resume the unfinished runs in the store")?;
        if resumed > 0 {
            tracing::info!(runs = resumed, "resumed unfinished runs");
        }
        manager.spawn_takeover(RESUME_EXPERT_WAIT);
        tracing::info!(grpc = %grpc_addr, http = %http_addr, "orchestrator listening");
        Ok(Orchestrator {
            grpc_addr,
            http_addr,
            manager,
            registry,
            auth,
            shutdown,
            tasks,
        })
    }

    /// `http://<grpc addr>`, for gRPC clients.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// `http://<http addr>`, for HTTP clients.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// A token cancelled when the orchestrator shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until a server task fails or shutdown is requested.
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        tokio::select! {
            () = self.shutdown.cancelled() => Ok(()),
            Some(result) = self.tasks.join_next() => {
                result.context("server task panicked")?
            }
        }
    }

    /// Cancels active runs, stops serving and waits for the tasks.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.manager.shutdown().await;
        self.shutdown.cancel();
        while let Some(result) = self.tasks.join_next().await {
            result.context("server task panicked")??;
        }
        Ok(())
    }
}

/// Stores one workflow file, or every `*.yaml`/`*.yml` in a directory.
pub fn load_workflows(manager: &RunManager, path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?
        {
            let file = entry?.path();
            let is_yaml = matches!(
                file.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            if is_yaml {
                files.push(file);
            }
        }
        files.sort();
    } else {
        files.push(path.to_owned());
    }
    let mut names = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let name = manager
            .put_workflow(&source, &file.display().to_string())
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        names.push(name);
    }
    Ok(names)
}
