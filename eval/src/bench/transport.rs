//! How the orchestrator reaches an expert: in-process (the executor's
//! [`Invoker`] calling the node body directly) or gRPC (a real
//! `synod-expert-sdk` expert on loopback, called through the registry's
//! invoker). Also the gRPC baselines: the generated client calling the SDK
//! expert directly, and a minimal tonic service for the raw round trip.

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use synod_executor::{Invocation, Invoker, StepOutput};
use synod_expert_sdk::{
    ExpertHandle, ExpertServer, SkillDefinition, SkillError, SkillOutput, skill_fn,
};
use synod_proto::expert::expert_client::ExpertClient;
use synod_proto::expert::expert_server::{Expert, ExpertServer as RawExpertServer};
use synod_proto::expert::{
    DescribeRequest, ExpertCard, InvokeRequest, InvokeResponse, InvokeStreamMessage,
};
use synod_proto::json::{json_to_struct, opt_struct_to_json};
use synod_types::ErrorCode;
use synod_types::error::StepError;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::bench::expert::NodeBody;

/// Name of the benchmark's SDK expert; its skills are the expert kinds.
pub const BENCH_EXPERT: &str = "bench";
/// Calls one SDK expert instance handles at once per connection: above the
/// 640 calls of 64 concurrent `layered100` runs, so the SDK's queue
/// (default 64) does not shape the throughput figures.
pub const EXPERT_CONCURRENCY: usize = 1024;
/// Deadline of one gRPC call (the executor's default step timeout).
pub const CALL_DEADLINE: Duration = Duration::from_secs(60);

/// Names of the transports, in report order.
pub const TRANSPORTS: [&str; 2] = ["in-process", "grpc"];

/// A transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The invoker calls the node body in the orchestrator's process.
    InProcess,
    /// The registry's gRPC invoker calls an SDK expert on loopback.
    Grpc,
}

impl Transport {
    /// Its name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Transport::InProcess => "in-process",
            Transport::Grpc => "grpc",
        }
    }

    /// The report's mode name: in-process rows keep the peer's names
    /// (`none`), gRPC rows are prefixed (`grpc-none`) so both fit one file.
    pub fn mode_name(self, mode: &str) -> String {
        match self {
            Transport::InProcess => mode.to_owned(),
            Transport::Grpc => format!("grpc-{mode}"),
        }
    }
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "in-process" | "inprocess" | "local" => Ok(Transport::InProcess),
            "grpc" => Ok(Transport::Grpc),
            other => Err(format!(
                "unknown transport `{other}`; known transports: {}",
                TRANSPORTS.join(", ")
            )),
        }
    }
}

/// Reads the `node` and `n_inputs` of a step input.
pub fn node_args(input: &Value) -> (&str, u64) {
    (
        input["node"].as_str().unwrap_or("?"),
        input["n_inputs"].as_u64().unwrap_or(0),
    )
}

/// The executor's invoker for the in-process transport.
#[derive(Debug)]
pub struct LocalInvoker {
    body: Arc<NodeBody>,
}

impl LocalInvoker {
    /// An invoker running `body`.
    pub fn new(body: Arc<NodeBody>) -> LocalInvoker {
        LocalInvoker { body }
    }
}

#[async_trait::async_trait]
impl Invoker for LocalInvoker {
    async fn invoke(&self, call: Invocation) -> Result<StepOutput, StepError> {
        let started = Instant::now();
        let (node, n_inputs) = node_args(&call.input);
        let output =
            self.body.call(node, n_inputs).await.map_err(|error| {
                StepError::new(ErrorCode::ExpertUnavailable, format!("{error:#}"))
            })?;
        Ok(StepOutput {
            output,
            confidence: 1.0,
            instance: "in-process".to_owned(),
            duration_ms: started.elapsed().as_millis() as u64,
            needs: Vec::new(),
            usage: synod_executor::Usage::default(),
            guard: None,
        })
    }
}

/// Input schema of a benchmark node: `{"node": string, "n_inputs": integer}`.
pub fn node_input_schema() -> Value {
    json!({
        "type": "object", "required": ["node", "n_inputs"],
        "properties": {"node": {"type": "string"}, "n_inputs": {"type": "integer", "minimum": 0}}
    })
}

