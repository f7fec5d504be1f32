//! Prints the flattened fields of every event in the given EVTX/JSON files,
//! to see what rules can match on.
//!
//! ```text
//! cargo run --release -p synod-expert-attack-detection --example dump_events -- file.evtx
//! ```

use std::io::Write;
use std::path::Path;

use synod_expert_attack_detection::read_file;

fn main() {
    let mut out = std::io::stdout().lock();
    let mut closed = false;
    for path in std::env::args().skip(1) {
        let result = read_file(Path::new(&path), |reference, event| {
            if closed {
                return;
            }
            let mut fields: Vec<String> = event
                .fields()
                .map(|f| {
                    let values: Vec<&str> = f.values.iter().map(|s| s.text.as_str()).collect();
                    format!("{}={}", f.name, values.join("|"))
                })
                .collect();
            fields.sort();
            let line = format!(
                "{}#{}: {}",
                reference.source,
                reference.index,
                fields.join("  ")
            );
            // one line per event; stop quietly when the reader goes away (`| head`)
            closed = writeln!(out, "{}", line.replace(['\n', '\r', '\t'], " ")).is_err();
        });
        if let Err(e) = result {
            eprintln!("{e}");
        }
    }
}
