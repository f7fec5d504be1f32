//! `synod-eval`: synod's evaluation harnesses. See `synod-eval --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use synod_eval::bench::echo::{EchoChoice, find_python};
use synod_eval::bench::expert::{EXPERTS, ExpertKind};
use synod_eval::bench::measure::Protocol;
use synod_eval::bench::mode::{MODES, Mode};
use synod_eval::bench::report;
use synod_eval::bench::runner::{BenchOptions, ProcessModel, RuntimeChoice, child_main, run_bench};
use synod_eval::bench::sys::cpu_count;
use synod_eval::bench::transport::{TRANSPORTS, Transport};
use synod_eval::bench::workload::{SHAPES, Workload};

/// synod evaluation: speed against peers, quality against datasets.
#[derive(Debug, Parser)]
#[command(name = "synod-eval", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Orchestration benchmark against LangGraph (../shared/bench).
    ///
    /// Runs the peer benchmark's four shapes (chain6, diamond6, layered100,
    /// reflect_loop) with three experts (noop; 1 ms sleep; HTTP POST to a
    /// loopback echo server) in each mode (direct = hand-written calls, the
    /// ideal; none = executor without persistence; memory = executor with
    /// the in-memory event store; sqlite = the SQLite event store) over each
    /// transport (in-process invoker; gRPC to a real SDK expert through the
    /// registry). Each combination: warm-up, up to --runs sequential runs
    /// (latency p50/p99), then batches of --concurrency concurrent runs
    /// (runs/s, CPU per node). Writes the peer's JSON schema v1.
    ///
    /// Examples:
    ///   synod-eval bench --quick --experts noop --workloads chain6
    ///   cargo run -p synod-eval --release -- bench --out eval/out/bench.json
    ///   python3 ../shared/bench/compare.py eval/out/bench.json ../shared/bench/results.json
    ///
    /// In-process rows keep the peer's mode names; gRPC rows are named
    /// grpc-<mode> (compare.py --map grpc-none=none grpc-memory=memory ...).
    /// Combinations measured while other processes used more than
    /// --max-foreign of the CPUs are measured again (--retries).
    ///
    /// The http expert posts to the peer's own aiohttp server (`bench.py
    /// serve`) when a Python with aiohttp is found (eval/scripts/bench-venv.sh
    /// makes one in eval/.venv), else to an axum echo server (--echo).
    #[command(verbatim_doc_comment)]
    Bench(Box<BenchArgs>),
    /// Attack detection (Sigma engine) on ../shared/datasets: regression set
    /// and EVTX-to-MITRE-Attack, with JSON and Markdown reports.
    ///
    /// Example: cargo run -p synod-eval --release -- detection
    Detection(synod_eval::detection::DetectionArgs),
    /// Code security (tree-sitter taint analysis) scored the OWASP Benchmark
    /// way: per-category TPR, FPR, score = TPR - FPR, averages.
    ///
    /// Example: cargo run -p synod-eval --release -- code --benchmark-dir <dir> --expected <csv>
    Code(synod_eval::code::CodeArgs),
    /// Data protection (PII and secrets) on ../shared/datasets: Nosey Parker
    /// examples, Presidio synthetic set, single-thread throughput; JSON and
    /// Markdown reports in eval/results/.
    ///
    /// Example: cargo run -p synod-eval --release -- data-protection
    DataProtection(synod_eval::data_protection::DataProtectionArgs),
    /// The alert-triage workflow end to end through a real orchestrator, on
    /// labelled attack recordings, scored per case and overall.
    ///
    /// Starts in-process an orchestrator (SQLite store in a temp folder) with
    /// the reference experts on loopback (attack-detection with SigmaHQ's
    /// rules from ../shared/datasets/sigma, tracing, disposition; knowledge
    /// when SYNOD_KNOWLEDGE_* are set) and a local receiver for the SOAR
    /// bindings, then submits one run of workflows/alert-triage.yaml per case
    /// over gRPC (--concurrency at a time), approving the gated containment.
    /// Cases: the EVTX_full_APT_attack_steps chains, every technique-labelled
    /// EVTX-to-MITRE-Attack file, the OTRF LSASS campaigns. Reports techniques
    /// found vs labelled (precision/recall, exact and parent level), root
    /// cause found, response plan and actions, reflection rounds, wall time.
    /// Writes <out>.json, <out>.md, <out>-recall.svg, <out>-latency.svg.
    ///
    /// Examples:
    ///   cargo run -p synod-eval --release -- pipeline --data ../shared/datasets/evtx-to-mitre-attack
    ///   eval "$(scripts/knowledge-data.sh)"    # adds the knowledge enrichment run per case
    ///   synod-eval pipeline --sets lsass --concurrency 1
    ///   synod-eval pipeline --sets labelled --only T1003 --out eval/out/pipeline-t1003
    ///   synod-eval pipeline --limit 5 --json --no-progress | jq .overall
    ///
    /// Root cause found: the tracer named an entry point and its chain
    /// contains the case's objective technique (parent level): the label of
    /// an EVTX file, T1003.001 (LSASS credential dumping) for the campaigns.
    #[command(verbatim_doc_comment)]
    Pipeline(synod_eval::pipeline::PipelineArgs),
    /// Load: --runs diamond6 runs against a real `synod serve` over gRPC,
    /// --concurrency in flight; runs/s, p50/p99, server peak RSS, lost runs.
    ///
    /// Example: cargo run -p synod-eval --release -- load --runs 10000 --concurrency 10000
    Load(synod_eval::load::LoadArgs),
    /// Faults: experts that fail 30% of calls, hang, crash and restart, or
    /// answer invalid output; every run must end in a defined state, retries
    /// and breakers are read from /metrics.
    ///
    /// Example: cargo run -p synod-eval --release -- faults --runs 200
    Faults(synod_eval::faults::FaultsArgs),
    /// Internal: serves one faulty expert (used by `faults`).
    #[command(hide = true)]
    FaultExpert(synod_eval::faults::expert::FaultExpertArgs),
    /// Internal: runs one benchmark job read from stdin (used by `bench`).
    #[command(hide = true)]
    BenchChild {
        /// Worker threads of the job's runtime (0 = current-thread).
        #[arg(long)]
        worker_threads: usize,
    },
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Shapes, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "chain6,diamond6,layered100,reflect_loop"
    )]
    workloads: Vec<String>,
    /// Experts, comma-separated: noop, sleep, http.
    #[arg(long, value_delimiter = ',', default_value = "noop,sleep,http")]
    experts: Vec<String>,
    /// Modes, comma-separated: direct, none, memory, sqlite (SqliteStore,
    /// WAL + fsync per event). Keep `direct`: overheads are against it.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "direct,none,memory,sqlite"
    )]
    modes: Vec<String>,
    /// Transports, comma-separated: in-process, grpc.
    #[arg(long, value_delimiter = ',', default_value = "in-process,grpc")]
    transports: Vec<String>,
    /// Results file (JSON schema v1 of ../shared/bench/README.md).
    #[arg(long, default_value = "eval/out/bench.json")]
    out: PathBuf,
    /// Smoke run: few runs, small batches, short caps (numbers are not meaningful).
    #[arg(long)]
    quick: bool,
    /// Sequential runs for latency, at most.
    #[arg(long, default_value_t = 100)]
    runs: usize,
    /// Sequential runs always measured.
    #[arg(long, default_value_t = 15)]
    min_runs: usize,
    /// Warm-up runs, at most.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Concurrent runs per throughput batch.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Throughput batches (at least).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Seconds after which the latency loop stops (once --min-runs ran).
    #[arg(long, default_value_t = 2.0)]
    latency_cap: f64,
    /// Seconds after which no throughput batch is added.
    #[arg(long, default_value_t = 2.0)]
    throughput_cap: f64,
    /// Keep adding batches until this many seconds of batches were measured
    /// (0 = stop after --rounds, as the peer does).
    #[arg(long, default_value_t = 0.5)]
    throughput_min: f64,
    /// Hard bound on loopback HTTP requests per combination.
    #[arg(long, default_value_t = 200_000)]
    http_max_requests: u64,
    /// Echo server for the http expert.
    #[arg(long, value_enum, default_value = "auto")]
    echo: EchoChoice,
    /// Python with aiohttp (default: eval/.venv/bin/python, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// The peer benchmark's folder (bench.py, results.json).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench"))]
    peer_dir: PathBuf,
    /// Where combinations run: a child process each (per-combination RSS
    /// and CPU), or inline in this process.
    #[arg(long, value_enum, default_value = "child")]
    process_model: ProcessModel,
    /// Tokio worker threads per combination (default: CPU count; 0 = a
    /// current-thread runtime, like CPython's single event loop).
    #[arg(long)]
    worker_threads: Option<usize>,
    /// LangGraph results to check the goals against (default:
    /// <peer-dir>/results.json when present).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Measure a combination again when other processes used more than this
    /// share of all CPUs meanwhile (0..1; 1 = never).
    #[arg(long, default_value_t = 0.25)]
    max_foreign: f64,
    /// How many times a noisy combination is measured again (the quietest
    /// measurement is kept).
    #[arg(long, default_value_t = 2)]
    retries: usize,
    /// Do not check goals against a baseline.
    #[arg(long)]
    no_baseline: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn parse_all<T: std::str::FromStr<Err = String>>(
    names: &[String],
    what: &str,
    known: &[&str],
) -> anyhow::Result<Vec<T>> {
    anyhow::ensure!(
        !names.is_empty(),
        "no {what} given; known: {}",
        known.join(", ")
    );
    names
        .iter()
        .map(|n| n.trim().parse::<T>().map_err(anyhow::Error::msg))
        .collect()
}

