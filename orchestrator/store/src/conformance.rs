//! The store conformance suite: one set of checks, generic over [`RunStore`],
//! run against every backend (see the `conformance!` invocations at the end).
//!
//! PostgreSQL runs only when `DATABASE_URL` is set (CI sets it); each test
//! works in its own schema, dropped afterwards, so tests run in parallel.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use serde_json::json;
use synod_types::{RunEvent, RunEventKind, RunId, RunStatus, StepId};

use crate::store::{OutboxIntent, OutboxState, RunRecord, RunStore, StoreError};
use crate::{INLINE_EVENT_BYTES, MemoryStore, PostgresConfig, PostgresStore, SqliteStore};

/// Upper bound for anything a test waits for, so a broken store fails
/// instead of hanging.
const PATIENCE: Duration = Duration::from_secs(15);

// === fixtures ===

/// A store under test plus whatever must be cleaned up after it.
struct Fixture<S> {
    store: S,
    _dir: Option<tempfile::TempDir>,
    postgres_schema: Option<(String, String)>,
}

impl<S> Drop for Fixture<S> {
    fn drop(&mut self) {
        let Some((url, schema)) = self.postgres_schema.take() else {
            return;
        };
        // Drop may run inside the test's runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&pool)
                .await?;
                pool.close().await;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop the test schema: {error}");
        }
    }
}

async fn memory() -> Option<Fixture<MemoryStore>> {
    Some(Fixture {
        store: MemoryStore::new(),
        _dir: None,
        postgres_schema: None,
    })
}

async fn sqlite() -> Option<Fixture<SqliteStore>> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("synod.db"))
        .await
        .expect("open SQLite");
    Some(Fixture {
        store,
        _dir: Some(dir),
        postgres_schema: None,
    })
}

/// `DATABASE_URL` and a fresh schema name, or `None` (with a notice) when unset.
fn postgres_target() -> Option<(String, String)> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping PostgreSQL conformance test: DATABASE_URL is not set");
        return None;
    };
    let schema = format!("synod_test_{}", uuid::Uuid::new_v4().simple());
    Some((url, schema))
}

async fn connect_postgres(url: &str, schema: &str) -> PostgresStore {
    let mut config = PostgresConfig::new(url);
    config.schema = Some(schema.to_owned());
    config.max_connections = 8;
    PostgresStore::connect_with(config)
        .await
        .expect("connect to PostgreSQL at DATABASE_URL")
}

async fn postgres() -> Option<Fixture<PostgresStore>> {
    let (url, schema) = postgres_target()?;
    let store = connect_postgres(&url, &schema).await;
    Some(Fixture {
        store,
        _dir: None,
        postgres_schema: Some((url, schema)),
    })
}

// === helpers ===

fn new_record() -> RunRecord {
    RunRecord::pending(
        RunId::new(),
        "triage",
        json!({"alert": {"host": "ws-17", "score": 0.93}}),
    )
}

async fn new_run<S: RunStore>(store: &S) -> RunId {
    let record = new_record();
    let run_id = record.run_id;
    store.create_run(record).await.expect("create run");
    run_id
}

fn started() -> RunEventKind {
    RunEventKind::RunStarted {
        workflow: "triage".into(),
        inputs: json!({"alert": "x"}),
        steps: Vec::new(),
    }
}

fn skipped(n: usize) -> RunEventKind {
    RunEventKind::StepSkipped {
        step: StepId::new(format!("s{n}")),
        reason: "condition false".into(),
    }
}

fn succeeded() -> RunEventKind {
    RunEventKind::RunSucceeded {
        result: json!({"verdict": "benign"}),
    }
}

async fn finished_run<S: RunStore>(store: &S) -> RunId {
    let run_id = new_run(store).await;
    store.append(run_id, started()).await.unwrap();
    store.append(run_id, succeeded()).await.unwrap();
    run_id
}

