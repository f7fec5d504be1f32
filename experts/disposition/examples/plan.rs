//! Plans the response to an input file and prints the plan JSON.
//!
//! ```text
//! cargo run -p synod-expert-disposition --example plan -- \
//!     experts/disposition/tests/fixtures/incident.json [--policy policy.json] [--actions-only]
//! ```
//!
//! The input has the skill's shape: `{"alerts": <detect output>, "chain": .., "assets": [..]}`.

use std::path::PathBuf;
use std::process::ExitCode;

use synod_expert_disposition::{Config, PlanInput, respond};

fn main() -> ExitCode {
    let mut input_path = None;
    let mut config = Config::default();
    let mut actions_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--policy" => match args.next().map(PathBuf::from) {
                Some(path) => match Config::with_policy_file(&path) {
                    Ok(loaded) => config = loaded,
                    Err(error) => {
                        eprintln!("error: {error}: {}", error_chain(&error));
                        return ExitCode::FAILURE;
                    }
                },
                None => return usage(),
            },
            "--actions-only" => actions_only = true,
            _ if input_path.is_none() => input_path = Some(PathBuf::from(arg)),
            _ => return usage(),
        }
    }
    let Some(input_path) = input_path else {
        return usage();
    };
    let text = match std::fs::read_to_string(&input_path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: cannot read {}: {error}", input_path.display());
            return ExitCode::FAILURE;
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(error) => {
            eprintln!("error: {} is not JSON: {error}", input_path.display());
            return ExitCode::FAILURE;
        }
    };
    let input = match PlanInput::from_json(&value) {
        Ok(input) => input,
        Err(error) => {
            eprintln!("error: {}: {error}", input_path.display());
            return ExitCode::FAILURE;
        }
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (output, plan) = respond(&input, &config, &now);
    if actions_only {
        for action in &plan.actions {
            println!(
                "P{:<3} {:>3} {:<18} {:<45} approval={:<5} impact={}",
                action.priority,
                action.score,
                action.kind.as_str(),
                action.target.describe(),
                action.approval.required,
                action.impact.level.as_str()
            );
        }
        for skipped in &plan.skipped {
            println!(
                "skip {} {}: {}",
                skipped.kind.as_str(),
                skipped.target,
                skipped.reason
            );
        }
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&output).unwrap_or_default()
        );
    }
    ExitCode::SUCCESS
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}

fn usage() -> ExitCode {
    eprintln!("usage: plan <input.json> [--policy <policy.json>] [--actions-only]");
    ExitCode::from(2)
}
