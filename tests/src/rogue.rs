//! A hand-written expert that bypasses the SDK: its card promises
//! `count/count` answers `{count: integer}` but `Invoke` answers
//! `{count: "many"}`. Only the orchestrator's own output validation can
//! catch it.

use std::net::SocketAddr;
use std::pin::Pin;

use anyhow::Context as _;
use futures::Stream;
use serde_json::json;
use synod_proto::expert as pb;
use synod_proto::expert::expert_server::{Expert, ExpertServer};
use synod_proto::json::json_to_struct;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// Name of the rogue expert.
pub const ROGUE_EXPERT: &str = "rogue";

#[derive(Debug)]
struct Rogue;

fn card() -> Result<pb::ExpertCard, Status> {
    let schema = |value| json_to_struct(&value).map_err(|e| Status::internal(e.to_string()));
    Ok(pb::ExpertCard {
        name: ROGUE_EXPERT.to_owned(),
        version: "0.1.0".to_owned(),
        description: "breaks its own output schema".to_owned(),
        skills: vec![pb::Skill {
            name: "count".to_owned(),
            description: "counts, badly".to_owned(),
            consumes: Vec::new(),
            produces: String::new(),
            input_schema: Some(schema(json!({ "type": "object" }))?),
            output_schema: Some(schema(json!({
                "type": "object",
                "required": ["count"],
                "properties": { "count": { "type": "integer" } }
            }))?),
            cost_hint: 1.0,
            max_sensitivity: pb::Sensitivity::Internal as i32,
            streaming: false,
        }],
        external: false,
    })
}

type MessageStream = Pin<Box<dyn Stream<Item = Result<pb::InvokeStreamMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Expert for Rogue {
    async fn describe(
        &self,
        _request: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::ExpertCard>, Status> {
        Ok(Response::new(card()?))
    }

    async fn invoke(
        &self,
        _request: Request<pb::InvokeRequest>,
    ) -> Result<Response<pb::InvokeResponse>, Status> {
        let output = json_to_struct(&json!({ "count": "many" }))
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::InvokeResponse {
            output: Some(output),
            confidence: 0.5,
            ..Default::default()
        }))
    }

    type InvokeStreamStream = MessageStream;

    async fn invoke_stream(
        &self,
        _request: Request<pb::InvokeRequest>,
    ) -> Result<Response<Self::InvokeStreamStream>, Status> {
        Err(Status::unimplemented("the rogue expert does not stream"))
    }
}

/// The rogue expert serving on a free loopback port; stops when dropped.
#[derive(Debug)]
pub struct RogueExpert {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    task: JoinHandle<()>,
}

impl Drop for RogueExpert {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the rogue expert.
pub async fn serve_rogue() -> anyhow::Result<RogueExpert> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("binding the rogue expert")?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_service(ExpertServer::new(Rogue))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
        if let Err(error) = served {
            eprintln!("rogue expert stopped: {error}");
        }
    });
    Ok(RogueExpert { endpoint, task })
}
