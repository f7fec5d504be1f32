//! Reconstructs the attack in EVTX / JSON / JSON-lines files and prints the
//! `reconstruct` output as JSON.
//!
//! ```text
//! cargo run -p synod-expert-tracing --release --example trace_files -- FILE...
//! ```

use std::path::Path;

use synod_expert_attack_detection::read_file;
use synod_expert_tracing::{
    AttackData, Attributor, Inputs, Limits, ProvenanceGraph, Record, reconstruct,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        return Err("usage: trace_files FILE... (EVTX, JSON or JSON lines)".into());
    }
    let mut records = Vec::new();
    for path in &paths {
        read_file(Path::new(path), |reference, event| {
            records.extend(Record::from_event(reference, &event));
        })?;
    }
    let graph = ProvenanceGraph::build(records);
    let inputs = Inputs {
        alerts: &[],
        techniques: &[],
        heuristics: true,
    };
    let output = reconstruct(
        &graph,
        inputs,
        AttackData::embedded(),
        &Attributor::embedded(),
        Limits::default(),
    );
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}
