//! Reading source files from disk (directory input of the expert, the
//! benchmark runner).

use std::path::{Path, PathBuf};

use crate::lang::Language;
use crate::scan::SourceFile;

/// Directories never descended into.
const SKIPPED_DIRS: [&str; 6] = [
    ".git",
    "node_modules",
    "target",
    "__pycache__",
    ".venv",
    "vendor",
];

/// Why files could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A file or directory could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// More files than allowed.
    #[error("more than {limit} source files under `{path}`; scan a smaller directory")]
    TooMany {
        /// The directory.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
}

/// The supported source files under `path` (a file or a directory,
/// recursively, sorted), at most `limit`.
///
/// # Errors
///
/// When a directory cannot be listed or there are more than `limit` files.
pub fn collect_files(path: &Path, limit: usize) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    if path.is_file() {
        out.push(path.to_owned());
        return Ok(out);
    }
    let mut pending = vec![path.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| InputError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| InputError::Io {
                path: dir.clone(),
                source,
            })?;
            let child = entry.path();
            if child.is_dir() {
                let name = entry.file_name();
                if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                    pending.push(child);
                }
            } else if Language::from_path(&child).is_some() {
                out.push(child);
                if out.len() > limit {
                    return Err(InputError::TooMany {
                        path: path.to_owned(),
                        limit,
                    });
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads one file as a [`SourceFile`] (invalid UTF-8 is replaced).
///
/// # Errors
///
/// When the file cannot be read.
pub fn read_source(path: &Path) -> Result<SourceFile, InputError> {
    let bytes = std::fs::read(path).map_err(|source| InputError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(SourceFile {
        path: path.display().to_string(),
        content: String::from_utf8_lossy(&bytes).into_owned(),
    })
}
