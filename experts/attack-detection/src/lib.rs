//! The attack-detection expert: a Sigma rule engine over Windows events.
//!
//! - **Rules**: SigmaHQ-style YAML directories ([`RuleSet::load_paths`]);
//!   rules that cannot load are kept in [`RuleSet::failures`] with the file
//!   and the reason. Selections (maps = AND, lists = OR, keywords), every
//!   modifier of the Sigma v2 specification (the `matcher` module; `expand`
//!   takes placeholder values from [`Config::placeholders`]), conditions with `and`/`or`/`not`/parentheses and
//!   `1 of`/`all of`/`them` (the `condition` module), case-insensitive matching as the
//!   specification says.
//! - **Routing**: rules apply only to events of their log source (Windows
//!   channel and event ids, [`logsource`]), looked up in a hash index.
//! - **Input**: EVTX files (the `evtx` crate), JSON and JSON lines, flattened
//!   the way Hayabusa and Chainsaw do ([`event`], [`input`]).
//! - **Output**: one [`Alert`] per rule that fired, with rule id, title,
//!   level, ATT&CK techniques and tactics, count and matched events.
//! - **Expert**: [`expert`] builds the `attack-detection` expert with skill
//!   `detect` (`events` -> `alerts`).
//!
//! ```
//! use synod_expert_attack_detection::{Detector, Event, EventRef, RuleSet};
//!
//! let rules = RuleSet::builtin();
//! let event = Event::from_json(&serde_json::json!({
//!     "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1,
//!     "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /priv"
//! }));
//! let mut detector = Detector::new(&rules, 10);
//! detector.observe(EventRef { source: "input".into(), index: 0, record_id: None }, &event);
//! let report = detector.finish();
//! assert_eq!(report.alerts[0].rule.techniques(), vec!["T1033"]);
//! ```
#![warn(missing_docs)]

pub mod alerts;
mod condition;
pub mod engine;
pub mod evaluation;
pub mod event;
mod expert;
pub mod input;
pub mod logsource;
mod matcher;
mod pattern;
mod prefilter;
pub mod rule;
pub mod scan;

pub use alerts::{Alert, Detector, MatchedEvent, Report};
pub use engine::{LoadFailure, RuleSet};
pub use event::{Event, Field, Scalar};
pub use expert::{
    Config, ExpertError, FileInput, detect_input_schema, detect_output_schema, expert,
    expert_with_rules, input_events,
};
pub use input::{EventRef, InputError, ReadStats, read_file};
pub use matcher::Placeholders;
pub use rule::{KILL_CHAIN_TACTICS, Rule, RuleMeta};
pub use scan::{FileScan, scan_files, scan_files_with_progress};

/// The project's own demo rules (in `rules/`), embedded in the binary.
pub const BUILTIN_RULES: [(&str, &str); 7] = [
    (
        "builtin:proc_access_lsass_credential_dump.yml",
        include_str!("../rules/proc_access_lsass_credential_dump.yml"),
    ),
    (
        "builtin:proc_creation_net_user_add.yml",
        include_str!("../rules/proc_creation_net_user_add.yml"),
    ),
    (
        "builtin:proc_creation_powershell_encoded_command.yml",
        include_str!("../rules/proc_creation_powershell_encoded_command.yml"),
    ),
    (
        "builtin:proc_creation_whoami_discovery.yml",
        include_str!("../rules/proc_creation_whoami_discovery.yml"),
    ),
    (
        "builtin:ps_script_mimikatz_commands.yml",
        include_str!("../rules/ps_script_mimikatz_commands.yml"),
    ),
    (
        "builtin:win_security_audit_log_cleared.yml",
        include_str!("../rules/win_security_audit_log_cleared.yml"),
    ),
    (
        "builtin:win_system_service_install_shell.yml",
        include_str!("../rules/win_system_service_install_shell.yml"),
    ),
];

impl RuleSet {
    /// The embedded demo rules ([`BUILTIN_RULES`]).
    pub fn builtin() -> Self {
        let mut set = RuleSet::new();
        set.add_builtin();
        set
    }

    /// Adds the embedded demo rules ([`BUILTIN_RULES`]).
    pub fn add_builtin(&mut self) {
        for (source, yaml) in BUILTIN_RULES {
            self.add_yaml(yaml, source);
        }
    }
}
