//! Self-registration with the orchestrator's `synod.orchestrator.v1.Registry`.
//!
//! The loop: Register (retried with exponential backoff) → Heartbeat every
//! TTL/3 → on `known = false`, or when heartbeats have failed for longer than
//! the TTL (the orchestrator has dropped the instance by then), Register
//! again → on shutdown, Deregister (bounded). Nothing here ever fails the
//! expert: problems are logged and retried.
//!
//! With access control on, the orchestrator wants a token with the `expert`
//! role on these calls: [`crate::ExpertServerBuilder::token`] or the
//! `SYNOD_TOKEN` environment variable; it is sent as `authorization: Bearer`
//! metadata and never logged. A refused token (UNAUTHENTICATED,
//! PERMISSION_DENIED) is logged with the orchestrator's message and retried
//! with backoff like any failure, so a token created later is picked up on
//! restart.

use std::time::Duration;

use synod_proto::expert::ExpertCard;
use synod_proto::orchestrator::registry_client::RegistryClient;
use synod_proto::orchestrator::{DeregisterRequest, HeartbeatRequest, RegisterRequest};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// The registry client, sending the token (if any) on every call.
type Client = RegistryClient<InterceptedService<Channel, BearerToken>>;

/// Adds `authorization: Bearer <token>` metadata to every call.
#[derive(Clone)]
pub(crate) struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// Sends `token`; `None` (or text not valid in a header) sends nothing.
    pub(crate) fn new(token: Option<&str>) -> Self {
        BearerToken(token.and_then(|token| format!("Bearer {token}").parse().ok()))
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// First retry delay after a failed Register.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Deadline of each registry call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for Deregister.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(3);
/// Shortest heartbeat interval, whatever TTL the orchestrator grants.
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(20);

/// Where and how to register.
#[derive(Debug, Clone)]
pub(crate) struct RegistrationConfig {
    /// The orchestrator's gRPC URL (validated at build).
    pub(crate) orchestrator_url: String,
    /// TTL asked of the orchestrator.
    pub(crate) ttl: Duration,
    /// The API token with the `expert` role (its Debug never shows it).
    pub(crate) token: BearerToken,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "BearerToken(..)"
        } else {
            "BearerToken(none)"
        })
    }
}

