//! The loopback echo server the `http` expert posts to: preferably the peer
//! benchmark's own aiohttp server (`bench.py serve`, a separate Python
//! process, so only the client side differs from the LangGraph figures),
//! else an equivalent axum server in this process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// Path of the echo endpoint (the peer benchmark's `HTTP_PATH`).
pub const ECHO_PATH: &str = "/echo";

/// Which echo server to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EchoChoice {
    /// Python `bench.py serve` when Python with aiohttp is found, else Rust.
    Auto,
    /// The peer benchmark's aiohttp server (`bench.py serve`); fail if unavailable.
    Python,
    /// An axum echo server inside the benchmark's parent process.
    Rust,
}

/// A running echo server; stopped when dropped.
#[derive(Debug)]
pub struct EchoServer {
    /// `http://127.0.0.1:<port>/echo`.
    pub url: String,
    /// What serves it, for the report's `settings.http.server`.
    pub description: String,
    /// The Python process, when Python serves.
    child: Option<Child>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl EchoServer {
    /// Starts the server `choice` asks for. `bench_py` is the peer's
    /// `bench.py`; `python` an interpreter with aiohttp.
    pub async fn start(
        choice: EchoChoice,
        bench_py: &Path,
        python: Option<&Path>,
    ) -> anyhow::Result<EchoServer> {
        match choice {
            EchoChoice::Rust => start_rust().await,
            EchoChoice::Python => {
                let python = python.context(
                    "no Python found for the echo server; run eval/scripts/bench-venv.sh or pass --python",
                )?;
                start_python(bench_py, python).await
            }
            EchoChoice::Auto => match python {
                Some(python) if bench_py.exists() => match start_python(bench_py, python).await {
                    Ok(server) => Ok(server),
                    Err(error) => {
                        eprintln!(
                            "note: Python echo server unavailable ({error:#}); using the Rust one"
                        );
                        start_rust().await
                    }
                },
                _ => start_rust().await,
            },
        }
    }

    /// Process id of the Python server (its CPU is subtracted from the noise).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The interpreter to use: `explicit`, else `eval/.venv/bin/python`, else
/// `python3` on the PATH.
pub fn find_python(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_owned());
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        return Some(venv);
    }
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("python3"))
}

async fn start_python(bench_py: &Path, python: &Path) -> anyhow::Result<EchoServer> {
    let mut child = Command::new(python)
        .arg(bench_py)
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} {}", python.display(), bench_py.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = match tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        _ => {
            let _ = child.start_kill();
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), err.read_to_string(&mut stderr))
                        .await;
            }
            bail!(
                "`{} {} serve` did not print its address (is aiohttp installed? eval/scripts/bench-venv.sh installs it): {}",
                python.display(),
                bench_py.display(),
                stderr.lines().last().unwrap_or("no output")
            );
        }
    };
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .with_context(|| format!("unexpected first line from the echo server: {line}"))?
        .to_owned();
    Ok(EchoServer {
        url,
        description: format!(
            "aiohttp echo (bench.py serve), separate process, 127.0.0.1, {}",
            python.display()
        ),
        child: Some(child),
        task: None,
    })
}

async fn start_rust() -> anyhow::Result<EchoServer> {
    use axum::http::header;
    let app = axum::Router::new().route(
        ECHO_PATH,
        axum::routing::post(|body: axum::body::Bytes| async move {
            ([(header::CONTENT_TYPE, "application/json")], body)
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the echo server")?;
    let addr = listener.local_addr()?;
    // As aiohttp does: no Nagle delay on small replies.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("echo server failed: {error}");
        }
    });
    Ok(EchoServer {
        url: format!("http://{addr}{ECHO_PATH}"),
        description: "axum echo inside the benchmark's parent process, 127.0.0.1".to_owned(),
        child: None,
        task: Some(task),
    })
}
