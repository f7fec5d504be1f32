//! Prints the flattened fields of every event in the given EVTX/JSON files,
//! to see what rules can match on.
//!
//! ```text
//! cargo run --release -p synod-expert-attack-detection --example dump_events -- file.evtx
//! ```

use std::path::Path;

use synod_expert_attack_detection::read_file;

fn main() {
    for path in std::env::args().skip(1) {
        let result = read_file(Path::new(&path), |reference, event| {
            let mut fields: Vec<String> = event
                .fields()
                .map(|f| {
                    let values: Vec<&str> = f.values.iter().map(|s| s.text.as_str()).collect();
                    format!("{}={}", f.name, values.join("|"))
                })
                .collect();
            fields.sort();
            println!(
                "{}#{}: {}",
                reference.source,
                reference.index,
                fields.join("  ")
            );
        });
        if let Err(e) = result {
            eprintln!("{e}");
        }
    }
}
