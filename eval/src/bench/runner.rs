//! The benchmark driver: starts the shared servers (echo, SDK expert, raw
//! tonic echo), runs the calibration and every combination (each in its own
//! child process by default, so peak RSS and CPU are per combination),
//! checks execution counts, measures noise, and assembles the results file.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{SecondsFormat, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bench::combo::{Endpoints, Job, JobKind, run_job};
use crate::bench::echo::{EchoChoice, EchoServer};
use crate::bench::expert::{ExpertKind, HTTP_POOL, HttpEcho, NodeBody};
use crate::bench::measure::Protocol;
use crate::bench::mode::{Mode, SQLITE_STORE};
use crate::bench::report;
use crate::bench::sys;
use crate::bench::transport::{EXPERT_CONCURRENCY, Transport, spawn_raw_echo, spawn_sdk_expert};
use crate::bench::workload::{LOOP_MAX_REVISIONS, Workload};

/// Longest a child process may take for one combination.
const CHILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Where combinations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum ProcessModel {
    /// One child process per combination (peak RSS and CPU per combination).
    Child,
    /// Everything in this process (fast; RSS is the whole process's peak).
    Inline,
}

/// The Tokio runtime a combination runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeChoice {
    /// Worker threads; 0 = a current-thread runtime.
    pub worker_threads: usize,
}

impl RuntimeChoice {
    /// Builds the runtime.
    pub fn build(self) -> anyhow::Result<tokio::runtime::Runtime> {
        let mut builder = if self.worker_threads == 0 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(self.worker_threads);
            b
        };
        builder
            .enable_all()
            .build()
            .context("cannot build the Tokio runtime")
    }

    /// Its description for the report.
    pub fn describe(self) -> String {
        match self.worker_threads {
            0 => "tokio current_thread".to_owned(),
            n => format!("tokio multi_thread, {n} worker threads"),
        }
    }
}

/// Everything `synod-eval bench` was asked to do.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Shapes.
    pub workloads: Vec<Workload>,
    /// Expert kinds.
    pub experts: Vec<ExpertKind>,
    /// Modes.
    pub modes: Vec<Mode>,
    /// Transports.
    pub transports: Vec<Transport>,
    /// The protocol.
    pub protocol: Protocol,
    /// Bound on loopback HTTP requests per combination.
    pub http_max_requests: u64,
    /// Which echo server.
    pub echo: EchoChoice,
    /// Python with aiohttp, for the echo server and the machine yardstick.
    pub python: Option<PathBuf>,
    /// The peer benchmark's `bench.py`.
    pub bench_py: PathBuf,
    /// Where combinations run.
    pub process_model: ProcessModel,
    /// The runtime of each combination.
    pub runtime: RuntimeChoice,
    /// LangGraph results to check the goals against.
    pub baseline: Option<PathBuf>,
    /// A combination during which other processes used more than this
    /// share of all CPUs is measured again (see `retries`).
    pub max_foreign: f64,
    /// Extra measurements of a noisy combination; the quietest is kept.
    pub retries: usize,
    /// Show a progress bar (stderr).
    pub progress: bool,
}

/// One planned combination.
#[derive(Debug, Clone)]
struct Combo {
    mode: Mode,
    transport: Transport,
    expert: ExpertKind,
    workload: Workload,
}

/// The experts' host: SDK expert (and its bodies, which count calls) and
/// the raw tonic echo, when the gRPC transport is measured.
struct GrpcHost {
    bodies: Vec<Arc<NodeBody>>,
    _handle: synod_expert_sdk::ExpertHandle,
}

impl GrpcHost {
    /// Expert calls and HTTP requests made so far by `kind`'s bodies.
    fn counts(&self, kind: ExpertKind) -> (u64, u64) {
        self.bodies
            .iter()
            .filter(|b| b.kind() == kind)
            .fold((0, 0), |(calls, requests), b| {
                (calls + b.calls(), requests + b.requests())
            })
    }
}

