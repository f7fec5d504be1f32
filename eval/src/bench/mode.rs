//! The modes of the peer benchmark mapped to synod, and one run in each:
//! `direct` (the same calls hand-written, no orchestrator: the ideal),
//! `none` (executor with a store that keeps nothing), `memory` (executor
//! with the in-memory event store), `sqlite` (not available yet).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};
use synod_executor::{ExecutorConfig, Invoker, execute};
use synod_planner::{Plan, PlanStep};
use synod_store::{
    EventStream, Lease, MemoryStore, OutboxEntry, OutboxIntent, OutboxState, RunRecord, RunStore,
    SqliteStore, StoreError,
};
use synod_types::{RunEvent, RunEventKind, RunId, RunStatus, SkillRef, StepId};
use synod_workflow::ValueTemplate;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::bench::expert::NodeBody;
use crate::bench::transport::{BENCH_EXPERT, invoke_direct};
use crate::bench::workload::{Execution, Workload, layers_of};

/// Names of the modes, in report order.
pub const MODES: [&str; 4] = ["direct", "none", "memory", "sqlite"];

/// The `sqlite` mode's store, for the report.
pub const SQLITE_STORE: &str = "executor + synod_store::SqliteStore with its defaults \
     (WAL, synchronous=FULL: every append is a transaction fsynced before it returns), \
     one file in a fresh temp dir";

/// A mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The same expert calls, `join_all` per layer, no orchestrator.
    Direct,
    /// The executor with [`NullStore`]: events are produced, then dropped.
    None,
    /// The executor with [`MemoryStore`]: every event of every run is kept.
    Memory,
    /// The executor with [`SqliteStore`] (on disk, fsync per event).
    Sqlite,
}

impl Mode {
    /// Its name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::None => "none",
            Mode::Memory => "memory",
            Mode::Sqlite => "sqlite",
        }
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(Mode::Direct),
            "none" => Ok(Mode::None),
            "memory" => Ok(Mode::Memory),
            "sqlite" => Ok(Mode::Sqlite),
            other => Err(format!(
                "unknown mode `{other}`; known modes: {}",
                MODES.join(", ")
            )),
        }
    }
}

/// A [`RunStore`] that keeps nothing: `append` hands the event back with a
/// sequence number and drops it. Runs under it cannot be watched, listed
/// or claimed.
#[derive(Debug, Default)]
pub struct NullStore;

impl NullStore {
    /// What every method beyond running a plan answers.
    fn keeps_nothing(what: &str) -> StoreError {
        StoreError::Backend(format!(
            "the benchmark's null store keeps nothing, so it has no {what}"
        ))
    }
}

