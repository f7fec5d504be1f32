//! The registry: expert instances with their cards, health and load, and the
//! choice of an instance for each call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use synod_planner::{SkillCatalog, SkillInfo, SkillStats};
use synod_proto::expert::expert_client::ExpertClient;
use synod_proto::expert::{DescribeRequest, ExpertCard};
use synod_proto::orchestrator::{ExpertInfo, InstanceHealth, InstanceInfo};
use synod_types::error::StepError;
use synod_types::{ErrorCode, SkillRef};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::balance::{Load, pick_two, update_ewma};
use crate::breaker::Breaker;
use crate::card::{CardInfo, SchemaCache};
use crate::classify::status_text;
use crate::config::RegistryConfig;
use crate::error::RegistryError;

/// The expert registry. Cheap to clone: clones share one state.
///
/// Instances are grouped by expert name (from their card). Dynamic instances
/// come from [`Registry::register`] and expire when they miss heartbeats for
/// longer than their TTL; static ones come from the server config
/// ([`Registry::add_static`]) and never expire. Calls go to healthy instances
/// whose circuit breaker admits them, chosen by power of two choices on load
/// (see [`crate::ExpertInvoker`]).
#[derive(Debug, Clone)]
pub struct Registry {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: RegistryConfig,
    state: Mutex<State>,
    schemas: SchemaCache,
}

#[derive(Debug)]
struct State {
    /// Instances by expert name. An expert whose last instance left keeps an
    /// empty list, so calls to it fail as retryable `ExpertUnavailable`
    /// rather than `UnknownSkill` while it restarts.
    experts: BTreeMap<String, Vec<Instance>>,
    /// Static endpoints whose `Describe` failed; maintenance retries them.
    pending_static: BTreeSet<String>,
    rng: fastrand::Rng,
}

/// Result of the last health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    Healthy,
    Unhealthy { reason: String },
}

#[derive(Debug)]
struct Instance {
    id: String,
    endpoint: String,
    channel: Channel,
    card: Arc<CardInfo>,
    is_static: bool,
    registered_at: Instant,
    last_heartbeat: Instant,
    ttl: Duration,
    health: Health,
    outstanding: u32,
    latency_ewma_ms: Option<f64>,
    calls: u64,
    failures: u64,
    breaker: Breaker,
}

impl Instance {
    fn health(&self) -> InstanceHealth {
        if let Health::Unhealthy { .. } = self.health {
            InstanceHealth::Unhealthy
        } else if self.breaker.is_tripped() {
            InstanceHealth::Broken
        } else {
            InstanceHealth::Healthy
        }
    }

    fn info(&self) -> InstanceInfo {
        InstanceInfo {
            instance_id: self.id.clone(),
            endpoint: self.endpoint.clone(),
            health: self.health() as i32,
            outstanding: self.outstanding,
            latency_ewma_ms: self.latency_ewma_ms.unwrap_or(0.0),
            calls: self.calls,
            failures: self.failures,
            r#static: self.is_static,
        }
    }

    /// Why no call can be sent to it now, or `None` if one can.
    fn unavailability(&self, now: Instant) -> Option<String> {
        if let Health::Unhealthy { reason } = &self.health {
            return Some(format!("unhealthy ({reason})"));
        }
        if !self.breaker.admits(now) {
            return Some(self.breaker.describe(now));
        }
        None
    }
}

/// The newest registration among `instances`: its card speaks for the expert.
fn newest(instances: &[Instance]) -> Option<&Instance> {
    instances
        .iter()
        .max_by_key(|instance| instance.registered_at)
}

// === impl Registry ===

