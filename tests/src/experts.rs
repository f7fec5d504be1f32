//! Test experts written with `synod-expert-sdk`, each served on its own gRPC
//! server on `127.0.0.1:0` ([`serve`]). Experts that tests need to observe
//! or steer come with a shared probe (call counters, a gate to release).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use synod_expert_sdk::testing::TestExpert;
use synod_expert_sdk::{
    ExpertHandle, ExpertServer, ExpertServerBuilder, SkillDefinition, SkillError, SkillOutput,
    skill_fn,
};
use tokio::sync::watch;

use crate::eventually;

/// Builds and serves `builder` on a free loopback port.
pub async fn serve(builder: ExpertServerBuilder) -> anyhow::Result<ExpertHandle> {
    let name = builder.name().to_owned();
    let (_endpoint, handle) = TestExpert::spawn(builder)
        .await
        .with_context(|| format!("serving test expert `{name}`"))?;
    Ok(handle)
}

/// An object schema with these required properties and no others.
pub fn object_schema(properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default();
    json!({
        "type": "object",
        "required": required,
        "additionalProperties": false,
        "properties": properties,
    })
}

fn string_at<'a>(input: &'a Value, field: &str) -> Result<&'a str, SkillError> {
    input[field]
        .as_str()
        .ok_or_else(|| SkillError::invalid_input(format!("/{field}"), "expected a string"))
}

