//! SigmaHQ regression set: does the expected rule fire on each test EVTX?
//!
//! ```text
//! mkdir -p /tmp/sigma && zstd -dc ../shared/datasets/sigma/sigma-rules-and-regression.tar.zst | tar -x -C /tmp/sigma
//! cargo run --release -p synod-expert-attack-detection --example sigma_regression -- \
//!     /tmp/sigma ../shared/datasets/sigma/regression_index.csv
//! ```
//!
//! Loads every SigmaHQ rule directory (see `common::load_sigma`), runs the
//! whole rule set over each test file, and reports how many tests fire the
//! expected rule, how many also match the expected count, the misses, the
//! rules that failed to load and the wall time.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use synod_expert_attack_detection::scan_files;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, index] = args.as_slice() else {
        eprintln!("usage: sigma_regression <extracted sigma dir> <regression_index.csv>");
        return ExitCode::from(2);
    };
    let root = Path::new(root);
    let started = Instant::now();
    let rows = match common::read_csv(Path::new(index)) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rules = common::load_sigma(root);
    let loaded_at = started.elapsed();
    let paths: Vec<PathBuf> = rows.iter().map(|r| root.join(&r["test_path"])).collect();
    let scans = scan_files(&rules, &paths, common::threads(), 0);
    let wall = started.elapsed();
    let detect_time = wall - loaded_at;

    let (mut fired, mut exact, mut counted, mut events, mut unreadable) = (0, 0, 0, 0, 0);
    for (row, scan) in rows.iter().zip(&scans) {
        let (id, title) = (&row["rule_id"], &row["title"]);
        let (report, stats) = match &scan.result {
            Ok(result) => result,
            Err(e) => {
                unreadable += 1;
                println!("UNREADABLE {id} {title}: {e}");
                continue;
            }
        };
        events += stats.events;
        let Some(alert) = report.fired(id) else {
            println!("MISS {id} {title} ({})", scan.path.display());
            continue;
        };
        fired += 1;
        if let Ok(expected) = row["match_count"].parse::<usize>() {
            counted += 1;
            if alert.count == expected {
                exact += 1;
            } else {
                println!(
                    "COUNT {id} {title}: {} matches, expected {expected}",
                    alert.count
                );
            }
        }
    }

    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for failure in rules.failures() {
        println!("NOT LOADED {failure}");
        let reason = failure.reason.rsplit(": ").next().unwrap_or_default();
        *reasons.entry(reason).or_default() += 1;
    }
    println!(
        "rules loaded: {}, not loaded: {} {reasons:?}",
        rules.rules().len(),
        rules.failures().len()
    );
    println!(
        "expected rule fired: {fired}/{} tests; expected match count: {exact}/{counted}; unreadable: {unreadable}",
        rows.len()
    );
    println!(
        "events: {events}; wall {:.3} s (rules {:.3} s, detection {:.3} s, {:.0} events/s, {} threads)",
        wall.as_secs_f64(),
        loaded_at.as_secs_f64(),
        detect_time.as_secs_f64(),
        events as f64 / detect_time.as_secs_f64().max(1e-9),
        common::threads()
    );
    ExitCode::SUCCESS
}
