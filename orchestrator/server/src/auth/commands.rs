//! `synod token create|list|revoke`: token management on the store itself
//! (`--database-url`, the same database `synod serve` uses), not over the
//! API. Whoever can open the database can already read and change
//! everything in it, so this needs no token; it also works before any
//! server runs (e.g. to provision expert tokens). A running server sees a
//! new or revoked token on the next call: tokens are looked up per call.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use synod_store::TokenRecord;

use super::guard::{Principal, issue_token, record_audit};

/// The actor named in audit entries for CLI token management.
fn cli_actor() -> Principal {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    Principal {
        subject: format!("cli:{user}"),
        token_id: None,
        roles: Vec::new(),
    }
}

/// `synod token create`: prints the token once (text or JSON).
pub async fn create(
    database_url: &str,
    subject: &str,
    roles: &[String],
    expires: Option<Duration>,
    as_json: bool,
) -> anyhow::Result<()> {
    let tokens = open(database_url).await?;
    let issued = issue_token(
        &*tokens,
        &ring::rand::SystemRandom::new(),
        subject,
        roles,
        expires,
    )
    .await?;
    record_audit(
        &*tokens,
        &cli_actor(),
        "token.created",
        &issued.record.token_id,
        json!({ "subject": issued.record.subject, "roles": issued.record.roles }),
    )
    .await;
    if as_json {
        let mut value = token_json(&issued.record, chrono::Utc::now());
        value["token"] = json!(issued.text);
        println!("{value}");
    } else {
        eprintln!(
            "created token {} for `{}` with roles [{}]{}; it is shown only now:",
            issued.record.token_id,
            issued.record.subject,
            issued.record.roles.join(", "),
            issued
                .record
                .expires_at
                .map(|at| format!(", expires {}", at.to_rfc3339()))
                .unwrap_or_default(),
        );
        println!("{}", issued.text);
    }
    Ok(())
}

/// `synod token list`: ids, subjects, roles, dates; never secrets.
pub async fn list(database_url: &str, as_json: bool) -> anyhow::Result<()> {
    let tokens = open(database_url).await?;
    let records = tokens.list_tokens().await?;
    let now = chrono::Utc::now();
    if as_json {
        let list: Vec<_> = records
            .iter()
            .map(|record| token_json(record, now))
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    println!(
        "{:<16}  {:<20}  {:<28}  {:<10}  CREATED",
        "ID", "SUBJECT", "ROLES", "STATE"
    );
    for record in &records {
        println!(
            "{:<16}  {:<20}  {:<28}  {:<10}  {}",
            record.token_id,
            record.subject,
            record.roles.join(","),
            state(record, now),
            record.created_at.format("%Y-%m-%d %H:%M"),
        );
    }
    Ok(())
}

/// `synod token revoke <id>`.
pub async fn revoke(database_url: &str, token_id: &str, as_json: bool) -> anyhow::Result<()> {
    let tokens = open(database_url).await?;
    let revoked = tokens.revoke_token(token_id, chrono::Utc::now()).await?;
    if revoked {
        record_audit(&*tokens, &cli_actor(), "token.revoked", token_id, json!({})).await;
    }
    if as_json {
        println!("{}", json!({ "token_id": token_id, "revoked": revoked }));
    } else if revoked {
        println!("revoked token {token_id}; calls with it are refused from now on");
    }
    if !revoked {
        anyhow::bail!(
            "no token `{token_id}` to revoke (unknown, or already revoked); see `synod token list`"
        );
    }
    Ok(())
}

fn state(record: &TokenRecord, now: chrono::DateTime<chrono::Utc>) -> &'static str {
    if record.revoked_at.is_some() {
        "revoked"
    } else if !record.is_usable_at(now) {
        "expired"
    } else {
        "active"
    }
}

fn token_json(record: &TokenRecord, now: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    json!({
        "token_id": record.token_id,
        "subject": record.subject,
        "roles": record.roles,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "state": state(record, now),
    })
}

async fn open(database_url: &str) -> anyhow::Result<std::sync::Arc<dyn synod_store::TokenStore>> {
    if synod_store::StoreUrl::parse(database_url)? == synod_store::StoreUrl::Memory {
        anyhow::bail!(
            "`memory:` keeps tokens only inside a running server; use the server's \
             --database-url (e.g. sqlite://synod.db)"
        );
    }
    let store = synod_store::open(database_url)
        .await
        .with_context(|| format!("cannot open the store `{database_url}` (--database-url)"))?;
    store.token_store().context("this store keeps no tokens")
}
