//! The `knowledge` expert: an ATT&CK Enterprise / CAPEC / CWE knowledge base
//! with BM25 full-text search and cited answers.
//!
//! Skills: `lookup`, `mitigations`, `detections`, `links`, `answer` and the
//! critic `verify` (see [`skills`]); each answer cites the ids of the objects
//! it is based on. Load with [`Config::load`], serve with [`expert`].

mod bm25;
mod cwe;
mod expert;
mod kb;
mod model;
pub mod skills;
mod stix;

use std::path::{Path, PathBuf};

pub use bm25::{Bm25, tokenize};
pub use expert::{Config, expert, expert_with_base};
pub use kb::KnowledgeBase;
pub use model::{Edge, Kind, Object, RelType, clean_text};

/// Why a data file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct LoadError {
    /// The file or directory.
    pub path: PathBuf,
    /// What is wrong and how to fix it.
    pub reason: String,
}

/// Reads and parses one JSON file.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let file = std::fs::File::open(path).map_err(|e| {
        format!(
            "cannot open {}: {e} (check the path in the knowledge configuration)",
            path.display()
        )
    })?;
    serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
}

/// Loads STIX bundles (ATT&CK Enterprise, CAPEC) and CWE JSON (a file or a
/// directory such as `json_repo/`).
///
/// # Errors
///
/// The first file that cannot be read or is not in the expected format.
pub fn load(stix_bundles: &[PathBuf], cwe: Option<&Path>) -> Result<KnowledgeBase, LoadError> {
    let mut parsed = Vec::new();
    for path in stix_bundles {
        let error = |reason: String| LoadError {
            path: path.clone(),
            reason,
        };
        let value = read_json(path).map_err(error)?;
        parsed.push(stix::parse_bundle(&value).map_err(error)?);
    }
    let weaknesses = match cwe {
        Some(path) => cwe::load(path).map_err(|reason| LoadError {
            path: path.to_owned(),
            reason,
        })?,
        None => Vec::new(),
    };
    Ok(KnowledgeBase::build(parsed, weaknesses))
}

/// Builds a knowledge base from JSON values already in memory (STIX
/// bundles and CWE documents); for tests and embedding.
///
/// # Errors
///
/// When a bundle is not a STIX bundle.
pub fn from_values(
    stix_bundles: &[serde_json::Value],
    cwe: &[serde_json::Value],
) -> Result<KnowledgeBase, String> {
    let parsed = stix_bundles
        .iter()
        .map(stix::parse_bundle)
        .collect::<Result<Vec<_>, _>>()?;
    let mut weaknesses = Vec::new();
    for value in cwe {
        cwe::parse_value(value, &mut weaknesses);
    }
    Ok(KnowledgeBase::build(parsed, weaknesses))
}
