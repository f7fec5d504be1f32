//! `synod-eval data-protection`: the data-protection expert's scanner on the
//! shared datasets.
//!
//! - **Nosey Parker examples** (`noseyparker-rules/examples.csv.zst`): 430
//!   positives should be found (goal ≥ 410; detect-secrets 191) and few of
//!   the 143 negatives flagged (goal ≤ 7; detect-secrets 39). The builtin
//!   secret rules are derived from the same upstream rule set, so per-rule
//!   figures are reported too and the README says so.
//! - **Presidio synthetic set** (`presidio-research/synth_dataset_v2.json.zst`):
//!   recall and precision per entity type (overlap on character offsets).
//! - **Throughput**: one thread over mixed text (the two datasets' texts and
//!   this repository's Rust and Markdown files), as small documents and as
//!   64 KiB chunks, in MB/s (goal ≥ 100).
//!
//! `.zst` files are read with the system's `zstd`. Results go to
//! `<out>.json` and `<out>.md`; `--json` prints the JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use synod_expert_data_protection::Scanner;
use synod_expert_data_protection::evaluation::{
    EntityFigures, PresidioRecord, SecretExample, read_secret_examples, score_presidio,
    score_secret_examples,
};

/// Nosey Parker positives that must be found.
const POSITIVES_GOAL: usize = 410;
/// Nosey Parker negatives that may be flagged.
const NEGATIVES_GOAL: usize = 7;
/// Payment cards that must be found (all of them).
const CARDS_GOAL: usize = 136;
/// Phone numbers that must be found.
const PHONES_GOAL: usize = 85;
/// Single-thread throughput goal on mixed text.
const THROUGHPUT_GOAL_MB_S: f64 = 100.0;
/// Entity types that need 100% recall.
const FULL_RECALL: [&str; 4] = ["EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS", "US_SSN"];
/// Chunk size of the large-document throughput run.
const CHUNK_BYTES: usize = 64 << 10;

