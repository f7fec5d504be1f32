//! `synod-eval faults`: runs against faulty experts, through a real
//! `synod serve`, checking that every run ends in a defined state and that
//! retries and circuit breakers show in the server's `/metrics`.
//!
//! Each fault kind ([`expert`]: fail 30%, hang, crash-and-restart, invalid
//! output) is its own expert process `fault-<kind>`, registered with the
//! orchestrator (`Registry.Register`), and its own workflow: the diamond6
//! shape with a step `timeout` and `retry` policy on every step. The kinds
//! run one after the other: `--runs` runs each, `--concurrency` in flight.
//! For `crash` the expert process is killed (SIGKILL) every `--crash-every-ms`
//! and started again on the same port after `--crash-down-ms`.
//!
//! Measured per kind: how the runs ended (client events, then `GetRun`:
//! none may be left unfinished, every failed run must carry an error), the
//! time to complete them all, retries from the runs' attempts and from
//! `synod_step_retries_total`, failed attempts by error code from
//! `synod_step_attempt_failures_total`, circuit-breaker openings from
//! `synod_expert_breaker_open` sampled every 100 ms (and, for a spawned
//! server, its "circuit breaker opened" log lines).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::bench::runner::RuntimeChoice;
use crate::bench::sys::{cpu_count, machine_info, versions};
use crate::bench::workload::Workload;
use crate::load::harness::{self, Server, StoreChoice, TargetArgs};
use crate::load::prom::{self, Exposition};
use crate::load::report::{Stored, error_class, outcomes};
use crate::load::track::{self, Ending};
use crate::load::workflow::{StepSettings, workflow_yaml};
use crate::load::{drive_runs, progress_bar, put_workflow, register_static, write_reports};

pub mod expert;
pub mod report;

use expert::{ExpertProcess, FaultConfig, FaultKind, KINDS, SKILL};

/// Arguments of `synod-eval faults`.
#[derive(Debug, Clone, Args)]
pub struct FaultsArgs {
    /// Runs per fault kind.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Fault kinds, comma-separated: fail, hang, crash, invalid.
    #[arg(long, value_delimiter = ',', default_value = "fail,hang,crash,invalid")]
    pub kinds: Vec<String>,
    /// Runs in flight at once.
    #[arg(long, default_value_t = 20)]
    pub concurrency: usize,
    /// How the experts misbehave.
    #[command(flatten)]
    pub fault: FaultConfig,
    /// Every step's `timeout` (a hung call fails after it).
    #[arg(long, default_value = "1s")]
    pub step_timeout: String,
    /// Every step's `retry` policy (workflow YAML flow mapping).
    #[arg(
        long,
        default_value = "{ policy: exponential, initial_interval: 200ms, factor: 2, max_interval: 2s, max_attempts: 8 }"
    )]
    pub retry: String,
    /// `crash`: milliseconds between kills of the expert process.
    #[arg(long, default_value_t = 1500)]
    pub crash_every_ms: u64,
    /// `crash`: milliseconds the expert stays down before it is restarted.
    #[arg(long, default_value_t = 500)]
    pub crash_down_ms: u64,
    /// Give up on runs not ended after this many seconds (per kind); such
    /// runs are reported as stuck.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Report path without extension: writes <out>.json and <out>.md.
    #[arg(long, default_value = "eval/results/faults")]
    pub out: PathBuf,
    /// The server, its store, output options.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Runs `synod-eval faults`; fails when a run was left unfinished or lost,
