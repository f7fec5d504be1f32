//! [`TestOrchestrator`]: the real orchestrator (gRPC + HTTP servers, registry,
//! executor, in-memory store) started in-process on ephemeral loopback
//! ports, with gRPC clients and helpers to start, watch and wait for runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::StreamExt;
use serde_json::Value;
use synod_executor::ExecutorConfig;
use synod_proto::orchestrator as pb;
use synod_proto::orchestrator::registry_client::RegistryClient;
use synod_proto::orchestrator::runs_client::RunsClient;
use synod_proto::orchestrator::workflows_client::WorkflowsClient;
use synod_registry::RegistryConfig;
use synod_server::app::{Orchestrator, ServerConfig};
use synod_store::{MemoryStore, RunStore};
use synod_types::{RunEvent, RunEventKind};
use tonic::transport::Channel;

use crate::events::decode;
use crate::within;

/// A server config for tests: ephemeral loopback ports, a 5 s default step
/// deadline, and a registry that checks health every 200 ms and lets an open
/// circuit breaker probe again after 1 s.
pub fn fast_config() -> ServerConfig {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    ServerConfig {
        grpc_addr: loopback,
        http_addr: loopback,
        static_experts: Vec::new(),
        workflow_paths: Vec::new(),
        executor: ExecutorConfig {
            default_timeout: Duration::from_secs(5),
            ..ExecutorConfig::default()
        },
        registry: RegistryConfig {
            health_interval: Duration::from_millis(200),
            breaker_cooldown: Duration::from_secs(1),
            ..RegistryConfig::default()
        },
        allowed_destinations: Vec::new(),
        secrets_dir: None,
        replica_id: None,
        lease: synod_server::lease::DEFAULT_LEASE,
        auth: synod_server::auth::AuthConfig::default(),
        llm_planner: Default::default(),
        telemetry: None,
    }
}

/// A finished run: its id, its final `GetRun` answer and every event.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The run id.
    pub run_id: String,
    /// `GetRun` after the terminal event.
    pub info: pb::RunInfo,
    /// Every event from seq 1, decoded from the CloudEvents JSON.
    pub events: Vec<RunEvent>,
}

impl Finished {
    /// The run status as the proto enum.
    pub fn status(&self) -> pb::RunStatus {
        pb::RunStatus::try_from(self.info.status).unwrap_or(pb::RunStatus::Unspecified)
    }

    /// The `GetRun` picture of step `id`.
    pub fn step(&self, id: &str) -> anyhow::Result<&pb::StepInfo> {
        self.info
            .steps
            .iter()
            .find(|step| step.step_id == id)
            .with_context(|| format!("run {} has no step `{id}`", self.run_id))
    }
}

/// An orchestrator on `127.0.0.1:0` (gRPC and HTTP) with clients.
#[derive(Debug)]
pub struct TestOrchestrator {
    orchestrator: Orchestrator,
    channel: Channel,
    http: reqwest::Client,
}

impl TestOrchestrator {
    /// Starts with [`fast_config`] and `static_experts` registered.
    pub async fn start(static_experts: &[&str]) -> anyhow::Result<Self> {
        let mut config = fast_config();
        config.static_experts = static_experts.iter().map(|e| (*e).to_owned()).collect();
        Self::start_with(config).await
    }

    /// Starts with `config` (use ephemeral ports, see [`fast_config`]).
    pub async fn start_with(config: ServerConfig) -> anyhow::Result<Self> {
        Self::start_with_store(config, Arc::new(MemoryStore::new())).await
    }

    /// Starts with `config`, keeping runs in `store`.
    pub async fn start_with_store(
        config: ServerConfig,
        store: Arc<dyn RunStore>,
    ) -> anyhow::Result<Self> {
        let started = Orchestrator::start_with_store(config, store);
        let orchestrator = within("the orchestrator to start", started)
            .await?
            .context("starting the orchestrator")?;
        let channel = tonic::transport::Endpoint::from_shared(orchestrator.grpc_url())?
            .connect()
            .await
            .context("connecting to the orchestrator's gRPC port")?;
        Ok(TestOrchestrator {
            orchestrator,
            channel,
            http: reqwest::Client::new(),
        })
    }

    /// `http://127.0.0.1:<grpc port>`.
    pub fn grpc_url(&self) -> String {
        self.orchestrator.grpc_url()
    }

    /// `http://127.0.0.1:<http port>`.
    pub fn http_url(&self) -> String {
        self.orchestrator.http_url()
    }