#[async_trait::async_trait]
impl RunStore for NullStore {
    async fn create_run_with_spec(
        &self,
        _record: RunRecord,
        _spec: serde_json::Value,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn run_spec(&self, _run_id: RunId) -> Result<Option<serde_json::Value>, StoreError> {
        Err(Self::keeps_nothing("run specs"))
    }

    async fn append(&self, run_id: RunId, kind: RunEventKind) -> Result<RunEvent, StoreError> {
        Ok(RunEvent {
            run_id,
            seq: 0,
            time: Utc::now(),
            kind,
        })
    }

    async fn append_leased(
        &self,
        run_id: RunId,
        _owner: &str,
        kind: RunEventKind,
    ) -> Result<RunEvent, StoreError> {
        self.append(run_id, kind).await
    }

    async fn events(&self, _run_id: RunId, _after_seq: u64) -> Result<Vec<RunEvent>, StoreError> {
        Ok(Vec::new())
    }

    async fn subscribe(&self, _run_id: RunId, _after_seq: u64) -> Result<EventStream, StoreError> {
        Ok(Box::pin(futures::stream::empty()))
    }

    async fn get_run(&self, _run_id: RunId) -> Result<Option<RunRecord>, StoreError> {
        Ok(None)
    }

    async fn list_runs(&self, _limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        Ok(Vec::new())
    }

    async fn list_unfinished(&self, _limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        Ok(Vec::new())
    }

    async fn claim_runs(
        &self,
        _owner: &str,
        _lease: Duration,
        _limit: usize,
    ) -> Result<Vec<Lease>, StoreError> {
        Ok(Vec::new())
    }

    async fn claim_run(
        &self,
        _run_id: RunId,
        _owner: &str,
        _lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        Err(Self::keeps_nothing("leases"))
    }

    async fn renew_lease(
        &self,
        _run_id: RunId,
        _owner: &str,
        _lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        Ok(None)
    }

    async fn release_lease(&self, _run_id: RunId, _owner: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn prune(&self, _ended_before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn record_intent(&self, _intent: OutboxIntent) -> Result<OutboxEntry, StoreError> {
        Err(Self::keeps_nothing("outbox"))
    }

    async fn complete_delivery(
        &self,
        _run_id: RunId,
        _binding: &str,
        _state: OutboxState,
        _attempts: u32,
        _outcome: Value,
    ) -> Result<OutboxEntry, StoreError> {
        Err(Self::keeps_nothing("outbox"))
    }

    async fn outbox(&self, _run_id: RunId) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(Vec::new())
    }
}

/// The plan of a workload: one step per execution, input
/// `{"node": <node>, "n_inputs": <outputs available>}`, needs as in the shape.
pub fn build_plan(workload: &Workload, skill: &str) -> anyhow::Result<Plan> {
    let steps: Vec<PlanStep> = workload
        .executions()
        .into_iter()
        .map(|e| PlanStep {
            id: StepId::new(e.id),
            uses: SkillRef::new(BENCH_EXPERT, skill),
            input: ValueTemplate::Literal(json!({"node": e.node, "n_inputs": e.n_inputs})),
            needs: e.needs.into_iter().map(StepId::new).collect(),
            timeout: None,
            retry: None,
        })
        .collect();
    let problems = Plan::validate(&steps, None);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        bail!(
            "the plan of `{}` is invalid: {}",
            workload.name,
            list.join("; ")
        );
    }
    match Plan::from_checked_steps(workload.name.clone(), steps) {
        Some(plan) => Ok(plan),
        None => bail!("the plan of `{}` is invalid", workload.name),
    }
}

/// How the `direct` baseline calls an expert.
#[derive(Debug, Clone)]
pub enum DirectCaller {
    /// The node body, in process.
    Local(Arc<NodeBody>),
    /// `Invoke` of the SDK expert's `skill` through the generated client.
    Grpc {
        /// The connection.
        channel: Channel,
        /// The skill (expert kind).
        skill: &'static str,
    },
}

impl DirectCaller {
    async fn call(&self, node: &str, n_inputs: u64) -> anyhow::Result<Value> {
        match self {
            DirectCaller::Local(body) => body.call(node, n_inputs).await,
            DirectCaller::Grpc { channel, skill } => {
                invoke_direct(channel, skill, node, n_inputs).await
            }
        }
    }
}

/// Starts one run and yields its outputs (`{"<step id>": <output>, …}`).
pub type RunFn = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<Value>> + Send + Sync>;

/// A `direct` run: layer by layer, `join_all` within a layer.
pub fn direct_run_fn(workload: &Workload, caller: DirectCaller) -> RunFn {
    let executions = workload.executions();
    let layers: Arc<Vec<Vec<(String, String, u64)>>> = Arc::new(
        layers_of(&executions)
            .into_iter()
            .map(|layer| {
                layer
                    .into_iter()
                    .map(|e: &Execution| (e.id.clone(), e.node.clone(), e.n_inputs as u64))
                    .collect()
            })
            .collect(),
    );
    Arc::new(move || {
        let layers = Arc::clone(&layers);
        let caller = caller.clone();
        Box::pin(async move {
            let mut outputs = Map::new();
            for layer in layers.iter() {
                if let [(id, node, n)] = layer.as_slice() {
                    outputs.insert(id.clone(), caller.call(node, *n).await?);
                } else {
                    let outs =
                        join_all(layer.iter().map(|(_, node, n)| caller.call(node, *n))).await;
                    for ((id, _, _), out) in layer.iter().zip(outs) {
                        outputs.insert(id.clone(), out?);
                    }
                }
            }
            Ok(Value::Object(outputs))
        })
    })
}

/// An orchestrated run: create the run record, `execute` the plan.
pub fn executor_run_fn(
    plan: Arc<Plan>,
    invoker: Arc<dyn Invoker>,
    store: Arc<dyn RunStore>,
) -> RunFn {
    let inputs = json!({"input": "q"});
    Arc::new(move || {
        let (plan, invoker, store, inputs) = (
            Arc::clone(&plan),
            Arc::clone(&invoker),
            Arc::clone(&store),
            inputs.clone(),
        );
        Box::pin(async move {
            let run_id = RunId::new();
            store
                .create_run(RunRecord::pending(
                    run_id,
                    plan.name.clone(),
                    inputs.clone(),
                ))
                .await?;
            let outcome = execute(
                run_id,
                plan,
                inputs,
                ExecutorConfig::default(),
                invoker,
                store,
                CancellationToken::new(),
            )
            .await?;
            ensure!(
                outcome.status == RunStatus::Succeeded,
                "run {run_id} ended {}: {}",
                outcome.status.as_str(),
                outcome.result
            );
            Ok(outcome.result)
        })
    })
}

/// The store of a mode (`None` for `direct`); `sqlite` opens
/// `<scratch>/runs.sqlite`.
pub async fn store_for(mode: Mode, scratch: &Path) -> anyhow::Result<Option<Arc<dyn RunStore>>> {
    match mode {
        Mode::Direct => Ok(None),
        Mode::None => Ok(Some(Arc::new(NullStore))),
        Mode::Memory => Ok(Some(Arc::new(MemoryStore::new()))),
        Mode::Sqlite => {
            let path = scratch.join(SQLITE_FILE);
            let store = SqliteStore::open(&path)
                .await
                .with_context(|| format!("cannot open the SQLite store {}", path.display()))?;
            Ok(Some(Arc::new(store)))
        }
    }
}

/// File name of the `sqlite` mode's database in the scratch directory.
pub const SQLITE_FILE: &str = "runs.sqlite";

/// Bytes of the SQLite database and its WAL in `scratch`.
pub fn sqlite_bytes(scratch: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(scratch.join(format!("{SQLITE_FILE}{suffix}"))).ok())
        .map(|m| m.len())
        .sum()
}

