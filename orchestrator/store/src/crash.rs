//! Crash test: a child process appends to a SQLite store and is killed with
//! SIGKILL mid-stream; the reopened file must hold every acknowledged event,
//! gap-free, with the run record in step.
//!
//! The child is this test binary itself, running the ignored
//! `crash_child_appends_until_killed` test with `SYNOD_CRASH_DB` set.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use synod_types::{RunEventKind, RunId, StepId};

use crate::SqliteStore;
use crate::store::{RunRecord, RunStore};

const CHILD_DB: &str = "SYNOD_CRASH_DB";
const WRITERS: usize = 4;

fn record(run_id: RunId) -> RunRecord {
    RunRecord::pending(run_id, "crash", json!({}))
}

/// Child side: appends forever on `WRITERS` runs, printing `<run> <seq>`
/// after each acknowledged append. Does nothing unless run by the parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by `sqlite_keeps_every_acknowledged_event_across_kill_9`"]
async fn crash_child_appends_until_killed() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let store = SqliteStore::open(&path)
        .await
        .expect("child opens the store");
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let run_id = RunId::new();
            store.create_run(record(run_id)).await.expect("create run");
            for n in 0.. {
                let kind = RunEventKind::StepSkipped {
                    step: StepId::new(format!("s{n}")),
                    reason: "x".repeat(n % 300),
                };
                let event = store.append(run_id, kind).await.expect("append");
                println!("{run_id} {}", event.seq);
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
}

#[test]
fn sqlite_keeps_every_acknowledged_event_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut acknowledged: std::collections::HashMap<RunId, u64> = Default::default();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_child_appends_until_killed",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child test process");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = 0;
        for line in stdout.lines() {
            let line = line.unwrap();
            let Some((run_id, seq)) = line.split_once(' ') else {
                continue; // the test harness's own output
            };
            let (Ok(run_id), Ok(seq)) = (run_id.parse::<RunId>(), seq.parse::<u64>()) else {
                continue;
            };
            let highest = acknowledged.entry(run_id).or_default();
            *highest = (*highest).max(seq);
            seen += 1;
            // Kill at a different point each round, mid-stream.
            if seen == 300 + round * 170 {
                child.kill().expect("SIGKILL the child");
                break;
            }
        }
        child.wait().unwrap();
    }
    assert_eq!(acknowledged.len(), 3 * WRITERS);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path)
            .await
            .expect("reopen after kill -9");
        for (run_id, highest) in &acknowledged {
            let events = store.events(*run_id, 0).await.unwrap();
            let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
            let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, expected, "run {run_id}: gap-free, duplicate-free");
            assert!(
                seqs.len() as u64 >= *highest,
                "run {run_id}: {highest} acknowledged, {} stored",
                seqs.len()
            );
            let record = store.get_run(*run_id).await.unwrap().unwrap();
            assert_eq!(record.last_seq, seqs.len() as u64, "record in step");
        }
        tokio::time::timeout(Duration::from_secs(5), store.close())
            .await
            .expect("close");
    });
}