impl Registry {
    /// An empty registry.
    pub fn new(config: RegistryConfig) -> Self {
        Registry {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State {
                    experts: BTreeMap::new(),
                    pending_static: BTreeSet::new(),
                    rng: fastrand::Rng::new(),
                }),
                schemas: SchemaCache::default(),
            }),
        }
    }

    /// The settings the registry runs with.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock_state()
    }

    /// Registers the instance serving at `endpoint` (e.g.
    /// `http://127.0.0.1:7101`) and returns its instance id and the TTL
    /// applied (`ttl`, or the default when `None` or zero).
    ///
    /// The instance is verified with `Describe`; the card it serves is
    /// authoritative, and `card`, when given, must name the same expert.
    /// Registering an endpoint again replaces its previous instance (which
    /// keeps being static if it was).
    pub async fn register(
        &self,
        endpoint: &str,
        card: Option<ExpertCard>,
        ttl: Option<Duration>,
    ) -> Result<(String, Duration), RegistryError> {
        let ttl = match ttl {
            Some(ttl) if !ttl.is_zero() => ttl,
            _ => self.inner.config.default_ttl,
        };
        let instance_id = self.register_instance(endpoint, card, ttl, false).await?;
        Ok((instance_id, ttl))
    }

    /// Adds an instance listed in the server config; it never expires.
    /// Returns its instance id.
    ///
    /// When the instance cannot be reached yet, the error is returned and the
    /// endpoint is remembered: maintenance keeps trying to add it.
    pub async fn add_static(&self, endpoint: &str) -> Result<String, RegistryError> {
        let ttl = self.inner.config.default_ttl;
        let result = self.register_instance(endpoint, None, ttl, true).await;
        if let Err(RegistryError::Unreachable { .. }) = &result {
            self.state()
                .pending_static
                .insert(endpoint.trim().to_owned());
        }
        result
    }

    async fn register_instance(
        &self,
        endpoint: &str,
        claimed: Option<ExpertCard>,
        ttl: Duration,
        is_static: bool,
    ) -> Result<String, RegistryError> {
        let endpoint = endpoint.trim();
        let channel = self.channel(endpoint)?;
        let served = self.describe(endpoint, channel.clone()).await?;
        if let Some(claimed) = claimed
            && claimed.name != served.name
        {
            return Err(RegistryError::CardMismatch {
                endpoint: endpoint.to_owned(),
                claimed: claimed.name,
                served: served.name,
            });
        }
        let card = CardInfo::from_card(served, &self.inner.schemas).map_err(|reason| {
            RegistryError::InvalidCard {
                endpoint: endpoint.to_owned(),
                reason,
            }
        })?;
        let expert = card.card.name.clone();
        let version = card.card.version.clone();
        let instance_id = uuid::Uuid::new_v4().to_string();
        let now = Instant::now();
        let config = &self.inner.config;
        let mut state = self.state();
        let mut replaced_static = false;
        for instances in state.experts.values_mut() {
            if let Some(position) = instances.iter().position(|i| i.endpoint == endpoint) {
                let old = instances.remove(position);
                replaced_static |= old.is_static;
                tracing::info!(instance = %old.id, endpoint, "replacing the instance registered at the same endpoint");
            }
        }
        state.pending_static.remove(endpoint);
        let is_static = is_static || replaced_static;
        state
            .experts
            .entry(expert.clone())
            .or_default()
            .push(Instance {
                id: instance_id.clone(),
                endpoint: endpoint.to_owned(),
                channel,
                card: Arc::new(card),
                is_static,
                registered_at: now,
                last_heartbeat: now,
                ttl,
                health: Health::Healthy,
                outstanding: 0,
                latency_ewma_ms: None,
                calls: 0,
                failures: 0,
                breaker: Breaker::new(config.breaker_failures, config.breaker_cooldown),
            });
        drop(state);
        tracing::info!(
            expert = %expert,
            version = %version,
            instance = %instance_id,
            endpoint,
            is_static,
            ttl_ms = ttl.as_millis() as u64,
            "expert instance registered"
        );
        Ok(instance_id)
    }

    /// A lazily connecting channel to `endpoint`.
    fn channel(&self, endpoint: &str) -> Result<Channel, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| invalid(&format!("not a URI ({e})")))?;
        match parsed.uri().scheme_str() {
            Some("http") => {}
            Some("https") => return Err(invalid("TLS (`https://`) is not supported yet")),
            Some(other) => return Err(invalid(&format!("scheme `{other}` is not `http`"))),
            None => return Err(invalid("the scheme is missing")),
        }
        if parsed.uri().host().is_none_or(str::is_empty) {
            return Err(invalid("the host is missing"));
        }
        Ok(parsed
            .connect_timeout(self.inner.config.connect_timeout)
            .tcp_nodelay(true)
            .connect_lazy())
    }

    /// Calls `Describe` on `channel`.
    async fn describe(
        &self,
        endpoint: &str,
        channel: Channel,
    ) -> Result<ExpertCard, RegistryError> {
        let timeout = self.inner.config.control_call_timeout();
        let mut client = ExpertClient::new(channel)
            .max_decoding_message_size(self.inner.config.max_message_bytes);
        let mut request = tonic::Request::new(DescribeRequest {});
        request.set_timeout(timeout);
        let unreachable = |reason: String| RegistryError::Unreachable {
            endpoint: endpoint.to_owned(),
            reason,
        };
        match tokio::time::timeout(timeout, client.describe(request)).await {
            Err(_) => Err(unreachable(format!(
                "`Describe` did not answer within {timeout:?}"
            ))),
            Ok(Err(status)) => Err(unreachable(format!(
                "`Describe` failed: {}",
                status_text(&status)
            ))),
            Ok(Ok(response)) => Ok(response.into_inner()),
        }
    }

    /// Keeps the instance alive; false when the instance is unknown (it
    /// expired or was never registered) and must register again.
    pub fn heartbeat(&self, instance_id: &str) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        for instances in state.experts.values_mut() {
            if let Some(instance) = instances.iter_mut().find(|i| i.id == instance_id) {
                instance.last_heartbeat = now;
                return true;
            }
        }
        false
    }

    /// Removes the instance; false when it is unknown.
    pub fn deregister(&self, instance_id: &str) -> bool {
        let mut state = self.state();
        for (expert, instances) in state.experts.iter_mut() {
            if let Some(position) = instances.iter().position(|i| i.id == instance_id) {
                let removed = instances.remove(position);
                tracing::info!(expert = %expert, instance = %removed.id, endpoint = %removed.endpoint, "expert instance deregistered");
                return true;
            }
        }
        false
    }

    /// Every expert with at least one instance, sorted by name, with the card
    /// of its newest instance and every instance's health and load.
    pub fn list(&self) -> Vec<ExpertInfo> {
        let state = self.state();
        let mut experts = Vec::new();
        for instances in state.experts.values() {
            let Some(newest) = newest(instances) else {
                continue;
            };
            experts.push(ExpertInfo {
                card: Some(newest.card.card.clone()),
                instances: instances.iter().map(Instance::info).collect(),
            });
        }
        experts
    }

    /// Removes dynamic instances whose last heartbeat is older than their
    /// TTL at `now`; returns the removed instance ids.
    pub(crate) fn expire_stale(&self, now: Instant) -> Vec<String> {
        let mut expired = Vec::new();
        let mut state = self.state();
        for (expert, instances) in state.experts.iter_mut() {
            instances.retain(|instance| {
                let silent_for = now.saturating_duration_since(instance.last_heartbeat);
                let keep = instance.is_static || silent_for <= instance.ttl;
                if !keep {
                    tracing::warn!(
                        expert = %expert,
                        instance = %instance.id,
                        endpoint = %instance.endpoint,
                        silent_ms = silent_for.as_millis() as u64,
                        ttl_ms = instance.ttl.as_millis() as u64,
                        "expert instance expired: no heartbeat within its ttl"
                    );
                    expired.push(instance.id.clone());
                }
                keep
            });
        }
        expired
    }

    /// Static endpoints still waiting for a successful `Describe`.
    pub(crate) fn pending_static(&self) -> Vec<String> {
        self.state().pending_static.iter().cloned().collect()
    }

    /// (instance id, channel) of every instance, for health checks.
    pub(crate) fn health_targets(&self) -> Vec<(String, Channel)> {
        let state = self.state();
        let mut targets = Vec::new();
        for instances in state.experts.values() {
            for instance in instances {
                targets.push((instance.id.clone(), instance.channel.clone()));
            }
        }
        targets
    }

    /// Records the outcome of a health check.
    pub(crate) fn set_health(&self, instance_id: &str, health: Health) {
        let mut state = self.state();
        for (expert, instances) in state.experts.iter_mut() {
            let Some(instance) = instances.iter_mut().find(|i| i.id == instance_id) else {
                continue;
            };
            if instance.health != health {
                match &health {
                    Health::Healthy => {
                        tracing::info!(expert = %expert, instance = %instance.id, endpoint = %instance.endpoint, "expert instance is healthy again")
                    }
                    Health::Unhealthy { reason } => {
                        tracing::warn!(expert = %expert, instance = %instance.id, endpoint = %instance.endpoint, reason = %reason, "expert instance is unhealthy")
                    }
                }
                instance.health = health;
            }
            return;
        }
    }

    /// Chooses an instance for one call of `uses` at `now` and counts the call
    /// as outstanding until the returned lease is finished or dropped.
    pub(crate) fn acquire(&self, uses: &SkillRef, now: Instant) -> Result<Lease, StepError> {
        let mut state = self.state();
        let State { experts, rng, .. } = &mut *state;
        let Some(instances) = experts.get_mut(&uses.expert) else {
            let known = known_experts(experts);
            return Err(StepError::new(
                ErrorCode::UnknownSkill,
                format!(
                    "expert `{}` is not registered; known experts: {}; register it or fix `uses: {uses}`",
                    uses.expert,
                    list_or_none(&known)
                ),
            ));
        };
        if instances.is_empty() {
            return Err(StepError::new(
                ErrorCode::ExpertUnavailable,
                format!(
                    "expert `{}` has no registered instance (the last one expired or deregistered); start an instance or wait for it to register again",
                    uses.expert
                ),
            ));
        }
        let offering: Vec<usize> = (0..instances.len())
            .filter(|&i| instances[i].card.skills.contains_key(&uses.skill))
            .collect();
        if offering.is_empty() {
            let skills = newest(instances)
                .map(|instance| instance.card.skill_names())
                .unwrap_or_default();
            return Err(StepError::new(
                ErrorCode::UnknownSkill,
                format!(
                    "expert `{}` has no skill `{}`; its skills: {}; fix `uses: {uses}`",
                    uses.expert,
                    uses.skill,
                    list_or_none(&skills)
                ),
            ));
        }
        let available: Vec<usize> = offering
            .iter()
            .copied()
            .filter(|&i| instances[i].unavailability(now).is_none())
            .collect();
        let loads: Vec<Load<'_>> = available
            .iter()
            .map(|&i| Load {
                outstanding: instances[i].outstanding,
                latency_ewma_ms: instances[i].latency_ewma_ms.unwrap_or(0.0),
                id: &instances[i].id,
            })
            .collect();
        let Some(chosen) = pick_two(&loads, rng).map(|k| available[k]) else {
            let mut states = Vec::new();
            for &i in &offering {
                let instance = &instances[i];
                let why = instance.unavailability(now).unwrap_or_default();
                states.push(format!(
                    "instance `{}` at `{}`: {why}",
                    instance.id, instance.endpoint
                ));
            }
            return Err(StepError::new(
                ErrorCode::ExpertUnavailable,
                format!(
                    "no instance of expert `{}` can take calls to `{}` now: {}; retry later, or check the expert's instances and their health",
                    uses.expert,
                    uses.skill,
                    states.join("; ")
                ),
            ));
        };
        let instance = &mut instances[chosen];
        instance.outstanding += 1;
        let probe = instance.breaker.on_dispatch(now);
        Ok(Lease {
            inner: self.inner.clone(),
            instance_id: instance.id.clone(),
            endpoint: instance.endpoint.clone(),
            channel: instance.channel.clone(),
            card: instance.card.clone(),
            probe,
            finished: false,
        })
    }
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `apply` to the instance `instance_id` if it is still registered.
    fn with_instance(&self, instance_id: &str, apply: impl FnOnce(&str, &mut Instance)) {
        let mut state = self.lock_state();
        for (expert, instances) in state.experts.iter_mut() {
            if let Some(instance) = instances.iter_mut().find(|i| i.id == instance_id) {
                apply(expert, instance);
                return;
            }
        }
    }
}