/// or a failed run has no error.
pub fn run(args: &FaultsArgs) -> anyhow::Result<ExitCode> {
    let runtime = RuntimeChoice {
        worker_threads: cpu_count(),
    }
    .build()?;
    let doc = runtime.block_on(faults(args))?;
    write_reports(&args.out, &doc, &report::markdown(&doc), args.target.json)?;
    Ok(if doc["all_defined"] == json!(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Circuit-breaker figures of one expert from `/metrics` samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BreakerWatch {
    /// Times `synod_expert_breaker_open` went from 0 to 1.
    pub opens: u64,
    /// Samples taken.
    pub samples: u64,
    /// Samples with the breaker open.
    pub open_samples: u64,
}

impl BreakerWatch {
    /// Folds one sample (the sum of the gauge over the expert's instances).
    pub fn observe(&mut self, open_now: f64, was_open: &mut bool) {
        self.samples += 1;
        let open = open_now > 0.0;
        if open {
            self.open_samples += 1;
            if !*was_open {
                self.opens += 1;
            }
        }
        *was_open = open;
    }
}

/// Samples the breaker gauge of `expert` every 100 ms until `stop`.
fn watch_breaker(
    http_url: String,
    expert: String,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<BreakerWatch> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut watch = BreakerWatch::default();
        let mut was_open = false;
        loop {
            if let Ok(metrics) = prom::scrape(&client, &http_url).await {
                let open = metrics.sum("synod_expert_breaker_open", &[("expert", expert.as_str())]);
                watch.observe(open, &mut was_open);
            }
            tokio::select! {
                () = stop.cancelled() => return watch,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    })
}

/// Kills and restarts `process` until `stop`; returns the number of kills.
fn crash_loop(
    mut process: ExpertProcess,
    every: Duration,
    down: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<(ExpertProcess, u64, Vec<String>)> {
    tokio::spawn(async move {
        let mut kills = 0;
        let mut problems = Vec::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => return (process, kills, problems),
                () = tokio::time::sleep(every) => {}
            }
            process.kill().await;
            kills += 1;
            tokio::time::sleep(down).await;
            if let Err(error) = process.start().await {
                problems.push(format!("restart {kills} failed: {error:#}"));
            }
        }
    })
}

/// `circuit breaker opened` log lines of `expert` in the server's log.
fn breaker_log_lines(server: &Server, expert: &str) -> Option<u64> {
    let text = std::fs::read_to_string(server.log_path()?).ok()?;
    let needle = format!("expert={expert} ");
    Some(
        text.lines()
            .map(strip_ansi)
            .filter(|l| l.contains("circuit breaker opened") && l.contains(&needle))
            .count() as u64,
    )
}

/// `line` without ANSI colour sequences (`ESC [ … m`).
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Per-run details from `GetRun`: the store's view, the error, retries.
struct RunDetail {
    stored: Stored,
    error: String,
    retries: u64,
}

async fn details(channels: &[Channel], run_ids: Vec<String>) -> HashMap<String, RunDetail> {
    futures::stream::iter(run_ids.into_iter().enumerate())
        .map(|(index, run_id)| {
            let channel = channels[index % channels.len()].clone();
            async move {
                let detail = match track::stored_run(channel, &run_id).await {
                    Ok(Some(info)) => RunDetail {
                        stored: match Ending::of_status(info.status) {
                            Some(ending) => Stored::Ended(ending),
                            None => Stored::NotEnded(format!("status {}", info.status)),
                        },
                        retries: info
                            .steps
                            .iter()
                            .map(|s| u64::from(s.attempts.saturating_sub(1)))
                            .sum(),
                        error: info.error,
                    },
                    Ok(None) => RunDetail {
                        stored: Stored::Missing,
                        error: String::new(),
                        retries: 0,
                    },
                    Err(error) => RunDetail {
                        stored: Stored::Unreadable(format!("{error:#}")),
                        error: String::new(),
                        retries: 0,
                    },
                };
                (run_id, detail)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await
}

/// Counter deltas of `expert` between two scrapes.
pub fn metric_deltas(
    before: &Exposition,
    after: &Exposition,
    expert: &str,
    workflow: &str,
) -> Value {
    let want = [("expert", expert)];
    let delta = |name: &str, want: &[(&str, &str)]| after.sum(name, want) - before.sum(name, want);
    let by = |name: &str, want: &[(&str, &str)], label: &str| {
        let old = before.sum_by(name, want, label);
        after
            .sum_by(name, want, label)
            .into_iter()
            .map(|(k, v)| {
                let d = v - old.get(&k).copied().unwrap_or(0.0);
                (k, json!(d))
            })
            .filter(|(_, v)| v.as_f64() != Some(0.0))
            .collect::<serde_json::Map<_, _>>()
    };
    json!({
        "synod_step_retries_total": delta("synod_step_retries_total", &want),
        "synod_step_attempt_failures_total_by_code": by("synod_step_attempt_failures_total", &want, "code"),
        "synod_steps_finished_total_by_outcome": by("synod_steps_finished_total", &want, "outcome"),
        "synod_expert_calls_total": delta("synod_expert_calls_total", &want),
        "synod_expert_call_failures_total": delta("synod_expert_call_failures_total", &want),
        "synod_runs_finished_total_by_outcome": by("synod_runs_finished_total", &[("workflow", workflow)], "outcome"),
    })
}

async fn faults(args: &FaultsArgs) -> anyhow::Result<Value> {
    let kinds: Vec<FaultKind> = args
        .kinds
        .iter()
        .map(|k| k.trim().parse().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(
        !kinds.is_empty(),
        "no fault kind given; known: {}",
        KINDS.join(", ")
    );
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let mut experts = Vec::new();
    for kind in &kinds {
        experts.push(ExpertProcess::spawn(*kind, &args.fault).await?);
    }
    let dir = harness::scratch_dir("faults");
    let mut server = args.target.server(&dir, Vec::new()).await?;
    let channels = server
        .channels(args.concurrency.div_ceil(100).clamp(2, 16))
        .await?;
    for process in &experts {
        register_static(&channels[0], &process.endpoint)
            .await
            .with_context(|| format!("registering {}", process.endpoint))?;
    }
    let workload = Workload::builtin("diamond6").map_err(anyhow::Error::msg)?;
    let settings = StepSettings {
        timeout: Some(args.step_timeout.clone()),
        retry: Some(args.retry.clone()),
    };
    let http = reqwest::Client::new();
    let mut results = Vec::new();
    for (kind, process) in kinds.iter().zip(experts) {
        let expert = kind.expert();
        let workflow = format!("faults-{}", kind.name());
        let yaml = workflow_yaml(
            &workflow,
            &workload,
            &format!("{expert}/{SKILL}"),
            &settings,
        );
        put_workflow(&channels[0], &yaml, &format!("{workflow}.yaml")).await?;
        let before = prom::scrape(&http, &server.http_url).await?;
        let logged_before = breaker_log_lines(&server, &expert);
        let stop = CancellationToken::new();
        let breaker = watch_breaker(server.http_url.clone(), expert.clone(), stop.clone());
        // The crash loop owns the crash expert; the others live until the
        // end of their kind's iteration.
        let (crashes, _alive) = if *kind == FaultKind::Crash {
            let every = Duration::from_millis(args.crash_every_ms);
            let down = Duration::from_millis(args.crash_down_ms);
            (Some(crash_loop(process, every, down, stop.clone())), None)
        } else {
            (None, Some(process))
        };
        let bar = progress_bar(args.runs, !args.target.no_progress, "runs");
        bar.set_prefix(kind.name());
        let started = Instant::now();
        let deadline = started + Duration::from_secs(args.timeout);
        let (tracked, peak) = drive_runs(
            &channels,
            &workflow,
            args.runs,
            args.concurrency,
            deadline,
            &bar,
        )
        .await;
        let wall_s = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        stop.cancel();
        let watch = breaker.await.unwrap_or_default();
        let (kills, crash_problems) = match crashes {
            Some(handle) => {
                let (mut process, kills, problems) =
                    handle.await.context("the crash loop failed")?;
                process.kill().await;
                (kills, problems)
            }
            None => (0, Vec::new()),
        };
        // Let the last events land in the tally before reading /metrics.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = prom::scrape(&http, &server.http_url).await?;
        let logged = breaker_log_lines(&server, &expert)
            .zip(logged_before)
            .map(|(a, b)| a - b);
        let ids: Vec<String> = tracked.iter().filter_map(|t| t.run_id.clone()).collect();
        let details = details(&channels, ids).await;
        let stored: HashMap<String, Stored> = details
            .iter()
            .map(|(id, d)| (id.clone(), d.stored.clone()))
            .collect();
        let outcome = outcomes(&tracked, &stored, f64::NAN);
        let failed_without_error = details
            .values()
            .filter(|d| d.stored == Stored::Ended(Ending::Failed) && d.error.trim().is_empty())
            .count();
        let mut run_errors: BTreeMap<String, usize> = BTreeMap::new();
        for d in details.values().filter(|d| !d.error.is_empty()) {
            *run_errors.entry(error_class(&d.error)).or_default() += 1;
        }
        let mut run_errors: Vec<(String, usize)> = run_errors.into_iter().collect();
        run_errors.sort_by_key(|e| std::cmp::Reverse(e.1));
        run_errors.truncate(5);
        let stuck = outcome.lost + outcome.start_errors;
        let retries_from_runs: u64 = details.values().map(|d| d.retries).sum();
        let metrics = metric_deltas(&before, &after, &expert, &workflow);
        let ended = tracked.iter().filter(|t| t.ending.is_terminal()).count();
        results.push(json!({
            "kind": kind.name(),
            "expert": expert,
            "workflow": workflow,
            "runs": args.runs,
            "endings": outcome.endings,
            "stuck_or_lost": stuck,
            "stuck_examples": outcome.lost_examples,
            "failed_without_error": failed_without_error,
            "top_run_errors": run_errors.iter().map(|(e, n)| json!({"error": e, "runs": n})).collect::<Vec<_>>(),
            "retries_from_runs": retries_from_runs,
            "metrics": metrics,
            "breaker": {
                "opens_sampled": watch.opens,
                "open_share_of_samples": if watch.samples == 0 { 0.0 } else { watch.open_samples as f64 / watch.samples as f64 },
                "samples": watch.samples,
                "opens_logged": logged,
            },
            "crashes": kills,
            "crash_problems": crash_problems,
            "time_to_complete_s": wall_s,
            "runs_per_s": ended as f64 / wall_s,
            "peak_in_flight": peak,
            "latency_ms": outcome.latency.as_ref().map(|l| json!({
                "p50": l.p50_us / 1000.0, "p99": l.p99_us / 1000.0, "max": l.max_us / 1000.0
            })),
            "defined": stuck == 0 && failed_without_error == 0,
        }));
    }
    let all_defined = results.iter().all(|r| r["defined"] == json!(true));
    let server_label = if args.target.addr.is_some() {
        format!("external at {}", server.grpc_url)
    } else {
        format!(
            "spawned: synod serve --database-url {} (registry defaults: breaker opens after 3 consecutive instance failures, 5 s cool-down; health checks every 5 s)",
            args.target.store.database_url(&dir)
        )
    };
    server.stop().await;
    if args.target.addr.is_none() && args.target.store == StoreChoice::Sqlite {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(json!({
        "schema": "synod-eval-faults/1",
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "machine": machine_info(None),
        "versions": versions(),
        "config": {
            "runs_per_kind": args.runs,
            "concurrency": args.concurrency,
            "fail_rate": args.fault.fail_rate,
            "seed": args.fault.seed,
            "work_ms": args.fault.work_ms,
            "workload": workload.name,
            "step_timeout": args.step_timeout,
            "retry": args.retry,
            "crash_every_ms": args.crash_every_ms,
            "crash_down_ms": args.crash_down_ms,
            "server": server_label,
        },
        "kinds": results,
        "all_defined": all_defined,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_stripped_from_log_lines() {
        let line = "\u{1b}[33m WARN\u{1b}[0m circuit breaker opened \u{1b}[3mexpert\u{1b}[0m\u{1b}[2m=\u{1b}[0mfault-fail instance=x";
        assert_eq!(
            strip_ansi(line),
            " WARN circuit breaker opened expert=fault-fail instance=x"
        );
    }

    #[test]
    fn breaker_openings_are_rising_edges() {
        let mut watch = BreakerWatch::default();
        let mut was_open = false;
        for open in [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 2.0] {
            watch.observe(open, &mut was_open);
        }
        assert_eq!(watch.opens, 3);
        assert_eq!((watch.samples, watch.open_samples), (8, 4));
    }

    #[test]
    fn metric_deltas_are_per_expert_and_workflow() {
        let before = Exposition::parse(
            "synod_step_retries_total{expert=\"fault-fail\",skill=\"work\"} 5\n\
             synod_step_attempt_failures_total{expert=\"fault-fail\",skill=\"work\",code=\"EXPERT_TRANSIENT\"} 5\n",
        )
        .unwrap();
        let after = Exposition::parse(
            "synod_step_retries_total{expert=\"fault-fail\",skill=\"work\"} 12\n\
             synod_step_retries_total{expert=\"fault-hang\",skill=\"work\"} 40\n\
             synod_step_attempt_failures_total{expert=\"fault-fail\",skill=\"work\",code=\"EXPERT_TRANSIENT\"} 9\n\
             synod_step_attempt_failures_total{expert=\"fault-fail\",skill=\"work\",code=\"DEADLINE_EXCEEDED\"} 1\n\
             synod_runs_finished_total{workflow=\"faults-fail\",outcome=\"succeeded\"} 3\n",
        )
        .unwrap();
        let d = metric_deltas(&before, &after, "fault-fail", "faults-fail");
        assert_eq!(d["synod_step_retries_total"], 7.0);
        assert_eq!(
            d["synod_step_attempt_failures_total_by_code"],
            json!({"EXPERT_TRANSIENT": 4.0, "DEADLINE_EXCEEDED": 1.0})
        );
        assert_eq!(
            d["synod_runs_finished_total_by_outcome"],
            json!({"succeeded": 3.0})
        );
    }
}
