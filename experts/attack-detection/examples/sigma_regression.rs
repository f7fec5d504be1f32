//! SigmaHQ regression set: does the expected rule fire on each test EVTX?
//!
//! ```text
//! mkdir -p /tmp/sigma && zstd -dc ../shared/datasets/sigma/sigma-rules-and-regression.tar.zst | tar -x -C /tmp/sigma
//! cargo run --release -p synod-expert-attack-detection --example sigma_regression -- \
//!     /tmp/sigma ../shared/datasets/sigma/regression_index.csv
//! ```
//!
//! Prints the misses, count differences and rules that failed to load, then
//! the score and the wall time (rule loading included).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use synod_expert_attack_detection::evaluation::{
    load_sigma_rules, read_regression_index, score_regression,
};
use synod_expert_attack_detection::scan_files;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, index] = args.as_slice() else {
        eprintln!("usage: sigma_regression <extracted sigma dir> <regression_index.csv>");
        return ExitCode::from(2);
    };
    let root = Path::new(root);
    let started = Instant::now();
    let cases = match std::fs::read_to_string(index)
        .map_err(|e| format!("{index}: {e}"))
        .and_then(|csv| read_regression_index(&csv, root))
    {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rules = load_sigma_rules(root);
    let loaded = started.elapsed();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let paths: Vec<PathBuf> = cases.iter().map(|c| c.path.clone()).collect();
    let outcomes = score_regression(&cases, &scan_files(&rules, &paths, threads, 0));
    let wall = started.elapsed();

    for failure in rules.failures() {
        println!("NOT LOADED {failure}");
    }
    for o in &outcomes {
        let (id, title) = (&o.case.rule_id, &o.case.title);
        match (&o.error, o.fired(), o.count_ok()) {
            (Some(e), _, _) => println!("UNREADABLE {id} {title}: {e}"),
            (None, false, _) => println!("MISS {id} {title} ({})", o.case.path.display()),
            (None, true, Some(false)) => println!(
                "COUNT {id} {title}: {} matches, expected {}",
                o.count,
                o.case.match_count.unwrap_or_default()
            ),
            _ => {}
        }
    }
    let fired = outcomes.iter().filter(|o| o.fired()).count();
    let counted: Vec<bool> = outcomes.iter().filter_map(|o| o.count_ok()).collect();
    let events: usize = outcomes.iter().map(|o| o.events).sum();
    let detect = (wall - loaded).as_secs_f64();
    println!(
        "rules loaded: {}, not loaded: {}",
        rules.rules().len(),
        rules.failures().len()
    );
    println!(
        "expected rule fired: {fired}/{} tests; expected match count: {}/{}",
        outcomes.len(),
        counted.iter().filter(|ok| **ok).count(),
        counted.len()
    );
    println!(
        "events: {events}; wall {:.3} s (rules {:.3} s, detection {detect:.3} s, {:.0} events/s, {threads} threads)",
        wall.as_secs_f64(),
        loaded.as_secs_f64(),
        events as f64 / detect.max(1e-9),
    );
    ExitCode::SUCCESS
}