fn seqs(events: &[RunEvent]) -> Vec<u64> {
    events.iter().map(|event| event.seq).collect()
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {PATIENCE:?}"))
}

/// Reads a subscription to its end.
async fn drain(mut stream: crate::EventStream) -> Vec<RunEvent> {
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.expect("subscription event"));
    }
    events
}

// === the checks ===

async fn append_then_replay_in_order<S: RunStore>(store: &S) {
    let record = new_record();
    let run_id = record.run_id;
    store.create_run(record.clone()).await.unwrap();
    assert_eq!(store.get_run(run_id).await.unwrap(), Some(record.clone()));
    assert!(matches!(
        store.create_run(record).await,
        Err(StoreError::RunExists(id)) if id == run_id
    ));

    let mut appended = vec![store.append(run_id, started()).await.unwrap()];
    for n in 0..5 {
        appended.push(store.append(run_id, skipped(n)).await.unwrap());
    }
    assert_eq!(seqs(&appended), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(store.events(run_id, 0).await.unwrap(), appended);
    assert_eq!(store.events(run_id, 3).await.unwrap(), appended[3..]);
    assert!(store.events(run_id, 6).await.unwrap().is_empty());
    let running = store.get_run(run_id).await.unwrap().unwrap();
    assert_eq!((running.status, running.last_seq), (RunStatus::Running, 6));

    let last = store.append(run_id, succeeded()).await.unwrap();
    let done = store.get_run(run_id).await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.result, Some(json!({"verdict": "benign"})));
    assert_eq!(done.ended_at, Some(last.time));
    assert_eq!(done.last_seq, 7);
    assert!(matches!(
        store.append(run_id, skipped(9)).await,
        Err(StoreError::RunEnded(id)) if id == run_id
    ));
    assert_eq!(store.events(run_id, 0).await.unwrap().len(), 7);

    let unknown = RunId::new();
    assert_eq!(store.get_run(unknown).await.unwrap(), None);
    assert!(matches!(
        store.events(unknown, 0).await,
        Err(StoreError::RunNotFound(_))
    ));
    assert!(matches!(
        store.append(unknown, started()).await,
        Err(StoreError::RunNotFound(_))
    ));
    assert!(matches!(
        store.subscribe(unknown, 0).await,
        Err(StoreError::RunNotFound(_))
    ));

    let newer = new_run(store).await;
    let listed = store.list_runs(2).await.unwrap();
    let listed: Vec<RunId> = listed.iter().map(|run| run.run_id).collect();
    assert_eq!(listed, vec![newer, run_id]);

    // What a restarted orchestrator resumes: unfinished runs, oldest first.
    let newest = new_run(store).await;
    store.append(newest, started()).await.unwrap();
    let unfinished = store.list_unfinished(10).await.unwrap();
    let unfinished: Vec<RunId> = unfinished.iter().map(|run| run.run_id).collect();
    assert_eq!(unfinished, vec![newer, newest]);
    let first = store.list_unfinished(1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].run_id, newer);
}

async fn failed_and_cancelled_runs_record_their_error<S: RunStore>(store: &S) {
    let failed = new_run(store).await;
    store
        .append(
            failed,
            RunEventKind::RunFailed {
                error: "step `detect` failed".into(),
                failed_steps: vec![StepId::new("detect")],
            },
        )
        .await
        .unwrap();
    let record = store.get_run(failed).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(record.error.as_deref(), Some("step `detect` failed"));
    assert!(record.ended_at.is_some());

    let cancelled = new_run(store).await;
    store
        .append(
            cancelled,
            RunEventKind::RunCancelled {
                reason: "analyst".into(),
            },
        )
        .await
        .unwrap();
    let record = store.get_run(cancelled).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Cancelled);
    assert_eq!(record.error.as_deref(), Some("cancelled: analyst"));
}

