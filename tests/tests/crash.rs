//! Crash recovery with real processes: the orchestrator runs as a child
//! process on a SQLite file and is killed with SIGKILL several times while
//! 100 runs are in flight, then restarted. Every run must complete, no step
//! may be executed twice at the expert, and every run's event log must be
//! gap-free with each step succeeding once.
//!
//! The child is this test binary itself, re-run with `--ignored --exact
//! crash::crash_child_orchestrator` and the settings in environment
//! variables, so the test needs no separately built `synod` binary.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use synod_expert_sdk::{ExpertServer, SkillDefinition, SkillError, SkillOutput, skill_fn};
use synod_integration_tests::experts::{object_schema, serve};
use synod_integration_tests::{TempDir, fast_config};
use synod_proto::orchestrator::runs_client::RunsClient;
use synod_proto::orchestrator::{ListRunsRequest, RunStatus, StartRunRequest, start_run_request};
use synod_types::{RunEventKind, RunId};
use tokio::process::{Child, Command};

const RUNS: usize = 100;
const KILLS: usize = 3;
const CHILD_DB: &str = "SYNOD_CRASH_CHILD_DB";
const CHILD_GRPC: &str = "SYNOD_CRASH_CHILD_GRPC";
const CHILD_EXPERT: &str = "SYNOD_CRASH_CHILD_EXPERT";

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

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Starts the orchestrator child on `db`, returning it and its gRPC URL
/// once it answers.
async fn start_child(db: &str, expert: &str) -> anyhow::Result<(Child, String)> {
    let grpc = free_port()?;
    let child = Command::new(std::env::current_exe()?)
        .args([
            "--ignored",
            "--exact",
            "crash::crash_child_orchestrator",
            "--test-threads=1",
        ])
        .env(CHILD_DB, db)
        .env(CHILD_GRPC, grpc.to_string())
        .env(CHILD_EXPERT, expert)
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
    let store = synod_store::open(&db).await?;
    let mut config = fast_config();
    config.grpc_addr = grpc.parse()?;
    config.static_experts = vec![expert];
    // The same replica id across restarts: it takes its runs back at once.
    config.replica_id = Some("crash-test".to_owned());
    let _orchestrator = synod_server::app::Orchestrator::start_with_store(config, store).await?;
    // Serve until the parent kills this process.
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_orchestrators_resume_every_run_without_repeating_steps() -> anyhow::Result<()> {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let expert = serve(idempotent_expert(Arc::clone(&ledger))).await?;
    let dir = TempDir::new()?;
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());

    let (mut child, url) = start_child(&db, expert.endpoint()).await?;
    let mut client = RunsClient::connect(url).await?;
    let mut inputs_of = HashMap::new();
    for n in 0..RUNS {
        let inputs = json!({ "n": n });
        let run_id = client
            .start_run(StartRunRequest {
                source: Some(start_run_request::Source::WorkflowYaml(WORKFLOW.to_owned())),
                inputs: Some(synod_proto::json::json_to_struct(&inputs)?),
                file_name: "crash-chain.yaml".to_owned(),
                goal_type: String::new(),
            })
            .await?
            .into_inner()
            .run_id;
        inputs_of.insert(run_id, n);
    }
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(100 + fastrand::u64(0..300))).await;
        child.start_kill()?; // SIGKILL
        child.wait().await?;
        (child, _) = start_child(&db, expert.endpoint()).await?;
    }

    // The last orchestrator finishes every run.
    let url = {
        child.start_kill()?;
        child.wait().await?;
        let (last, url) = start_child(&db, expert.endpoint()).await?;
        child = last;
        url
    };
    let mut client = RunsClient::connect(url).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let runs = client
            .list_runs(ListRunsRequest {
                limit: RUNS as u32 * 2,
            })
            .await?
            .into_inner()
            .runs;
        let done = runs
            .iter()
            .filter(|run| run.status == RunStatus::Succeeded as i32)
            .count();
        if done == RUNS {
            break;
        }
        let stuck: Vec<_> = runs
            .iter()
            .filter(|run| {
                run.status == RunStatus::Failed as i32 || run.status == RunStatus::Cancelled as i32
            })
            .map(|run| &run.run_id)
            .collect();
        if !stuck.is_empty() {
            bail!("runs ended without succeeding: {stuck:?}");
        }
        if tokio::time::Instant::now() > deadline {
            bail!("only {done} of {RUNS} runs succeeded within 60 s of the last restart");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.start_kill()?;
    child.wait().await?;

    // The durable record, read straight from the file.
    let store = synod_store::open(&db).await?;
    let mut resumed_runs = 0;
    for (run_id, n) in &inputs_of {
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
    assert!(
        resumed_runs > 0,
        "the kills should have interrupted some runs; none was resumed"
    );
    let ledger = ledger.lock().unwrap();
    assert_eq!(ledger.executions.len(), RUNS * 3, "every step executed");
    let repeated: Vec<_> = ledger
        .executions
        .iter()
        .filter(|(_, count)| **count != 1)
        .collect();
    assert!(repeated.is_empty(), "executed more than once: {repeated:?}");
    eprintln!(
        "crash test: {resumed_runs} of {RUNS} runs resumed after {KILLS} kills; {} calls answered from the expert's record",
        ledger.replays
    );
    Ok(())
}
