//! What the `synod` subcommands do. `main.rs` only parses arguments.

use std::io::{IsTerminal as _, Read as _};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use synod_proto::json as pjson;
use synod_proto::orchestrator as pb;
use synod_proto::orchestrator::registry_client::RegistryClient;
use synod_proto::orchestrator::runs_client::RunsClient;
use synod_proto::orchestrator::workflows_client::WorkflowsClient;
use synod_types::{CloudEvent, RunEvent, RunEventKind};

use crate::app::{MAX_MESSAGE_BYTES, Orchestrator, ServerConfig};
use crate::auth::client::AuthChannel as Channel;
use crate::demo;
use crate::http::health_name;

/// How results are shown.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// JSON on stdout instead of text.
    pub json: bool,
    /// Draw a progress bar when stderr is a terminal.
    pub progress: bool,
}

impl Output {
    /// Output settings; the progress bar only appears on a terminal.
    pub fn new(json: bool, progress: bool) -> Self {
        Output {
            json,
            progress: progress && std::io::stderr().is_terminal(),
        }
    }
}

/// Connects to an orchestrator's gRPC endpoint.
pub async fn connect(server: &str) -> anyhow::Result<Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(server.to_owned())
        .with_context(|| {
            format!("`{server}` is not a valid endpoint URL; write e.g. http://127.0.0.1:7100")
        })?
        .connect_timeout(Duration::from_secs(3));
    let channel = endpoint.connect().await.with_context(|| {
        format!("cannot reach the orchestrator at {server}; start one with `synod up` or `synod serve`, or pass --server")
    })?;
    Ok(crate::auth::client::with_cli_token(channel))
}

/// A `Runs` client that accepts messages up to `MAX_MESSAGE_BYTES`.
pub(crate) fn runs_client(channel: Channel) -> RunsClient<Channel> {
    RunsClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Reads the inputs object from a JSON file (`-` = stdin) plus `name=value` overrides.
pub fn read_inputs(file: Option<&Path>, overrides: &[String]) -> anyhow::Result<Value> {
    let mut inputs = match file {
        None => json!({}),
        Some(path) => {
            let text = if path == Path::new("-") {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading inputs from stdin")?;
                text
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read input file {}", path.display()))?
            };
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "input file {} is not valid JSON",
                    file.map(|p| p.display().to_string()).unwrap_or_default()
                )
            })?
        }
    };
    let Value::Object(map) = &mut inputs else {
        bail!("the input file must hold a JSON object of inputs, e.g. {{\"text\": \"...\"}}");
    };
    for item in overrides {
        let (name, raw) = item
            .split_once('=')
            .with_context(|| format!("`--set {item}` needs the form name=value"))?;
        map.insert(name.to_owned(), json_or_string(raw));
    }
    Ok(inputs)
}

/// `raw` as JSON, else as a string.
fn json_or_string(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// Reads `NAME=@FILE` (JSON, else the file's text) and `NAME=VALUE` (JSON,
/// else a string) items into an inputs object.
pub fn read_named_inputs(items: &[String]) -> anyhow::Result<Value> {
    let mut inputs = serde_json::Map::new();
    for item in items {
        let (name, raw) = item.split_once('=').with_context(|| {
            format!(
                "`--input {item}` needs the form NAME=@FILE or NAME=VALUE, e.g. events=@logs.json"
            )
        })?;
        if name.is_empty() {
            bail!("`--input {item}` has an empty name; e.g. events=@logs.json");
        }
        let value = match raw.strip_prefix('@') {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read input `{name}` from {path}"))?;
                json_or_string(&text)
            }
            None => json_or_string(raw),
        };
        inputs.insert(name.to_owned(), value);
    }
    Ok(Value::Object(inputs))
}

/// Where `synod serve` / `synod up` keep runs and for how long.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH`, `postgres://…` or `memory:`.
    pub database_url: String,
    /// Finished runs older than this are deleted (with their events);
    /// `None` keeps everything.
    pub retain: Option<Duration>,
}

