//! `synod-eval detection`: the attack-detection expert's Sigma engine on the
//! shared datasets.
//!
//! - **Sigma regression set** (`sigma/`): does the expected rule fire on each
//!   of the 202 test EVTX files (goal ≥ 198; Hayabusa 193, Chainsaw 167), and
//!   how long does it take, rule loading included (goal: at most half of
//!   Chainsaw's 2.75 s), with peak memory under 300 MiB.
//! - **EVTX-to-MITRE-Attack** (`evtx-to-mitre-attack/`): is the labelled
//!   technique (parent level) among the alerts' tags (goal ≥ 130 of 268;
//!   Hayabusa 81, Chainsaw 50).
//!
//! Archives are unpacked once into `--work` with the system's `zstd` and
//! `tar`. Missing datasets are reported, not fatal. Results go to
//! `<out>.json` and `<out>.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use synod_expert_attack_detection::evaluation::{
    RegressionOutcome, TechniqueOutcome, load_sigma_rules, read_regression_index,
    read_technique_labels, score_regression, score_techniques,
};
use synod_expert_attack_detection::{RuleSet, scan_files_with_progress};

use crate::bench::sys::status_mb;

/// Regression tests on which the expected rule must fire.
const REGRESSION_GOAL: usize = 198;
/// Labelled files whose technique must be among the alerts' tags.
const TECHNIQUE_GOAL: usize = 130;
/// Chainsaw's wall time on the regression set (seconds, this machine kind).
const CHAINSAW_WALL_S: f64 = 2.75;
/// Peak memory goal.
const RSS_GOAL_MIB: f64 = 300.0;

/// Arguments of `synod-eval detection`.
#[derive(Debug, clap::Args)]
pub struct DetectionArgs {
    /// The shared datasets folder (holds sigma/ and evtx-to-mitre-attack/).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets"))]
    data: PathBuf,
    /// Where archives are unpacked (kept between runs).
    #[arg(long, default_value = "eval/out/datasets")]
    work: PathBuf,
    /// Report path without extension: writes <out>.json and <out>.md.
    #[arg(long, default_value = "eval/out/detection")]
    out: PathBuf,
    /// Threads for scanning files (default: CPU count).
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Runs the evaluation; fails only on I/O errors of the report itself or an
/// archive that cannot be unpacked.
pub fn run(args: &DetectionArgs) -> anyhow::Result<ExitCode> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut missing = Vec::new();
    let sigma_archive = args.data.join("sigma/sigma-rules-and-regression.tar.zst");
    let sigma_index = args.data.join("sigma/regression_index.csv");
    let mitre_archive = args
        .data
        .join("evtx-to-mitre-attack/evtx-to-mitre-attack.tar.zst");
    let mitre_labels = args.data.join("evtx-to-mitre-attack/labels.csv");
    for path in [&sigma_archive, &sigma_index, &mitre_archive, &mitre_labels] {
        if !path.exists() {
            missing.push(path.display().to_string());
        }
    }
    let mut doc = json!({ "threads": threads, "missing": missing });
    if !sigma_archive.exists() || !sigma_index.exists() {
        eprintln!(
            "missing the Sigma dataset ({} and {}): nothing to evaluate",
            sigma_archive.display(),
            sigma_index.display()
        );
        write_reports(&args.out, &doc)?;
        return Ok(ExitCode::FAILURE);
    }
    let sigma_dir = unpack(&sigma_archive, &args.work.join("sigma"))?;

    let started = Instant::now();
    let rules = load_sigma_rules(&sigma_dir);
    let rules_time = started.elapsed();
    let csv = std::fs::read_to_string(&sigma_index)
        .with_context(|| format!("cannot read {}", sigma_index.display()))?;
    let cases = read_regression_index(&csv, &sigma_dir).map_err(anyhow::Error::msg)?;
    let paths: Vec<PathBuf> = cases.iter().map(|c| c.path.clone()).collect();
    let scan_started = Instant::now();
    let scans = with_progress(args, "sigma regression", paths.len(), |done| {
        scan_files_with_progress(&rules, &paths, threads, 0, done)
    });
    let scan_time = scan_started.elapsed();
    let outcomes = score_regression(&cases, &scans);
    doc["sigma_regression"] = regression_json(&rules, &outcomes, rules_time, scan_time);

