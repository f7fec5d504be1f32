//! The registry's gRPC service with audit entries: every successful
//! Register (`expert.registered`) and Deregister (`expert.deregistered`)
//! names the calling token's subject. Calls are forwarded unchanged to
//! [`synod_registry::RegistryService`]; heartbeats are not audited.

use serde_json::json;
use synod_proto::orchestrator as pb;
use synod_proto::orchestrator::registry_server::Registry as RegistryApi;
use synod_registry::RegistryService;
use tonic::{Request, Response, Status};

use super::guard::{Authenticator, grpc_principal};

/// [`RegistryService`] plus audit entries for registry changes.
#[derive(Debug, Clone)]
pub struct AuditedRegistry {
    inner: RegistryService,
    auth: Authenticator,
}

impl AuditedRegistry {
    /// Forwards to `inner`, auditing with `auth`.
    pub fn new(inner: RegistryService, auth: Authenticator) -> Self {
        AuditedRegistry { inner, auth }
    }
}

#[tonic::async_trait]
impl RegistryApi for AuditedRegistry {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let principal = grpc_principal(&request);
        let endpoint = request.get_ref().endpoint.clone();
        let expert = request
            .get_ref()
            .card
            .as_ref()
            .map(|card| card.name.clone())
            .unwrap_or_default();
        let response = self.inner.register(request).await?;
        self.auth
            .audit(
                &principal,
                "expert.registered",
                &format!("expert/{expert}"),
                json!({
                    "expert": expert,
                    "endpoint": endpoint,
                    "instance_id": response.get_ref().instance_id,
                }),
            )
            .await;
        Ok(response)
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        self.inner.heartbeat(request).await
    }

    async fn deregister(
        &self,
        request: Request<pb::DeregisterRequest>,
    ) -> Result<Response<pb::DeregisterResponse>, Status> {
        let principal = grpc_principal(&request);
        let instance_id = request.get_ref().instance_id.clone();
        let response = self.inner.deregister(request).await?;
        self.auth
            .audit(
                &principal,
                "expert.deregistered",
                &format!("instance/{instance_id}"),
                json!({ "instance_id": instance_id }),
            )
            .await;
        Ok(response)
    }

    async fn list_experts(
        &self,
        request: Request<pb::ListExpertsRequest>,
    ) -> Result<Response<pb::ListExpertsResponse>, Status> {
        self.inner.list_experts(request).await
    }
}