/// Deletes finished runs older than `retain` now and then every
/// `retain / 10` (at most hourly, at least every minute).
fn spawn_retention(store: std::sync::Arc<dyn synod_store::RunStore>, retain: Duration) {
    let every = (retain / 10).clamp(Duration::from_secs(60), Duration::from_secs(3600));
    tokio::spawn(async move {
        loop {
            let cutoff = chrono::Utc::now()
                - chrono::Duration::from_std(retain).unwrap_or(chrono::Duration::MAX);
            match store.prune(cutoff).await {
                Ok(0) => {}
                Ok(pruned) => {
                    tracing::info!(runs = pruned, "pruned runs past the retention period")
                }
                Err(error) => tracing::warn!(error = %error, "pruning old runs failed"),
            }
            tokio::time::sleep(every).await;
        }
    });
}

/// `synod serve` and `synod up`.
pub async fn serve(
    mut config: ServerConfig,
    with_demo_experts: bool,
    store_options: StoreOptions,
) -> anyhow::Result<()> {
    let database_url = store_options.database_url.as_str();
    // Shut down (flushed) after the orchestrator and the experts.
    let telemetry = config.telemetry.clone();
    let mut experts = Vec::new();
    if with_demo_experts {
        // In-process experts share the orchestrator's trace exporter.
        experts = demo::start_demo_experts_traced(telemetry.as_ref()).await?;
        for expert in &experts {
            config.static_experts.push(expert.endpoint.clone());
        }
        if config.workflow_paths.is_empty() && Path::new("workflows").is_dir() {
            config.workflow_paths.push("workflows".into());
        }
    }
    let store = synod_store::open(database_url)
        .await
        .with_context(|| format!("cannot open the run store `{database_url}` (--database-url)"))?;
    if let Some(retain) = store_options.retain {
        spawn_retention(store.clone(), retain);
    }
    let access = if !config.auth.enabled {
        "DISABLED (--auth disabled): every call is allowed".to_owned()
    } else if let Some(file) = &config.auth.bootstrap_token_file {
        format!(
            "on; admin token in {} once created (the CLI reads it), `synod token --help`",
            file.display()
        )
    } else {
        "on; `synod token --help`".to_owned()
    };
    let mut orchestrator = Orchestrator::start_with_store(config, store).await?;
    eprintln!("synod orchestrator ready");
    eprintln!("  access control {access}");
    eprintln!("  gRPC  {}", orchestrator.grpc_url());
    eprintln!(
        "  HTTP  {}  (GET /experts, /runs, /runs/<id>/events, /metrics)",
        orchestrator.http_url()
    );
    eprintln!("  dashboard {}/", orchestrator.http_url());
    eprintln!("  store {database_url}");
    for expert in &experts {
        eprintln!("  expert {:<10} {}", expert.name, expert.endpoint);
    }
    if with_demo_experts {
        eprintln!(
            "try:   synod run workflows/ioc-triage.yaml --input workflows/examples/ioc-triage.input.json --server {}",
            orchestrator.grpc_url()
        );
    }
    tokio::select! {
        result = orchestrator.wait() => result?,
        _ = tokio::signal::ctrl_c() => eprintln!("shutting down"),
    }
    orchestrator.shutdown().await?;
    for expert in experts {
        expert.stop().await;
    }
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    Ok(())
}

/// What to run: a workflow file or a task for the planner.
#[derive(Debug)]
pub enum RunWhat {
    /// `synod run <workflow.yaml>`.
    Workflow {
        /// Workflow YAML.
        source: String,
        /// Its file name, for diagnostics.
        file: String,
    },
    /// `synod task "<text>"`.
    Task {
        /// The task's words.
        text: String,
        /// The artifact type to produce; `None` = from the text.
        goal_type: Option<String>,
        /// `llm`, `typed`, or empty: `llm` when an expert offers `plan`.
        planner: String,
    },
}

