//! The `attack-detection` expert on `synod-expert-sdk`: skill `detect`
//! (`events` -> `alerts`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use synod_expert_sdk::{
    Evidence, ExpertServer, ExpertServerBuilder, Sensitivity, SkillDefinition, SkillError,
    SkillOutput, skill_fn,
};

use crate::alerts::{Detector, Report};
use crate::engine::{LoadFailure, RuleSet};
use crate::event::Event;
use crate::input::{EventRef, inline_events, read_file};
use crate::matcher::Placeholders;
use crate::rule::{LEVELS, level_rank};

/// Version reported on the expert card.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Most rule-load failures listed in each output (all are counted).
const MAX_LISTED_FAILURES: usize = 50;
/// Most inline events per call.
const MAX_EVENTS: usize = 200_000;
/// Confidence of alerts: rule matches are exact, but rules have false positives.
const CONFIDENCE: f64 = 0.8;

/// How the expert is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Rule files or directories (SigmaHQ layout), loaded recursively.
    pub rule_paths: Vec<PathBuf>,
    /// Whether to include the embedded demo rules.
    pub builtin_rules: bool,
    /// Whether the skill may read `paths` (EVTX/JSON files on the expert's host).
    pub allow_file_input: bool,
    /// Default number of matched events listed per alert.
    pub max_events_per_alert: usize,
    /// Values of `%name%` placeholders for rules using the `expand` modifier
    /// (SigmaHQ `rules-placeholder/`), e.g. `dc_ip_addresses`.
    pub placeholders: Placeholders,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rule_paths: Vec::new(),
            builtin_rules: true,
            allow_file_input: false,
            max_events_per_alert: 20,
            placeholders: Placeholders::new(),
        }
    }
}

impl Config {
    /// Loads the rule set this configuration names.
    pub fn load_rules(&self) -> RuleSet {
        let mut rules = RuleSet::new().with_placeholders(self.placeholders.clone());
        if self.builtin_rules {
            rules.add_builtin();
        }
        rules.load_paths(&self.rule_paths);
        rules
    }
}

/// Why the expert cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExpertError {
    /// No rule loaded at all (every file failed, or there were none).
    #[error(
        "no Sigma rule loaded from {paths:?} ({} failures{}); point rule_paths at a SigmaHQ rules directory or enable the builtin rules",
        failures.len(),
        first_failures(failures)
    )]
    NoRules {
        /// The configured rule paths.
        paths: Vec<PathBuf>,
        /// Every file that failed, with its reason.
        failures: Vec<LoadFailure>,
    },
}

fn first_failures(failures: &[LoadFailure]) -> String {
    let first: Vec<String> = failures.iter().take(5).map(ToString::to_string).collect();
    if first.is_empty() {
        String::new()
    } else {
        format!(": {}", first.join("; "))
    }
}

/// Builds the `attack-detection` expert (add `.register_with(..)` and serve).
///
/// # Errors
///
/// [`ExpertError::NoRules`] when no rule could be loaded at all.
pub fn expert(config: &Config) -> Result<ExpertServerBuilder, ExpertError> {
    let rules = config.load_rules();
    if rules.rules().is_empty() {
        return Err(ExpertError::NoRules {
            paths: config.rule_paths.clone(),
            failures: rules.failures().to_vec(),
        });
    }
    Ok(expert_with_rules(Arc::new(rules), config))
}

