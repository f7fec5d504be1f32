//! EVTX-to-MITRE-Attack: is the labelled technique among the alerts' tags?
//!
//! ```text
//! mkdir -p /tmp/mitre && zstd -dc ../shared/datasets/evtx-to-mitre-attack/evtx-to-mitre-attack.tar.zst | tar -x -C /tmp/mitre
//! cargo run --release -p synod-expert-attack-detection --example evtx_to_mitre -- \
//!     /tmp/sigma /tmp/mitre ../shared/datasets/evtx-to-mitre-attack/labels.csv
//! ```
//!
//! A file counts when its labelled technique, at parent level
//! (`T1003.001` -> `T1003`), is among the techniques tagged on its alerts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use synod_expert_attack_detection::evaluation::{
    load_sigma_rules, read_technique_labels, score_techniques,
};
use synod_expert_attack_detection::scan_files;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [sigma, data, labels] = args.as_slice() else {
        eprintln!(
            "usage: evtx_to_mitre <extracted sigma dir> <extracted evtx-to-mitre dir> <labels.csv>"
        );
        return ExitCode::from(2);
    };
    let started = Instant::now();
    let cases = match std::fs::read_to_string(labels)
        .map_err(|e| format!("{labels}: {e}"))
        .and_then(|csv| read_technique_labels(&csv, Path::new(data)))
    {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rules = load_sigma_rules(Path::new(sigma));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let paths: Vec<PathBuf> = cases.iter().map(|c| c.path.clone()).collect();
    let outcomes = score_techniques(&cases, &scan_files(&rules, &paths, threads, 0));
    let wall = started.elapsed();

    for o in outcomes.iter().filter(|o| !o.hit()) {
        match &o.error {
            Some(e) => println!("UNREADABLE {e}"),
            None => println!(
                "MISS {} {} (alerts: {}, techniques: {:?})",
                o.case.technique,
                o.case.path.display(),
                o.alerts,
                o.techniques
            ),
        }
    }
    let hits = outcomes.iter().filter(|o| o.hit()).count();
    let any = outcomes.iter().filter(|o| o.alerts > 0).count();
    let events: usize = outcomes.iter().map(|o| o.events).sum();
    println!(
        "labelled files: {}; technique among alert tags: {hits}; any alert: {any}",
        outcomes.len()
    );
    println!(
        "events: {events}; wall {:.3} s ({threads} threads)",
        wall.as_secs_f64()
    );
    ExitCode::SUCCESS
}