/// Checks a run's outputs like the peer benchmark: one output per node
/// execution, every output `ok`, and for a loop `max_revisions + 1` rounds
/// of each loop node.
pub fn check_result(workload: &Workload, outputs: &Value) -> anyhow::Result<()> {
    let map = outputs.as_object().map_or(&Map::new(), |m| m).clone();
    ensure!(
        map.len() == workload.node_executions,
        "{}: {} outputs, expected {}",
        workload.name,
        map.len(),
        workload.node_executions
    );
    if let Some((id, bad)) = map.iter().find(|(_, v)| v["ok"] != Value::Bool(true)) {
        bail!("{}: output of `{id}` is not ok: {bad}", workload.name);
    }
    if let Some(rule) = &workload.loop_rule {
        let rounds = map.keys().filter(|k| k.starts_with(&rule.node)).count();
        ensure!(
            rounds == rule.max_revisions + 1,
            "{}: loop ran {rounds} times, expected {}",
            workload.name,
            rule.max_revisions + 1
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::expert::ExpertKind;
    use crate::bench::transport::LocalInvoker;

    #[tokio::test]
    async fn every_mode_runs_every_shape_once_per_node() {
        let scratch =
            std::env::temp_dir().join(format!("synod-eval-mode-test-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        for name in crate::bench::workload::SHAPES {
            let workload = Workload::builtin(name).unwrap();
            let body = NodeBody::new(ExpertKind::Noop, None, 0).unwrap();
            let plan = Arc::new(build_plan(&workload, "noop").unwrap());
            let invoker: Arc<dyn Invoker> = Arc::new(LocalInvoker::new(Arc::clone(&body)));
            let mut runs = vec![direct_run_fn(
                &workload,
                DirectCaller::Local(Arc::clone(&body)),
            )];
            for mode in [Mode::None, Mode::Memory, Mode::Sqlite] {
                let store = store_for(mode, &scratch).await.unwrap().unwrap();
                runs.push(executor_run_fn(
                    Arc::clone(&plan),
                    Arc::clone(&invoker),
                    store,
                ));
            }
            for run in &runs {
                check_result(&workload, &run().await.unwrap()).unwrap();
            }
            assert_eq!(body.calls(), 4 * workload.node_executions as u64, "{name}");
        }
        assert!(sqlite_bytes(&scratch) > 0);
        assert!(store_for(Mode::Direct, &scratch).await.unwrap().is_none());
        std::fs::remove_dir_all(&scratch).unwrap();
    }

    #[test]
    fn check_result_catches_missing_outputs() {
        let workload = Workload::builtin("reflect_loop").unwrap();
        assert!(check_result(&workload, &json!({"generate1": {"ok": true}})).is_err());
    }
}