    /// The orchestrator itself (registry, run manager).
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.orchestrator
    }

    /// An HTTP client for [`TestOrchestrator::http_url`].
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A `synod.orchestrator.v1.Runs` client.
    pub fn runs(&self) -> RunsClient<Channel> {
        RunsClient::new(self.channel.clone())
    }

    /// A `synod.orchestrator.v1.Registry` client.
    pub fn registry(&self) -> RegistryClient<Channel> {
        RegistryClient::new(self.channel.clone())
    }

    /// A `synod.orchestrator.v1.Workflows` client.
    pub fn workflows(&self) -> WorkflowsClient<Channel> {
        WorkflowsClient::new(self.channel.clone())
    }

    /// Registers a static expert endpoint after start (as the server config
    /// would).
    pub async fn add_static(&self, endpoint: &str) -> anyhow::Result<String> {
        self.orchestrator
            .registry
            .add_static(endpoint)
            .await
            .with_context(|| format!("registering static expert {endpoint}"))
    }

    /// `ListExperts` over gRPC.
    pub async fn experts(&self) -> anyhow::Result<Vec<pb::ExpertInfo>> {
        let response = self
            .registry()
            .list_experts(pb::ListExpertsRequest {})
            .await
            .context("ListExperts")?;
        Ok(response.into_inner().experts)
    }

    /// The registered instance serving at `endpoint`, if any.
    pub async fn instance_at(&self, endpoint: &str) -> anyhow::Result<Option<pb::InstanceInfo>> {
        Ok(self
            .experts()
            .await?
            .into_iter()
            .flat_map(|expert| expert.instances)
            .find(|instance| instance.endpoint == endpoint))
    }

    /// `StartRun` with workflow YAML and JSON inputs; returns the run id.
    pub async fn start_run(&self, yaml: &str, inputs: Value) -> anyhow::Result<String> {
        let inputs = match inputs {
            Value::Null => None,
            other => Some(synod_proto::json::json_to_struct(&other)?),
        };
        let request = pb::StartRunRequest {
            source: Some(pb::start_run_request::Source::WorkflowYaml(yaml.to_owned())),
            inputs,
            file_name: "test.yaml".to_owned(),
            goal_type: String::new(),
            planner: String::new(),
        };
        let response = self
            .runs()
            .start_run(request)
            .await
            .map_err(|status| anyhow::anyhow!("StartRun failed: {status}"))?;
        Ok(response.into_inner().run_id)
    }

    /// `GetRun`.
    pub async fn get_run(&self, run_id: &str) -> anyhow::Result<pb::RunInfo> {
        let response = self
            .runs()
            .get_run(pb::GetRunRequest {
                run_id: run_id.to_owned(),
            })
            .await
            .map_err(|status| anyhow::anyhow!("GetRun {run_id} failed: {status}"))?;
        Ok(response.into_inner())
    }

    /// Opens `WatchRun` from `after_seq`.
    pub async fn watch(
        &self,
        run_id: &str,
        after_seq: u64,
    ) -> anyhow::Result<tonic::Streaming<pb::RunEventMessage>> {
        let response = self
            .runs()
            .watch_run(pb::WatchRunRequest {
                run_id: run_id.to_owned(),
                after_seq,
                recorded_only: false,
            })
            .await
            .map_err(|status| anyhow::anyhow!("WatchRun {run_id} failed: {status}"))?;
        Ok(response.into_inner())
    }

    /// Every event after `after_seq` until the stream ends (after the
    /// terminal event), decoded.
    pub async fn events(&self, run_id: &str, after_seq: u64) -> anyhow::Result<Vec<RunEvent>> {
        let mut stream = self.watch(run_id, after_seq).await?;
        within("WatchRun to end", async {
            let mut events = Vec::new();
            while let Some(message) = stream.next().await {
                let message = message.context("WatchRun stream failed")?;
                events.push(decode(&message)?);
            }
            Ok::<_, anyhow::Error>(events)
        })
        .await?
    }

    /// Reads `WatchRun` from seq 1 until an event matches `wanted` and returns
    /// it (the stream is dropped). Fails if the run ends first.
    pub async fn wait_for_event(
        &self,
        run_id: &str,
        what: &str,
        wanted: impl Fn(&RunEventKind) -> bool,
    ) -> anyhow::Result<RunEvent> {
        let mut stream = self.watch(run_id, 0).await?;
        within(what, async {
            while let Some(message) = stream.next().await {
                let event = decode(&message.context("WatchRun stream failed")?)?;
                if wanted(&event.kind) {
                    return Ok(event);
                }
                if event.kind.is_terminal() {
                    bail!("run {run_id} ended ({event:?}) before {what}");
                }
            }
            bail!("WatchRun for {run_id} ended before {what}")
        })
        .await?
    }

    /// Waits for the run's terminal event and returns its final state and
    /// every event.
    pub async fn finish(&self, run_id: &str) -> anyhow::Result<Finished> {
        let events = self.events(run_id, 0).await?;
        match events.last() {
            Some(last) if last.kind.is_terminal() => {}
            other => bail!("run {run_id}: event stream ended without a terminal event: {other:?}"),
        }
        let info = self.get_run(run_id).await?;
        Ok(Finished {
            run_id: run_id.to_owned(),
            info,
            events,
        })
    }

    /// Starts a run and waits for it to end.
    pub async fn run(&self, yaml: &str, inputs: Value) -> anyhow::Result<Finished> {
        let run_id = self.start_run(yaml, inputs).await?;
        self.finish(&run_id).await
    }

    /// Shuts the orchestrator down (cancels active runs, stops serving).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        within(
            "the orchestrator to shut down",
            self.orchestrator.shutdown(),
        )
        .await?
    }
}
