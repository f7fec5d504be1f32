//! `synod-eval load`: many concurrent runs of a benchmark shape (diamond6)
//! against a real `synod serve` process over gRPC.
//!
//! The benchmark's SDK expert (noop or 1 ms sleep, [`crate::bench`]) is
//! served from this process over gRPC and given to the server as a static
//! expert; the shape is stored as a workflow (`Workflows.Put`); every run is
//! `StartRun` + `WatchRun` until its terminal event, at most `--concurrency`
//! in flight, spread over a few HTTP/2 connections. Afterwards every run is
//! read back with `GetRun`: a run is lost when it did not end in a terminal
//! state the store agrees with. The server's peak RSS is its `VmHWM`; its
//! `synod_runs_active` gauge is sampled from `/metrics` to show the runs
//! were in flight in the server at once.
//!
//! Layout: [`harness`] (the server process), [`workflow`] (shape → YAML),
//! [`track`] (one run over gRPC), [`prom`] (`/metrics`), [`report`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use synod_proto::orchestrator::PutWorkflowRequest;
use synod_proto::orchestrator::workflows_client::WorkflowsClient;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::bench::expert::{ExpertKind, NodeBody};
use crate::bench::runner::RuntimeChoice;
use crate::bench::sys::{cpu_count, machine_info, versions};
use crate::bench::transport::{BENCH_EXPERT, spawn_sdk_expert};
use crate::bench::workload::Workload;

pub mod harness;
pub mod prom;
pub mod report;
pub mod track;
pub mod workflow;

use harness::{StoreChoice, TargetArgs};
use report::{RSS_GOAL_MIB, Stored};
use track::{Ending, Tracked};

/// Most `StartRun`/`WatchRun` streams per HTTP/2 connection (the server's
/// default limit of concurrent streams per connection is 200).
const STREAMS_PER_CONNECTION: usize = 150;

/// Arguments of `synod-eval load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Runs to start.
    #[arg(long, default_value_t = 10_000)]
    pub runs: usize,
    /// Most runs in flight at once (started, not ended).
    #[arg(long, default_value_t = 10_000)]
    pub concurrency: usize,
    /// The benchmark shape.
    #[arg(long, default_value = "diamond6")]
    pub workload: String,
    /// The expert behind every step: noop or sleep (1 ms).
    #[arg(long, default_value = "noop")]
    pub expert: String,
    /// The server, its store, output options.
    #[command(flatten)]
    pub target: TargetArgs,
    /// HTTP/2 connections to the server (default: enough for 150 streams each).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Give up on runs not ended after this many seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Report path without extension: writes <out>.json and <out>.md.
    #[arg(long, default_value = "eval/results/load")]
    pub out: PathBuf,
}

/// Runs `synod-eval load`.
pub fn run(args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let runtime = RuntimeChoice {
        worker_threads: cpu_count(),
    }
    .build()?;
    let doc = runtime.block_on(load(args))?;
    write_reports(&args.out, &doc, &report::markdown(&doc), args.target.json)?;
    let ok = doc["results"]["goals"]
        .as_object()
        .is_some_and(|g| g.values().all(|v| v.as_bool() != Some(false)));
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes `<out>.json` and `<out>.md`; prints the JSON on stdout when
/// `json`, else the Markdown on stderr.
pub fn write_reports(out: &Path, doc: &Value, markdown: &str, json: bool) -> anyhow::Result<()> {
    let (json_path, md_path) = (out.with_extension("json"), out.with_extension("md"));
    crate::write_json(&json_path, doc)?;
    std::fs::write(&md_path, markdown)
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(doc)?);
    } else {
        eprint!("{markdown}");
    }
    eprintln!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