/// Everything `synod run` and `synod task` need.
#[derive(Debug)]
pub struct RunRequest {
    /// What to run.
    pub what: RunWhat,
    /// Inputs object.
    pub inputs: Value,
    /// Orchestrator to use if reachable.
    pub server: String,
    /// Force an embedded orchestrator.
    pub embedded: bool,
    /// Output settings.
    pub output: Output,
}

/// `synod run`: start, follow and report one run. Exit code 1 unless it succeeded.
pub async fn run(request: RunRequest) -> anyhow::Result<std::process::ExitCode> {
    let mut embedded = None;
    let channel = if request.embedded {
        None
    } else {
        connect_quietly(&request.server).await
    };
    let channel = match channel {
        Some(channel) => channel,
        None => {
            if !request.output.json {
                eprintln!(
                    "no orchestrator at {}; starting an embedded one with the demo experts",
                    request.server
                );
            }
            let (orchestrator, experts) = start_embedded().await?;
            let channel = connect(&orchestrator.grpc_url()).await?;
            embedded = Some((orchestrator, experts));
            channel
        }
    };
    let mut client = runs_client(channel);
    let inputs = pjson::json_to_struct(&request.inputs).context("inputs")?;
    let started = client
        .start_run(match request.what {
            RunWhat::Workflow { source, file } => pb::StartRunRequest {
                source: Some(pb::start_run_request::Source::WorkflowYaml(source)),
                inputs: Some(inputs),
                file_name: file,
                goal_type: String::new(),
                planner: String::new(),
            },
            RunWhat::Task {
                text,
                goal_type,
                planner,
            } => pb::StartRunRequest {
                source: Some(pb::start_run_request::Source::Goal(text)),
                inputs: Some(inputs),
                file_name: String::new(),
                goal_type: goal_type.unwrap_or_default(),
                planner,
            },
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner();
    let run_id = started.run_id;
    if !request.output.json {
        eprintln!("run {run_id} started");
    }
    let follow = follow_run(&mut client, &run_id, 0, request.output);
    tokio::select! {
        result = follow => { result?; }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("cancelling run {run_id}");
            client.cancel_run(pb::CancelRunRequest { run_id: run_id.clone(), reason: "interrupted (Ctrl-C)".into() }).await.ok();
            follow_run(&mut client, &run_id, 0, Output { json: true, progress: false }).await.ok();
        }
    }
    let info = client
        .get_run(pb::GetRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner();
    print_run(&info, request.output.json)?;
    if let Some((orchestrator, experts)) = embedded {
        orchestrator.shutdown().await?;
        for expert in experts {
            expert.stop().await;
        }
    }
    Ok(if info.status == pb::RunStatus::Succeeded as i32 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

async fn connect_quietly(server: &str) -> Option<Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(server.to_owned())
        .ok()?
        .connect_timeout(Duration::from_millis(500));
    let channel = endpoint.connect().await.ok()?;
    Some(crate::auth::client::with_cli_token(channel))
}

/// Starts an orchestrator and the demo experts on free loopback ports.
pub async fn start_embedded() -> anyhow::Result<(Orchestrator, Vec<demo::RunningExpert>)> {
    let experts = demo::start_demo_experts().await?;
    let config = ServerConfig {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        static_experts: experts.iter().map(|e| e.endpoint.clone()).collect(),
        auth: crate::auth::AuthConfig {
            enabled: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let orchestrator = Orchestrator::start(config).await?;
    // This process is the embedded orchestrator's only client: it gets an
    // admin token that lives in memory only.
    let token = orchestrator
        .auth
        .issue(
            "synod-cli",
            &[crate::auth::Role::Admin.as_str().to_owned()],
            None,
        )
        .await?;
    crate::auth::client::set_cli_token(Some(token.text));
    Ok((orchestrator, experts))
}

/// Streams a run's events until it ends, drawing progress.
async fn follow_run(
    client: &mut RunsClient<Channel>,
    run_id: &str,
    from_seq: u64,
    output: Output,
) -> anyhow::Result<()> {
    let mut stream = client
        .watch_run(pb::WatchRunRequest {
            run_id: run_id.to_owned(),
            after_seq: from_seq,
            recorded_only: false,
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner();
    let bar = if output.progress {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    } else {
        None
    };
    let mut running: Vec<String> = Vec::new();
    while let Some(message) = stream.next().await {
        let message = message
            .map_err(|status| anyhow::anyhow!("event stream broke: {}", status.message()))?;
        let Some(event) = decode_event(&message) else {
            continue;
        };
        if output.json {
            continue;
        }
        let line = describe_event(&event);
        match &event.kind {
            RunEventKind::RunStarted { steps, .. } => {
                if let Some(bar) = &bar {
                    bar.set_length(steps.len() as u64);
                }
            }
            RunEventKind::StepStarted { step, .. } => running.push(step.0.clone()),
            RunEventKind::StepSucceeded { step, .. }
            | RunEventKind::StepFailed {
                step,
                will_retry: false,
                ..
            }
            | RunEventKind::StepSkipped { step, .. }
            | RunEventKind::StepCancelled { step } => {
                running.retain(|s| s != &step.0);
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
            }
            RunEventKind::StepFailed { step, .. } => running.retain(|s| s != &step.0),
            _ => {}
        }
        match &bar {
            Some(bar) => {
                if let Some(line) = line {
                    bar.println(line);
                }
                bar.set_message(if running.is_empty() {
                    String::new()
                } else {
                    format!("running: {}", running.join(", "))
                });
            }
            None => {
                if let Some(line) = line {
                    eprintln!("{line}");
                }
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

fn decode_event(message: &pb::RunEventMessage) -> Option<RunEvent> {
    let cloud: CloudEvent = serde_json::from_str(&message.cloud_event_json).ok()?;
    RunEvent::from_cloud_event(&cloud).ok()
}

/// One line for an event, or `None` for events not worth a line.
pub fn describe_event(event: &RunEvent) -> Option<String> {
    let seq = event.seq;
    Some(match &event.kind {
        RunEventKind::RunStarted {
            workflow, steps, ..
        } => {
            format!("#{seq} run of `{workflow}` started ({} steps)", steps.len())
        }
        RunEventKind::StepStarted {
            step,
            attempt,
            uses,
            ..
        } => {
            if *attempt > 1 {
                format!("#{seq} ▶ {step} ({uses}) attempt {attempt}")
            } else {
                format!("#{seq} ▶ {step} ({uses})")
            }
        }
        RunEventKind::StepSucceeded {
            step,
            duration_ms,
            confidence,
            ..
        } => format!("#{seq} ✓ {step} in {duration_ms} ms (confidence {confidence:.2})"),
        RunEventKind::StepFailed {
            step,
            error,
            will_retry,
            attempt,
        } => {
            let what = if *will_retry {
                "attempt failed"
            } else {
                "failed"
            };
            format!("#{seq} ✗ {step} {what} (attempt {attempt}): {error}")
        }
        RunEventKind::StepRetryScheduled {
            step,
            next_attempt,
            delay_ms,
        } => format!("#{seq} ↻ {step} attempt {next_attempt} in {delay_ms} ms"),
        RunEventKind::StepSkipped { step, reason } => format!("#{seq} ⤼ {step} skipped: {reason}"),
        RunEventKind::StepCancelled { step } => format!("#{seq} ■ {step} cancelled"),
        RunEventKind::StepReflected {
            step,
            round,
            critic,
            verdict,
            feedback,
            stop,
            ..
        } => {
            let mut line = format!("#{seq} ⟲ {step} round {round}: {verdict} ({critic})");
            if !feedback.is_empty() {
                line.push_str(&format!(": {feedback}"));
            }
            if let Some(stop) = stop {
                line.push_str(&format!("; loop ends: {stop}"));
            }
            line
        }
        RunEventKind::RunSucceeded { .. } => format!("#{seq} run succeeded"),
        RunEventKind::RunFailed { error, .. } => format!("#{seq} run failed: {error}"),
        RunEventKind::RunCancelled { reason } => format!("#{seq} run cancelled: {reason}"),
        RunEventKind::RunPlanned {
            planner,
            goal,
            choices,
            attempts,
            ..
        } => {
            let mut text = String::new();
            let attempts = attempts.as_deref().and_then(Value::as_array);
            for attempt in attempts.into_iter().flatten() {
                let number = attempt["attempt"].as_u64().unwrap_or(0);
                let uses = attempt["uses"].as_str().unwrap_or("?");
                if attempt["accepted"] == true {
                    text.push_str(&format!(
                        "#{seq} llm planner ({uses}) attempt {number}: plan accepted\n"
                    ));
                    continue;
                }
                text.push_str(&format!("#{seq} llm planner ({uses}) attempt {number}: plan rejected, it will not run:\n"));
                for problem in attempt["problems"].as_array().into_iter().flatten() {
                    text.push_str(&format!("    - {}\n", problem.as_str().unwrap_or("?")));
                }
            }
            if planner == "typed" && !text.is_empty() {
                text.push_str(&format!(
                    "#{seq} no llm plan was valid; falling back to the typed planner\n"
                ));
            }
            text.push_str(&format!(
                "#{seq} planned by the {planner} planner, goal `{goal}`:"
            ));
            for choice in choices.as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "\n    {} = {}: {}",
                    choice["step"].as_str().unwrap_or("?"),
                    choice["uses"].as_str().unwrap_or("?"),
                    choice["reason"].as_str().unwrap_or("")
                ));
            }
            text
        }
        RunEventKind::RunResumed {
            interrupted_steps, ..
        } => format!(
            "#{seq} run resumed; invoking again: {}",
            if interrupted_steps.is_empty() {
                "nothing".to_owned()
            } else {
                interrupted_steps
                    .iter()
                    .map(|step| step.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        _ => return None,
    })
}

fn status_name(status: i32) -> &'static str {
    match pb::RunStatus::try_from(status) {
        Ok(pb::RunStatus::Pending) => "pending",
        Ok(pb::RunStatus::Running) => "running",
        Ok(pb::RunStatus::Succeeded) => "succeeded",
        Ok(pb::RunStatus::Failed) => "failed",
        Ok(pb::RunStatus::Cancelled) => "cancelled",
        _ => "unknown",
    }
}

fn struct_json(value: Option<&prost_types::Struct>) -> Value {
    value
        .and_then(|s| pjson::struct_to_json(s).ok())
        .unwrap_or(Value::Null)
}

fn timestamp_text(time: Option<&prost_types::Timestamp>) -> String {
    time.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The JSON form of a run, as `--json` prints it.
pub fn run_json(info: &pb::RunInfo) -> Value {
    let steps: Vec<Value> = info
        .steps
        .iter()
        .map(|step| {
            json!({
                "id": step.step_id,
                "uses": step.uses,
                "status": step.status,
                "attempts": step.attempts,
                "needs": step.needs,
                "output": struct_json(step.output.as_ref()),
                "error": if step.error.is_empty() { Value::Null } else { Value::String(step.error.clone()) },
            })
        })
        .collect();
    json!({
        "run_id": info.run_id,
        "workflow": info.workflow,
        "status": status_name(info.status),
        "started_at": timestamp_text(info.started_at.as_ref()),
        "ended_at": timestamp_text(info.ended_at.as_ref()),
        "last_seq": info.last_seq,
        "error": if info.error.is_empty() { Value::Null } else { Value::String(info.error.clone()) },
        "steps": steps,
        "result": struct_json(info.result.as_ref()),
    })
}

fn print_run(info: &pb::RunInfo, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(&run_json(info))?);
        return Ok(());
    }
    println!(
        "run {}  workflow `{}`  {}",
        info.run_id,
        info.workflow,
        status_name(info.status)
    );
    for step in &info.steps {
        let attempts = if step.attempts > 1 {
            format!(" ({} attempts)", step.attempts)
        } else {
            String::new()
        };
        println!(
            "  {:<16} {:<28} {}{}",
            step.step_id, step.uses, step.status, attempts
        );
        if !step.error.is_empty() {
            println!("      {}", step.error);
        }
    }
    if !info.error.is_empty() {
        println!("error: {}", info.error);
    }
    let result = struct_json(info.result.as_ref());
    if !result.is_null() {
        println!("result:\n{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(())
}

/// `synod runs list`.
pub async fn runs_list(server: &str, limit: u32, as_json: bool) -> anyhow::Result<()> {
    let mut client = runs_client(connect(server).await?);
    let runs = client
        .list_runs(pb::ListRunsRequest { limit })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner()
        .runs;
    if as_json {
        let list: Vec<Value> = runs.iter().map(run_json).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs yet; start one with `synod run <workflow.yaml>`");
    }
    println!("{:<38} {:<20} {:<10} STARTED", "RUN", "WORKFLOW", "STATUS");
    for run in &runs {
        println!(
            "{:<38} {:<20} {:<10} {}",
            run.run_id,
            run.workflow,
            status_name(run.status),
            timestamp_text(run.started_at.as_ref())
        );
    }
    Ok(())
}

/// `synod runs get`.
pub async fn runs_get(server: &str, run_id: &str, as_json: bool) -> anyhow::Result<()> {
    let mut client = runs_client(connect(server).await?);
    let info = client
        .get_run(pb::GetRunRequest {
            run_id: run_id.to_owned(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner();
    print_run(&info, as_json)
}

/// `synod runs watch`: events as lines (or CloudEvents JSON lines with --json).
pub async fn runs_watch(
    server: &str,
    run_id: &str,
    from_seq: u64,
    as_json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let last = print_events(server, run_id, from_seq, false, as_json).await?;
    Ok(if last.as_deref() == Some("synod.run.succeeded") {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// `synod runs events`: the events `run_id` recorded after `from_seq`, then
/// exits (the run may still be going).
pub async fn runs_events(
    server: &str,
    run_id: &str,
    from_seq: u64,
    as_json: bool,
) -> anyhow::Result<()> {
    print_events(server, run_id, from_seq, true, as_json).await?;
    Ok(())
}

/// Prints `run_id`'s events after `from_seq` (CloudEvents JSON lines or one
/// line each), following the run until it ends unless `recorded_only`;
/// returns the type of the last event printed.
async fn print_events(
    server: &str,
    run_id: &str,
    from_seq: u64,
    recorded_only: bool,
    as_json: bool,
) -> anyhow::Result<Option<String>> {
    let mut client = runs_client(connect(server).await?);
    let mut stream = client
        .watch_run(pb::WatchRunRequest {
            run_id: run_id.to_owned(),
            after_seq: from_seq,
            recorded_only,
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner();
    let mut last = None;
    while let Some(message) = stream.next().await {
        let message = message.map_err(|status| {
            anyhow::anyhow!(
                "event stream broke: {}; resume with --from-seq",
                status.message()
            )
        })?;
        if as_json {
            println!("{}", message.cloud_event_json);
        } else if let Some(line) = decode_event(&message).as_ref().and_then(describe_event) {
            println!("{line}");
        }
        last = Some(message.r#type);
    }
    Ok(last)
}

/// `synod runs cancel`.
pub async fn runs_cancel(
    server: &str,
    run_id: &str,
    reason: &str,
    as_json: bool,
) -> anyhow::Result<()> {
    let mut client = runs_client(connect(server).await?);
    let response = client
        .cancel_run(pb::CancelRunRequest {
            run_id: run_id.to_owned(),
            reason: reason.to_owned(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner();
    if as_json {
        println!(
            "{}",
            json!({ "run_id": run_id, "cancelled": response.cancelled })
        );
    } else if response.cancelled {
        println!("cancelling run {run_id}");
    } else {
        println!("run {run_id} is not running (already ended)");
    }
    Ok(())
}

/// `synod experts list`.
pub async fn experts_list(server: &str, as_json: bool) -> anyhow::Result<()> {
    let mut client = RegistryClient::new(connect(server).await?);
    let experts = client
        .list_experts(pb::ListExpertsRequest {})
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner()
        .experts;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&crate::http::experts_json(&experts))?
        );
        return Ok(());
    }
    if experts.is_empty() {
        println!(
            "no experts registered; start some with `synod up` or `synod expert serve <name> --orchestrator {server}`"
        );
    }
    for expert in &experts {
        let card = expert.card.clone().unwrap_or_default();
        println!("{} {}  {}", card.name, card.version, card.description);
        for skill in &card.skills {
            println!(
                "  skill {:<18} {} -> {}",
                skill.name,
                if skill.consumes.is_empty() {
                    "-".to_owned()
                } else {
                    skill.consumes.join(", ")
                },
                skill.produces
            );
        }
        for instance in &expert.instances {
            println!(
                "  instance {}  {:<9} outstanding {}  latency {:.1} ms  calls {}  failures {}{}",
                instance.endpoint,
                health_name(instance.health),
                instance.outstanding,
                instance.latency_ewma_ms,
                instance.calls,
                instance.failures,
                if instance.r#static { "  (static)" } else { "" }
            );
        }
    }
    Ok(())
}

/// `synod validate`: exit code 1 when there are errors.
pub async fn validate(
    path: &Path,
    server: Option<&str>,
    as_json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let source = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read workflow file {}", path.display()))?;
    let file = path.display().to_string();
    let (valid, rendered, json_diagnostics) = match server {
        Some(server) => {
            let mut client = WorkflowsClient::new(connect(server).await?);
            let response = client
                .validate(pb::ValidateWorkflowRequest {
                    workflow_yaml: source.clone(),
                    file_name: file.clone(),
                })
                .await
                .map_err(|status| anyhow::anyhow!("{}", status.message()))?
                .into_inner();
            let mut text = String::new();
            for d in &response.diagnostics {
                text.push_str(&format!(
                    "{}[{}]: {}\n  --> {}:{}:{}\n",
                    d.severity, d.code, d.message, d.file, d.line, d.column
                ));
                if !d.help.is_empty() {
                    text.push_str(&format!("  = help: {}\n", d.help));
                }
            }
            let list: Vec<Value> = response
                .diagnostics
                .iter()
                .map(|d| {
                    json!({"severity": d.severity, "code": d.code, "message": d.message, "file": d.file,
                           "line": d.line, "column": d.column, "help": d.help})
                })
                .collect();
            (response.valid, text, Value::Array(list))
        }
        None => {
            let diagnostics = match synod_workflow::load(&source, &file) {
                Ok(workflow) => {
                    match synod_planner::plan_workflow_for(&workflow, None, crate::runs::EXECUTABLE)
                    {
                        Ok(_) => synod_workflow::Diagnostics::default(),
                        Err(diagnostics) => diagnostics,
                    }
                }
                Err(diagnostics) => diagnostics,
            };
            (
                !diagnostics.has_errors(),
                diagnostics.render(&source),
                serde_json::to_value(&diagnostics)?,
            )
        }
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "file": file, "valid": valid, "diagnostics": json_diagnostics })
            )?
        );
    } else if valid {
        println!("{file}: ok");
    } else {
        print!("{rendered}");
    }
    Ok(if valid {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// `synod expert serve`.
pub async fn expert_serve(
    name: &str,
    addr: SocketAddr,
    orchestrator: Option<String>,
) -> anyhow::Result<()> {
    demo::serve_named(name, addr, orchestrator).await
}

/// `synod expert names`.
pub fn expert_names() {
    for name in demo::expert_names() {
        println!("{name}");
    }
}