async fn concurrent_appenders_get_distinct_gap_free_seqs<S: RunStore + Clone>(store: &S) {
    const WRITERS: usize = 6;
    const EACH: usize = 25;
    let run_id = new_run(store).await;
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..EACH {
                let event = store.append(run_id, skipped(writer * EACH + n)).await;
                seqs.push(event.expect("concurrent append").seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for writer in writers {
        let seqs = within("concurrent appends", writer).await.unwrap();
        // Each writer sees its own appends in increasing order.
        assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
        all.extend(seqs);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (1..=(WRITERS * EACH) as u64).collect();
    assert_eq!(all, expected, "every seq assigned exactly once");
    assert_eq!(seqs(&store.events(run_id, 0).await.unwrap()), expected);
    let record = store.get_run(run_id).await.unwrap().unwrap();
    assert_eq!(record.last_seq, (WRITERS * EACH) as u64);
}

async fn subscribe_resumes_then_follows_live_without_gap<S: RunStore + Clone>(store: &S) {
    const LIVE: usize = 150;
    let run_id = new_run(store).await;
    store.append(run_id, started()).await.unwrap();
    for n in 0..4 {
        store.append(run_id, skipped(n)).await.unwrap();
    }
    // Two followers: one resuming mid-log, one from the start.
    let resumed = store.subscribe(run_id, 2).await.unwrap();
    let from_start = store.subscribe(run_id, 0).await.unwrap();
    let resumed = tokio::spawn(drain(resumed));
    let from_start = tokio::spawn(drain(from_start));
    let writer = store.clone();
    let producer = tokio::spawn(async move {
        for n in 0..LIVE {
            writer.append(run_id, skipped(100 + n)).await.unwrap();
            if n % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        writer.append(run_id, succeeded()).await.unwrap();
    });
    within("producer", producer).await.unwrap();
    let stored = store.events(run_id, 0).await.unwrap();
    let total = 5 + LIVE as u64 + 1;
    assert_eq!(seqs(&stored), (1..=total).collect::<Vec<_>>());
    let resumed = within("resumed subscription", resumed).await.unwrap();
    assert_eq!(
        resumed,
        stored[2..],
        "resume after seq 2: stored then live, once each"
    );
    let from_start = within("subscription from 0", from_start).await.unwrap();
    assert_eq!(from_start, stored);

    // Subscribing to an ended run replays and ends, also when nothing is left.
    let tail = within("ended-run subscription", async {
        drain(store.subscribe(run_id, total - 1).await.unwrap()).await
    })
    .await;
    assert_eq!(seqs(&tail), vec![total]);
    let nothing = within("caught-up subscription", async {
        drain(store.subscribe(run_id, total).await.unwrap()).await
    })
    .await;
    assert!(nothing.is_empty());
}

async fn subscription_waits_for_events_appended_later<S: RunStore + Clone>(store: &S) {
    let run_id = new_run(store).await;
    let mut stream = store.subscribe(run_id, 0).await.unwrap();
    let writer = store.clone();
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.append(run_id, started()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.append(run_id, succeeded()).await.unwrap();
    });
    let first = within("first live event", stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.seq, 1);
    let second = within("second live event", stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.seq, 2);
    assert!(within("end of stream", stream.next()).await.is_none());
    producer.await.unwrap();
}

async fn large_step_outputs_round_trip<S: RunStore>(store: &S) {
    let run_id = new_run(store).await;
    let output = json!({
        "findings": (0..2000).map(|n| json!({"rule": format!("r{n}"), "host": "ws-17"})).collect::<Vec<_>>(),
        "note": "x".repeat(INLINE_EVENT_BYTES),
    });
    let kind = RunEventKind::StepSucceeded {
        step: StepId::new("detect"),
        attempt: 1,
        output,
        confidence: 0.75,
        duration_ms: 12,
        instance: "127.0.0.1:7001".into(),
    };
    let small = store.append(run_id, skipped(1)).await.unwrap();
    let large = store.append(run_id, kind).await.unwrap();
    assert_eq!(store.events(run_id, 0).await.unwrap(), vec![small, large]);
}

/// Long enough never to lapse during a test, however loaded the machine.
const LONG: Duration = Duration::from_secs(60);
/// A lease that lapses almost at once, to simulate a replica that stopped renewing.
const LAPSING: Duration = Duration::from_millis(1);
/// How long to wait for a [`LAPSING`] lease to lapse.
const LAPSE_WAIT: Duration = Duration::from_millis(100);

async fn leases_claim_expire_and_take_over<S: RunStore>(store: &S) {
    let first = new_run(store).await;
    let second = new_run(store).await;
    finished_run(store).await; // never claimable
    let before = Utc::now() - TimeDelta::seconds(1);

    let claimed = store.claim_runs("replica-a", LONG, 10).await.unwrap();
    let claimed_ids: Vec<RunId> = claimed.iter().map(|lease| lease.run_id).collect();
    assert_eq!(
        claimed_ids,
        vec![first, second],
        "oldest unfinished runs first"
    );
    assert!(claimed.iter().all(|lease| lease.owner == "replica-a"));
    assert!(claimed.iter().all(|lease| lease.expires_at > before));
    assert!(
        store
            .claim_runs("replica-b", LONG, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // a keeps `first` alive and stops renewing `second`, which lapses.
    let renewed = store
        .renew_lease(first, "replica-a", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("a still holds the lease");
    assert_eq!(renewed.owner, "replica-a");
    assert!(
        store
            .renew_lease(first, "replica-b", LONG)
            .await
            .unwrap()
            .is_none()
    );
    store
        .renew_lease(second, "replica-a", LAPSING)
        .await
        .unwrap()
        .expect("a still holds the lease");
    tokio::time::sleep(LAPSE_WAIT).await;

    let taken = store.claim_runs("replica-b", LONG, 10).await.unwrap();
    assert_eq!(
        taken.iter().map(|lease| lease.run_id).collect::<Vec<_>>(),
        vec![second]
    );
    assert!(
        store
            .renew_lease(second, "replica-a", LONG)
            .await
            .unwrap()
            .is_none(),
        "a lost `second` to b"
    );
    assert!(!store.release_lease(second, "replica-a").await.unwrap());
    assert!(store.release_lease(second, "replica-b").await.unwrap());
    let again = store.claim_runs("replica-a", LONG, 1).await.unwrap();
    assert_eq!(
        again.iter().map(|lease| lease.run_id).collect::<Vec<_>>(),
        vec![second]
    );

    // A run that ends is not claimable any more, even after its lease lapses.
    store.append(first, succeeded()).await.unwrap();
    assert!(store.release_lease(first, "replica-a").await.unwrap());
    assert!(
        store
            .claim_runs("replica-c", LONG, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let unknown = RunId::new();
    assert!(matches!(
        store.renew_lease(unknown, "replica-a", LONG).await,
        Err(StoreError::RunNotFound(_))
    ));
    assert!(matches!(
        store.release_lease(unknown, "replica-a").await,
        Err(StoreError::RunNotFound(_))
    ));
}

async fn leased_appends_are_fenced_by_the_lease<S: RunStore>(store: &S) {
    let run_id = new_run(store).await;
    let lease_not_held = |result: Result<RunEvent, StoreError>, who: &str| match result {
        Err(StoreError::LeaseNotHeld { run_id: id, owner }) => id == run_id && owner == who,
        _ => false,
    };
    // Nobody holds the lease yet.
    assert!(lease_not_held(
        store.append_leased(run_id, "replica-a", started()).await,
        "replica-a"
    ));
    store.claim_runs("replica-a", LONG, 10).await.unwrap();
    let first = store.append_leased(run_id, "replica-a", started()).await;
    assert_eq!(first.unwrap().seq, 1);
    assert!(lease_not_held(
        store.append_leased(run_id, "replica-b", skipped(1)).await,
        "replica-b"
    ));

    // a's lease lapses and b takes over: a is fenced off, b continues the sequence.
    store
        .renew_lease(run_id, "replica-a", LAPSING)
        .await
        .unwrap()
        .expect("a holds the lease");
    tokio::time::sleep(LAPSE_WAIT).await;
    assert!(lease_not_held(
        store.append_leased(run_id, "replica-a", skipped(2)).await,
        "replica-a"
    ));
    let taken = store.claim_runs("replica-b", LONG, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        store
            .append_leased(run_id, "replica-b", skipped(3))
            .await
            .unwrap()
            .seq,
        2
    );
    assert!(lease_not_held(
        store.append_leased(run_id, "replica-a", skipped(4)).await,
        "replica-a"
    ));
    // Unleased appends (single-process use) are not fenced.
    assert_eq!(store.append(run_id, skipped(5)).await.unwrap().seq, 3);
    let last = store.append_leased(run_id, "replica-b", succeeded()).await;
    assert_eq!(last.unwrap().seq, 4);
    assert!(matches!(
        store.append_leased(run_id, "replica-b", skipped(6)).await,
        Err(StoreError::RunEnded(_))
    ));
    assert!(matches!(
        store
            .append_leased(RunId::new(), "replica-b", started())
            .await,
        Err(StoreError::RunNotFound(_))
    ));
    assert_eq!(
        seqs(&store.events(run_id, 0).await.unwrap()),
        vec![1, 2, 3, 4]
    );
}

async fn concurrent_claimers_never_share_a_run<S: RunStore + Clone>(stores: &[S]) {
    const RUNS: usize = 24;
    let mut runs = BTreeSet::new();
    for _ in 0..RUNS {
        runs.insert(new_run(&stores[0]).await);
    }
    let mut claimers = Vec::new();
    for (n, store) in stores.iter().cycle().take(4).enumerate() {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let owner = format!("replica-{n}");
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_runs(&owner, Duration::from_secs(60), 3)
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|lease| lease.run_id));
            }
        }));
    }
    let mut claimed = Vec::new();
    for claimer in claimers {
        claimed.extend(within("claimers", claimer).await.unwrap());
    }
    let distinct: BTreeSet<RunId> = claimed.iter().copied().collect();
    assert_eq!(distinct.len(), claimed.len(), "a run was claimed twice");
    assert_eq!(distinct, runs, "every run claimed once");
}

async fn prune_deletes_only_old_finished_runs<S: RunStore>(store: &S) {
    let finished = finished_run(store).await;
    let unfinished = new_run(store).await;
    store.append(unfinished, started()).await.unwrap();
    let failed = new_run(store).await;
    store
        .append(
            failed,
            RunEventKind::RunFailed {
                error: "boom".into(),
                failed_steps: Vec::new(),
            },
        )
        .await
        .unwrap();

    assert_eq!(
        store.prune(Utc::now() - TimeDelta::hours(1)).await.unwrap(),
        0
    );
    assert_eq!(
        store
            .prune(Utc::now() + TimeDelta::seconds(1))
            .await
            .unwrap(),
        2
    );
    for gone in [finished, failed] {
        assert_eq!(store.get_run(gone).await.unwrap(), None);
        assert!(matches!(
            store.events(gone, 0).await,
            Err(StoreError::RunNotFound(_))
        ));
    }
    let kept = store.get_run(unfinished).await.unwrap().unwrap();
    assert_eq!(kept.status, RunStatus::Running);
    assert_eq!(store.events(unfinished, 0).await.unwrap().len(), 1);
    assert_eq!(
        store
            .prune(Utc::now() + TimeDelta::seconds(1))
            .await
            .unwrap(),
        0
    );
}

async fn outbox_keeps_the_first_intent_and_final_states<S: RunStore>(store: &S) {
    let run_id = new_run(store).await;
    let intent = OutboxIntent {
        run_id,
        binding: "ticket".into(),
        idempotency_key: format!("{run_id}-ticket"),
        request: json!({"method": "POST", "url": "https://tickets.example.org/api/issues",
                        "body": {"title": "ws-17 beaconing"}}),
    };
    let recorded = store.record_intent(intent.clone()).await.unwrap();
    assert_eq!(recorded.state, OutboxState::Pending);
    assert_eq!((recorded.attempts, recorded.outcome.clone()), (0, None));
    assert_eq!(recorded.request, intent.request);
    assert_eq!(recorded.idempotency_key, intent.idempotency_key);
    assert_eq!(recorded.completed_at, None);

    // A resumed run renders the binding again: the first intent stays.
    let rerendered = OutboxIntent {
        idempotency_key: "another-key".into(),
        request: json!({"changed": true}),
        ..intent.clone()
    };
    assert_eq!(store.record_intent(rerendered).await.unwrap(), recorded);

    let retryable = json!({"result": "failed", "retryable": true, "status": 503});
    let still_pending = store
        .complete_delivery(run_id, "ticket", OutboxState::Pending, 2, retryable.clone())
        .await
        .unwrap();
    assert_eq!(still_pending.state, OutboxState::Pending);
    assert_eq!(
        (still_pending.attempts, still_pending.outcome),
        (2, Some(retryable))
    );
    assert_eq!(still_pending.completed_at, None);

    let report = json!({"result": "delivered", "status": 201});
    let delivered = store
        .complete_delivery(run_id, "ticket", OutboxState::Delivered, 3, report.clone())
        .await
        .unwrap();
    assert_eq!(delivered.state, OutboxState::Delivered);
    assert_eq!(
        (delivered.attempts, delivered.outcome.clone()),
        (3, Some(report))
    );
    assert!(delivered.completed_at.is_some());
    assert_eq!(delivered.created_at, recorded.created_at);
    // A final state never changes.
    let late = store
        .complete_delivery(run_id, "ticket", OutboxState::Failed, 9, json!({}))
        .await
        .unwrap();
    assert_eq!(late, delivered);

    let block = store
        .record_intent(OutboxIntent {
            binding: "block_ip".into(),
            idempotency_key: format!("{run_id}-block"),
            ..intent.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.outbox(run_id).await.unwrap(), vec![block, delivered]);

    let unknown = RunId::new();
    assert!(matches!(
        store
            .record_intent(OutboxIntent {
                run_id: unknown,
                ..intent.clone()
            })
            .await,
        Err(StoreError::RunNotFound(_))
    ));
    assert!(matches!(
        store.outbox(unknown).await,
        Err(StoreError::RunNotFound(_))
    ));
    assert!(matches!(
        store
            .complete_delivery(unknown, "ticket", OutboxState::Delivered, 1, json!({}))
            .await,
        Err(StoreError::RunNotFound(_))
    ));
    assert!(matches!(
        store
            .complete_delivery(run_id, "page", OutboxState::Delivered, 1, json!({}))
            .await,
        Err(StoreError::OutboxEntryNotFound { binding, .. }) if binding == "page"
    ));

    // Pruning a run takes its outbox with it: the same id starts empty.
    store.append(run_id, succeeded()).await.unwrap();
    assert_eq!(
        store
            .prune(Utc::now() + TimeDelta::seconds(1))
            .await
            .unwrap(),
        1
    );
    let mut reused = new_record();
    reused.run_id = run_id;
    store.create_run(reused).await.unwrap();
    assert!(store.outbox(run_id).await.unwrap().is_empty());
}

// === instantiation per backend ===

async fn run_specs_round_trip_and_stay_internal<S: RunStore>(store: &S) {
    let spec = json!({
        "kind": "workflow",
        "source": "name: t\nsteps: {}\n",
        "inputs": { "api_token": "s3cret", "nul": "a\u{0}b" },
    });
    let record = new_record();
    let run_id = record.run_id;
    store
        .create_run_with_spec(record.clone(), spec.clone())
        .await
        .unwrap();
    assert_eq!(store.run_spec(run_id).await.unwrap(), Some(spec));
    // The spec is not part of the public record.
    let listed = store.get_run(run_id).await.unwrap().unwrap();
    assert!(!serde_json::to_string(&listed).unwrap().contains("s3cret"));
    // A run created without a spec has none; an unknown run is an error.
    let plain = new_run(store).await;
    assert_eq!(store.run_spec(plain).await.unwrap(), None);
    assert!(matches!(
        store.run_spec(RunId::new()).await,
        Err(StoreError::RunNotFound(_))
    ));
    // Creating the same run again is refused and keeps the first spec.
    assert!(matches!(
        store
            .create_run_with_spec(record, json!({"other": 1}))
            .await,
        Err(StoreError::RunExists(_))
    ));
    assert_eq!(
        store.run_spec(run_id).await.unwrap().unwrap()["kind"],
        "workflow"
    );
}

async fn one_run_is_claimed_by_one_owner_and_reclaimed_by_it<S: RunStore>(store: &S) {
    let lease = Duration::from_secs(30);
    let run_id = new_run(store).await;
    let first = store.claim_run(run_id, "a", lease).await.unwrap();
    assert_eq!(first.map(|l| l.owner), Some("a".to_owned()));
    assert_eq!(store.claim_run(run_id, "b", lease).await.unwrap(), None);
    // The same owner (a restarted replica) claims it again.
    assert!(store.claim_run(run_id, "a", lease).await.unwrap().is_some());
    // An expired lease goes to whoever claims it.
    store
        .claim_run(run_id, "a", Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store.claim_run(run_id, "b", lease).await.unwrap().is_some());
    assert!(store.append_leased(run_id, "a", started()).await.is_err());
    // Finished runs are not claimed; unknown runs are an error.
    let done = finished_run(store).await;
    assert_eq!(store.claim_run(done, "a", lease).await.unwrap(), None);
    assert!(matches!(
        store.claim_run(RunId::new(), "a", lease).await,
        Err(StoreError::RunNotFound(_))
    ));
}

macro_rules! conformance {
    ($backend:ident, $fixture:path) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn append_then_replay_in_order() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::append_then_replay_in_order(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn failed_and_cancelled_runs_record_their_error() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::failed_and_cancelled_runs_record_their_error(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_appenders_get_distinct_gap_free_seqs() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::concurrent_appenders_get_distinct_gap_free_seqs(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn subscribe_resumes_then_follows_live_without_gap() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::subscribe_resumes_then_follows_live_without_gap(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn subscription_waits_for_events_appended_later() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::subscription_waits_for_events_appended_later(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn large_step_outputs_round_trip() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::large_step_outputs_round_trip(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn leases_claim_expire_and_take_over() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::leases_claim_expire_and_take_over(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn leased_appends_are_fenced_by_the_lease() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::leased_appends_are_fenced_by_the_lease(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_claimers_never_share_a_run() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                let store = fixture.store.clone();
                super::concurrent_claimers_never_share_a_run(&[store]).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn outbox_keeps_the_first_intent_and_final_states() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::outbox_keeps_the_first_intent_and_final_states(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn one_run_is_claimed_by_one_owner_and_reclaimed_by_it() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::one_run_is_claimed_by_one_owner_and_reclaimed_by_it(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn run_specs_round_trip_and_stay_internal() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::run_specs_round_trip_and_stay_internal(&fixture.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn prune_deletes_only_old_finished_runs() {
                let Some(fixture) = $fixture().await else {
                    return;
                };
                super::prune_deletes_only_old_finished_runs(&fixture.store).await;
            }
        }
    };
}

conformance!(memory_store, memory);
conformance!(sqlite_store, sqlite);
conformance!(postgres_store, postgres);

// === backend-specific checks ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reopened_file_has_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synod.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let finished = finished_run(&store).await;
    let running = new_run(&store).await;
    store.append(running, started()).await.unwrap();
    large_step_outputs_round_trip(&store).await;
    let intent = OutboxIntent {
        run_id: running,
        binding: "ticket".into(),
        idempotency_key: "k-1".into(),
        request: json!({"body": "x"}),
    };
    let recorded = store.record_intent(intent).await.unwrap();
    let leased = store
        .claim_runs("replica-a", Duration::from_secs(60), 10)
        .await
        .unwrap();
    let runs_before = store.list_runs(10).await.unwrap();
    let mut events_before = Vec::new();
    for run in &runs_before {
        events_before.push(store.events(run.run_id, 0).await.unwrap());
    }
    store.close().await;
    drop(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(reopened.list_runs(10).await.unwrap(), runs_before);
    for (run, events) in runs_before.iter().zip(&events_before) {
        assert_eq!(&reopened.events(run.run_id, 0).await.unwrap(), events);
    }
    assert_eq!(
        reopened.get_run(finished).await.unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    // Leases survive too: nobody else can claim the leased runs.
    assert_eq!(leased.len(), 2);
    assert!(
        reopened
            .claim_runs("replica-b", Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(reopened.outbox(running).await.unwrap(), vec![recorded]);
    // Appends continue the sequence.
    assert_eq!(reopened.append(running, skipped(1)).await.unwrap().seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_see_each_others_events_live_and_never_share_a_run() {
    let Some((url, schema)) = postgres_target() else {
        return;
    };
    let fixture = Fixture {
        store: connect_postgres(&url, &schema).await,
        _dir: None,
        postgres_schema: Some((url.clone(), schema.clone())),
    };
    let replica_a = fixture.store.clone();
    let replica_b = connect_postgres(&url, &schema).await;

    let run_id = new_run(&replica_a).await;
    replica_a.append(run_id, started()).await.unwrap();
    // b follows a run that only a writes to: live events arrive via NOTIFY.
    let follower = tokio::spawn(drain(replica_b.subscribe(run_id, 0).await.unwrap()));
    for n in 0..20 {
        replica_a.append(run_id, skipped(n)).await.unwrap();
    }
    replica_a.append(run_id, succeeded()).await.unwrap();
    let seen = within("cross-replica subscription", follower)
        .await
        .unwrap();
    assert_eq!(seen, replica_a.events(run_id, 0).await.unwrap());

    concurrent_claimers_never_share_a_run(&[replica_a, replica_b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_subscribers_survive_a_lost_notification_connection() {
    let Some((url, schema)) = postgres_target() else {
        return;
    };
    // Tag this test's connections, to kill only its own listeners.
    let separator = if url.contains('?') { '&' } else { '?' };
    let tagged = format!("{url}{separator}application_name={schema}");
    let fixture = Fixture {
        store: connect_postgres(&tagged, &schema).await,
        _dir: None,
        postgres_schema: Some((url.clone(), schema.clone())),
    };
    let writer = fixture.store.clone();
    let reader = connect_postgres(&tagged, &schema).await;

    let run_id = new_run(&writer).await;
    let follower = tokio::spawn(drain(reader.subscribe(run_id, 0).await.unwrap()));
    writer.append(run_id, started()).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&schema)
    .fetch_all(writer.pool())
    .await
    .unwrap();
    assert_eq!(killed, vec![true, true], "both replicas' listeners");
    for n in 0..10 {
        writer.append(run_id, skipped(n)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writer.append(run_id, succeeded()).await.unwrap();
    let seen = within("subscription across a lost LISTEN connection", follower)
        .await
        .unwrap();
    assert_eq!(seen, writer.events(run_id, 0).await.unwrap());
}