/// Runs the benchmark and returns the results document.
pub async fn run_bench(options: &BenchOptions) -> anyhow::Result<Value> {
    let started = Instant::now();
    let load_start = sys::loadavg_1m();
    let echo = if options.experts.contains(&ExpertKind::Http) {
        Some(EchoServer::start(options.echo, &options.bench_py, options.python.as_deref()).await?)
    } else {
        None
    };
    let mut endpoints = Endpoints {
        http_url: echo.as_ref().map(|e| e.url.clone()),
        ..Endpoints::default()
    };
    let host = if options.transports.contains(&Transport::Grpc) {
        let mut kinds = options.experts.clone();
        if !kinds.contains(&ExpertKind::Noop) {
            kinds.push(ExpertKind::Noop); // for the SDK round-trip calibration
        }
        let mut bodies = Vec::new();
        for kind in kinds {
            let http = match (&endpoints.http_url, kind) {
                (Some(url), ExpertKind::Http) => Some(HttpEcho::new(url)?),
                _ => None,
            };
            bodies.push(NodeBody::new(kind, http, u64::MAX)?);
        }
        let handle = spawn_sdk_expert(&bodies).await?;
        endpoints.sdk_expert = Some(handle.endpoint().to_owned());
        endpoints.raw_grpc = Some(spawn_raw_echo().await?);
        Some(GrpcHost {
            bodies,
            _handle: handle,
        })
    } else {
        None
    };

    let echo_pid = echo
        .as_ref()
        .and_then(EchoServer::pid)
        .map(|p| p.to_string());
    let own_cpu = |child_cpu: f64| {
        sys::process_cpu_s()
            + child_cpu
            + echo_pid.as_deref().and_then(sys::pid_cpu_s).unwrap_or(0.0)
    };
    let busy0 = sys::machine_busy_s().unwrap_or(0.0);
    let own0 = own_cpu(0.0);
    let mut children_cpu = 0.0;

    let job = |kind: JobKind| Job {
        kind,
        protocol: options.protocol.clone(),
        endpoints: endpoints.clone(),
        http_max_requests: options.http_max_requests,
    };
    let mut calibration = dispatch(options, &job(JobKind::Calibrate))
        .await
        .context("calibration failed")?;
    children_cpu += child_cpu(options, &mut calibration);

    let combos = plan_combos(options);
    let bar = progress_bar(options.progress, combos.len());
    let mut results = Vec::with_capacity(combos.len());
    for combo in combos {
        let label = format!(
            "{} {} {}",
            combo.transport.mode_name(combo.mode.name()),
            combo.expert.name(),
            combo.workload.name
        );
        bar.set_message(label.clone());
        let mut row = json!({
            "mode": combo.transport.mode_name(combo.mode.name()),
            "transport": combo.transport.name(),
            "expert": combo.expert.name(),
            "workload": combo.workload.name,
        });
        // Measure; while the machine was busy with other work, measure again
        // (up to `retries` times) and keep the quietest measurement.
        let mut best: Option<anyhow::Result<Value>> = None;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let t0 = Instant::now();
            let busy = sys::machine_busy_s().unwrap_or(0.0);
            let own = own_cpu(0.0);
            let host_calls0 = host.as_ref().map(|h| h.counts(combo.expert));
            let outcome = dispatch(
                options,
                &job(JobKind::Combo {
                    mode: combo.mode.name().to_owned(),
                    transport: combo.transport.name().to_owned(),
                    expert: combo.expert.name().to_owned(),
                    workload: Box::new(combo.workload.clone()),
                }),
            )
            .await;
            let wall = t0.elapsed().as_secs_f64();
            let outcome = outcome.and_then(|mut r| {
                let child_cpu = child_cpu(options, &mut r);
                children_cpu += child_cpu;
                let busy_s = sys::machine_busy_s().unwrap_or(0.0) - busy;
                r["foreign_cpu_frac"] = json!(sys::foreign_fraction(
                    busy_s,
                    own_cpu(child_cpu) - own,
                    wall
                ));
                r["combination_wall_s"] = json!((wall * 10.0).round() / 10.0);
                if combo.transport == Transport::Grpc
                    && let (Some(h), Some((calls0, requests0))) = (&host, host_calls0)
                {
                    let (calls, requests) = h.counts(combo.expert);
                    r["expert_calls"] = json!(calls - calls0);
                    r["http_requests"] = json!(requests - requests0);
                }
                check_calls(&r, &combo)?;
                Ok(r)
            });
            let quieter = match (&best, &outcome) {
                (None, _) | (Some(Err(_)), Ok(_)) => true,
                (Some(Ok(b)), Ok(r)) => foreign_of(r) < foreign_of(b),
                (Some(_), Err(_)) => false,
            };
            if quieter {
                best = Some(outcome);
            }
            let noisy = match &best {
                Some(Ok(r)) => foreign_of(r) > options.max_foreign,
                _ => false,
            };
            if !noisy || attempts > options.retries {
                break;
            }
            say(
                &bar,
                format!(
                    "{label:>32}: other processes used {:.0}% of the CPUs (> {:.0}%), measuring again",
                    best.as_ref()
                        .and_then(|b| b.as_ref().ok())
                        .map_or(0.0, foreign_of)
                        * 100.0,
                    options.max_foreign * 100.0
                ),
            );
        }
        match best.unwrap_or_else(|| Err(anyhow::anyhow!("not measured"))) {
            Ok(mut r) => {
                r["attempts"] = json!(attempts);
                say(
                    &bar,
                    format!(
                        "{label:>32}: p50 {:9.1} us  {:10.1} runs/s  peak {:6.1} MB  ({}s, foreign cpu {:.0}%)",
                        r["latency"]["p50_us"].as_f64().unwrap_or(f64::NAN),
                        r["throughput"]["runs_per_s"].as_f64().unwrap_or(f64::NAN),
                        r["rss"]["peak_mb"].as_f64().unwrap_or(f64::NAN),
                        r["combination_wall_s"],
                        foreign_of(&r) * 100.0,
                    ),
                );
                results.push(r);
            }
            Err(error) => {
                say(&bar, format!("ERROR {label}: {error:#}"));
                row["error"] = json!(format!("{error:#}"));
                results.push(row);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    let busy_s = sys::machine_busy_s().unwrap_or(0.0) - busy0;
    let total_wall_s = started.elapsed().as_secs_f64();
    let foreign = sys::foreign_fraction(busy_s, own_cpu(children_cpu) - own0, total_wall_s);
    report::derive(&mut results, &calibration);
    let summary = report::summary_rows(&results);
    let mut doc = json!({
        "schema_version": 1,
        "system": "synod",
        "generated_at": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, false),
        "total_wall_s": (total_wall_s * 10.0).round() / 10.0,
        "machine": sys::machine_info(options.python.as_deref()),
        "noise": {
            "foreign_cpu_frac": foreign,
            "loadavg_1m_start": load_start,
            "loadavg_1m_end": sys::loadavg_1m(),
            "note": "foreign_cpu_frac = share of all CPUs used by processes other than this benchmark \
                     (parent with its gRPC experts, combination children, echo server) during the run (0 = quiet)",
        },
        "versions": sys::versions(),
        "settings": settings(options, echo.as_ref()),
        "calibration": calibration,
        "workloads": workloads_section(&options.workloads),
        "notes": notes(),
        "summary": summary,
        "grpc_vs_raw_rtt": report::grpc_vs_raw_rtt(&results, &calibration),
        "results": results,
    });
    if let Some(path) = &options.baseline {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the baseline {}", path.display()))?;
        let baseline: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a results file", path.display()))?;
        doc["goals"] = report::goals(
            doc["results"].as_array().map_or(&[][..], Vec::as_slice),
            &baseline,
        );
        doc["goals"]["baseline_file"] = json!(path.display().to_string());
    }
    drop(host);
    drop(echo);
    Ok(doc)
}

/// A row's `foreign_cpu_frac`.
fn foreign_of(row: &Value) -> f64 {
    row["foreign_cpu_frac"].as_f64().unwrap_or(0.0)
}

/// Removes and returns the job's `process_cpu_s`.
fn take_cpu(report: &mut Value) -> f64 {
    report
        .as_object_mut()
        .and_then(|m| m.remove("process_cpu_s"))
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0)
}

