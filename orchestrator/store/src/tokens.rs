//! API tokens and the audit log: the [`TokenStore`] trait and its in-memory
//! implementation. The SQL backends implement it on the same database as
//! their runs (tables `api_tokens` and `audit_log`, schema version 4).
//!
//! Only the SHA-256 of a token's secret is stored ([`TokenRecord::secret_hash`]);
//! the token itself is shown once when created and never stored, logged or
//! written to the audit log.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::store::StoreError;

/// One API token as stored (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The token's public id (also the first part of the token text).
    pub token_id: String,
    /// Who holds it (a person or a service), named in audit entries.
    pub subject: String,
    /// Its roles (`viewer`, `operator`, `approver`, `expert`, `admin`, or
    /// approval group names a workflow may require).
    pub roles: Vec<String>,
    /// Lowercase hex SHA-256 of the token's secret part.
    #[serde(skip_serializing)]
    pub secret_hash: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked (`None`: not revoked).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenRecord {
    /// True when the token is neither revoked nor expired at `now`.
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expires| now < expires)
    }
}

/// One entry of the audit log. Never holds a token, only its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Who did it (the token's subject; `synod` for the server itself).
    pub subject: String,
    /// The token used, by id.
    pub token_id: Option<String>,
    /// What was done, e.g. `approval.decided`, `expert.registered`, `token.created`.
    pub action: String,
    /// What it was done to (a run and binding, an expert, a token id).
    pub target: String,
    /// Details (JSON object).
    pub detail: Value,
}