/// Expert `text` with two skills:
/// - `tag` `{text, tag}` → `{text: "<text>/<tag>"}` after 20 ms;
/// - `join` `{parts: [string]}` → `{joined: parts joined by " + ", count}`.
pub fn text_expert() -> ExpertServerBuilder {
    let tag = SkillDefinition::new("tag")
        .input_schema(object_schema(
            json!({ "text": { "type": "string" }, "tag": { "type": "string" } }),
        ))
        .output_schema(object_schema(json!({ "text": { "type": "string" } })));
    let join = SkillDefinition::new("join")
        .input_schema(object_schema(json!({
            "parts": { "type": "array", "items": { "type": "string" } }
        })))
        .output_schema(object_schema(json!({
            "joined": { "type": "string" },
            "count": { "type": "integer" }
        })));
    ExpertServer::builder("text", "0.1.0")
        .skill(skill_fn(tag, |_ctx, input| async move {
            let text = string_at(&input, "text")?;
            let tag = string_at(&input, "tag")?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(SkillOutput::new(json!({ "text": format!("{text}/{tag}") })))
        }))
        .skill(skill_fn(join, |_ctx, input| async move {
            let parts: Vec<&str> = input["parts"]
                .as_array()
                .map(|parts| parts.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            Ok(SkillOutput::new(
                json!({ "joined": parts.join(" + "), "count": parts.len() }),
            ))
        }))
}

/// Calls an expert received, shared with the test.
#[derive(Debug, Default)]
pub struct Calls {
    count: AtomicU32,
    attempts: Mutex<Vec<u32>>,
}

impl Calls {
    /// Calls received so far.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::SeqCst)
    }

    /// The `attempt` number of each call, in arrival order.
    pub fn attempts(&self) -> Vec<u32> {
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, attempt: u32) -> u32 {
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(attempt);
        self.count.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// Expert `flaky`:
/// - `flaky` fails its first `failures` calls with `UNAVAILABLE` (retryable),
///   then answers `{calls, attempt}`;
/// - `broken` always fails with `INTERNAL` (not retryable).
pub fn flaky_expert(failures: u32) -> (ExpertServerBuilder, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let flaky_calls = Arc::clone(&calls);
    let broken_calls = Arc::clone(&calls);
    let builder = ExpertServer::builder("flaky", "0.1.0")
        .skill(skill_fn(
            SkillDefinition::new("flaky").output_schema(object_schema(json!({
                "calls": { "type": "integer" }, "attempt": { "type": "integer" }
            }))),
            move |ctx, _input| {
                let calls = Arc::clone(&flaky_calls);
                async move {
                    let call = calls.record(ctx.attempt());
                    if call <= failures {
                        return Err(SkillError::unavailable(format!(
                            "simulated outage, call {call} of {failures} failing"
                        )));
                    }
                    Ok(SkillOutput::new(
                        json!({ "calls": call, "attempt": ctx.attempt() }),
                    ))
                }
            },
        ))
        .skill(skill_fn(
            SkillDefinition::new("broken"),
            move |ctx, _input| {
                let calls = Arc::clone(&broken_calls);
                async move {
                    calls.record(ctx.attempt());
                    Err(SkillError::internal("simulated bug in the expert"))
                }
            },
        ));
    (builder, calls)
}

/// What the hanging expert saw.
#[derive(Debug, Default)]
pub struct HangProbe {
    /// Calls that started.
    pub started: AtomicU32,
    /// Calls whose handler was dropped (deadline or cancellation).
    pub dropped: AtomicU32,
    remaining: Mutex<Vec<Option<Duration>>>,
}

impl HangProbe {
    /// The time left before the caller's deadline, as seen at the start of
    /// each call (`None`: the call carried no deadline).
    pub fn remaining(&self) -> Vec<Option<Duration>> {
        self.remaining
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

struct DropCounter(Arc<HangProbe>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Expert `sleepy` whose skill `hang` never answers; the probe counts calls
/// started and handlers dropped, and records each call's deadline.
pub fn hanging_expert() -> (ExpertServerBuilder, Arc<HangProbe>) {
    let probe = Arc::new(HangProbe::default());
    let shared = Arc::clone(&probe);
    let builder = ExpertServer::builder("sleepy", "0.1.0").skill(skill_fn(
        SkillDefinition::new("hang"),
        move |ctx, _input| {
            let probe = Arc::clone(&shared);
            async move {
                probe
                    .remaining
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(ctx.remaining());
                probe.started.fetch_add(1, Ordering::SeqCst);
                let _guard = DropCounter(probe);
                std::future::pending::<()>().await;
                Ok(SkillOutput::new(json!({})))
            }
        },
    ));
    (builder, probe)
}

/// A gate the `gate/wait` skill blocks on until the test opens it.
#[derive(Debug)]
pub struct Gate {
    entered: AtomicU32,
    open: watch::Sender<bool>,
}

impl Gate {
    /// Lets every waiting and future call through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Calls that reached the gate.
    pub fn entered(&self) -> u32 {
        self.entered.load(Ordering::SeqCst)
    }

    /// Waits until `calls` calls have reached the gate.
    pub async fn wait_entered(&self, calls: u32) -> anyhow::Result<()> {
        eventually("calls to reach the gate", || async {
            Ok((self.entered() >= calls).then_some(()))
        })
        .await
    }
}

/// Expert `gate` whose skill `wait` answers `{passed: true}` once the gate
/// is opened.
pub fn gate_expert() -> (ExpertServerBuilder, Arc<Gate>) {
    let (open, _) = watch::channel(false);
    let gate = Arc::new(Gate {
        entered: AtomicU32::new(0),
        open,
    });
    let shared = Arc::clone(&gate);
    let builder = ExpertServer::builder("gate", "0.1.0").skill(skill_fn(
        SkillDefinition::new("wait")
            .output_schema(object_schema(json!({ "passed": { "type": "boolean" } }))),
        move |_ctx, _input| {
            let gate = Arc::clone(&shared);
            async move {
                let mut open = gate.open.subscribe();
                gate.entered.fetch_add(1, Ordering::SeqCst);
                open.wait_for(|open| *open)
                    .await
                    .map_err(|_| SkillError::unavailable("the test dropped the gate"))?;
                Ok(SkillOutput::new(json!({ "passed": true })))
            }
        },
    ));
    (builder, gate)
}

/// Expert `worker` whose skill `work` `{n}` answers `{n, served_by: label}`
/// after 10 ms; start several with different labels as instances of one
/// expert.
pub fn worker_expert(label: &str) -> ExpertServerBuilder {
    let label = label.to_owned();
    ExpertServer::builder("worker", "0.1.0").skill(skill_fn(
        SkillDefinition::new("work")
            .input_schema(object_schema(json!({ "n": { "type": "integer" } })))
            .output_schema(object_schema(json!({
                "n": { "type": "integer" }, "served_by": { "type": "string" }
            }))),
        move |_ctx, input| {
            let label = label.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(SkillOutput::new(
                    json!({ "n": input["n"].clone(), "served_by": label }),
                ))
            }
        },
    ))
}

/// Expert `sloppy` whose skill `count` declares `{count: integer}` but
/// answers `{count: "many"}`; the SDK catches this before it leaves.
pub fn sloppy_expert() -> ExpertServerBuilder {
    ExpertServer::builder("sloppy", "0.1.0").skill(skill_fn(
        SkillDefinition::new("count")
            .output_schema(object_schema(json!({ "count": { "type": "integer" } }))),
        |_ctx, _input| async move { Ok(SkillOutput::new(json!({ "count": "many" }))) },
    ))
}

/// How many calls an expert is handling at once; calls wait until the test
/// releases them.
#[derive(Debug)]
pub struct ConcurrencyProbe {
    current: AtomicU32,
    max: AtomicU32,
    open: watch::Sender<bool>,
}

impl ConcurrencyProbe {
    /// Calls in the skill now.
    pub fn current(&self) -> u32 {
        self.current.load(Ordering::SeqCst)
    }

    /// The most calls that were in the skill at the same time.
    pub fn max(&self) -> u32 {
        self.max.load(Ordering::SeqCst)
    }

    /// Lets every waiting and future call finish.
    pub fn release(&self) {
        self.open.send_replace(true);
    }
}

struct InFlight(Arc<ConcurrencyProbe>);

impl InFlight {
    fn enter(probe: Arc<ConcurrencyProbe>) -> Self {
        let now = probe.current.fetch_add(1, Ordering::SeqCst) + 1;
        probe.max.fetch_max(now, Ordering::SeqCst);
        InFlight(probe)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Expert `busy` whose skill `work` holds every call until
/// [`ConcurrencyProbe::release`]; the probe counts calls in flight.
pub fn busy_expert() -> (ExpertServerBuilder, Arc<ConcurrencyProbe>) {
    let (open, _) = watch::channel(false);
    let probe = Arc::new(ConcurrencyProbe {
        current: AtomicU32::new(0),
        max: AtomicU32::new(0),
        open,
    });
    let shared = Arc::clone(&probe);
    let builder = ExpertServer::builder("busy", "0.1.0").skill(skill_fn(
        SkillDefinition::new("work"),
        move |_ctx, _input| {
            let probe = Arc::clone(&shared);
            async move {
                let mut open = probe.open.subscribe();
                let _in_flight = InFlight::enter(probe);
                open.wait_for(|open| *open)
                    .await
                    .map_err(|_| SkillError::unavailable("the test dropped the probe"))?;
                Ok(SkillOutput::new(json!({})))
            }
        },
    ));
    (builder, probe)
}
