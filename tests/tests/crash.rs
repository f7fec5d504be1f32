//! Crash recovery with real processes: the orchestrator runs as a child
//! process on a SQLite file and is killed with SIGKILL several times while
//! 100 runs are in flight, then restarted. Every run must complete, no step
//! may be executed twice at the expert, every run's event log must be
//! gap-free with each step succeeding once, and each run's binding must
//! reach a real local HTTP receiver under one idempotency key that the
//! receiver applies once (resends after a kill carry the same key).
//!
//! The child is this test binary itself, re-run with `--ignored --exact
//! crash::crash_child_orchestrator` and the settings in environment
//! variables, so the test needs no separately built `synod` binary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use synod_expert_sdk::{ExpertServer, SkillDefinition, SkillError, SkillOutput, skill_fn};
use synod_integration_tests::experts::{object_schema, serve};
use synod_integration_tests::receiver::Receiver;
use synod_integration_tests::{TempDir, fast_config, free_addr};
use synod_proto::orchestrator::runs_client::RunsClient;
use synod_proto::orchestrator::{ListRunsRequest, RunStatus, StartRunRequest, start_run_request};
use synod_store::{PostgresConfig, PostgresStore, RunStore};
use synod_types::{RunEventKind, RunId};
use tokio::process::{Child, Command};

const RUNS: usize = 100;
const KILLS: usize = 3;
const CHILD_DB: &str = "SYNOD_CRASH_CHILD_DB";
const CHILD_GRPC: &str = "SYNOD_CRASH_CHILD_GRPC";
const CHILD_EXPERT: &str = "SYNOD_CRASH_CHILD_EXPERT";
const CHILD_REPLICA: &str = "SYNOD_CRASH_CHILD_REPLICA";
const CHILD_PG_SCHEMA: &str = "SYNOD_CRASH_CHILD_PG_SCHEMA";
const CHILD_LEASE_MS: &str = "SYNOD_CRASH_CHILD_LEASE_MS";
const CHILD_ALLOW: &str = "SYNOD_CRASH_CHILD_ALLOW";

/// How a child orchestrator is set up.
#[derive(Debug, Clone)]
struct ChildSettings {
    /// Store URL.
    db: String,
    /// The expert's endpoint (registered as static).
    expert: String,
    /// Replica id in run leases.
    replica: String,
    /// PostgreSQL schema to keep the tables in.
    pg_schema: Option<String>,
    /// Lease duration.
    lease: Duration,
    /// The one destination bindings may reach (the receiver's origin).
    allow: String,
}

/// The workflow of every run; `RECEIVER` stands for the receiver's origin.
const WORKFLOW: &str = r#"
name: crash-chain
inputs:
  n: { type: number }
steps:
  a:
    uses: crash/work
    with: { value: "${{ inputs.n }}" }
  b:
    needs: [a]
    uses: crash/work
    with: { value: "${{ steps.a.output.value }}" }
  c:
    needs: [b]
    uses: crash/work
    with: { value: "${{ steps.b.output.value }}" }
bindings:
  record:
    needs: [c]
    http:
      method: POST
      url: "RECEIVER/apply"
      body:
        n: "${{ inputs.n }}"
        value: "${{ steps.c.output.value }}"
"#;

/// An idempotent expert, as experts behind an at-least-once orchestrator
/// should be: `work` adds 1 to `value` after 150–350 ms, at most once per run
/// and step. A call for a (run, step) already done, or in progress (its
/// caller was killed), gets that execution's answer instead of a new one.
#[derive(Debug, Default)]
struct Ledger {
    /// (run, step) -> the single execution's answer, once done.
    answers: HashMap<(String, String), Arc<tokio::sync::OnceCell<Value>>>,
    /// (run, step) -> completed executions.
    executions: HashMap<(String, String), u32>,
    /// Calls answered by an execution they did not start.
    replays: u32,
}

fn idempotent_expert(ledger: Arc<Mutex<Ledger>>) -> synod_expert_sdk::ExpertServerBuilder {
    let work = SkillDefinition::new("work")
        .input_schema(object_schema(json!({ "value": { "type": "number" } })))
        .output_schema(object_schema(json!({ "value": { "type": "number" } })));
    ExpertServer::builder("crash", "0.1.0").skill(skill_fn(work, move |ctx, input| {
        let ledger = Arc::clone(&ledger);
        async move {
            let key = (ctx.run_id().to_owned(), ctx.step_id().to_owned());
            let value = input["value"]
                .as_f64()
                .ok_or_else(|| SkillError::invalid_input("/value", "expected a number"))?;
            let cell = Arc::clone(
                ledger
                    .lock()
                    .unwrap()
                    .answers
                    .entry(key.clone())
                    .or_default(),
            );
            let mut executed = false;
            let answer = cell
                .get_or_init(|| async {
                    tokio::time::sleep(Duration::from_millis(150 + fastrand::u64(0..200))).await;
                    executed = true;
                    json!({ "value": value + 1.0 })
                })
                .await
                .clone();
            let mut ledger = ledger.lock().unwrap();
            if executed {
                *ledger.executions.entry(key).or_default() += 1;
            } else {
                ledger.replays += 1;
            }
            Ok(SkillOutput::new(answer))
        }
    }))
}