fn known_experts(experts: &BTreeMap<String, Vec<Instance>>) -> Vec<String> {
    experts
        .iter()
        .filter(|(_, instances)| !instances.is_empty())
        .map(|(name, _)| name.clone())
        .collect()
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// === impl SkillCatalog for Registry ===

impl SkillCatalog for Registry {
    fn skill(&self, uses: &SkillRef) -> Option<SkillInfo> {
        let state = self.state();
        let instance = newest(state.experts.get(&uses.expert)?)?;
        let schemas = instance.card.skills.get(&uses.skill)?;
        let skill = instance
            .card
            .card
            .skills
            .iter()
            .find(|skill| skill.name == uses.skill)?;
        Some(SkillInfo {
            uses: uses.clone(),
            description: skill.description.clone(),
            consumes: skill.consumes.clone(),
            produces: skill.produces.clone(),
            input_schema: schemas.input.clone(),
            output_schema: schemas.output.clone(),
            cost_hint: skill.cost_hint,
        })
    }

    fn expert_names(&self) -> Vec<String> {
        known_experts(&self.state().experts)
    }

    fn skill_names(&self, expert: &str) -> Vec<String> {
        let state = self.state();
        state
            .experts
            .get(expert)
            .and_then(|instances| newest(instances))
            .map(|instance| instance.card.skill_names())
            .unwrap_or_default()
    }

    fn skill_stats(&self, uses: &SkillRef) -> SkillStats {
        let state = self.state();
        let Some(instances) = state.experts.get(&uses.expert) else {
            return SkillStats {
                latency_ms: None,
                healthy: false,
            };
        };
        let healthy: Vec<&Instance> = instances
            .iter()
            .filter(|instance| instance.health() == InstanceHealth::Healthy)
            .collect();
        // The best healthy instance is where the balancer sends calls.
        let latency_ms = healthy
            .iter()
            .filter_map(|instance| instance.latency_ewma_ms)
            .min_by(f64::total_cmp);
        SkillStats {
            latency_ms,
            healthy: !healthy.is_empty(),
        }
    }
}

// === impl Lease ===

/// How a call ended, as far as the instance's health and load are concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CallOutcome {
    /// A valid answer, after `latency`.
    Success { latency: Duration },
    /// The instance answered, but with an error of its own or an invalid
    /// output: it is alive, the call still failed.
    Answered,
    /// The instance could not serve the call (unreachable, unavailable,
    /// overloaded, too slow): counts toward its circuit breaker.
    InstanceFailure,
}

