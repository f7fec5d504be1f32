//! Asks the knowledge base one question from the command line and prints the
//! skill's JSON output.
//!
//! ```text
//! cargo run --release -p synod-expert-knowledge --example ask -- \
//!     --attack ea.json --capec capec.json --cwe json_repo/ <skill> <text>
//! ```
//! `<skill>` is `answer`, `lookup`, `mitigations`, `detections`, `links` or
//! `verify` (technique ids separated by spaces or commas).

use std::path::PathBuf;

use synod_expert_knowledge::Config;
use synod_expert_knowledge::skills::{self, ChainStep};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut take = |flag: &str| {
        let i = args.iter().position(|a| a == flag)?;
        let value = args.get(i + 1).cloned();
        args.drain(i..(i + 2).min(args.len()));
        value.map(PathBuf::from)
    };
    let config = Config {
        attack_path: take("--attack"),
        capec_path: take("--capec"),
        cwe_path: take("--cwe"),
    };
    let (Some(skill), Some(_)) = (args.first(), args.get(1)) else {
        return Err("usage: ask [--attack F] [--capec F] [--cwe DIR] <answer|lookup|mitigations|detections|links|verify> <text>".into());
    };
    let text = args[1..].join(" ");
    let kb = config.load()?;
    let output = match skill.as_str() {
        "answer" => serde_json::to_value(skills::answer(&kb, &text, 5))?,
        "lookup" => serde_json::to_value(skills::lookup(&kb, &text, &[], 5))?,
        "mitigations" => serde_json::to_value(skills::mitigations(&kb, &text)?)?,
        "detections" => serde_json::to_value(skills::detections(&kb, &text)?)?,
        "links" => serde_json::to_value(skills::links(&kb, &text)?)?,
        "verify" => {
            let chain: Vec<ChainStep> = text
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(|id| ChainStep {
                    technique: id.to_owned(),
                    timestamp: None,
                })
                .collect();
            serde_json::to_value(skills::verify(&kb, &chain))?
        }
        other => return Err(format!("unknown skill `{other}`").into()),
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}