/// The progress bar, or a hidden one.
pub fn progress_bar(len: usize, show: bool, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{prefix}} {{msg:>18}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{elapsed}}, {{per_sec}})"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Stores `yaml` under its name with `Workflows.Put`.
pub async fn put_workflow(channel: &Channel, yaml: &str, file: &str) -> anyhow::Result<String> {
    let response = WorkflowsClient::new(channel.clone())
        .put(PutWorkflowRequest {
            workflow_yaml: yaml.to_owned(),
            file_name: file.to_owned(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("Workflows.Put {file} failed: {status}"))?
        .into_inner();
    if response.name.is_empty() {
        bail!(
            "the server refused the workflow {file}: {:?}",
            response.diagnostics
        );
    }
    Ok(response.name)
}

/// Drives `runs` runs of the stored workflow, at most `concurrency` in
/// flight, round-robin over `channels`. Returns what each run did and the
/// most runs in flight at once.
pub async fn drive_runs(
    channels: &[Channel],
    workflow: &str,
    runs: usize,
    concurrency: usize,
    deadline: Instant,
    bar: &ProgressBar,
) -> (Vec<Tracked>, usize) {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let tasks = (0..runs).map(|index| {
        let channel = channels[index % channels.len()].clone();
        let permits = Arc::clone(&permits);
        let (in_flight, peak) = (Arc::clone(&in_flight), Arc::clone(&peak));
        let workflow = workflow.to_owned();
        let bar = bar.clone();
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let started = || {
                let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                peak.fetch_max(now, Ordering::Relaxed);
            };
            let tracked = track::start_and_watch(channel, &workflow, deadline, started).await;
            if tracked.run_id.is_some() {
                in_flight.fetch_sub(1, Ordering::Relaxed);
            }
            bar.inc(1);
            bar.set_message(format!("{} in flight", in_flight.load(Ordering::Relaxed)));
            tracked
        })
    });
    let handles: Vec<_> = tasks.collect();
    let mut out = Vec::with_capacity(runs);
    for handle in handles {
        out.push(handle.await.unwrap_or_else(|error| Tracked {
            run_id: None,
            ending: Ending::NotStarted,
            latency: Duration::ZERO,
            submit: Duration::ZERO,
            error: Some(format!("the run's task failed: {error}")),
            reconnects: 0,
        }));
    }
    (out, peak.load(Ordering::Relaxed))
}

