//! Reconstructs the attack in EVTX / JSON / JSON-lines files and prints the
//! `reconstruct` output as JSON.
//!
//! ```text
//! cargo run -p synod-expert-tracing --release --example trace_files -- FILE...
//! ```

use synod_expert_tracing::{read_records, trace_records};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        return Err("usage: trace_files FILE... (EVTX, JSON or JSON lines)".into());
    }
    let output = trace_records(read_records(&paths)?);
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}
