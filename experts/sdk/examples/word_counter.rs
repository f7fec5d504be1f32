//! A complete expert in ~30 lines: `count-words` over `text`.
//!
//! ```sh
//! cargo run --release -- up                                   # terminal 1: the orchestrator
//! cargo run -p synod-expert-sdk --example word_counter         # terminal 2: this expert
//! cargo run --release -- experts list                          # word-counter, healthy
//! ```
//! Arguments (optional): `[listen address] [orchestrator URL]`, default
//! `127.0.0.1:7101 http://127.0.0.1:7100`.
use serde_json::json;
use synod_expert_sdk::{ExpertServer, SkillDefinition, SkillError, SkillOutput, skill_fn};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:7101".into());
    let orchestrator = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:7100".into());

    let count_words = SkillDefinition::new("count-words")
        .description("counts the words of a text")
        .consumes(["text"])
        .produces("findings")
        .input_schema(json!({
            "type": "object", "required": ["text"], "additionalProperties": false,
            "properties": { "text": { "type": "string" } }
        }))
        .output_schema(json!({
            "type": "object", "required": ["words"],
            "properties": { "words": { "type": "integer", "minimum": 0 } }
        }));
    let skill = skill_fn(count_words, |_ctx, input| async move {
        let text = input["text"]
            .as_str()
            .ok_or_else(|| SkillError::invalid_input("/text", "expected a string"))?;
        Ok(SkillOutput::new(
            json!({ "words": text.split_whitespace().count() }),
        ))
    });
    eprintln!("word-counter: serving on {listen}, registering with {orchestrator} (Ctrl-C stops)");
    ExpertServer::builder("word-counter", "0.1.0")
        .description("counts words, as an example")
        .skill(skill)
        .register_with(orchestrator)
        .serve(listen.parse()?)
        .await?;
    Ok(())
}
