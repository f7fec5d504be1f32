//! EVTX-to-MITRE-Attack: is the labelled technique among the alerts' tags?
//!
//! ```text
//! mkdir -p /tmp/mitre && zstd -dc ../shared/datasets/evtx-to-mitre-attack/evtx-to-mitre-attack.tar.zst | tar -x -C /tmp/mitre
//! cargo run --release -p synod-expert-attack-detection --example evtx_to_mitre -- \
//!     /tmp/sigma /tmp/mitre ../shared/datasets/evtx-to-mitre-attack/labels.csv
//! ```
//!
//! For every file with a technique label, runs the SigmaHQ rules and counts
//! a hit when the labelled technique, at parent level (`T1003.001` ->
//! `T1003`), is among the techniques tagged on the alerts.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use synod_expert_attack_detection::scan_files;

fn parent(technique: &str) -> &str {
    technique.split('.').next().unwrap_or(technique)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [sigma, data, labels] = args.as_slice() else {
        eprintln!(
            "usage: evtx_to_mitre <extracted sigma dir> <extracted evtx-to-mitre dir> <labels.csv>"
        );
        return ExitCode::from(2);
    };
    let started = Instant::now();
    let rows = match common::read_csv(Path::new(labels)) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| !r["technique_id"].is_empty())
        .collect();
    let rules = common::load_sigma(Path::new(sigma));
    let loaded_at = started.elapsed();
    let paths: Vec<PathBuf> = rows
        .iter()
        .map(|r| Path::new(data).join(&r["path"]))
        .collect();
    let scans = scan_files(&rules, &paths, common::threads(), 0);
    let wall = started.elapsed();

    let (mut hits, mut any, mut missing, mut events) = (0, 0, 0, 0);
    for (row, scan) in rows.iter().zip(&scans) {
        let (report, stats) = match &scan.result {
            Ok(result) => result,
            Err(e) => {
                missing += 1;
                println!("UNREADABLE {e}");
                continue;
            }
        };
        events += stats.events;
        let techniques: BTreeSet<String> = report
            .alerts
            .iter()
            .flat_map(|a| a.rule.techniques())
            .map(|t| parent(&t).to_owned())
            .collect();
        if !report.alerts.is_empty() {
            any += 1;
        }
        let label = parent(&row["technique_id"]).to_ascii_uppercase();
        if techniques.contains(&label) {
            hits += 1;
        } else {
            println!(
                "MISS {label} {} (alerts: {}, techniques: {techniques:?})",
                row["path"],
                report.alerts.len()
            );
        }
    }
    println!(
        "labelled files: {}; technique among alert tags: {hits}; any alert: {any}; unreadable/missing: {missing}",
        rows.len()
    );
    println!(
        "events: {events}; wall {:.3} s (rules {:.3} s, {} threads)",
        wall.as_secs_f64(),
        loaded_at.as_secs_f64(),
        common::threads()
    );
    ExitCode::SUCCESS
}