    if mitre_archive.exists() && mitre_labels.exists() {
        let mitre_dir = unpack(&mitre_archive, &args.work.join("evtx-to-mitre-attack"))?;
        let csv = std::fs::read_to_string(&mitre_labels)
            .with_context(|| format!("cannot read {}", mitre_labels.display()))?;
        let cases = read_technique_labels(&csv, &mitre_dir).map_err(anyhow::Error::msg)?;
        let paths: Vec<PathBuf> = cases.iter().map(|c| c.path.clone()).collect();
        let started = Instant::now();
        let scans = with_progress(args, "evtx-to-mitre", paths.len(), |done| {
            scan_files_with_progress(&rules, &paths, threads, 0, done)
        });
        doc["evtx_to_mitre"] =
            techniques_json(&score_techniques(&cases, &scans), started.elapsed());
    }
    doc["peak_rss_mib"] = status_mb("VmHWM").map_or(Value::Null, Value::from);
    write_reports(&args.out, &doc)?;
    eprintln!("{}", table(&doc));
    eprintln!(
        "wrote {} and {}",
        args.out.with_extension("json").display(),
        args.out.with_extension("md").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `work` with a progress bar of `len` steps (unless disabled).
fn with_progress<T>(
    args: &DetectionArgs,
    label: &str,
    len: usize,
    work: impl FnOnce(&(dyn Fn(usize) + Sync)) -> T,
) -> T {
    if args.no_progress {
        return work(&|_| {});
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>18} [{bar:40}] {pos}/{len} files ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_owned());
    let result = work(&|done| bar.set_position(done as u64));
    bar.finish_and_clear();
    result
}

/// Unpacks a `.tar.zst` into `dir` once (a `.complete` marker records it).
pub(crate) fn unpack(archive: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let marker = dir.join(".complete");
    if marker.exists() {
        return Ok(dir.to_owned());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    eprintln!("unpacking {} into {}", archive.display(), dir.display());
    let mut zstd = Command::new("zstd")
        .arg("-dc")
        .arg(archive)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run `zstd` (install the zstd package)")?;
    let stdout = zstd.stdout.take().context("zstd has no stdout")?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(stdout)
        .status()
        .context("cannot run `tar`")?;
    let zstd = zstd.wait()?;
    if !zstd.success() || !tar.success() {
        bail!(
            "unpacking {} failed (zstd: {zstd}, tar: {tar})",
            archive.display()
        );
    }
    std::fs::write(&marker, b"")?;
    Ok(dir.to_owned())
}

fn regression_json(
    rules: &RuleSet,
    outcomes: &[RegressionOutcome],
    rules_time: Duration,
    scan_time: Duration,
) -> Value {
    let fired = outcomes.iter().filter(|o| o.fired()).count();
    let counted: Vec<bool> = outcomes.iter().filter_map(|o| o.count_ok()).collect();
    let events: usize = outcomes.iter().map(|o| o.events).sum();
    let wall = (rules_time + scan_time).as_secs_f64();
    let misses: Vec<Value> = outcomes
        .iter()
        .filter(|o| !o.fired())
        .map(|o| json!({ "rule_id": o.case.rule_id, "title": o.case.title, "path": o.case.path, "error": o.error }))
        .collect();
    let count_differences: Vec<Value> = outcomes
        .iter()
        .filter(|o| o.fired() && o.count_ok() == Some(false))
        .map(|o| json!({ "rule_id": o.case.rule_id, "title": o.case.title, "count": o.count, "expected": o.case.match_count }))
        .collect();
    let failures: Vec<Value> = rules
        .failures()
        .iter()
        .map(|f| json!({ "source": f.source, "reason": f.reason }))
        .collect();
    json!({
        "tests": outcomes.len(),
        "fired": fired,
        "goal": REGRESSION_GOAL,
        "peers": { "hayabusa": 193, "chainsaw": 167 },
        "count_checked": counted.len(),
        "count_equal": counted.iter().filter(|ok| **ok).count(),
        "rules_loaded": rules.rules().len(),
        "rules_not_loaded": failures.len(),
        "events": events,
        "wall_s": wall,
        "rules_s": rules_time.as_secs_f64(),
        "scan_s": scan_time.as_secs_f64(),
        "events_per_s": events as f64 / scan_time.as_secs_f64().max(1e-9),
        "wall_goal_s": CHAINSAW_WALL_S / 2.0,
        "misses": misses,
        "count_differences": count_differences,
        "not_loaded": failures,
    })
}

fn techniques_json(outcomes: &[TechniqueOutcome], scan_time: Duration) -> Value {
    let misses: Vec<Value> = outcomes
        .iter()
        .filter(|o| !o.hit())
        .map(|o| json!({ "path": o.case.path, "technique": o.case.technique, "alerts": o.alerts, "techniques": o.techniques, "error": o.error }))
        .collect();
    json!({
        "files": outcomes.len(),
        "hits": outcomes.iter().filter(|o| o.hit()).count(),
        "any_alert": outcomes.iter().filter(|o| o.alerts > 0).count(),
        "goal": TECHNIQUE_GOAL,
        "peers": { "hayabusa": 81, "chainsaw": 50 },
        "events": outcomes.iter().map(|o| o.events).sum::<usize>(),
        "scan_s": scan_time.as_secs_f64(),
        "misses": misses,
    })
}

/// The summary table (Markdown, also printed).
fn table(doc: &Value) -> String {
    let mut out = String::from(
        "| set | metric | synod | goal | Hayabusa | Chainsaw |\n|---|---|---|---|---|---|\n",
    );
    let r = &doc["sigma_regression"];
    if r.is_object() {
        let _ = writeln!(
            out,
            "| sigma regression | expected rule fired | {}/{} | ≥{} | 193 | 167 |",
            r["fired"], r["tests"], r["goal"]
        );
        let _ = writeln!(
            out,
            "| sigma regression | wall time (rules + scan) | {:.2} s | ≤{:.2} s | 8.6 s | 2.75 s |",
            r["wall_s"].as_f64().unwrap_or_default(),
            r["wall_goal_s"].as_f64().unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "| sigma regression | events/s (scan) | {:.0} | | | |",
            r["events_per_s"].as_f64().unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "| sigma regression | expected match count | {}/{} | | | |",
            r["count_equal"], r["count_checked"]
        );
        let _ = writeln!(
            out,
            "| sigma regression | rules loaded / not loaded | {} / {} | | 3,040 / 233 (Chainsaw) | |",
            r["rules_loaded"], r["rules_not_loaded"]
        );
    }
    let m = &doc["evtx_to_mitre"];
    if m.is_object() {
        let _ = writeln!(
            out,
            "| evtx-to-mitre | technique among alert tags | {}/{} | ≥{} | 81 | 50 |",
            m["hits"], m["files"], m["goal"]
        );
        let _ = writeln!(
            out,
            "| evtx-to-mitre | any alert | {}/{} | | 212 | 128 |",
            m["any_alert"], m["files"]
        );
    }
    if let Some(rss) = doc["peak_rss_mib"].as_f64() {
        let _ = writeln!(
            out,
            "| all | peak memory | {rss:.0} MiB | <{RSS_GOAL_MIB:.0} MiB | 600 MB | |"
        );
    }
    for path in doc["missing"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "\nmissing dataset file: {}",
            path.as_str().unwrap_or_default()
        );
    }
    out
}

fn write_reports(out: &Path, doc: &Value) -> anyhow::Result<()> {
    // Creates the folder the Markdown report goes to as well.
    crate::write_json(&out.with_extension("json"), doc)?;
    let mut md = String::from("# synod-eval detection\n\n");
    md.push_str(&table(doc));
    let r = &doc["sigma_regression"];
    for miss in r["misses"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "- regression miss: {} {}",
            miss["rule_id"], miss["title"]
        );
    }
    for diff in r["count_differences"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "- count differs: {} {}: {} matches, expected {}",
            diff["rule_id"], diff["title"], diff["count"], diff["expected"]
        );
    }
    for failure in r["not_loaded"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "- rule not loaded: {}: {}",
            failure["source"], failure["reason"]
        );
    }
    let md_path = out.with_extension("md");
    std::fs::write(&md_path, md).with_context(|| format!("cannot write {}", md_path.display()))
}
