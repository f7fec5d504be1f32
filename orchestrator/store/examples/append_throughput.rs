//! Measures event append throughput of each backend: one writer on one run
//! (latency-bound: one commit per event), and 16 writers on 16 runs.
//!
//! `cargo run -p synod-store --release --example append_throughput [EVENTS]`
//! PostgreSQL is measured when `DATABASE_URL` is set (in a throwaway schema).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use synod_store::{
    MemoryStore, PostgresConfig, PostgresStore, RunRecord, RunStore, SqliteConfig, SqliteStore,
    Synchronous,
};
use synod_types::{RunEventKind, RunId, StepId};

fn event(n: usize) -> RunEventKind {
    RunEventKind::StepSucceeded {
        step: StepId::new(format!("step{n}")),
        attempt: 1,
        output: json!({"verdict": "malicious", "score": 0.91, "hits": [n, n + 1]}),
        confidence: 0.9,
        duration_ms: 3,
        instance: "127.0.0.1:7101".into(),
    }
}

async fn new_run(store: &dyn RunStore) -> RunId {
    let run_id = RunId::new();
    store
        .create_run(RunRecord::pending(run_id, "bench", json!({})))
        .await
        .expect("create run");
    run_id
}

/// Events per second with `writers` concurrent writers, each on its own run.
async fn measure(store: Arc<dyn RunStore>, writers: usize, events: usize) -> f64 {
    let mut runs = Vec::new();
    for _ in 0..writers {
        runs.push(new_run(store.as_ref()).await);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for run_id in runs {
        let store = Arc::clone(&store);
        let each = events / writers;
        tasks.push(tokio::spawn(async move {
            for n in 0..each {
                store.append(run_id, event(n)).await.expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    events as f64
        / started
            .elapsed()
            .max(Duration::from_micros(1))
            .as_secs_f64()
}

async fn report(name: &str, store: Arc<dyn RunStore>, events: usize) {
    let one = measure(Arc::clone(&store), 1, events).await;
    let many = measure(store, 16, events).await;
    println!("{name:<24} 1 writer: {one:>9.0} events/s   16 writers: {many:>9.0} events/s");
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    println!("{events} appends per measurement");
    report("memory", Arc::new(MemoryStore::new()), events).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, synchronous) in [
        ("sqlite synchronous=FULL", Synchronous::Full),
        ("sqlite synchronous=NORMAL", Synchronous::Normal),
    ] {
        let mut config = SqliteConfig::new(dir.path().join(format!("{synchronous:?}.db")));
        config.synchronous = synchronous;
        let store = SqliteStore::open_with(config).await.expect("open SQLite");
        report(name, Arc::new(store), events).await;
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let schema = format!("synod_bench_{}", uuid::Uuid::new_v4().simple());
        let mut config = PostgresConfig::new(url);
        config.schema = Some(schema.clone());
        config.max_connections = 16;
        let store = PostgresStore::connect_with(config)
            .await
            .expect("connect PostgreSQL");
        report("postgres", Arc::new(store.clone()), events).await;
        let drop_schema = format!("DROP SCHEMA {schema} CASCADE");
        sqlx::query(sqlx::AssertSqlSafe(drop_schema))
            .execute(store.pool())
            .await
            .expect("drop the benchmark schema");
    } else {
        println!("postgres: skipped (DATABASE_URL is not set)");
    }
}
