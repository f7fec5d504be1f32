//! The attack-tracing expert: a provenance graph over Windows/Sysmon
//! events, the root cause of detected activity, the attack path, the
//! ATT&CK-ordered chain of steps and group attribution by technique overlap.
//!
//! Layout (pure logic; I/O only in [`expert`] and through
//! `synod_expert_attack_detection::read_file`):
//! - [`record`]: events reduced to actions ([`Record`], [`Action`]) with
//!   Sysmon and Security field names.
//! - [`graph`]: the [`ProvenanceGraph`] (petgraph) of processes, logons,
//!   users, addresses, domains, files, registry keys and services.
//! - [`heuristics`]: behavioural findings mapped to ATT&CK techniques.
//! - [`trace`]: [`reconstruct`]: root cause, path, steps, entities, summary.
//! - [`attack`]: embedded ATT&CK tables ([`AttackData`]); [`attribution`]:
//!   IDF-weighted cosine ranking of groups ([`Attributor`]).
//! - [`expert`](fn@expert): the `tracing` expert with skills `reconstruct`
//!   and `attribute`; [`read_records`] and [`trace_records`] for files.
//! - [`evaluation`]: scoring of attribution and technique recall.
//!
//! ATT&CK data © The MITRE Corporation, reproduced under its terms of use
//! (`data/LICENSE-MITRE-ATTACK-CAPEC.txt`).
//!
//! ```
//! use synod_expert_tracing::Attributor;
//!
//! let ranked = Attributor::embedded().rank(&["T1003.001".into(), "T1550.002".into()], 3);
//! assert_eq!(ranked.len(), 3);
//! assert!(ranked[0].score > 0.0);
//! ```
#![warn(missing_docs)]

pub mod attack;
pub mod attribution;
pub mod evaluation;
mod expert;
pub mod graph;
pub mod heuristics;
pub mod record;
pub mod trace;

pub use attack::{AttackData, TACTICS};
pub use attribution::{Attributor, CAUTION, Candidate};
pub use expert::{
    Config, attribute_input_schema, attribute_output_schema, expert, reconstruct_input_schema,
    reconstruct_output_schema,
};
pub use graph::ProvenanceGraph;
pub use record::{Action, Record};
pub use trace::{AlertInput, Inputs, Limits, reconstruct};

/// Reads the provenance records of EVTX, JSON or JSON-lines files (events
/// without provenance value are dropped).
///
/// # Errors
///
/// The first file that cannot be read, with the reason.
pub fn read_records(
    paths: &[impl AsRef<std::path::Path>],
) -> Result<Vec<Record>, synod_expert_attack_detection::InputError> {
    let mut records = Vec::new();
    for path in paths {
        synod_expert_attack_detection::read_file(path.as_ref(), |reference, event| {
            records.extend(Record::from_event(reference, &event));
        })?;
    }
    Ok(records)
}

/// Reconstructs from records alone (no alerts, behavioural findings on,
/// embedded ATT&CK data, default limits): the `reconstruct` output.
pub fn trace_records(records: Vec<Record>) -> serde_json::Value {
    let graph = ProvenanceGraph::build(records);
    let inputs = Inputs {
        alerts: &[],
        techniques: &[],
        heuristics: true,
    };
    reconstruct(
        &graph,
        inputs,
        AttackData::embedded(),
        &Attributor::embedded(),
        Limits::default(),
    )
}