/// Builds the expert around an already loaded rule set (e.g. shared with
/// other users of the same rules).
pub fn expert_with_rules(rules: Arc<RuleSet>, config: &Config) -> ExpertServerBuilder {
    let definition = SkillDefinition::new("detect")
        .description("Runs Sigma rules over Windows events (EVTX-style or flat Sysmon/Security JSON, inline or from EVTX/JSON files) and returns one alert per rule that fired: rule id, title, level, ATT&CK techniques and tactics, count and matched events.")
        .consumes(["events"])
        .produces("alerts")
        .input_schema(detect_input_schema())
        .output_schema(detect_output_schema())
        .cost_hint(2.0)
        .max_sensitivity(Sensitivity::Confidential);
    let allow_files = config.allow_file_input;
    let default_max = config.max_events_per_alert;
    let description = format!(
        "Sigma rule engine for Windows event logs ({} rules loaded, {} failed to load).",
        rules.rules().len(),
        rules.failures().len()
    );
    ExpertServer::builder("attack-detection", VERSION)
        .description(description)
        .skill(skill_fn(definition, move |_ctx, input| {
            let rules = Arc::clone(&rules);
            async move {
                tokio::task::spawn_blocking(move || {
                    detect(&rules, &input, allow_files, default_max)
                })
                .await
                .map_err(|e| SkillError::internal(format!("detection task failed: {e}")))?
            }
        }))
}

/// The `detect` skill: pure function of the rule set and the input.
fn detect(
    rules: &RuleSet,
    input: &Value,
    allow_files: bool,
    default_max: usize,
) -> Result<SkillOutput, SkillError> {
    let max_per_alert = input["max_events_per_alert"]
        .as_u64()
        .map_or(default_max, |n| n as usize);
    let mut detector = Detector::new(rules, max_per_alert);
    let files = input_events(input, allow_files, "split the input", |reference, event| {
        detector.observe(reference, &event)
    })?;
    let mut report = detector.finish();
    if let Some(min) = input["min_level"].as_str() {
        report
            .alerts
            .retain(|a| level_rank(&a.rule.level) >= level_rank(min));
    }
    Ok(output(rules, &report, files.files, files.bad_records))
}

/// What [`input_events`] read from `paths`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileInput {
    /// Files listed in `paths`.
    pub files: usize,
    /// Records or lines of those files that could not be parsed (skipped).
    pub bad_records: usize,
}

/// Feeds the events of a skill input to `on_event`: the inline `events`
/// (at most 200 000; `limit_hint` ends the error beyond that), then
/// those of each file in `paths`, which is refused unless `allow_files`.
///
/// # Errors
///
/// Invalid input: too many inline events, `paths` when files are not
/// allowed, or a file that cannot be read (at `/paths/<i>`).
pub fn input_events(
    input: &Value,
    allow_files: bool,
    limit_hint: &str,
    mut on_event: impl FnMut(EventRef, Event),
) -> Result<FileInput, SkillError> {
    let events = input["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if events.len() > MAX_EVENTS {
        return Err(SkillError::invalid_input(
            "/events",
            format!(
                "{} events; the limit per call is {MAX_EVENTS}: {limit_hint}",
                events.len()
            ),
        ));
    }
    for (reference, event) in inline_events(events) {
        on_event(reference, event);
    }
    let paths = input["paths"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !paths.is_empty() && !allow_files {
        return Err(SkillError::invalid_input(
            "/paths",
            "this expert does not read files (start it with file input allowed, or send the events inline)",
        ));
    }
    let mut bad_records = 0usize;
    for (i, path) in paths.iter().enumerate() {
        let path = Path::new(path.as_str().unwrap_or_default());
        let stats = read_file(path, &mut on_event)
            .map_err(|e| SkillError::invalid_input(format!("/paths/{i}"), e.to_string()))?;
        bad_records += stats.bad_records;
    }
    Ok(FileInput {
        files: paths.len(),
        bad_records,
    })
}

fn output(rules: &RuleSet, report: &Report, files: usize, bad_records: usize) -> SkillOutput {
    let failures: Vec<Value> = rules
        .failures()
        .iter()
        .take(MAX_LISTED_FAILURES)
        .map(|f| json!({ "source": f.source, "reason": f.reason }))
        .collect();
    let value = json!({
        "alerts": report.alerts.iter().map(|a| a.to_json()).collect::<Vec<_>>(),
        "counts": report.counts_json(),
        "rules": {
            "loaded": rules.rules().len(),
            "failed": rules.failures().len(),
            "unmapped_logsource": rules.unmapped().count(),
            "failures": failures,
        },
        "inputs": { "files": files, "bad_records": bad_records },
    });
    let mut output = SkillOutput::new(value).with_confidence(CONFIDENCE);
    for alert in &report.alerts {
        if let Some(first) = alert.events.iter().find(|e| e.reference.source == "input") {
            output = output.with_evidence(Evidence::new(
                format!("/events/{}", first.reference.index),
                format!(
                    "{} ({}, {} matches)",
                    alert.rule.title, alert.rule.level, alert.count
                ),
            ));
        }
    }
    output
}

/// Input of `attack-detection/detect`.
pub fn detect_input_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "anyOf": [{ "required": ["events"] }, { "required": ["paths"] }],
        "properties": {
            "events": {
                "type": "array",
                "description": "Events: EVTX-style JSON ({\"Event\": {\"System\": .., \"EventData\": ..}}) or flat JSON (EventID, Channel, Image, ... at top level).",
                "items": { "type": "object" }
            },
            "paths": {
                "type": "array",
                "description": "EVTX, JSON or JSON-lines files on the expert's host (only when the expert allows file input).",
                "items": { "type": "string", "minLength": 1 }
            },
            "min_level": { "enum": LEVELS, "description": "Drop alerts below this level." },
            "max_events_per_alert": { "type": "integer", "minimum": 0, "maximum": 10000 }
        }
    })
}

