//! The maintenance task: expires silent instances, health-checks every
//! instance, and retries static endpoints that were not reachable yet.

use std::time::Duration;

use synod_proto::EXPERT_SERVICE_NAME;
use synod_proto::expert::DescribeRequest;
use synod_proto::expert::expert_client::ExpertClient;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::classify::status_text;
use crate::registry::{Health, Registry};

impl Registry {
    /// Starts the maintenance task; it stops when `cancel` is cancelled.
    ///
    /// It expires dynamic instances whose last heartbeat is older than their
    /// TTL (checked several times per default TTL), health-checks every
    /// instance each `health_interval` with `grpc.health.v1` (service
    /// `synod.expert.v1.Expert`, else the overall server status, else
    /// `Describe` when the expert serves no health service), marking it
    /// healthy or unhealthy, and retries static endpoints that could not be
    /// added yet.
    pub fn spawn_maintenance(&self, cancel: CancellationToken) -> JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            let config = registry.config().clone();
            let mut expiry = tokio::time::interval(config.expiry_interval());
            expiry.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut health = tokio::time::interval(config.health_interval);
            health.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = expiry.tick() => {
                        registry.expire_stale(Instant::now());
                    }
                    _ = health.tick() => {
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = registry.check_health() => {}
                        }
                        registry.retry_pending_static().await;
                    }
                }
            }
            tracing::debug!("registry maintenance stopped");
        })
    }

    /// Health-checks every instance concurrently and records the results.
    pub(crate) async fn check_health(&self) {
        let timeout = self.config().control_call_timeout();
        let checks = self
            .health_targets()
            .into_iter()
            .map(|(id, channel)| async move {
                let health = match probe(channel, timeout).await {
                    Ok(()) => Health::Healthy,
                    Err(reason) => Health::Unhealthy { reason },
                };
                (id, health)
            });
        for (id, health) in futures::future::join_all(checks).await {
            self.set_health(&id, health);
        }
    }

    async fn retry_pending_static(&self) {
        for endpoint in self.pending_static() {
            match self.add_static(&endpoint).await {
                Ok(instance) => {
                    tracing::info!(endpoint = %endpoint, instance = %instance, "static expert instance added")
                }
                Err(error) => {
                    tracing::debug!(endpoint = %endpoint, error = %error, "static expert instance still unreachable")
                }
            }
        }
    }
}

/// One health check of the instance behind `channel`.
async fn probe(channel: Channel, timeout: Duration) -> Result<(), String> {
    let checked = tokio::time::timeout(timeout, async {
        match check_service(&channel, EXPERT_SERVICE_NAME, timeout).await {
            Err(status) if status.code() == Code::NotFound => {
                check_service(&channel, "", timeout).await
            }
            Err(status) if status.code() == Code::Unimplemented => describe(&channel, timeout)
                .await
                .map(|()| ServingStatus::Serving),
            other => other,
        }
    })
    .await;
    match checked {
        Err(_) => Err(format!("health check did not answer within {timeout:?}")),
        Ok(Err(status)) => Err(format!("health check failed: {}", status_text(&status))),
        Ok(Ok(ServingStatus::Serving)) => Ok(()),
        Ok(Ok(status)) => Err(format!("health status is {}", status.as_str_name())),
    }
}

async fn check_service(
    channel: &Channel,
    service: &str,
    timeout: Duration,
) -> Result<ServingStatus, tonic::Status> {
    let mut client = HealthClient::new(channel.clone());
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    request.set_timeout(timeout);
    let response = client.check(request).await?.into_inner();
    Ok(response.status())
}

async fn describe(channel: &Channel, timeout: Duration) -> Result<(), tonic::Status> {
    let mut client = ExpertClient::new(channel.clone());
    let mut request = tonic::Request::new(DescribeRequest {});
    request.set_timeout(timeout);
    client.describe(request).await.map(|_| ())
}