/// Starts the orchestrator child on `db`, returning it and its gRPC URL
/// once it answers.
async fn start_child(settings: &ChildSettings) -> anyhow::Result<(Child, String)> {
    let grpc = free_addr()?;
    let mut command = Command::new(std::env::current_exe()?);
    if let Some(schema) = &settings.pg_schema {
        command.env(CHILD_PG_SCHEMA, schema);
    }
    let child = command
        .args([
            "--ignored",
            "--exact",
            "crash::crash_child_orchestrator",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &settings.db)
        .env(CHILD_GRPC, grpc.to_string())
        .env(CHILD_EXPERT, &settings.expert)
        .env(CHILD_REPLICA, &settings.replica)
        .env(CHILD_LEASE_MS, settings.lease.as_millis().to_string())
        .env(CHILD_ALLOW, &settings.allow)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the orchestrator child process")?;
    let url = format!("http://{grpc}");
    for _ in 0..300 {
        if let Ok(client) = RunsClient::connect(url.clone()).await {
            drop(client);
            return Ok((child, url));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the orchestrator child did not listen on {grpc} within 15 s")
}

/// Not a test on its own: the orchestrator process of
/// `killed_orchestrators_resume_every_run_without_repeating_steps`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of crash::killed_orchestrators_resume_every_run_without_repeating_steps"]
async fn crash_child_orchestrator() -> anyhow::Result<()> {
    let (Ok(db), Ok(grpc), Ok(expert)) = (
        std::env::var(CHILD_DB),
        std::env::var(CHILD_GRPC),
        std::env::var(CHILD_EXPERT),
    ) else {
        return Ok(()); // run by hand without the parent: nothing to do
    };
    let store: Arc<dyn RunStore> = match std::env::var(CHILD_PG_SCHEMA) {
        Ok(schema) => {
            let mut postgres = PostgresConfig::new(&db);
            postgres.schema = Some(schema);
            Arc::new(PostgresStore::connect_with(postgres).await?)
        }
        Err(_) => synod_store::open(&db).await?,
    };
    let mut config = fast_config();
    config.grpc_addr = grpc.parse()?;
    config.static_experts = vec![expert];
    config.allowed_destinations = std::env::var(CHILD_ALLOW).into_iter().collect();
    config.replica_id = std::env::var(CHILD_REPLICA).ok();
    if let Ok(ms) = std::env::var(CHILD_LEASE_MS) {
        config.lease = Duration::from_millis(ms.parse()?);
    }
    let _orchestrator = synod_server::app::Orchestrator::start_with_store(config, store).await?;
    // Serve until the parent kills this process.
    std::future::pending::<()>().await;
    Ok(())
}

/// Starts `count` runs of [`WORKFLOW`], its binding aimed at `receiver`,
/// with inputs `n = first..`, returning run id -> n.
async fn start_runs(
    url: &str,
    receiver: &Receiver,
    first: usize,
    count: usize,
) -> anyhow::Result<HashMap<String, usize>> {
    let workflow = WORKFLOW.replace("RECEIVER", &receiver.origin());
    let mut client = RunsClient::connect(url.to_owned()).await?;
    let mut inputs_of = HashMap::new();
    for n in first..first + count {
        let inputs = json!({ "n": n });
        let run_id = client
            .start_run(StartRunRequest {
                source: Some(start_run_request::Source::WorkflowYaml(workflow.clone())),
                inputs: Some(synod_proto::json::json_to_struct(&inputs)?),
                file_name: "crash-chain.yaml".to_owned(),
                goal_type: String::new(),
                planner: String::new(),
            })
            .await?
            .into_inner()
            .run_id;
        inputs_of.insert(run_id, n);
    }
    Ok(inputs_of)
}

/// Polls the orchestrator at `url` until `total` runs succeeded; fails on
/// a run that ended otherwise or after `within`.
async fn wait_all_succeeded(url: &str, total: usize, within: Duration) -> anyhow::Result<()> {
    let mut client = RunsClient::connect(url.to_owned()).await?;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let runs = client
            .list_runs(ListRunsRequest {
                limit: total as u32 * 2,
            })
            .await?
            .into_inner()
            .runs;
        let done = runs
            .iter()
            .filter(|run| run.status == RunStatus::Succeeded as i32)
            .count();
        if done == total {
            return Ok(());
        }
        let ended_badly: Vec<_> = runs
            .iter()
            .filter(|run| {
                run.status == RunStatus::Failed as i32 || run.status == RunStatus::Cancelled as i32
            })
            .map(|run| &run.run_id)
            .collect();
        if !ended_badly.is_empty() {
            bail!("runs ended without succeeding: {ended_badly:?}");
        }
        if tokio::time::Instant::now() > deadline {
            bail!("only {done} of {total} runs succeeded within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the durable record of every run and the expert's ledger; returns
/// how many runs were resumed or taken over.
async fn check_record(
    store: &dyn RunStore,
    inputs_of: &HashMap<String, usize>,
    ledger: &Mutex<Ledger>,
) -> anyhow::Result<usize> {
    let mut resumed_runs = 0;
    for (run_id, n) in inputs_of {
        let run_id: RunId = run_id.parse()?;
        let events = store.events(run_id, 0).await?;
        for (index, event) in events.iter().enumerate() {
            assert_eq!(
                event.seq,
                index as u64 + 1,
                "run {run_id}: gap or duplicate"
            );
        }
        assert_eq!(
            events.iter().filter(|e| e.kind.is_terminal()).count(),
            1,
            "run {run_id}: one terminal event"
        );
        if events
            .iter()
            .any(|e| matches!(e.kind, RunEventKind::RunResumed { .. }))
        {
            resumed_runs += 1;
        }
        for step in ["a", "b", "c"] {
            let succeeded_at: Vec<usize> = events
                .iter()
                .enumerate()
                .filter(|(_, e)| matches!(&e.kind, RunEventKind::StepSucceeded { step: s, .. } if s.as_str() == step))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(
                succeeded_at.len(),
                1,
                "run {run_id}: step {step} succeeded once"
            );
            let restarted_after = events[succeeded_at[0]..].iter().any(
                |e| matches!(&e.kind, RunEventKind::StepStarted { step: s, .. } if s.as_str() == step),
            );
            assert!(
                !restarted_after,
                "run {run_id}: {step} was started again after it succeeded"
            );
        }
        let record = store.get_run(run_id).await?.context("run record")?;
        assert_eq!(
            record.result.context("result")?["c"]["value"].as_f64(),
            Some(*n as f64 + 3.0),
            "run {run_id}: a + b + c each added 1"
        );
    }
    let ledger = ledger.lock().unwrap();
    assert_eq!(
        ledger.executions.len(),
        inputs_of.len() * 3,
        "every step executed"
    );
    let repeated: Vec<_> = ledger
        .executions
        .iter()
        .filter(|(_, count)| **count != 1)
        .collect();
    assert!(repeated.is_empty(), "executed more than once: {repeated:?}");
    Ok(resumed_runs)
}

/// Checks that each run's binding reached `receiver` under the run's default
/// idempotency key with the run's result, and that the durable record
/// holds one delivery per run; returns how many requests were resends of a
/// key already received (a kill between sending and recording the
/// delivery), which the receiver applies once by that key.
async fn check_deliveries(
    store: &dyn RunStore,
    receiver: &Receiver,
    inputs_of: &HashMap<String, usize>,
) -> anyhow::Result<usize> {
    let mut by_key: HashMap<String, Vec<Value>> = HashMap::new();
    for request in receiver.received() {
        let key = request
            .headers
            .get("idempotency-key")
            .context("a binding request without an Idempotency-Key")?
            .to_str()?
            .to_owned();
        by_key.entry(key).or_default().push(request.body);
    }
    for (run_id, n) in inputs_of {
        let key = format!("synod-{run_id}-record");
        let bodies = by_key
            .get(&key)
            .with_context(|| format!("run {run_id}: its binding never reached the receiver"))?;
        for body in bodies {
            let sent = (body["n"].as_f64(), body["value"].as_f64());
            assert_eq!(
                sent,
                (Some(*n as f64), Some(*n as f64 + 3.0)),
                "run {run_id}: every send of {key} carries the run's result, got {body}"
            );
        }
        let events = store.events(run_id.parse()?, 0).await?;
        let delivered = events
            .iter()
            .filter(|e| matches!(&e.kind, RunEventKind::BindingDelivered { binding, .. } if binding == "record"))
            .count();
        assert_eq!(delivered, 1, "run {run_id}: one BindingDelivered");
    }
    assert_eq!(
        by_key.len(),
        inputs_of.len(),
        "one idempotency key per run, no other requests: {:?}",
        by_key.keys().collect::<Vec<_>>()
    );
    Ok(by_key.values().map(|bodies| bodies.len() - 1).sum())
}

/// Waits (at most 20 s) until some run is running, then returns how many
/// runs are unfinished.
async fn unfinished_once_running(url: &str) -> anyhow::Result<usize> {
    let mut client = RunsClient::connect(url.to_owned()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let runs = client
            .list_runs(ListRunsRequest { limit: 1000 })
            .await?
            .into_inner()
            .runs;
        let status_count = |status: RunStatus| {
            runs.iter()
                .filter(|run| run.status == status as i32)
                .count()
        };
        let running = status_count(RunStatus::Running);
        if running > 0 || tokio::time::Instant::now() > deadline {
            return Ok(running + status_count(RunStatus::Pending));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn kill(child: &mut Child) -> anyhow::Result<()> {
    child.start_kill()?; // SIGKILL
    child.wait().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_orchestrators_resume_every_run_without_repeating_steps() -> anyhow::Result<()> {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let expert = serve(idempotent_expert(Arc::clone(&ledger))).await?;
    let receiver = Receiver::start(&[]).await?;
    let dir = TempDir::new()?;
    // The same replica id across restarts: it takes its runs back at once.
    let settings = ChildSettings {
        db: format!("sqlite://{}", dir.path().join("crash.db").display()),
        expert: expert.endpoint().to_owned(),
        replica: "crash-test".to_owned(),
        pg_schema: None,
        lease: Duration::from_secs(10),
        allow: receiver.origin(),
    };

    let (mut child, url) = start_child(&settings).await?;
    let inputs_of = start_runs(&url, &receiver, 0, RUNS).await?;
    assert!(
        unfinished_once_running(&url).await? > 0,
        "runs finished too fast to be interrupted"
    );
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(100 + fastrand::u64(0..300))).await;
        kill(&mut child).await?;
        (child, _) = start_child(&settings).await?;
    }
    // The last orchestrator finishes every run.
    kill(&mut child).await?;
    let (mut child, url) = start_child(&settings).await?;
    wait_all_succeeded(&url, RUNS, Duration::from_secs(60)).await?;
    kill(&mut child).await?;

    // The durable record, read straight from the file.
    let store = synod_store::open(&settings.db).await?;
    let resumed_runs = check_record(store.as_ref(), &inputs_of, &ledger).await?;
    let resends = check_deliveries(store.as_ref(), &receiver, &inputs_of).await?;
    assert!(
        resumed_runs > 0,
        "the kills should have interrupted some runs; none was resumed"
    );
    eprintln!(
        "crash test: {resumed_runs} of {RUNS} runs resumed after {KILLS} kills; {} calls answered from the expert's record; {resends} binding resends deduplicated by idempotency key",
        ledger.lock().unwrap().replays
    );
    Ok(())
}

/// Two replicas on one PostgreSQL database; one is killed mid-run and the
/// other takes its runs over once their leases expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_runs_are_taken_over_on_postgresql() -> anyhow::Result<()> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipped: DATABASE_URL is not set (.ci/run sets it to the machine's PostgreSQL)");
        return Ok(());
    };
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let expert = serve(idempotent_expert(Arc::clone(&ledger))).await?;
    let receiver = Receiver::start(&[]).await?;
    let schema = format!("synod_replicas_{}", RunId::new().0.simple());
    let settings = |replica: &str| ChildSettings {
        db: url.clone(),
        expert: expert.endpoint().to_owned(),
        replica: replica.to_owned(),
        pg_schema: Some(schema.clone()),
        lease: Duration::from_millis(1500),
        allow: receiver.origin(),
    };
    let outcome = async {
        let (mut a, url_a) = start_child(&settings("replica-a")).await?;
        let (mut b, url_b) = start_child(&settings("replica-b")).await?;
        let mut inputs_of = start_runs(&url_a, &receiver, 0, 20).await?;
        inputs_of.extend(start_runs(&url_b, &receiver, 20, 20).await?);
        // Kill a while it drives some of its runs.
        let left_unfinished = unfinished_once_running(&url_a).await?;
        kill(&mut a).await?;
        assert!(left_unfinished > 0, "a finished before it was killed");
        wait_all_succeeded(&url_b, 40, Duration::from_secs(30)).await?;
        kill(&mut b).await?;
        let mut postgres = PostgresConfig::new(&url);
        postgres.schema = Some(schema.clone());
        let store = PostgresStore::connect_with(postgres).await?;
        let resumed = check_record(&store, &inputs_of, &ledger).await?;
        check_deliveries(&store, &receiver, &inputs_of).await?;
        eprintln!(
            "replica test: {left_unfinished} runs unfinished when a was killed, all completed by b ({resumed} resumed mid-way)"
        );
        anyhow::Ok(())
    }
    .await;
    PostgresStore::drop_schema(&url, &schema).await?;
    outcome
}