impl BenchArgs {
    fn options(&self) -> anyhow::Result<BenchOptions> {
        let mut protocol = Protocol {
            latency_runs: self.runs,
            min_runs: self.min_runs,
            warmup: self.warmup,
            concurrency: self.concurrency,
            throughput_rounds: self.rounds,
            throughput_warmup_rounds: 1,
            latency_cap_s: self.latency_cap,
            throughput_cap_s: self.throughput_cap,
            throughput_min_s: self.throughput_min,
        };
        if self.quick {
            protocol = Protocol {
                latency_runs: 20,
                min_runs: 5,
                warmup: 2,
                concurrency: 8,
                throughput_rounds: 2,
                throughput_warmup_rounds: 1,
                latency_cap_s: 0.2,
                throughput_cap_s: 0.2,
                throughput_min_s: 0.0,
            };
        }
        let workloads = self
            .workloads
            .iter()
            .map(|w| Workload::builtin(w.trim()).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(
            !workloads.is_empty(),
            "no workload given; known: {}",
            SHAPES.join(", ")
        );
        let modes: Vec<Mode> = parse_all(&self.modes, "mode", &MODES)?;
        if !modes.contains(&Mode::Direct) {
            eprintln!("note: without mode `direct` the *_vs_direct overheads are not computed");
        }
        let baseline = match (&self.baseline, self.no_baseline) {
            (_, true) => None,
            (Some(path), false) => Some(path.clone()),
            (None, false) => Some(self.peer_dir.join("results.json")).filter(|p| p.exists()),
        };
        Ok(BenchOptions {
            workloads,
            experts: parse_all::<ExpertKind>(&self.experts, "expert", &EXPERTS)?,
            modes,
            transports: parse_all::<Transport>(&self.transports, "transport", &TRANSPORTS)?,
            protocol,
            http_max_requests: self.http_max_requests,
            echo: self.echo,
            python: find_python(self.python.as_deref()),
            bench_py: self.peer_dir.join("bench.py"),
            process_model: self.process_model,
            runtime: RuntimeChoice {
                worker_threads: self.worker_threads.unwrap_or_else(cpu_count),
            },
            baseline,
            max_foreign: self.max_foreign,
            retries: self.retries,
            progress: !self.no_progress,
        })
    }
}

fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let options = args.options()?;
    let doc = match options.process_model {
        // The parent hosts the echo, the gRPC experts and waits for children.
        ProcessModel::Child => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpu_count())
            .enable_all()
            .build()?
            .block_on(run_bench(&options))?,
        ProcessModel::Inline => options.runtime.build()?.block_on(run_bench(&options))?,
    };
    synod_eval::write_json(&args.out, &doc)?;
    let summary = doc["summary"].as_array().cloned().unwrap_or_default();
    eprintln!("{}", report::table(&summary));
    if let Some(rows) = doc["grpc_vs_raw_rtt"]["rows"].as_array() {
        for r in rows {
            eprintln!(
                "gRPC step {}: {} us per superstep vs raw tonic RTT {} us = {}x (goal <= {}x on sequential shapes: {})",
                r["workload"],
                r["step_p50_us"],
                r["raw_rtt_p50_us"],
                r["ratio"],
                report::GRPC_STEP_GOAL_X,
                r["met"]
            );
        }
    }
    if doc["goals"].is_object() {
        let g = &doc["goals"];
        eprintln!(
            "goals vs {}: per-node overhead <= 1/{} met in {}/{} rows, runs/s >= {}x met in {}/{} rows",
            g["baseline_file"],
            report::OVERHEAD_GOAL_X,
            g["ovh_met"],
            g["rows_compared"],
            report::THROUGHPUT_GOAL_X,
            g["tput_met"],
            g["rows_compared"]
        );
    }
    eprintln!("wrote {}", args.out.display());
    let failed = doc["results"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r.get("error").is_some());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Bench(args) => bench(args),
        Command::Detection(args) => synod_eval::detection::run(args),
        Command::Code(args) => synod_eval::code::run(args),
        Command::DataProtection(args) => synod_eval::data_protection::run(args),
        Command::Pipeline(args) => synod_eval::pipeline::run(args),
        Command::Load(args) => synod_eval::load::run(args),
        Command::Faults(args) => synod_eval::faults::run(args),
        Command::FaultExpert(args) => {
            synod_eval::faults::expert::serve_main(args).map(|()| ExitCode::SUCCESS)
        }
        Command::BenchChild { worker_threads } => child_main(RuntimeChoice {
            worker_threads: *worker_threads,
        })
        .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