/// Runs until `stop` is cancelled, then deregisters and returns.
pub(crate) async fn run(
    config: RegistrationConfig,
    card: ExpertCard,
    endpoint: String,
    stop: CancellationToken,
) {
    let channel = match Endpoint::from_shared(config.orchestrator_url.clone()) {
        Ok(orchestrator) => orchestrator
            .connect_timeout(CALL_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .connect_lazy(),
        Err(error) => {
            // Checked at build; kept as a log line rather than a panic.
            tracing::error!(
                url = %config.orchestrator_url,
                error = %error,
                "invalid orchestrator URL; not registering"
            );
            return;
        }
    };
    let mut client = RegistryClient::with_interceptor(channel, config.token.clone());
    let expert = card.name.clone();
    let requested_ttl_ms = u64::try_from(config.ttl.as_millis()).unwrap_or(u64::MAX);
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let request = RegisterRequest {
            endpoint: endpoint.clone(),
            card: Some(card.clone()),
            ttl_ms: requested_ttl_ms,
        };
        let mut register_client = client.clone();
        let call = register_client.register(request);
        tokio::pin!(call);
        let registered = tokio::select! {
            biased;
            result = &mut call => result,
            () = stop.cancelled() => {
                // The orchestrator may already have accepted the Register in
                // flight: finish it (bounded) and deregister, so it does not
                // keep a dead instance until the TTL runs out.
                if let Ok(Ok(response)) = tokio::time::timeout(DEREGISTER_TIMEOUT, &mut call).await {
                    deregister(&mut client, &response.into_inner().instance_id, &expert).await;
                }
                return;
            }
        };
        let response = match registered {
            Ok(response) => response.into_inner(),
            Err(status) => {
                tracing::warn!(
                    synod.expert.name = %expert,
                    orchestrator = %config.orchestrator_url,
                    code = ?status.code(),
                    error = %status.message(),
                    retry_in_ms = backoff.as_millis() as u64,
                    "cannot register with the orchestrator; retrying"
                );
                if sleep_or_stop(backoff, &stop).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = INITIAL_BACKOFF;
        let ttl = if response.ttl_ms == 0 {
            config.ttl
        } else {
            Duration::from_millis(response.ttl_ms)
        };
        let instance_id = response.instance_id;
        tracing::info!(
            synod.expert.name = %expert,
            instance_id = %instance_id,
            endpoint = %endpoint,
            ttl_ms = ttl.as_millis() as u64,
            "registered with the orchestrator"
        );
        match heartbeat(&mut client, &instance_id, ttl, &stop).await {
            HeartbeatEnd::Stopped => {
                deregister(&mut client, &instance_id, &expert).await;
                return;
            }
            HeartbeatEnd::Forgotten(reason) => {
                tracing::warn!(
                    synod.expert.name = %expert,
                    instance_id = %instance_id,
                    reason = %reason,
                    "registering again"
                );
            }
        }
    }
}

enum HeartbeatEnd {
    /// Shutdown was requested.
    Stopped,
    /// The orchestrator no longer knows the instance (or cannot have kept it).
    Forgotten(String),
}

async fn heartbeat(
    client: &mut Client,
    instance_id: &str,
    ttl: Duration,
    stop: &CancellationToken,
) -> HeartbeatEnd {
    let interval = (ttl / 3).max(MIN_HEARTBEAT_INTERVAL);
    let mut last_success = Instant::now();
    loop {
        if sleep_or_stop(interval, stop).await {
            return HeartbeatEnd::Stopped;
        }
        let request = HeartbeatRequest {
            instance_id: instance_id.to_owned(),
        };
        let result = tokio::select! {
            biased;
            () = stop.cancelled() => return HeartbeatEnd::Stopped,
            result = client.heartbeat(request) => result,
        };
        match result {
            Ok(response) if response.get_ref().known => {
                last_success = Instant::now();
            }
            Ok(_) => {
                return HeartbeatEnd::Forgotten(
                    "the orchestrator no longer knows this instance".to_owned(),
                );
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                return HeartbeatEnd::Forgotten(format!(
                    "the orchestrator does not know this instance: {}",
                    status.message()
                ));
            }
            Err(status) => {
                let failing_for = last_success.elapsed();
                tracing::warn!(
                    instance_id,
                    code = ?status.code(),
                    error = %status.message(),
                    failing_for_ms = failing_for.as_millis() as u64,
                    "heartbeat failed"
                );
                if failing_for > ttl {
                    return HeartbeatEnd::Forgotten(format!(
                        "heartbeats failed for longer than the TTL ({} ms)",
                        ttl.as_millis()
                    ));
                }
            }
        }
    }
}

async fn deregister(client: &mut Client, instance_id: &str, expert: &str) {
    let request = DeregisterRequest {
        instance_id: instance_id.to_owned(),
    };
    match tokio::time::timeout(DEREGISTER_TIMEOUT, client.deregister(request)).await {
        Ok(Ok(_)) => {
            tracing::info!(synod.expert.name = %expert, instance_id, "deregistered");
        }
        Ok(Err(status)) => tracing::warn!(
            synod.expert.name = %expert,
            instance_id,
            code = ?status.code(),
            error = %status.message(),
            "cannot deregister; the orchestrator will drop the instance when its TTL expires"
        ),
        Err(_) => tracing::warn!(
            synod.expert.name = %expert,
            instance_id,
            "deregistering timed out; the orchestrator will drop the instance when its TTL expires"
        ),
    }
}

/// Sleeps for `duration`; returns true when `stop` was cancelled first.
async fn sleep_or_stop(duration: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        () = stop.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}
