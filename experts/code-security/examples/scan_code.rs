//! Scans files or directories and prints the findings (or the SARIF log).
//!
//! ```text
//! cargo run -p synod-expert-code-security --example scan_code -- [--sarif] <path>...
//! ```

use std::path::Path;
use std::process::ExitCode;

use synod_expert_code_security::{Scanner, collect_files, read_source, to_sarif};

fn main() -> ExitCode {
    let mut sarif = false;
    let mut paths = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "--sarif" {
            sarif = true;
        } else {
            paths.push(arg);
        }
    }
    if paths.is_empty() {
        eprintln!("usage: scan [--sarif] <file or directory>...");
        return ExitCode::FAILURE;
    }
    let scanner = match Scanner::builtin() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut files = Vec::new();
    for path in &paths {
        let found = match collect_files(Path::new(path), 100_000) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        for file in found {
            match read_source(&file) {
                Ok(source) => files.push(source),
                Err(e) => eprintln!("warning: {e}"),
            }
        }
    }
    let report = scanner.scan_files(&files);
    if sarif {
        let log = to_sarif(&report, scanner.rules(), env!("CARGO_PKG_VERSION"));
        println!("{}", serde_json::to_string_pretty(&log).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    for f in &report.findings {
        println!(
            "{}:{}:{}: CWE-{} {} [{}] {}",
            f.path, f.start_line, f.start_column, f.cwe, f.rule_id, f.severity, f.message
        );
    }
    eprintln!("{}", report.summary());
    ExitCode::SUCCESS
}
