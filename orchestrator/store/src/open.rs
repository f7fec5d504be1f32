//! Choosing and opening a store from a database URL (`--database-url`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::store::{RunStore, StoreError};
use crate::{MemoryStore, PostgresStore, SqliteStore};

/// Where runs are kept, parsed from a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory:` — in memory, lost on exit.
    Memory,
    /// `sqlite://PATH`, `sqlite:PATH` or a bare path — one SQLite file.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…` — PostgreSQL.
    Postgres(String),
}

impl StoreUrl {
    /// Parses `url`; a bare path (no scheme) means a SQLite file.
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let url = url.trim();
        if url == "memory:" || url == "memory://" {
            return Ok(StoreUrl::Memory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || (path.contains("://") && !url.starts_with("sqlite:")) {
            return Err(StoreError::Backend(format!(
                "unsupported database url `{url}`; use `sqlite://PATH` (or a file path), \
                 `postgres://USER@HOST:PORT/DATABASE` or `memory:`"
            )));
        }
        Ok(StoreUrl::Sqlite(PathBuf::from(path)))
    }

    /// Opens the store (creating and migrating the database as needed).
    pub async fn open(&self) -> Result<Arc<dyn RunStore>, StoreError> {
        Ok(match self {
            StoreUrl::Memory => Arc::new(MemoryStore::new()),
            StoreUrl::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
            StoreUrl::Postgres(url) => Arc::new(PostgresStore::connect(url).await?),
        })
    }
}

/// Parses `url` and opens the store it names.
pub async fn open(url: &str) -> Result<Arc<dyn RunStore>, StoreError> {
    StoreUrl::parse(url)?.open().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        let parse = |url: &str| StoreUrl::parse(url).unwrap();
        let sqlite = |path: &str| StoreUrl::Sqlite(PathBuf::from(path));
        assert_eq!(parse("sqlite://./synod.db"), sqlite("./synod.db"));
        assert_eq!(parse("sqlite:synod.db?mode=rwc"), sqlite("synod.db"));
        assert_eq!(
            parse("/var/lib/synod/synod.db"),
            sqlite("/var/lib/synod/synod.db")
        );
        assert_eq!(parse("memory:"), StoreUrl::Memory);
        assert_eq!(
            parse("postgresql://synod@db:5432/synod"),
            StoreUrl::Postgres("postgresql://synod@db:5432/synod".into())
        );
        let error = StoreUrl::parse("mysql://db/synod").unwrap_err().to_string();
        assert!(
            error.contains("unsupported database url `mysql://db/synod`"),
            "{error}"
        );
        assert!(StoreUrl::parse("").is_err());
    }

    #[tokio::test]
    async fn open_creates_a_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        let store = open(&format!("sqlite://{}", path.display())).await.unwrap();
        assert!(store.list_runs(1).await.unwrap().is_empty());
        assert!(path.exists());
    }
}
