//! One measured combination (mode x transport x expert x workload), and the
//! calibration, as jobs that run in a child process or inline.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use synod_executor::Invoker;
use synod_registry::{Registry, RegistryConfig};

use crate::bench::expert::{ExpertKind, HttpEcho, NodeBody, SLEEP};
use crate::bench::measure::{Protocol, measure};
use crate::bench::mode::{
    DirectCaller, Mode, RunFn, build_plan, check_result, direct_run_fn, executor_run_fn,
    sqlite_bytes, store_for,
};
use crate::bench::stats::p50_p99;
use crate::bench::sys::{process_cpu_s, status_mb};
use crate::bench::transport::{LocalInvoker, Transport, connect, invoke_direct};
use crate::bench::workload::Workload;

/// Where the shared servers are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoints {
    /// The echo server's URL (`http` expert).
    pub http_url: Option<String>,
    /// The SDK benchmark expert (gRPC transport).
    pub sdk_expert: Option<String>,
    /// The minimal tonic echo service (raw round trip).
    pub raw_grpc: Option<String>,
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// Bare call costs, no orchestrator.
    Calibrate,
    /// One combination.
    Combo {
        /// `direct`, `none`, `memory`.
        mode: String,
        /// `in-process` or `grpc`.
        transport: String,
        /// `noop`, `sleep`, `http`.
        expert: String,
        /// The shape.
        workload: Box<Workload>,
    },
}

/// A job, as sent to a child process on stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// What to do.
    pub kind: JobKind,
    /// The protocol.
    pub protocol: Protocol,
    /// Shared servers.
    pub endpoints: Endpoints,
    /// Bound on loopback HTTP requests of the in-process `http` expert.
    pub http_max_requests: u64,
}

/// Runs a job and returns its report: a result row (without the counters
/// only the experts' host knows) or the calibration object. Also reports
/// `process_cpu_s`, the CPU the job's process used in total.
pub async fn run_job(job: &Job) -> anyhow::Result<Value> {
    match &job.kind {
        JobKind::Calibrate => calibrate(&job.endpoints).await,
        JobKind::Combo {
            mode,
            transport,
            expert,
            workload,
        } => {
            let mode: Mode = mode.parse().map_err(anyhow::Error::msg)?;
            let transport: Transport = transport.parse().map_err(anyhow::Error::msg)?;
            let expert: ExpertKind = expert.parse().map_err(anyhow::Error::msg)?;
            run_combo(job, mode, transport, expert, workload).await
        }
    }
}

async fn run_combo(
    job: &Job,
    mode: Mode,
    transport: Transport,
    expert: ExpertKind,
    workload: &Workload,
) -> anyhow::Result<Value> {
    let rss_start_mb = status_mb("VmRSS");
    let http = match (&job.endpoints.http_url, expert) {
        (Some(url), ExpertKind::Http) => Some(HttpEcho::new(url)?),
        _ => None,
    };
    let body = NodeBody::new(expert, http, job.http_max_requests)?;
    let scratch = Scratch::new()?;
    let t0 = Instant::now();
    let store = store_for(mode, &scratch.0).await?;
    let run: RunFn = match (transport, store) {
        (Transport::InProcess, None) => {
            direct_run_fn(workload, DirectCaller::Local(Arc::clone(&body)))
        }
        (Transport::InProcess, Some(store)) => {
            let plan = Arc::new(build_plan(workload, expert.name())?);
            let invoker: Arc<dyn Invoker> = Arc::new(LocalInvoker::new(Arc::clone(&body)));
            executor_run_fn(plan, invoker, store)
        }
        (Transport::Grpc, None) => {
            let channel = connect(sdk_endpoint(job)?).await?;
            let skill = expert.name();
            direct_run_fn(workload, DirectCaller::Grpc { channel, skill })
        }
        (Transport::Grpc, Some(store)) => {
            let plan = Arc::new(build_plan(workload, expert.name())?);
            let registry = Registry::new(RegistryConfig::default());
            registry
                .add_static(sdk_endpoint(job)?)
                .await
                .context("cannot register the benchmark expert")?;
            let invoker: Arc<dyn Invoker> = Arc::new(registry.invoker());
            executor_run_fn(plan, invoker, store)
        }
    };
    let build_ms = t0.elapsed().as_secs_f64() * 1e3;
    let check = |outputs: &Value| check_result(workload, outputs);
    let measured = measure(&run, &check, &job.protocol, workload.node_executions).await?;
    // The raw round trip in the same process and conditions, for the
    // gRPC step goal (judged on noop rows).
    let raw_rtt = match (&job.endpoints.raw_grpc, transport, expert) {
        (Some(endpoint), Transport::Grpc, ExpertKind::Noop) => {
            let channel = connect(endpoint).await?;
            let (p50, _) = timed(CALIBRATION_CALLS, || {
                invoke_direct(&channel, "echo", "cal", 0)
            })
            .await?;
            Some(p50)
        }
        _ => None,
    };
    let peak_mb = status_mb("VmHWM");
    let mut row = json!({
        "mode": transport.mode_name(mode.name()),
        "transport": transport.name(),
        "expert": expert.name(),
        "workload": workload.name,
        "node_executions": workload.node_executions,
        "critical_path": workload.critical_path,
        "build_ms": build_ms,
        "latency": measured.latency,
        "throughput": measured.throughput,
        "total_invocations": measured.total_invocations,
        "rss": {
            "start_mb": rss_start_mb,
            "peak_mb": peak_mb,
            "growth_mb": peak_mb.zip(rss_start_mb).map(|(p, s)| p - s),
        },
        "process_cpu_s": process_cpu_s(),
    });
    if let Some(p50) = raw_rtt {
        row["raw_grpc_rtt_p50_us"] = json!(p50);
    }
    if mode == Mode::Sqlite {
        row["sqlite_db_bytes"] = json!(sqlite_bytes(&scratch.0));
        row["sqlite_pragmas"] = json!({"journal_mode": "wal", "synchronous": 2});
    }
    if transport == Transport::InProcess {
        row["expert_calls"] = json!(body.calls());
        row["http_requests"] = json!(body.requests());
    }
    Ok(row)
}