/// Tokens and the audit log.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new token; [`StoreError::Backend`] when the id exists.
    async fn create_token(&self, record: TokenRecord) -> Result<(), StoreError>;
    /// One token by id, revoked or not.
    async fn get_token(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes a token at `at`; false when there is no such token or it was
    /// already revoked.
    async fn revoke_token(&self, token_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Appends an audit entry.
    async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError>;
    /// The newest audit entries, at most `limit`, oldest first.
    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

// === impl MemoryTokenStore ===

/// A [`TokenStore`] in memory, lost on exit.
#[derive(Debug, Clone, Default)]
pub struct MemoryTokenStore {
    inner: Arc<Mutex<MemoryTokens>>,
}

#[derive(Debug, Default)]
struct MemoryTokens {
    tokens: BTreeMap<String, TokenRecord>,
    /// Insertion order of the tokens.
    order: Vec<String>,
    audit: Vec<AuditEntry>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryTokens> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl TokenStore for MemoryTokenStore {
    async fn create_token(&self, record: TokenRecord) -> Result<(), StoreError> {
        let mut tokens = self.lock();
        if tokens.tokens.contains_key(&record.token_id) {
            return Err(duplicate_token(&record.token_id));
        }
        tokens.order.push(record.token_id.clone());
        tokens.tokens.insert(record.token_id.clone(), record);
        Ok(())
    }

    async fn get_token(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.lock().tokens.get(token_id).cloned())
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let tokens = self.lock();
        Ok(tokens
            .order
            .iter()
            .filter_map(|id| tokens.tokens.get(id).cloned())
            .collect())
    }

    async fn revoke_token(&self, token_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tokens = self.lock();
        match tokens.tokens.get_mut(token_id) {
            Some(record) if record.revoked_at.is_none() => {
                record.revoked_at = Some(crate::record::truncate_time(at));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_audit(&self, mut entry: AuditEntry) -> Result<(), StoreError> {
        entry.time = crate::record::truncate_time(entry.time);
        self.lock().audit.push(entry);
        Ok(())
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let tokens = self.lock();
        let skip = tokens.audit.len().saturating_sub(limit);
        Ok(tokens.audit[skip..].to_vec())
    }
}

/// The error for a token id that is already taken.
pub(crate) fn duplicate_token(token_id: &str) -> StoreError {
    StoreError::Backend(format!(
        "a token with id `{token_id}` already exists; create the token again (ids are random)"
    ))
}

// === SQL shared by both backends ===
// Both keep times as microseconds (BIGINT) and roles as a JSON array text,
// so the statements and the row decoding are the same.

/// `$1..$7` → a new token row.
pub(crate) const CREATE_TOKEN: &str = "INSERT INTO api_tokens (token_id, subject, roles, \
     secret_hash, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (token_id) DO NOTHING";
/// `$1` token id → its row.
pub(crate) const GET_TOKEN: &str = "SELECT token_id, subject, roles, secret_hash, created_at, \
     expires_at, revoked_at FROM api_tokens WHERE token_id = $1";
/// Every token row, oldest first.
pub(crate) const LIST_TOKENS: &str = "SELECT token_id, subject, roles, secret_hash, created_at, \
     expires_at, revoked_at FROM api_tokens ORDER BY created_at, token_id";
/// `$1` token id, `$2` time → revoked unless it already was.
pub(crate) const REVOKE_TOKEN: &str =
    "UPDATE api_tokens SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL";
/// `$1..$6` → a new audit row.
pub(crate) const RECORD_AUDIT: &str = "INSERT INTO audit_log (time, subject, token_id, action, \
     target, detail) VALUES ($1, $2, $3, $4, $5, $6)";
/// `$1` limit → the newest audit rows, newest first.
pub(crate) const AUDIT_LOG: &str = "SELECT time, subject, token_id, action, target, detail \
     FROM audit_log ORDER BY id DESC LIMIT $1";

pub(crate) use crate::sqlite::micros;

fn time_from_micros(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    crate::sql::time_from_micros(micros, "the token tables")
}

fn column(error: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("cannot read a token or audit row: {error}"))
}

/// The roles column's text.
pub(crate) fn roles_text(roles: &[String]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())
}

/// Decodes an `api_tokens` row.
pub(crate) fn decode_token<R>(row: &R) -> Result<TokenRecord, StoreError>
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database>,
{
    let roles: String = row.try_get("roles").map_err(column)?;
    let roles: Vec<String> = serde_json::from_str(&roles).map_err(|error| {
        StoreError::Backend(format!(
            "the roles of a stored token are not a JSON list: {error}"
        ))
    })?;
    let optional_time = |name: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        let micros: Option<i64> = row.try_get(name).map_err(column)?;
        micros.map(time_from_micros).transpose()
    };
    Ok(TokenRecord {
        token_id: row.try_get("token_id").map_err(column)?,
        subject: row.try_get("subject").map_err(column)?,
        roles,
        secret_hash: row.try_get("secret_hash").map_err(column)?,
        created_at: time_from_micros(row.try_get("created_at").map_err(column)?)?,
        expires_at: optional_time("expires_at")?,
        revoked_at: optional_time("revoked_at")?,
    })
}

/// Decodes an `audit_log` row.
pub(crate) fn decode_audit<R>(row: &R) -> Result<AuditEntry, StoreError>
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let detail: String = row.try_get("detail").map_err(column)?;
    Ok(AuditEntry {
        time: time_from_micros(row.try_get("time").map_err(column)?)?,
        subject: row.try_get("subject").map_err(column)?,
        token_id: row.try_get("token_id").map_err(column)?,
        action: row.try_get("action").map_err(column)?,
        target: row.try_get("target").map_err(column)?,
        detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
    })
}

/// A `TokenStore` over SQL pools (writes on the first, reads on the
/// second, both `sqlx::Pool<DB>` fields), the same for both backends.
macro_rules! sql_token_store {
    ($store:ty, $($writer:ident).+ ; $($reader:ident).+) => {
        #[async_trait::async_trait]
        impl $crate::tokens::TokenStore for $store {
            async fn create_token(
                &self,
                record: $crate::tokens::TokenRecord,
            ) -> Result<(), $crate::StoreError> {
                use $crate::tokens::micros;
                let inserted = sqlx::query($crate::tokens::CREATE_TOKEN)
                    .bind(&record.token_id)
                    .bind(&record.subject)
                    .bind($crate::tokens::roles_text(&record.roles))
                    .bind(&record.secret_hash)
                    .bind(micros(record.created_at))
                    .bind(record.expires_at.map(micros))
                    .bind(record.revoked_at.map(micros))
                    .execute(&self.$($writer).+)
                    .await
                    .map_err(|error| $crate::sql::backend("cannot create a token", error))?;
                if inserted.rows_affected() == 0 {
                    return Err($crate::tokens::duplicate_token(&record.token_id));
                }
                Ok(())
            }

            async fn get_token(
                &self,
                token_id: &str,
            ) -> Result<Option<$crate::tokens::TokenRecord>, $crate::StoreError> {
                let row = sqlx::query($crate::tokens::GET_TOKEN)
                    .bind(token_id)
                    .fetch_optional(&self.$($reader).+)
                    .await
                    .map_err(|error| $crate::sql::backend("cannot read a token", error))?;
                row.as_ref().map($crate::tokens::decode_token).transpose()
            }

            async fn list_tokens(
                &self,
            ) -> Result<Vec<$crate::tokens::TokenRecord>, $crate::StoreError> {
                let rows = sqlx::query($crate::tokens::LIST_TOKENS)
                    .fetch_all(&self.$($reader).+)
                    .await
                    .map_err(|error| $crate::sql::backend("cannot list tokens", error))?;
                rows.iter().map($crate::tokens::decode_token).collect()
            }

            async fn revoke_token(
                &self,
                token_id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::StoreError> {
                let updated = sqlx::query($crate::tokens::REVOKE_TOKEN)
                    .bind(token_id)
                    .bind($crate::tokens::micros(at))
                    .execute(&self.$($writer).+)
                    .await
                    .map_err(|error| $crate::sql::backend("cannot revoke a token", error))?;
                Ok(updated.rows_affected() > 0)
            }

            async fn record_audit(
                &self,
                entry: $crate::tokens::AuditEntry,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query($crate::tokens::RECORD_AUDIT)
                    .bind($crate::tokens::micros(entry.time))
                    .bind(&entry.subject)
                    .bind(&entry.token_id)
                    .bind(&entry.action)
                    .bind(&entry.target)
                    .bind(entry.detail.to_string())
                    .execute(&self.$($writer).+)
                    .await
                    .map_err(|error| $crate::sql::backend("cannot record an audit entry", error))?;
                Ok(())
            }

            async fn audit_log(
                &self,
                limit: usize,
            ) -> Result<Vec<$crate::tokens::AuditEntry>, $crate::StoreError> {
                let rows = sqlx::query($crate::tokens::AUDIT_LOG)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&self.$($reader).+)
                    .await
                    .map_err(|error| $crate::sql::backend("cannot read the audit log", error))?;
                let mut entries = rows
                    .iter()
                    .map($crate::tokens::decode_audit)
                    .collect::<Result<Vec<_>, _>>()?;
                entries.reverse();
                Ok(entries)
            }
        }
    };
}
pub(crate) use sql_token_store;

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> TokenRecord {
        TokenRecord {
            token_id: id.to_owned(),
            subject: "alice".to_owned(),
            roles: vec!["operator".to_owned(), "soc-lead".to_owned()],
            secret_hash: "ab".repeat(32),
            created_at: crate::record::now(),
            expires_at: None,
            revoked_at: None,
        }
    }

    /// The behaviour every backend shares.
    pub(crate) async fn token_store_conformance(store: &dyn TokenStore) {
        store.create_token(record("t1")).await.unwrap();
        store.create_token(record("t2")).await.unwrap();
        assert!(store.create_token(record("t1")).await.is_err());
        let got = store.get_token("t1").await.unwrap().unwrap();
        assert_eq!(got, record_like(&got, "t1"));
        assert_eq!(got.roles, ["operator", "soc-lead"]);
        assert!(store.get_token("nope").await.unwrap().is_none());
        let ids: Vec<String> = store
            .list_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.token_id)
            .collect();
        assert_eq!(ids, ["t1", "t2"]);
        let now = crate::record::now();
        assert!(store.revoke_token("t1", now).await.unwrap());
        assert!(!store.revoke_token("t1", now).await.unwrap());
        assert!(!store.revoke_token("nope", now).await.unwrap());
        let revoked = store.get_token("t1").await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(now));
        assert!(!revoked.is_usable_at(now));

        for n in 0..3 {
            store
                .record_audit(AuditEntry {
                    time: now,
                    subject: "alice".into(),
                    token_id: Some("t2".into()),
                    action: "approval.decided".into(),
                    target: format!("run/{n}"),
                    detail: serde_json::json!({ "approved": true }),
                })
                .await
                .unwrap();
        }
        let log = store.audit_log(2).await.unwrap();
        let targets: Vec<&str> = log.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(targets, ["run/1", "run/2"]);
        assert_eq!(log[0].detail["approved"], true);
    }

    fn record_like(got: &TokenRecord, id: &str) -> TokenRecord {
        TokenRecord {
            created_at: got.created_at,
            ..record(id)
        }
    }

    #[test]
    fn expiry_and_revocation_make_a_token_unusable() {
        let now = crate::record::now();
        let mut token = record("t");
        assert!(token.is_usable_at(now));
        token.expires_at = Some(now);
        assert!(!token.is_usable_at(now));
        token.expires_at = Some(now + chrono::Duration::seconds(1));
        assert!(token.is_usable_at(now));
        token.revoked_at = Some(now);
        assert!(!token.is_usable_at(now));
    }

    #[tokio::test]
    async fn memory_tokens_conform() {
        token_store_conformance(&MemoryTokenStore::new()).await;
    }

    #[tokio::test]
    async fn sqlite_tokens_conform_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let store = crate::SqliteStore::open(&path).await.unwrap();
        token_store_conformance(&store).await;
        store.close().await;
        let store = crate::SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.list_tokens().await.unwrap().len(), 2);
        store.close().await;
    }

    #[tokio::test]
    async fn postgres_tokens_conform() {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            eprintln!("DATABASE_URL not set; skipping the PostgreSQL token store test");
            return;
        };
        let schema = format!("synod_test_{}", uuid::Uuid::new_v4().simple());
        let mut config = crate::PostgresConfig::new(&url);
        config.schema = Some(schema.clone());
        let store = crate::PostgresStore::connect_with(config).await.unwrap();
        token_store_conformance(&store).await;
        crate::PostgresStore::drop_schema(&url, &schema)
            .await
            .unwrap();
    }
}
