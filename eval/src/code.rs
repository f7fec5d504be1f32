//! `synod-eval code`: the code-security expert scored the OWASP Benchmark
//! way. Every test program named in the expected-results CSV (`# test name,
//! category, real vulnerability, cwe`) is looked up under the benchmark
//! folder, scanned, and counts as reported when a finding in its file has
//! the expected CWE. Per category: TPR, FPR and score = TPR - FPR; overall:
//! their averages over categories (the Benchmark scorecard's method).
//!
//! Default inputs are the crate's own fixtures
//! (`experts/code-security/tests/fixtures`); point `--benchmark-dir` and
//! `--expected` at OWASP BenchmarkPython's `testcode/` and
//! `expectedresults-0.1.csv` to measure the official suite.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use synod_expert_code_security::Scanner;
use synod_expert_code_security::benchmark::{
    Scorecard, case_files, parse_expected, reported_cwes, score,
};

/// Peers on the official BenchmarkPython 0.1 (TPR, FPR), for reference.
const PEERS: [(&str, f64, f64); 2] = [("Bandit", 0.223, 0.055), ("Semgrep", 0.127, 0.118)];

/// Arguments of `synod-eval code`.
#[derive(Debug, clap::Args)]
pub struct CodeArgs {
    /// Folder holding the test programs (searched recursively for files
    /// whose name without extension is a test name of the CSV).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../experts/code-security/tests/fixtures/benchmark"))]
    benchmark_dir: PathBuf,
    /// Expected results (OWASP Benchmark CSV format).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../experts/code-security/tests/fixtures/expectedresults.csv"))]
    expected: PathBuf,
    /// Report path without extension: writes <out>.json and <out>.md.
    #[arg(long, default_value = "eval/results/code-security")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Runs the evaluation.
///
/// # Errors
///
/// When the CSV or the folder cannot be read, or the report cannot be written.
pub fn run(args: &CodeArgs) -> anyhow::Result<ExitCode> {
    let csv = std::fs::read_to_string(&args.expected).with_context(|| {
        format!(
            "cannot read the expected results {}",
            args.expected.display()
        )
    })?;
    let cases = parse_expected(&csv).with_context(|| format!("in {}", args.expected.display()))?;
    let files = case_files(&args.benchmark_dir, &cases)
        .with_context(|| format!("cannot list {}", args.benchmark_dir.display()))?;
    anyhow::ensure!(
        !files.is_empty(),
        "no test program of {} found under {} (files must be named <test name>.py/.java/.js/.go)",
        args.expected.display(),
        args.benchmark_dir.display()
    );
    let scanner = Scanner::builtin()?;
    let bar = if args.no_progress {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(files.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("scanning [{bar:40}] {pos}/{len} files ({elapsed})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    };
    let started = Instant::now();
    let reported = reported_cwes(&scanner, &files, &|done| bar.set_position(done as u64));
    let wall = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let card = score(&cases, &reported);
    let doc = report_json(args, &card, files.len(), wall);
    crate::write_json(&args.out.with_extension("json"), &doc)?;
    let md_path = args.out.with_extension("md");
    let summary = table(&card);
    let markdown = format!(
        "# synod-eval code\n\nbenchmark: `{}`\nexpected: `{}`\n\n{summary}",
        args.benchmark_dir.display(),
        args.expected.display(),
    );
    std::fs::write(&md_path, markdown)
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    eprintln!("{summary}");
    eprintln!(
        "{} files in {wall:.2} s; wrote {} and {}",
        files.len(),
        args.out.with_extension("json").display(),
        md_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn report_json(args: &CodeArgs, card: &Scorecard, files: usize, wall: f64) -> Value {
    json!({
        "benchmark_dir": args.benchmark_dir,
        "expected": args.expected,
        "files_scanned": files,
        "wall_s": wall,
        "categories": card.categories,
        "average": { "tpr": card.average_tpr, "fpr": card.average_fpr, "score": card.average_score },
        "missing": card.missing,
        "wrong": card.cases.iter().filter(|c| c.real != c.reported).collect::<Vec<_>>(),
        "peers_on_official_benchmark_python": PEERS
            .iter()
            .map(|(name, tpr, fpr)| json!({ "tool": name, "tpr": tpr, "fpr": fpr, "score": tpr - fpr }))
            .collect::<Vec<_>>(),
    })
}

/// The scorecard as a Markdown table (also printed).
fn table(card: &Scorecard) -> String {
    let mut out = String::from(
        "| category | CWE | TP | FN | FP | TN | TPR | FPR | score |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in &card.categories {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} |",
            c.category, c.cwe, c.tp, c.fn_, c.fp, c.tn, c.tpr, c.fpr, c.score
        );
    }
    let _ = writeln!(
        out,
        "| **average** | | | | | | **{:.3}** | **{:.3}** | **{:.3}** |",
        card.average_tpr, card.average_fpr, card.average_score
    );
    for (name, tpr, fpr) in PEERS {
        let _ = writeln!(
            out,
            "| {name} (official BenchmarkPython, for reference) | | | | | | {tpr:.3} | {fpr:.3} | {:.3} |",
            tpr - fpr
        );
    }
    if !card.missing.is_empty() {
        let _ = writeln!(
            out,
            "\n{} test cases had no file and were not scored",
            card.missing.len()
        );
    }
    out
}