/// One matched event of an alert.
fn matched_event_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["source", "index"],
        "properties": {
            "source": { "type": "string" },
            "index": { "type": "integer", "minimum": 0 },
            "record_id": { "type": "integer", "minimum": 0 },
            "timestamp": { "type": "string" },
            "computer": { "type": "string" },
            "channel": { "type": "string" },
            "event_id": { "type": "integer", "minimum": 0 },
            "fields": {
                "type": "object",
                "description": "The event's values of the fields the rule tests.",
                "additionalProperties": { "type": "string" }
            }
        }
    })
}

/// Output of `attack-detection/detect`.
pub fn detect_output_schema() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let optional_string = json!({ "type": ["string", "null"] });
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["alerts", "counts", "rules", "inputs"],
        "properties": {
            "alerts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["rule_id", "title", "level", "tags", "techniques", "tactics", "count", "events"],
                    "properties": {
                        "rule_id": { "type": "string" },
                        "title": { "type": "string" },
                        "level": { "enum": LEVELS },
                        "status": optional_string,
                        "author": optional_string,
                        "description": optional_string,
                        "tags": strings,
                        "techniques": { "type": "array", "items": { "type": "string", "pattern": "^T[0-9]{4}(\\.[0-9]{3})?$" } },
                        "tactics": strings,
                        "logsource": { "type": "string" },
                        "rule_source": { "type": "string" },
                        "falsepositives": strings,
                        "count": { "type": "integer", "minimum": 1 },
                        "events": {
                            "type": "array",
                            "items": matched_event_schema()
                        }
                    }
                }
            },
            "counts": {
                "type": "object",
                "required": ["events", "matched_events", "alerts", "by_level", "by_technique"],
                "properties": {
                    "events": { "type": "integer", "minimum": 0 },
                    "matched_events": { "type": "integer", "minimum": 0 },
                    "alerts": { "type": "integer", "minimum": 0 },
                    "by_level": { "type": "object", "additionalProperties": { "type": "integer" } },
                    "by_technique": { "type": "object", "additionalProperties": { "type": "integer" } }
                }
            },
            "rules": {
                "type": "object",
                "required": ["loaded", "failed", "unmapped_logsource", "failures"],
                "properties": {
                    "loaded": { "type": "integer", "minimum": 0 },
                    "failed": { "type": "integer", "minimum": 0 },
                    "unmapped_logsource": { "type": "integer", "minimum": 0 },
                    "failures": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["source", "reason"],
                            "properties": { "source": { "type": "string" }, "reason": { "type": "string" } }
                        }
                    }
                }
            },
            "inputs": {
                "type": "object",
                "required": ["files", "bad_records"],
                "properties": {
                    "files": { "type": "integer", "minimum": 0 },
                    "bad_records": { "type": "integer", "minimum": 0 }
                }
            }
        }
    })
}