/// What the store recorded of every started run (`GetRun`, 64 at a time).
pub async fn read_back(channels: &[Channel], tracked: &[Tracked]) -> HashMap<String, Stored> {
    let ids: Vec<(usize, String)> = tracked
        .iter()
        .filter_map(|t| t.run_id.clone())
        .enumerate()
        .collect();
    futures::stream::iter(ids)
        .map(|(index, run_id)| {
            let channel = channels[index % channels.len()].clone();
            async move {
                let stored = match track::stored_run(channel, &run_id).await {
                    Ok(Some(info)) => match Ending::of_status(info.status) {
                        Some(ending) => Stored::Ended(ending),
                        None => Stored::NotEnded(format!("status {}", info.status)),
                    },
                    Ok(None) => Stored::Missing,
                    Err(error) => Stored::Unreadable(format!("{error:#}")),
                };
                (run_id, stored)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

/// Samples `synod_runs_active` and the server's RSS every 250 ms until
/// `stop`; returns the peaks.
fn spawn_sampler(
    http_url: String,
    pid: Option<u32>,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<(f64, f64)> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let (mut peak_active, mut peak_rss) = (0.0_f64, 0.0_f64);
        loop {
            if let Ok(metrics) = prom::scrape(&client, &http_url).await {
                peak_active = peak_active.max(metrics.sum("synod_runs_active", &[]));
            }
            if let Some(rss) =
                pid.and_then(|p| crate::bench::sys::pid_status_mb(&p.to_string(), "VmRSS"))
            {
                peak_rss = peak_rss.max(rss);
            }
            tokio::select! {
                () = stop.cancelled() => return (peak_active, peak_rss),
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    })
}

async fn load(args: &LoadArgs) -> anyhow::Result<Value> {
    let workload = Workload::builtin(&args.workload).map_err(anyhow::Error::msg)?;
    let kind: ExpertKind = args.expert.parse().map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        kind != ExpertKind::Http,
        "the load test's expert is noop or sleep"
    );
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let body = NodeBody::new(kind, None, u64::MAX)?;
    let expert = spawn_sdk_expert(&[body]).await?;
    let dir = harness::scratch_dir("load");
    let mut server = args
        .target
        .server(&dir, vec![expert.endpoint().to_owned()])
        .await?;
    let concurrency = args.concurrency.min(args.runs);
    let connections = args
        .connections
        .unwrap_or_else(|| concurrency.div_ceil(STREAMS_PER_CONNECTION).clamp(2, 128));
    let channels = server.channels(connections).await?;
    let name = format!("load-{}", workload.name);
    let yaml = workflow::workflow_yaml(
        &name,
        &workload,
        &format!("{BENCH_EXPERT}/{}", kind.name()),
        &workflow::StepSettings::default(),
    );
    put_workflow(&channels[0], &yaml, &format!("{name}.yaml")).await?;

    // One warm-up run (connections, caches) that is not counted.
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let warm = track::start_and_watch(channels[0].clone(), &name, deadline, || {}).await;
    if warm.ending != Ending::Succeeded {
        bail!(
            "the warm-up run did not succeed ({:?}: {}); server log:\n{}",
            warm.ending,
            warm.error.unwrap_or_default(),
            server.log_tail(20)
        );
    }

    let stop = tokio_util::sync::CancellationToken::new();
    let sampler = spawn_sampler(server.http_url.clone(), server.pid(), stop.clone());
    let cpu_before = server.cpu_s().unwrap_or(0.0);
    let bar = progress_bar(args.runs, !args.target.no_progress, "runs");
    let started = Instant::now();
    let (tracked, peak_in_flight) =
        drive_runs(&channels, &name, args.runs, concurrency, deadline, &bar).await;
    let wall_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let server_cpu_s = server.cpu_s().map(|c| c - cpu_before);
    stop.cancel();
    let (peak_active, peak_rss_sampled) = sampler.await.unwrap_or((0.0, 0.0));
    let stored = read_back(&channels, &tracked).await;
    let peak_rss = server.peak_rss_mib();
    let outcomes = report::outcomes(&tracked, &stored, server_cpu_s.unwrap_or(f64::NAN));
    let ended = tracked.iter().filter(|t| t.ending.is_terminal()).count();
    let mut goals = serde_json::Map::new();
    goals.insert(
        "zero_lost".into(),
        json!(outcomes.lost == 0 && outcomes.start_errors == 0),
    );
    if let Some(rss) = peak_rss {
        goals.insert("peak_rss_below_2gib".into(), json!(rss < RSS_GOAL_MIB));
    }
    let server_label = if args.target.addr.is_some() {
        format!("external at {}", server.grpc_url)
    } else {
        format!(
            "spawned: synod serve --database-url {}",
            args.target.store.database_url(&dir)
        )
    };
    let store_label = if args.target.addr.is_some() {
        "external"
    } else {
        args.target.store.name()
    };
    let doc = json!({
        "schema": "synod-eval-load/1",
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "machine": machine_info(None),
        "versions": versions(),
        "config": {
            "runs": args.runs,
            "concurrency": concurrency,
            "connections": connections,
            "store": store_label,
            "workload": workload.name,
            "steps_per_run": workload.node_executions,
            "expert": kind.name(),
            "expert_transport": "gRPC (synod-expert-sdk expert served by synod-eval on loopback, static --expert)",
            "server": server_label,
            "timeout_s": args.timeout,
        },
        "results": {
            "outcomes": outcomes,
            "wall_s": wall_s,
            "runs_per_s": ended as f64 / wall_s,
            "steps_per_s": (ended * workload.node_executions) as f64 / wall_s,
            "peak_in_flight": peak_in_flight,
            "peak_runs_active": peak_active,
            "server_peak_rss_mib": peak_rss,
            "server_rss_sampled_peak_mib": peak_rss_sampled,
            "server_cpu_s": server_cpu_s,
            "goals": goals,
        },
    });
    server.stop().await;
    drop(expert);
    if args.target.addr.is_none() && args.target.store == StoreChoice::Sqlite {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(doc)
}

/// Registers the expert at `endpoint` with a running orchestrator for an
/// hour (`Registry.Register`, the orchestrator reads its card itself).
pub async fn register_static(channel: &Channel, endpoint: &str) -> anyhow::Result<String> {
    use synod_proto::orchestrator::RegisterRequest;
    use synod_proto::orchestrator::registry_client::RegistryClient;
    let response = RegistryClient::new(channel.clone())
        .register(RegisterRequest {
            endpoint: endpoint.to_owned(),
            card: None,
            ttl_ms: 3_600_000,
        })
        .await
        .with_context(|| format!("cannot register the expert at {endpoint}"))?;
    Ok(response.into_inner().instance_id)
}