/// Output schema of a benchmark node: what [`crate::bench::expert::node_result`] returns.
pub fn node_output_schema() -> Value {
    json!({
        "type": "object", "required": ["node", "ok", "n_inputs"],
        "properties": {
            "node": {"type": "string"}, "ok": {"type": "boolean"},
            "n_inputs": {"type": "integer", "minimum": 0}
        }
    })
}

/// The SDK expert `bench`, one skill per body, served on `127.0.0.1:0`.
pub async fn spawn_sdk_expert(bodies: &[Arc<NodeBody>]) -> anyhow::Result<ExpertHandle> {
    let input_schema = node_input_schema();
    let output_schema = node_output_schema();
    let mut builder = ExpertServer::builder(BENCH_EXPERT, env!("CARGO_PKG_VERSION"))
        .description("benchmark expert: noop, 1 ms sleep, loopback HTTP echo")
        .concurrency_limit(EXPERT_CONCURRENCY);
    for body in bodies {
        let definition = SkillDefinition::new(body.kind().name())
            .description("one benchmark node execution")
            .consumes(["bench"])
            .produces("bench")
            .input_schema(input_schema.clone())
            .output_schema(output_schema.clone());
        let body = Arc::clone(body);
        builder = builder.skill(skill_fn(definition, move |_ctx, input: Value| {
            let body = Arc::clone(&body);
            async move {
                let (node, n_inputs) = node_args(&input);
                body.call(node, n_inputs)
                    .await
                    .map(SkillOutput::new)
                    .map_err(|error| SkillError::unavailable(format!("{error:#}")))
            }
        }));
    }
    let handle = builder
        .build()
        .context("the benchmark expert is invalid")?
        .spawn_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .context("cannot serve the benchmark expert")?;
    Ok(handle)
}

/// A connected channel to `endpoint` (HTTP/2, no Nagle).
pub async fn connect(endpoint: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(endpoint.to_owned())
        .with_context(|| format!("bad endpoint {endpoint}"))?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {endpoint}"))
}

/// One `Invoke` through the generated client, no orchestrator: the gRPC
/// `direct` baseline and the round-trip calibration.
pub async fn invoke_direct(
    channel: &Channel,
    skill: &str,
    node: &str,
    n_inputs: u64,
) -> anyhow::Result<Value> {
    let input = json!({"node": node, "n_inputs": n_inputs});
    let mut request = Request::new(InvokeRequest {
        run_id: String::new(),
        step_id: node.to_owned(),
        skill: skill.to_owned(),
        input: Some(json_to_struct(&input)?),
        context: Vec::new(),
        feedback: Vec::new(),
        round: 0,
        attempt: 1,
    });
    request.set_timeout(CALL_DEADLINE);
    let response = ExpertClient::new(channel.clone())
        .invoke(request)
        .await
        .map_err(|status| anyhow::anyhow!("Invoke `{skill}` failed: {status}"))?;
    Ok(opt_struct_to_json(response.into_inner().output.as_ref())?)
}

/// A minimal tonic `Expert` whose `Invoke` echoes its input: the raw unary
/// loopback round trip, with the same messages and none of the SDK's work.
#[derive(Debug, Clone, Copy)]
struct RawEcho;

#[tonic::async_trait]
impl Expert for RawEcho {
    async fn describe(
        &self,
        _request: Request<DescribeRequest>,
    ) -> Result<Response<ExpertCard>, Status> {
        Ok(Response::new(ExpertCard {
            name: "raw-echo".to_owned(),
            version: "0".to_owned(),
            ..Default::default()
        }))
    }

    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeResponse>, Status> {
        Ok(Response::new(InvokeResponse {
            output: request.into_inner().input,
            confidence: 1.0,
            ..Default::default()
        }))
    }

    type InvokeStreamStream =
        Pin<Box<dyn futures::Stream<Item = Result<InvokeStreamMessage, Status>> + Send>>;

    async fn invoke_stream(
        &self,
        _request: Request<InvokeRequest>,
    ) -> Result<Response<Self::InvokeStreamStream>, Status> {
        Err(Status::unimplemented("raw echo does not stream"))
    }
}

/// Serves [`RawEcho`] on `127.0.0.1:0`; returns its endpoint. The server
/// runs until the runtime ends.
pub async fn spawn_raw_echo() -> anyhow::Result<String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_service(RawExpertServer::new(RawEcho))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            )
            .await;
        if let Err(error) = served {
            eprintln!("raw tonic echo server failed: {error}");
        }
    });
    Ok(format!("http://{addr}"))
}
