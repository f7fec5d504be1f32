//! Test harness shared by the integration tests (and reusable by later
//! suites): everything talks over real gRPC and HTTP on `127.0.0.1` with
//! ephemeral ports.
//!
//! Layout:
//! - [`orchestrator`]: [`TestOrchestrator`], an in-process orchestrator with
//!   gRPC clients, run helpers (start, watch, wait) and short timings.
//! - [`experts`]: test experts built with `synod-expert-sdk` and served on
//!   their own gRPC servers (echo/join, flaky, hanging, gated, labelled workers).
//! - [`rogue`]: a hand-written expert (no SDK) that breaks its own output
//!   schema, to exercise the orchestrator's output validation.
//! - [`events`]: decoding run events from the wire and checking sequences.
//! - [`openai`]: a scripted OpenAI-compatible chat-completions server
//!   (canned completions in order) for the `llm` expert.
//! - [`receiver`]: a local HTTP receiver that records what bindings send.
//! - [`sse`]: a minimal Server-Sent Events reader over reqwest.
//! - [`browser`]: headless Chromium over WebDriver, for the dashboard test.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

pub mod browser;
pub mod events;
pub mod experts;
pub mod openai;
pub mod orchestrator;
pub mod receiver;
pub mod rogue;
pub mod sse;

pub use orchestrator::{Finished, TestOrchestrator, fast_config};

/// Upper bound for anything a test waits for: far above what a passing test
/// needs (well under a second each), so that a hang fails the test instead
/// of blocking the suite, while a heavily loaded machine does not.
pub const WAIT: Duration = Duration::from_secs(30);

/// Awaits `future` for at most [`WAIT`], failing with `what` in the message.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(WAIT, future)
        .await
        .with_context(|| format!("timed out after {WAIT:?} waiting for {what}"))
}

/// Polls `check` every 20 ms until it returns `Some`, for at most [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    within(what, async {
        loop {
            if let Some(value) = check().await? {
                return Ok(value);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await?
}

/// A loopback address whose port was free a moment ago: nobody listens on
/// it until a test binds it.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A path in the repository, e.g. `workflows/ioc-triage.yaml`.
pub fn repo_path(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// The text of a repository file.
pub fn repo_file(path: &str) -> anyhow::Result<String> {
    let file = repo_path(path);
    std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))
}

/// A fresh directory under the system temp dir, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `synod-test-<pid>-<n>` in the system temp dir.
    pub fn new() -> anyhow::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("synod-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
