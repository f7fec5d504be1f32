//! A real `synod serve` as a child process: free loopback ports, a fresh
//! store, its log in a file, readiness, its peak memory from `/proc`, and
//! gRPC channels to it. Or the addresses of an orchestrator already running.

use std::net::{Ipv4Addr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use synod_proto::orchestrator::ListExpertsRequest;
use synod_proto::orchestrator::registry_client::RegistryClient;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::bench::sys::{pid_cpu_s, pid_status_mb};
use crate::bench::transport::connect;

/// The server's log level: warnings (circuit breakers opening, runs
/// aborted) without a line per run.
pub const LOG_LEVEL: &str = "warn";

/// How long `synod serve` may take to answer on its gRPC port.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Which orchestrator an evaluation runs against (flattened into `load`
/// and `faults`).
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// The server's run store (ignored with --addr).
    #[arg(long, value_enum, default_value = "sqlite")]
    pub store: StoreChoice,
    /// gRPC URL of a running orchestrator instead of starting `synod serve`.
    #[arg(long, requires = "http")]
    pub addr: Option<String>,
    /// HTTP URL of that orchestrator (for /metrics).
    #[arg(long)]
    pub http: Option<String>,
    /// The `synod` binary (default: next to this one, else target/release/synod).
    #[arg(long)]
    pub synod: Option<PathBuf>,
    /// Print the JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl TargetArgs {
    /// The orchestrator these arguments name: the one at `--addr` (with
    /// `experts` registered on it), else a fresh `synod serve` with its files
    /// in `dir` and `experts` as its static experts.
    pub async fn server(&self, dir: &Path, experts: Vec<String>) -> anyhow::Result<Server> {
        if let (Some(addr), Some(http)) = (&self.addr, &self.http) {
            let channel = connect(addr).await?;
            for expert in &experts {
                crate::load::register_static(&channel, expert).await?;
            }
            return Ok(Server::external(addr, http));
        }
        Server::spawn(&ServerOptions {
            binary: find_synod(self.synod.as_deref())?,
            store: self.store,
            dir: dir.to_owned(),
            experts,
            max_concurrency: 64,
        })
        .await
    }
}

/// Where the orchestrator keeps runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreChoice {
    /// One SQLite file in a fresh folder (WAL, fsync per group commit).
    Sqlite,
    /// PostgreSQL at `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/test).
    Postgres,
    /// In memory, lost on exit.
    Memory,
}

impl StoreChoice {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            StoreChoice::Sqlite => "sqlite",
            StoreChoice::Postgres => "postgres",
            StoreChoice::Memory => "memory",
        }
    }

    /// The `--database-url` for a server whose files live in `dir`.
    pub fn database_url(self, dir: &Path) -> String {
        match self {
            StoreChoice::Sqlite => format!("sqlite://{}", dir.join("synod.db").display()),
            StoreChoice::Postgres => std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
            StoreChoice::Memory => "memory:".to_owned(),
        }
    }
}

/// What to start `synod serve` with.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The `synod` binary.
    pub binary: PathBuf,
    /// The run store.
    pub store: StoreChoice,
    /// A fresh folder for the store file and the log.
    pub dir: PathBuf,
    /// Static expert endpoints (`--expert`).
    pub experts: Vec<String>,
    /// `--max-concurrency` (step attempts in flight per run).
    pub max_concurrency: usize,
}

/// The `synod` binary: `explicit`, else next to this executable (the same
/// cargo profile), else `target/release/synod` of the workspace.
pub fn find_synod(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        anyhow::ensure!(path.is_file(), "no synod binary at {}", path.display());
        return Ok(path.to_owned());
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("synod"));
        // Test binaries live in target/<profile>/deps.
        if dir.ends_with("deps")
            && let Some(profile) = dir.parent()
        {
            candidates.push(profile.join("synod"));
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    candidates.push(target.join("release/synod"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "no synod binary found (looked at {}); build it with `cargo build --release -p synod-server --bin synod` or pass --synod",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// The orchestrator under test: gRPC and HTTP addresses, and its process
/// when this harness started it.
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:<port>` of its gRPC API.
    pub grpc_url: String,
    /// `http://127.0.0.1:<port>` of its HTTP API (`/metrics`).
    pub http_url: String,
    child: Option<Child>,
    log: Option<PathBuf>,
}

impl Server {
    /// An orchestrator someone else runs.
    pub fn external(grpc_url: &str, http_url: &str) -> Server {
        Server {
            grpc_url: grpc_url.trim_end_matches('/').to_owned(),
            http_url: http_url.trim_end_matches('/').to_owned(),
            child: None,
            log: None,
        }
    }

    /// Starts `synod serve` on free loopback ports and waits until its gRPC
    /// API answers.
    pub async fn spawn(options: &ServerOptions) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&options.dir)
            .with_context(|| format!("cannot create {}", options.dir.display()))?;
        let (grpc, http) = (free_port()?, free_port()?);
        let log = options.dir.join("synod-serve.log");
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(&options.binary);
        command
            .arg("serve")
            .arg("--grpc-addr")
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http}"))
            .arg("--database-url")
            .arg(options.store.database_url(&options.dir))
            .arg("--max-concurrency")
            .arg(options.max_concurrency.to_string())
            .env("RUST_LOG", LOG_LEVEL)
            .env("NO_COLOR", "1")
            // Loopback only; builds with API tokens would otherwise refuse
            // (and rate-limit) this harness's calls.
            .env("SYNOD_AUTH", "disabled")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true);
        for expert in &options.experts {
            command.arg("--expert").arg(expert);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", options.binary.display()))?;
        let mut server = Server {
            grpc_url: format!("http://127.0.0.1:{grpc}"),
            http_url: format!("http://127.0.0.1:{http}"),
            child: Some(child),
            log: Some(log),
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "synod serve exited ({status}) before answering; its log:\n{}",
                    self.log_tail(30)
                );
            }
            if let Ok(channel) = connect(&self.grpc_url).await
                && RegistryClient::new(channel)
                    .list_experts(ListExpertsRequest {})
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "synod serve did not answer on {} within {READY_TIMEOUT:?}; its log:\n{}",
                    self.grpc_url,
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id, when this harness started the server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Peak resident memory so far (`VmHWM`), MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        pid_status_mb(&self.pid()?.to_string(), "VmHWM")
    }

    /// CPU seconds used so far (user + system).
    pub fn cpu_s(&self) -> Option<f64> {
        pid_cpu_s(&self.pid()?.to_string())
    }

    /// The server's log file, when this harness started it.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let Some(text) = self
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        else {
            return "(no log)".to_owned();
        };
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `n` separate HTTP/2 connections to the gRPC API.
    pub async fn channels(&self, n: usize) -> anyhow::Result<Vec<Channel>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            out.push(connect(&self.grpc_url).await?);
        }
        Ok(out)
    }

    /// Stops the server it started (SIGTERM, then SIGKILL after 10 s).
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

/// A fresh folder for one evaluation's server files under the system temp dir.
pub fn scratch_dir(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "synod-eval-{what}-{}-{}",
        std::process::id(),
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ))
}