/// The CPU time a job reported (removed from its result), counted only when
/// it ran in a child process: an in-process job's CPU time is already this
/// process's.
fn child_cpu(options: &BenchOptions, report: &mut Value) -> f64 {
    let cpu = take_cpu(report);
    if options.process_model == ProcessModel::Child {
        cpu
    } else {
        0.0
    }
}

/// Every expert call happened once per node execution of every run.
fn check_calls(row: &Value, combo: &Combo) -> anyhow::Result<()> {
    let invocations = row["total_invocations"].as_u64().unwrap_or(0);
    let want = invocations * combo.workload.node_executions as u64;
    let calls = row["expert_calls"].as_u64().unwrap_or(0);
    if calls != want {
        bail!(
            "{calls} expert calls, expected {want} ({invocations} runs x {} node executions)",
            combo.workload.node_executions
        );
    }
    Ok(())
}

fn plan_combos(options: &BenchOptions) -> Vec<Combo> {
    let mut combos = Vec::new();
    for &expert in &options.experts {
        for workload in &options.workloads {
            for &transport in &options.transports {
                for &mode in &options.modes {
                    combos.push(Combo {
                        mode,
                        transport,
                        expert,
                        workload: workload.clone(),
                    });
                }
            }
        }
    }
    combos
}

/// Prints a line above the progress bar, or on stderr when it is hidden
/// (a hidden bar drops `println`).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn progress_bar(show: bool, len: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs a job in a child process (this binary, `bench-child`) or inline.
async fn dispatch(options: &BenchOptions, job: &Job) -> anyhow::Result<Value> {
    match options.process_model {
        ProcessModel::Inline => {
            let job = job.clone();
            tokio::spawn(async move { run_job(&job).await })
                .await
                .context("the job panicked")?
        }
        ProcessModel::Child => run_child(options.runtime, job).await,
    }
}