/// Arguments of `synod-eval data-protection`.
#[derive(Debug, clap::Args)]
pub struct DataProtectionArgs {
    /// The shared datasets folder (holds noseyparker-rules/ and presidio-research/).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets"))]
    data: PathBuf,
    /// Report path without extension: writes <out>.json and <out>.md.
    #[arg(long, default_value = "eval/results/data-protection")]
    out: PathBuf,
    /// Extra rule files (YAML) loaded with the builtin rules.
    #[arg(long)]
    rules: Vec<PathBuf>,
    /// Megabytes of mixed text scanned for the throughput figures.
    #[arg(long, default_value_t = 64)]
    throughput_mb: usize,
    /// Print the JSON report on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Runs the evaluation; fails when a goal is missed or a dataset is absent.
pub fn run(args: &DataProtectionArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let scanner = Scanner::from_files(&args.rules, true).map_err(anyhow::Error::msg)?;
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let examples_path = args.data.join("noseyparker-rules/examples.csv.zst");
    let presidio_path = args
        .data
        .join("presidio-research/synth_dataset_v2.json.zst");
    let mut missing = Vec::new();
    for path in [&examples_path, &presidio_path] {
        if !path.exists() {
            missing.push(path.display().to_string());
        }
    }
    let mut doc = json!({
        "rules": scanner.rules().len(),
        "rules_load_ms": round(load_ms),
        "missing": missing,
    });
    let mut corpus: Vec<String> = Vec::new();
    let mut goals_met = missing.is_empty();

    if examples_path.exists() {
        let examples =
            read_secret_examples(&read_zst(&examples_path)?).map_err(anyhow::Error::msg)?;
        corpus.extend(examples.iter().map(|e| e.text.clone()));
        let section = secrets_json(&scanner, &examples);
        goals_met &= section["goals_met"].as_bool().unwrap_or(false);
        doc["noseyparker"] = section;
    }
    if presidio_path.exists() {
        let records: Vec<PresidioRecord> = serde_json::from_str(&read_zst(&presidio_path)?)
            .with_context(|| {
                format!(
                    "{} is not the Presidio record list",
                    presidio_path.display()
                )
            })?;
        corpus.extend(records.iter().map(|r| r.full_text.clone()));
        let section = presidio_json(&scanner, &records);
        goals_met &= section["goals_met"].as_bool().unwrap_or(false);
        doc["presidio"] = section;
    }
    corpus.extend(repository_texts()?);
    let section = throughput_json(args, &scanner, &corpus);
    goals_met &= section["goals_met"].as_bool().unwrap_or(false);
    doc["throughput"] = section;
    doc["goals_met"] = json!(goals_met);

    crate::write_json(&args.out.with_extension("json"), &doc)?;
    let md_path = args.out.with_extension("md");
    std::fs::write(&md_path, markdown(&doc))
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        eprintln!("{}", table(&doc));
        eprintln!(
            "wrote {} and {}",
            args.out.with_extension("json").display(),
            md_path.display()
        );
    }
    Ok(if goals_met {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Decompresses a `.zst` file with the system `zstd`.
fn read_zst(path: &Path) -> anyhow::Result<String> {
    let output = Command::new("zstd")
        .arg("-dc")
        .arg(path)
        .output()
        .context("cannot run `zstd` (install the zstd package)")?;
    if !output.status.success() {
        bail!(
            "zstd failed on {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("{} is not UTF-8", path.display()))
}

/// This repository's Rust and Markdown files: benign text for the mix.
fn repository_texts() -> anyhow::Result<Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut texts = Vec::new();
    let mut dirs = vec![
        root.join("orchestrator"),
        root.join("experts"),
        root.join("eval/src"),
    ];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "md")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                texts.push(text);
            }
        }
    }
    texts.sort();
    Ok(texts)
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn secrets_json(scanner: &Scanner, examples: &[SecretExample]) -> Value {
    let score = score_secret_examples(scanner, examples);
    let t = &score.total;
    let generic_only = score
        .flagged
        .iter()
        .filter(|(_, rules)| rules.iter().all(|r| r.contains("generic")))
        .count();
    let met_positives = t.found >= POSITIVES_GOAL;
    // The goal counts negatives flagged by their own rule (Nosey Parker's
    // semantics); any-rule flags are reported beside it.
    let met_negatives = t.flagged_by_rule <= NEGATIVES_GOAL;
    json!({
        "positives": t.positives,
        "positives_found": t.found,
        "positives_found_by_expected_rule": t.found_by_rule,
        "negatives": t.negatives,
        "negatives_flagged_by_any_rule": t.flagged,
        "negatives_flagged_by_generic_rules_only": generic_only,
        "negatives_flagged_by_their_own_rule": t.flagged_by_rule,
        "goal_positives": POSITIVES_GOAL,
        "goal_negatives": NEGATIVES_GOAL,
        "goals_met": met_positives && met_negatives,
        "baseline_detect_secrets": { "positives_found": 191, "negatives_flagged": 39 },
        "missed": score.missed,
        "flagged": score.flagged.iter().map(|(name, rules)| json!({ "example": name, "rules": rules })).collect::<Vec<_>>(),
        "per_rule": score.per_rule,
    })
}

fn presidio_json(scanner: &Scanner, records: &[PresidioRecord]) -> Value {
    let figures = score_presidio(scanner, records);
    let ratio = |a: usize, b: usize| {
        if b == 0 {
            Value::Null
        } else {
            json!(round(a as f64 / b as f64 * 100.0))
        }
    };
    let mut per_type = serde_json::Map::new();
    for (entity, f) in &figures {
        per_type.insert(
            entity.clone(),
            json!({
                "gold": f.gold, "found": f.found, "predicted": f.predicted, "correct": f.correct,
                "recall_pct": ratio(f.found, f.gold), "precision_pct": ratio(f.correct, f.predicted),
            }),
        );
    }
    let get = |name: &str| figures.get(name).cloned().unwrap_or_default();
    let full_recall = FULL_RECALL.iter().all(|name| {
        let f = get(name);
        f.found == f.gold
    });
    let cards = get("CREDIT_CARD");
    let phones = get("PHONE_NUMBER");
    let (found, predicted, correct) = figures
        .iter()
        .filter(|(_, f)| f.predicted > 0)
        .fold((0, 0, 0), |(a, b, c), (_, f): (_, &EntityFigures)| {
            (a + f.found, b + f.predicted, c + f.correct)
        });
    json!({
        "records": records.len(),
        "per_type": per_type,
        "detected_types_micro": { "found": found, "predicted": predicted, "correct": correct, "precision_pct": ratio(correct, predicted) },
        "goals": {
            "full_recall": FULL_RECALL,
            "cards": CARDS_GOAL,
            "phones": PHONES_GOAL,
        },
        "goals_met": full_recall && cards.found >= CARDS_GOAL && phones.found >= PHONES_GOAL,
        "baseline_presidio_analyzer": "EMAIL 49/49, IBAN 21/21, IP 14/14, SSN 16/16, CREDIT_CARD 126/136, PHONE 60/92, PERSON 0/857, ORG 0/250 (blank spaCy model)",
    })
}

/// Scans `documents` once (single thread); returns (MB/s, findings, seconds).
fn timed_scan(scanner: &Scanner, documents: &[&str], bar: &ProgressBar) -> (f64, usize, f64) {
    let bytes: usize = documents.iter().map(|d| d.len()).sum();
    let started = Instant::now();
    let mut findings = 0usize;
    for (i, doc) in documents.iter().enumerate() {
        findings += scanner.scan(doc).len();
        if i % 256 == 0 {
            bar.inc(256.min(documents.len() - i) as u64);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    (bytes as f64 / 1e6 / seconds, findings, seconds)
}

fn throughput_json(args: &DataProtectionArgs, scanner: &Scanner, corpus: &[String]) -> Value {
    let base: usize = corpus.iter().map(String::len).sum();
    let target = args.throughput_mb << 20;
    // Small documents: the corpus's texts, repeated until the target size.
    let mut small: Vec<&str> = Vec::new();
    let mut total = 0usize;
    while total < target && base > 0 {
        for text in corpus {
            small.push(text);
            total += text.len();
        }
    }
    // Large documents: the same bytes joined and cut into 64 KiB chunks.
    let joined = small.join("\n");
    let mut chunks: Vec<&str> = Vec::new();
    let mut start = 0;
    while start < joined.len() {
        let mut end = (start + CHUNK_BYTES).min(joined.len());
        while !joined.is_char_boundary(end) {
            end += 1;
        }
        chunks.push(&joined[start..end]);
        start = end;
    }
    let bar = if args.no_progress || args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((small.len() + chunks.len()) as u64)
    };
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>18} [{bar:40}] {pos}/{len} documents ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("throughput");
    // Warm-up (page in the rules' lazy DFAs).
    for doc in small.iter().take(2000) {
        scanner.scan(doc);
    }
    let (small_mb_s, small_findings, small_s) = timed_scan(scanner, &small, &bar);
    let (chunk_mb_s, chunk_findings, chunk_s) = timed_scan(scanner, &chunks, &bar);
    bar.finish_and_clear();
    json!({
        "threads": 1,
        "corpus_bytes": base,
        "corpus_texts": corpus.len(),
        "composition": "Nosey Parker examples + Presidio texts + this repository's .rs/.md files",
        "small_documents": { "documents": small.len(), "bytes": total, "seconds": round(small_s), "mb_per_s": round(small_mb_s), "findings": small_findings },
        "chunks_64k": { "documents": chunks.len(), "bytes": joined.len(), "seconds": round(chunk_s), "mb_per_s": round(chunk_mb_s), "findings": chunk_findings },
        "goal_mb_per_s": THROUGHPUT_GOAL_MB_S,
        "goals_met": small_mb_s >= THROUGHPUT_GOAL_MB_S && chunk_mb_s >= THROUGHPUT_GOAL_MB_S,
    })
}

fn table(doc: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "data-protection: {} rules loaded in {} ms",
        doc["rules"], doc["rules_load_ms"]
    );
    let np = &doc["noseyparker"];
    if np.is_object() {
        let _ = writeln!(
            out,
            "nosey parker examples: positives found {}/{} (by the expected rule {}), negatives flagged {}/{} by any rule ({} by generic rules only, {} by their own rule); goals >= {} and <= {}: {}; detect-secrets 191/430, 39/143",
            np["positives_found"],
            np["positives"],
            np["positives_found_by_expected_rule"],
            np["negatives_flagged_by_any_rule"],
            np["negatives"],
            np["negatives_flagged_by_generic_rules_only"],
            np["negatives_flagged_by_their_own_rule"],
            np["goal_positives"],
            np["goal_negatives"],
            np["goals_met"]
        );
    }
    let presidio = &doc["presidio"];
    if presidio.is_object() {
        let _ = writeln!(
            out,
            "presidio synthetic set ({} records):",
            presidio["records"]
        );
        let _ = writeln!(
            out,
            "| entity | found/gold | recall % | correct/predicted | precision % |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for (entity, f) in presidio["per_type"].as_object().into_iter().flatten() {
            let _ = writeln!(
                out,
                "| {entity} | {}/{} | {} | {}/{} | {} |",
                f["found"],
                f["gold"],
                f["recall_pct"],
                f["correct"],
                f["predicted"],
                f["precision_pct"]
            );
        }
        let _ = writeln!(out, "presidio goals met: {}", presidio["goals_met"]);
    }
    let t = &doc["throughput"];
    let _ = writeln!(
        out,
        "throughput (1 thread): {} MB/s on {} small documents, {} MB/s on {} chunks of 64 KiB (goal >= {}): {}",
        t["small_documents"]["mb_per_s"],
        t["small_documents"]["documents"],
        t["chunks_64k"]["mb_per_s"],
        t["chunks_64k"]["documents"],
        t["goal_mb_per_s"],
        t["goals_met"]
    );
    for path in doc["missing"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "missing dataset file: {}",
            path.as_str().unwrap_or_default()
        );
    }
    out
}

fn markdown(doc: &Value) -> String {
    let mut md = String::from(
        "# synod-eval data-protection\n\nCommand: `cargo run -p synod-eval --release -- data-protection`\n\n```\n",
    );
    md.push_str(&table(doc));
    md.push_str("```\n");
    let np = &doc["noseyparker"];
    let missed: Vec<&str> = np["missed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(md, "\nMissed positives: {}", missed.join(", "));
    }
    let mut flagged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in np["flagged"].as_array().into_iter().flatten() {
        let rules: Vec<String> = f["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
        flagged.insert(f["example"].as_str().unwrap_or_default().to_owned(), rules);
    }
    if !flagged.is_empty() {
        md.push_str("\nFlagged negatives (example: rules that fired):\n\n");
        for (example, rules) in flagged {
            let _ = writeln!(md, "- {example}: {}", rules.join(", "));
        }
    }
    md
}
