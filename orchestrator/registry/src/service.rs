//! `synod.orchestrator.v1.Registry` over gRPC.

use std::time::Duration;

use synod_proto::orchestrator::registry_server::Registry as RegistryApi;
use synod_proto::orchestrator::{
    DeregisterRequest, DeregisterResponse, HeartbeatRequest, HeartbeatResponse, ListExpertsRequest,
    ListExpertsResponse, RegisterRequest, RegisterResponse,
};
use tonic::{Request, Response, Status};

use crate::error::RegistryError;
use crate::registry::Registry;

/// The tonic implementation of the orchestrator's `Registry` service; wrap
/// it in `registry_server::RegistryServer::new`.
#[derive(Debug, Clone)]
pub struct RegistryService {
    registry: Registry,
}

impl RegistryService {
    /// The service over `registry`.
    pub fn new(registry: Registry) -> Self {
        RegistryService { registry }
    }
}

/// The gRPC status for a registration error.
pub fn registry_error_status(error: &RegistryError) -> Status {
    match error {
        RegistryError::Unreachable { .. } => Status::unavailable(error.to_string()),
        RegistryError::InvalidEndpoint { .. }
        | RegistryError::CardMismatch { .. }
        | RegistryError::InvalidCard { .. } => Status::invalid_argument(error.to_string()),
    }
}

fn require_instance_id(instance_id: &str) -> Result<(), Status> {
    if instance_id.trim().is_empty() {
        return Err(Status::invalid_argument(
            "`instance_id` is empty; send the id returned by Register",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl RegistryApi for RegistryService {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let request = request.into_inner();
        if request.endpoint.trim().is_empty() {
            return Err(Status::invalid_argument(
                "`endpoint` is empty; send the instance's gRPC address, e.g. `http://127.0.0.1:7101`",
            ));
        }
        let ttl = (request.ttl_ms > 0).then(|| Duration::from_millis(request.ttl_ms));
        let (instance_id, ttl) = self
            .registry
            .register(&request.endpoint, request.card, ttl)
            .await
            .map_err(|error| registry_error_status(&error))?;
        Ok(Response::new(RegisterResponse {
            instance_id,
            ttl_ms: ttl.as_millis() as u64,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let request = request.into_inner();
        require_instance_id(&request.instance_id)?;
        let known = self.registry.heartbeat(&request.instance_id);
        Ok(Response::new(HeartbeatResponse { known }))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let request = request.into_inner();
        require_instance_id(&request.instance_id)?;
        if !self.registry.deregister(&request.instance_id) {
            return Err(Status::not_found(format!(
                "instance `{}` is not registered (it may have expired); nothing to deregister",
                request.instance_id
            )));
        }
        Ok(Response::new(DeregisterResponse {}))
    }

    async fn list_experts(
        &self,
        _request: Request<ListExpertsRequest>,
    ) -> Result<Response<ListExpertsResponse>, Status> {
        Ok(Response::new(ListExpertsResponse {
            experts: self.registry.list(),
        }))
    }
}