/// One call's hold on an instance: counted as outstanding until finished or
/// dropped (a dropped half-open probe lets the next call probe).
#[derive(Debug)]
pub(crate) struct Lease {
    inner: Arc<Inner>,
    pub(crate) instance_id: String,
    pub(crate) endpoint: String,
    pub(crate) channel: Channel,
    pub(crate) card: Arc<CardInfo>,
    probe: bool,
    finished: bool,
}

impl Lease {
    /// Records the call's outcome on the instance at `now`.
    pub(crate) fn finish(mut self, outcome: CallOutcome, now: Instant) {
        self.finished = true;
        self.inner.with_instance(&self.instance_id, |expert, instance| {
            instance.outstanding = instance.outstanding.saturating_sub(1);
            instance.calls += 1;
            let was_tripped = instance.breaker.is_tripped();
            match outcome {
                CallOutcome::Success { latency } => {
                    let sample_ms = latency.as_secs_f64() * 1000.0;
                    instance.latency_ewma_ms = Some(update_ewma(instance.latency_ewma_ms, sample_ms));
                    instance.breaker.on_answer();
                }
                CallOutcome::Answered => {
                    instance.failures += 1;
                    instance.breaker.on_answer();
                }
                CallOutcome::InstanceFailure => {
                    instance.failures += 1;
                    if instance.breaker.on_failure(now) {
                        tracing::warn!(expert = %expert, instance = %instance.id, endpoint = %instance.endpoint, "circuit breaker opened");
                    }
                }
            }
            if was_tripped && !instance.breaker.is_tripped() {
                tracing::info!(expert = %expert, instance = %instance.id, endpoint = %instance.endpoint, "circuit breaker closed");
            }
        });
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let probe = self.probe;
        self.inner.with_instance(&self.instance_id, |_, instance| {
            instance.outstanding = instance.outstanding.saturating_sub(1);
            if probe {
                instance.breaker.on_probe_abandoned();
            }
        });
    }
}
