//! The measurement protocol of the peer benchmark: warm-up, sequential
//! latency runs, then batches of concurrent runs for throughput.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bench::mode::RunFn;
use crate::bench::stats::LatencySummary;
use crate::bench::sys::process_cpu_s;

/// Protocol settings (the report's `settings`, with the peer's names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Sequential runs for latency, at most.
    pub latency_runs: usize,
    /// Sequential runs always measured, whatever the cap.
    pub min_runs: usize,
    /// Warm-up runs, at most (at least 2; none started after 1 s).
    pub warmup: usize,
    /// Runs per throughput batch, started together.
    pub concurrency: usize,
    /// Throughput batches (at least this many unless the cap stops them).
    pub throughput_rounds: usize,
    /// Warm-up batches before the measured ones (skipped when one batch is
    /// estimated to take longer than the cap).
    pub throughput_warmup_rounds: usize,
    /// Stop the latency loop after this many seconds (once `min_runs` ran).
    pub latency_cap_s: f64,
    /// Stop adding throughput batches after this many seconds.
    pub throughput_cap_s: f64,
    /// Keep adding batches past `throughput_rounds` until this much batch
    /// time was measured (0 = exactly the peer's rule). Fast combinations
    /// finish 5 batches in milliseconds; this makes their runs/s stable.
    pub throughput_min_s: f64,
}

impl Default for Protocol {
    /// The peer benchmark's defaults, plus `throughput_min_s` = 0.5 s.
    fn default() -> Self {
        Protocol {
            latency_runs: 100,
            min_runs: 15,
            warmup: 5,
            concurrency: 64,
            throughput_rounds: 5,
            throughput_warmup_rounds: 1,
            latency_cap_s: 2.0,
            throughput_cap_s: 2.0,
            throughput_min_s: 0.5,
        }
    }
}

/// The `throughput` object of a result row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputSummary {
    /// Runs per batch.
    pub concurrency: usize,
    /// Warm-up batches run.
    pub warmup_rounds: usize,
    /// Measured batches.
    pub rounds: usize,
    /// Measured runs.
    pub runs: usize,
    /// Sum of batch wall times, seconds.
    pub wall_s: f64,
    /// `runs / wall_s`.
    pub runs_per_s: f64,
    /// Fastest batch, seconds.
    pub batch_s_min: f64,
    /// Slowest batch, seconds.
    pub batch_s_max: f64,
    /// Process CPU seconds (all threads) over the batches.
    pub cpu_s: f64,
    /// `cpu_s / (runs x node executions)`, microseconds.
    pub cpu_per_node_us: f64,
}

/// What [`measure`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Sequential runs.
    pub latency: LatencySummary,
    /// Concurrent batches.
    pub throughput: ThroughputSummary,
    /// Every run started: warm-up, latency and throughput.
    pub total_invocations: u64,
}

/// Measures `run` under the protocol; `check` validates a run's outputs
/// (every warm-up run, and the first and last of each warm-up batch).
pub async fn measure(
    run: &RunFn,
    check: &(dyn Fn(&Value) -> anyhow::Result<()> + Sync),
    protocol: &Protocol,
    node_executions: usize,
) -> anyhow::Result<Measured> {
    let mut invocations: u64 = 0;

    let warm_cap = Instant::now() + Duration::from_secs(1);
    for i in 0..protocol.warmup {
        invocations += 1;
        check(&run().await.context("warm-up run failed")?)?;
        if i >= 1 && Instant::now() > warm_cap {
            break;
        }
    }

    let mut samples = Vec::with_capacity(protocol.latency_runs);
    let cap = Instant::now() + Duration::from_secs_f64(protocol.latency_cap_s);
    let cpu0 = process_cpu_s();
    for i in 0..protocol.latency_runs {
        invocations += 1;
        let t0 = Instant::now();
        run().await.context("latency run failed")?;
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
        if i + 1 >= protocol.min_runs && Instant::now() > cap {
            break;
        }
    }
    anyhow::ensure!(
        !samples.is_empty(),
        "no latency run: --runs must be at least 1"
    );
    let latency = LatencySummary::from_samples(samples, process_cpu_s() - cpu0);

    let conc = protocol.concurrency.max(1);
    let estimated_batch_s = latency.mean_us * 1e-6 * conc as f64;
    let warmup_rounds = if estimated_batch_s <= protocol.throughput_cap_s {
        protocol.throughput_warmup_rounds
    } else {
        0
    };
    for _ in 0..warmup_rounds {
        let outputs = batch(run, conc).await.context("warm-up batch failed")?;
        invocations += conc as u64;
        check(&outputs[0])?;
        check(&outputs[conc - 1])?;
    }
    let mut batches: Vec<f64> = Vec::new();
    let cap = Instant::now() + Duration::from_secs_f64(protocol.throughput_cap_s);
    let cpu0 = process_cpu_s();
    loop {
        let t0 = Instant::now();
        batch(run, conc).await.context("throughput batch failed")?;
        batches.push(t0.elapsed().as_secs_f64());
        invocations += conc as u64;
        let measured: f64 = batches.iter().sum();
        let enough =
            batches.len() >= protocol.throughput_rounds && measured >= protocol.throughput_min_s;
        if enough || Instant::now() > cap {
            break;
        }
    }
    let cpu_s = process_cpu_s() - cpu0;
    let runs = conc * batches.len();
    let wall_s: f64 = batches.iter().sum();
    let throughput = ThroughputSummary {
        concurrency: conc,
        warmup_rounds,
        rounds: batches.len(),
        runs,
        wall_s,
        runs_per_s: runs as f64 / wall_s,
        batch_s_min: batches.iter().copied().fold(f64::INFINITY, f64::min),
        batch_s_max: batches.iter().copied().fold(0.0, f64::max),
        cpu_s,
        cpu_per_node_us: cpu_s / (runs * node_executions) as f64 * 1e6,
    };
    Ok(Measured {
        latency,
        throughput,
        total_invocations: invocations,
    })
}

/// Starts `n` runs as separate tasks (as a server would) and waits for all.
async fn batch(run: &RunFn, n: usize) -> anyhow::Result<Vec<Value>> {
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(run())).collect();
    let mut outputs = Vec::with_capacity(n);
    for handle in handles {
        outputs.push(handle.await.context("a run panicked")??);
    }
    Ok(outputs)
}
