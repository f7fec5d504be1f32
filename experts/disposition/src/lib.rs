//! Disposition expert: prioritised response plans from alerts, attack
//! chains and asset context, emitted as OASIS CACAO 2.0 playbooks and as a
//! flat list of actions that workflow bindings deliver.
//!
//! - **Input** ([`PlanInput`]): alerts (the attack-detection `detect`
//!   output), an attack chain (the tracing output) and assets
//!   (criticality, owner, role); every field optional.
//! - **Planning** ([`plan()`]), pure: targets from matched events (Sysmon and
//!   Security fields) and chain entities, merged per action and target,
//!   scored from severity, tactic stage, criticality and confidence, with
//!   ATT&CK mitigations ([`AttackCatalog`]), business [`Impact`] and the
//!   [`Policy`]'s approval decision.
//! - **Output**: a CACAO 2.0 playbook ([`playbook`]) and the actions
//!   ([`Action::to_json`]), with deterministic ids ([`ids`]).
//! - **Expert** ([`expert()`]): `disposition` with skill `plan`
//!   (`alerts`, `attack_chain` -> `response_plan`; `assets` optional).
//!
//! ```
//! use serde_json::json;
//! use synod_expert_disposition::{AttackCatalog, PlanInput, Policy, plan};
//!
//! let input = PlanInput::from_json(&json!({ "alerts": [{
//!     "rule_id": "r1", "title": "Mimikatz", "level": "critical",
//!     "techniques": ["T1003.001"], "tactics": ["credential-access"],
//!     "events": [{ "computer": "WS01", "fields": { "User": "CORP\\alice" } }]
//! }]})).unwrap();
//! let plan = plan(&input, &Policy::default(), AttackCatalog::embedded());
//! assert_eq!(plan.actions[0].kind.as_str(), "isolate_host");
//! assert_eq!(plan.actions[0].target.value, "WS01");
//! ```
//!
//! ATT&CK® data © 2025 The MITRE Corporation. This work is reproduced and
//! distributed with the permission of The MITRE Corporation
//! (`data/LICENSE-MITRE-ATTACK-CAPEC.txt`).
#![warn(missing_docs)]

pub mod action;
pub mod attack;
pub mod cacao;
mod expert;
pub mod ids;
pub mod input;
pub mod plan;
pub mod policy;
pub mod time;

pub use action::{Action, ActionKind, Approval, Evidence, Impact, Mitigation, Target, TargetKind};
pub use attack::AttackCatalog;
pub use cacao::{HttpApi, playbook};
pub use expert::{Config, expert, plan_input_schema, plan_output_schema, respond};
pub use input::{Asset, Criticality, InputError, PlanInput};
pub use plan::{Plan, Skipped, plan};
pub use policy::{Policy, PolicyError};