/// A fresh temporary directory for the combination's files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("synod-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sdk_endpoint(job: &Job) -> anyhow::Result<&str> {
    job.endpoints
        .sdk_expert
        .as_deref()
        .context("the gRPC transport needs the benchmark expert's endpoint")
}

/// Warm-up calls, then timed sequential calls.
const CALIBRATION_WARMUP: usize = 50;
const CALIBRATION_CALLS: usize = 300;
const SLEEP_SAMPLES: usize = 200;

async fn timed<F, Fut>(calls: usize, mut f: F) -> anyhow::Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Value>>,
{
    for _ in 0..CALIBRATION_WARMUP {
        f().await?;
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t0 = Instant::now();
        f().await?;
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    Ok(p50_p99(samples))
}

/// Bare costs: the runtime's 1 ms sleep, one loopback HTTP POST, one raw
/// tonic unary round trip, one `Invoke` of the SDK's noop skill.
async fn calibrate(endpoints: &Endpoints) -> anyhow::Result<Value> {
    let mut samples = Vec::with_capacity(SLEEP_SAMPLES);
    for _ in 0..SLEEP_SAMPLES {
        let t0 = Instant::now();
        tokio::time::sleep(SLEEP).await;
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let (p50, p99) = p50_p99(samples);
    let mut out = json!({"sleep_1ms_p50_us": p50, "sleep_1ms_p99_us": p99});
    if let Some(url) = &endpoints.http_url {
        let http = HttpEcho::new(url)?;
        let body = crate::bench::expert::node_result("cal", 0);
        let (p50, p99) = timed(CALIBRATION_CALLS, || http.post(&body)).await?;
        out["http_rtt_p50_us"] = json!(p50);
        out["http_rtt_p99_us"] = json!(p99);
    }
    let grpc_targets = [
        (&endpoints.raw_grpc, "echo", "grpc_raw_rtt"),
        (&endpoints.sdk_expert, "noop", "grpc_sdk_noop_rtt"),
    ];
    for (endpoint, skill, name) in grpc_targets {
        if let Some(endpoint) = endpoint {
            let channel = connect(endpoint).await?;
            let (p50, p99) = timed(CALIBRATION_CALLS, || {
                invoke_direct(&channel, skill, "cal", 0)
            })
            .await?;
            out[format!("{name}_p50_us")] = json!(p50);
            out[format!("{name}_p99_us")] = json!(p99);
        }
    }
    out["process_cpu_s"] = json!(process_cpu_s());
    Ok(out)
}