/// What a child prints on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildReport {
    /// The job's report.
    Ok(Value),
    /// Why it failed.
    Error(String),
}

/// The child's side: reads a [`Job`] from stdin, runs it on `runtime`,
/// prints a [`ChildReport`] on stdout.
pub fn child_main(runtime: RuntimeChoice) -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)?;
    let job: Job = serde_json::from_str(&input).context("bench-child: stdin is not a job")?;
    let rt = runtime.build()?;
    let report = match rt.block_on(async { tokio::spawn(async move { run_job(&job).await }).await })
    {
        Ok(Ok(value)) => ChildReport::Ok(value),
        Ok(Err(error)) => ChildReport::Error(format!("{error:#}")),
        Err(panic) => ChildReport::Error(format!("the job panicked: {panic}")),
    };
    println!("{}", serde_json::to_string(&report)?);
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

async fn run_child(runtime: RuntimeChoice, job: &Job) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("cannot find this executable to start a child")?;
    let mut child = tokio::process::Command::new(exe)
        .args([
            "bench-child",
            "--worker-threads",
            &runtime.worker_threads.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start a child process")?;
    let mut stdin = child.stdin.take().context("no child stdin")?;
    stdin.write_all(&serde_json::to_vec(job)?).await?;
    drop(stdin);
    let mut stdout = child.stdout.take().context("no child stdout")?;
    let mut out = String::new();
    let read = async {
        stdout.read_to_string(&mut out).await?;
        child.wait().await
    };
    let status = tokio::time::timeout(CHILD_TIMEOUT, read)
        .await
        .with_context(|| format!("the child did not finish within {CHILD_TIMEOUT:?}"))??;
    let line = out.lines().last().unwrap_or_default();
    match serde_json::from_str::<ChildReport>(line) {
        Ok(ChildReport::Ok(value)) => Ok(value),
        Ok(ChildReport::Error(error)) => bail!("{error}"),
        Err(_) => bail!("the child exited ({status}) without a report"),
    }
}

fn settings(options: &BenchOptions, echo: Option<&EchoServer>) -> Value {
    let mut s = serde_json::to_value(&options.protocol).unwrap_or_else(|_| json!({}));
    s["http_max_requests"] = json!(options.http_max_requests);
    s["durability"] = Value::Null;
    s["sleep_s"] = json!(0.001);
    s["loop_max_revisions"] = json!(LOOP_MAX_REVISIONS);
    s["http"] = json!({
        "server": echo.map(|e| e.description.clone()),
        "client": format!("reqwest, HTTP/1.1 keep-alive, pool_max_idle_per_host({HTTP_POOL})"),
        "url": echo.map(|e| e.url.clone()),
    });
    s["process_model"] = json!(match options.process_model {
        ProcessModel::Child =>
            "one child process per (mode, transport, expert, workload); gRPC experts and raw tonic echo served by the parent",
        ProcessModel::Inline =>
            "inline: every combination in one process (RSS is the process peak)",
    });
    s["runtime"] = json!(options.runtime.describe());
    s["noise_retry"] =
        json!({"max_foreign_cpu_frac": options.max_foreign, "retries": options.retries});
    s["executor"] = json!(
        "synod_executor::execute, ExecutorConfig::default() (64 attempts in flight per run, 60 s deadline, default retry policy); no tracing subscriber"
    );
    s["grpc"] = json!(format!(
        "SDK expert `bench` (synod-expert-sdk, input+output schema validation, concurrency_limit {EXPERT_CONCURRENCY}) on 127.0.0.1, called through synod_registry::Registry::invoker() (output validated again); one HTTP/2 connection"
    ));
    s["modes"] = json!({
        "direct": "the same calls hand-written: layer by layer, join_all within a layer, no orchestrator (the ideal)",
        "none": "executor + a RunStore that drops every event (no persistence)",
        "memory": "executor + synod_store::MemoryStore (every event of every run kept)",
        "sqlite": SQLITE_STORE,
        "grpc-*": "the same modes over the gRPC transport; grpc-direct = generated client calling the SDK expert, join_all per layer",
    });
    s
}

fn workloads_section(workloads: &[Workload]) -> Value {
    let mut out = serde_json::Map::new();
    for w in workloads {
        out.insert(
            w.name.clone(),
            json!({
                "nodes": w.nodes.len(),
                "node_executions": w.node_executions,
                "critical_path": w.critical_path,
                "supersteps": w.critical_path,
                "dependency_edges": w.dependency_edges(),
                "loop": w.loop_rule,
            }),
        );
    }
    Value::Object(out)
}

fn notes() -> Value {
    json!([
        "reflect_loop is unrolled: synod's executor runs DAGs, so the loop (critic always rejects, max_revisions 3) runs as the 8-step chain generate1 -> critic1 -> ... -> critic4; the conditional routing LangGraph evaluates is not exercised",
        "step inputs are literals {node, n_inputs} (n_inputs = outputs available at the step's start, as LangGraph's len(state['outputs'])); every step's output is kept in the run result",
        "in-process rows use the peer's mode names, so compare.py matches them directly; gRPC rows are grpc-<mode>: compare them with --map grpc-none=none grpc-memory=memory grpc-direct=direct",
        "throughput: at least throughput_rounds batches and throughput_min_s of batch time (capped by throughput_cap_s); the peer stops after throughput_rounds",
    ])
}
