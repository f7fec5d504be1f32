//! Cross-language interop: the Python example expert (`experts/python`,
//! grpcio) registers itself with an in-process orchestrator, serves a step
//! of `workflows/ioc-intel.yaml` over real gRPC, and deregisters on SIGTERM.
//!
//! Its venv and stubs come from `scripts/setup-python-expert.sh` (run by
//! `scripts/setup-dev.sh`); without them the test fails saying so.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use serde_json::Value;
use synod_integration_tests::events::{check_complete_after, output};
use synod_integration_tests::{TestOrchestrator, eventually, fast_config, within};
use synod_proto::orchestrator::RunStatus;
use synod_server::demo::start_demo_experts;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn repo_path(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// Starts the Python expert on a free port and returns it with its endpoint.
async fn start_python_expert(orchestrator_grpc: &str) -> anyhow::Result<(Child, String)> {
    let python = repo_path("experts/python/.venv/bin/python");
    if !python.exists() {
        bail!(
            "{} is missing: run scripts/setup-python-expert.sh (scripts/setup-dev.sh does) first",
            python.display()
        );
    }
    let mut child = Command::new(python)
        .arg(repo_path("experts/python/intel_expert.py"))
        .args(["--listen", "127.0.0.1:0", "--orchestrator"])
        .arg(orchestrator_grpc.trim_start_matches("http://"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the Python expert")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = within("the Python expert to listen", lines.next_line())
        .await??
        .context("the Python expert exited before listening")?;
    let endpoint = first
        .strip_prefix("listening ")
        .with_context(|| format!("unexpected first line `{first}`"))?
        .to_owned();
    Ok((child, endpoint))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_expert_registers_serves_a_workflow_step_and_deregisters()
-> anyhow::Result<()> {
    let demo = start_demo_experts().await?;
    let mut config = fast_config();
    config.static_experts = demo.iter().map(|e| e.endpoint.clone()).collect();
    let orchestrator = TestOrchestrator::start_with(config).await?;
    let (mut python, endpoint) = start_python_expert(&orchestrator.grpc_url()).await?;

    // Self-registration: the card the Python expert serves, healthy.
    let intel = eventually("the Python expert to register", || async {
        let experts = orchestrator.experts().await?;
        Ok(experts
            .into_iter()
            .find(|expert| expert.card.as_ref().is_some_and(|c| c.name == "intel")))
    })
    .await?;
    let card = intel.card.as_ref().context("card")?;
    assert_eq!(card.skills.len(), 1);
    assert_eq!(card.skills[0].name, "lookup");
    assert_eq!(card.skills[0].consumes, ["iocs"]);
    assert_eq!(intel.instances.len(), 1);
    assert_eq!(intel.instances[0].endpoint, endpoint);

    // A workflow step served by Python, fed by a Rust expert.
    let input: Value = serde_json::from_str(&std::fs::read_to_string(repo_path(
        "workflows/examples/ioc-triage.input.json",
    ))?)?;
    let yaml = std::fs::read_to_string(repo_path("workflows/ioc-intel.yaml"))?;
    let run_id = orchestrator.start_run(&yaml, input).await?;
    let run = orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    let found = output(&run.events, "intel")?;
    let malicious: Vec<&str> = found["matches"]
        .as_array()
        .context("matches")?
        .iter()
        .filter(|entry| entry["verdict"] == "malicious")
        .filter_map(|entry| entry["indicator"].as_str())
        .collect();
    assert_eq!(
        malicious,
        [
            "login-micros0ft.com",
            "kq3v9x7zt2wphm4d.net",
            "185.220.101.47"
        ],
        "{found:#}"
    );
    assert_eq!(found["list_size"], 6.0);

    // SIGTERM: the expert deregisters before it exits.
    let pid = python.id().context("pid")?;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    assert!(status.success());
    let exit = within("the Python expert to exit", python.wait()).await??;
    assert!(exit.success(), "exit status {exit}");
    let experts = orchestrator.experts().await?;
    assert!(
        experts
            .iter()
            .all(|expert| expert.card.as_ref().is_none_or(|c| c.name != "intel")),
        "still listed after deregistration: {experts:#?}"
    );

    orchestrator.shutdown().await?;
    for expert in demo {
        expert.stop().await;
    }
    Ok(())
}
