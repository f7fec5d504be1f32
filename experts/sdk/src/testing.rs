//! Helpers for testing experts: serve one on `127.0.0.1:0` and talk to it
//! over real gRPC, or run its skills in-process through the same
//! validation.
//!
//! ```
//! use serde_json::json;
//! use synod_expert_sdk::testing::TestExpert;
//! use synod_expert_sdk::{ExpertServer, SkillDefinition, SkillOutput, skill_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let builder = ExpertServer::builder("echo", "0.1.0").skill(skill_fn(
//!     SkillDefinition::new("echo"),
//!     |_ctx, input| async move { Ok(SkillOutput::new(input)) },
//! ));
//!
//! // In-process, no network.
//! let expert = TestExpert::new(builder.clone())?;
//! let output = expert.call("echo", json!({ "n": 1 })).await?;
//! assert_eq!(output.output, json!({ "n": 1 }));
//!
//! // Over gRPC on a free loopback port.
//! let (endpoint, handle) = TestExpert::spawn(builder).await?;
//! let mut client = TestExpert::connect(&endpoint).await?;
//! let card = client.describe(synod_proto::expert::DescribeRequest {}).await?.into_inner();
//! assert_eq!(card.name, "echo");
//! handle.shutdown().await?;
//! # Ok(())
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr};

use serde_json::Value;
use synod_proto::expert::expert_client::ExpertClient;
use synod_proto::expert::{InvokeRequest, InvokeResponse};
use synod_proto::json::{json_to_struct, struct_to_json};
use tonic::Status;
use tonic::transport::Channel;

use crate::context::SkillContext;
use crate::error::{BuildError, ServeError, SkillError};
use crate::server::{ExpertHandle, ExpertServer, ExpertServerBuilder};
use crate::skill::SkillOutput;

/// An expert under test.
#[derive(Debug, Clone)]
pub struct TestExpert {
    server: ExpertServer,
}

impl TestExpert {
    /// Builds the expert for in-process calls.
    ///
    /// # Errors
    ///
    /// When the definition is invalid (see [`ExpertServerBuilder::build`]).
    pub fn new(builder: ExpertServerBuilder) -> Result<Self, BuildError> {
        Ok(TestExpert {
            server: builder.build()?,
        })
    }

    /// Builds and serves the expert on `127.0.0.1:0` in the background.
    /// Returns its endpoint (`http://127.0.0.1:<port>`) and the handle that
    /// stops it (dropping the handle stops it too).
    ///
    /// # Errors
    ///
    /// When the definition is invalid or no port can be bound.
    pub async fn spawn(builder: ExpertServerBuilder) -> Result<(String, ExpertHandle), ServeError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let handle = builder.build()?.spawn_on(addr).await?;
        Ok((handle.endpoint().to_owned(), handle))
    }

    /// A gRPC client for an expert at `endpoint`.
    ///
    /// # Errors
    ///
    /// When the endpoint is malformed or cannot be reached.
    pub async fn connect(endpoint: &str) -> Result<ExpertClient<Channel>, tonic::transport::Error> {
        ExpertClient::connect(endpoint.to_owned()).await
    }

    /// Invokes `skill` with a JSON `input` over gRPC and returns the
    /// response with its output as JSON.
    ///
    /// # Errors
    ///
    /// The expert's status; `INVALID_ARGUMENT` when `input` is not a JSON
    /// object; `INTERNAL` when the response carries no output or an output
    /// that is not JSON.
    pub async fn invoke(
        client: &mut ExpertClient<Channel>,
        skill: &str,
        input: &Value,
    ) -> Result<(InvokeResponse, Value), Status> {
        let input = json_to_struct(input)
            .map_err(|e| Status::invalid_argument(format!("input is not a JSON object: {e}")))?;
        let request = InvokeRequest {
            skill: skill.to_owned(),
            input: Some(input),
            ..Default::default()
        };
        let response = client.invoke(request).await?.into_inner();
        let output = response
            .output
            .as_ref()
            .ok_or_else(|| Status::internal(format!("`{skill}` returned no output")))
            .and_then(|output| {
                struct_to_json(output).map_err(|e| {
                    Status::internal(format!(
                        "`{skill}` returned an output that is not JSON: {e}"
                    ))
                })
            })?;
        Ok((response, output))
    }

    /// Runs a skill in-process through the same validation as `Invoke`.
    ///
    /// # Errors
    ///
    /// See [`ExpertServer::call`].
    pub async fn call(&self, skill: &str, input: Value) -> Result<SkillOutput, SkillError> {
        self.server.call(skill, input).await
    }

    /// Runs a skill in-process with a given context.
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
        self.server.call_with_context(ctx, skill, input).await
    }

    /// The built expert.
    pub fn server(&self) -> &ExpertServer {
        &self.server
    }
}
