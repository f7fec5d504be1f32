//! Document classification from findings.
//!
//! Policy (documented in the crate README):
//! 1. Only findings with confidence ≥ [`MIN_CONFIDENCE`] count.
//! 2. The level is the highest level of a counted finding's rule
//!    (secrets, card numbers and national ids are `restricted`; other
//!    personal data `confidential`; identifiers such as IP addresses and
//!    account ids `internal`).
//! 3. Bulk personal data raises the level: [`BULK_PII`] or more counted
//!    `confidential` personal-data findings make the document `restricted`.
//! 4. No counted finding: `public`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::scanner::Finding;

/// Findings below this confidence do not raise the level.
pub const MIN_CONFIDENCE: f64 = 0.5;
/// This many confidential personal-data findings make a document restricted.
pub const BULK_PII: usize = 10;

/// Sensitivity level of a document, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing sensitive found.
    Public,
    /// Organisation-internal identifiers (IP addresses, account ids).
    Internal,
    /// Personal data (email, phone, IBAN).
    Confidential,
    /// Credentials, payment cards, national identity numbers, bulk personal data.
    Restricted,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 4] = [
        Level::Public,
        Level::Internal,
        Level::Confidential,
        Level::Restricted,
    ];

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Public => "public",
            Level::Internal => "internal",
            Level::Confidential => "confidential",
            Level::Restricted => "restricted",
        }
    }

    /// The level called `name` (lowercase).
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

/// The classification of one document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The resulting level.
    pub level: Level,
    /// Why, in one sentence.
    pub reason: String,
    /// Counted findings per entity type.
    pub counts: BTreeMap<String, usize>,
}

/// Classifies a document from its findings (see the module policy).
pub fn classify(findings: &[Finding]) -> Classification {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut level = Level::Public;
    let mut top: Option<&Finding> = None;
    let mut confidential_pii = 0usize;
    for finding in findings.iter().filter(|f| f.confidence >= MIN_CONFIDENCE) {
        *counts.entry(finding.entity_type.clone()).or_default() += 1;
        if finding.level == Level::Confidential {
            confidential_pii += 1;
        }
        if finding.level > level {
            level = finding.level;
            top = Some(finding);
        }
    }
    let reason = match top {
        None => "no sensitive data found".to_owned(),
        Some(_) if level < Level::Restricted && confidential_pii >= BULK_PII => {
            level = Level::Restricted;
            format!(
                "{confidential_pii} personal-data findings (bulk personal data, at least {BULK_PII})"
            )
        }
        Some(finding) => format!(
            "{} ({}) found by rule `{}`",
            finding.entity_type, finding.rule_name, finding.rule_id
        ),
    };
    Classification {
        level,
        reason,
        counts,
    }
}
