//! Scans EVTX / JSON / JSON-lines files with Sigma rules and prints the alerts.
//!
//! ```text
//! cargo run --release -p synod-expert-attack-detection --example scan -- \
//!     [--rules <file or dir>]... <event files>...
//! ```
//!
//! Without `--rules`, the embedded demo rules are used.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use synod_expert_attack_detection::{RuleSet, scan_files};

fn main() -> ExitCode {
    let mut rule_paths = Vec::new();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.len()) {
            ("--rules", n) if n > 0 => rule_paths.extend(args.next().map(PathBuf::from)),
            ("--rules" | "-h" | "--help", _) => {
                eprintln!("usage: scan [--rules <file or dir>]... <event files>...");
                return ExitCode::from(2);
            }
            _ => files.push(PathBuf::from(arg)),
        }
    }
    let started = Instant::now();
    let mut rules = if rule_paths.is_empty() {
        RuleSet::builtin()
    } else {
        RuleSet::new()
    };
    rules.load_paths(&rule_paths);
    for failure in rules.failures() {
        eprintln!("rule not loaded: {failure}");
    }
    let loaded = started.elapsed();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scans = scan_files(&rules, &files, threads, 3);
    let mut events = 0;
    for scan in &scans {
        let (report, stats) = match &scan.result {
            Ok(result) => result,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        events += stats.events;
        println!(
            "{}: {} events, {} matched, {} alerts",
            scan.path.display(),
            stats.events,
            report.matched_events,
            report.alerts.len()
        );
        for alert in &report.alerts {
            println!(
                "  {:<13} {:>6}  {}  [{}]",
                alert.rule.level,
                alert.count,
                alert.rule.title,
                alert.rule.techniques().join(", ")
            );
        }
    }
    let wall = started.elapsed();
    eprintln!(
        "{} rules ({} not loaded) in {:.3} s; {events} events in {:.3} s ({:.0} events/s, {threads} threads)",
        rules.rules().len(),
        rules.failures().len(),
        loaded.as_secs_f64(),
        (wall - loaded).as_secs_f64(),
        events as f64 / (wall - loaded).as_secs_f64().max(1e-9)
    );
    ExitCode::SUCCESS
}
