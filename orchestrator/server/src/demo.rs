//! Reference and demo experts served by this binary: started on loopback by
//! `synod up` / embedded `synod run`, or one at a time by `synod expert serve`.

use std::net::SocketAddr;

use anyhow::Context as _;
use synod_expert_sdk::{ExpertHandle, ExpertServerBuilder};

/// An expert served in the background on loopback.
#[derive(Debug)]
pub struct RunningExpert {
    /// Expert name.
    pub name: String,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    handle: ExpertHandle,
}

impl RunningExpert {
    /// Stops serving.
    pub async fn stop(self) {
        if let Err(error) = self.handle.shutdown().await {
            tracing::warn!(expert = %self.name, error = %error, "expert did not shut down cleanly");
        }
    }
}

/// How to build one expert (the reference experts load their data when
/// built).
type Build = Box<dyn FnOnce() -> Result<ExpertServerBuilder, String> + Send>;

/// Every expert this binary can serve, by name, not built yet: the demo
/// experts and the reference experts (with their built-in data; see each
/// crate for options). `llm` only when an endpoint is configured
/// (`SYNOD_LLM_ENDPOINT`, see `synod_expert_llm::Config::from_env`);
/// `knowledge` only when its data is (`SYNOD_KNOWLEDGE_ATTACK` / `_CAPEC` /
/// `_CWE`, see `scripts/knowledge-data.sh`).
fn catalog() -> Vec<(String, Build)> {
    let mut catalog: Vec<(String, Build)> = synod_expert_demo::demo_experts()
        .into_iter()
        .map(|builder| {
            (
                builder.name().to_owned(),
                Box::new(move || Ok(builder)) as Build,
            )
        })
        .collect();
    let mut add = |name: &str, build: Build| catalog.push((name.to_owned(), build));
    add(
        "attack-detection",
        Box::new(|| {
            synod_expert_attack_detection::expert(&Default::default()).map_err(|e| e.to_string())
        }),
    );
    add(
        "tracing",
        Box::new(|| Ok(synod_expert_tracing::expert(&Default::default()))),
    );
    add(
        "disposition",
        Box::new(|| Ok(synod_expert_disposition::expert(&Default::default()))),
    );
    add(
        "data-protection",
        Box::new(|| {
            synod_expert_data_protection::expert(&Default::default()).map_err(|e| e.to_string())
        }),
    );
    add(
        "code-security",
        Box::new(|| {
            synod_expert_code_security::expert(&Default::default()).map_err(|e| e.to_string())
        }),
    );
    if let Some(config) = knowledge_config() {
        add(
            "knowledge",
            Box::new(move || synod_expert_knowledge::expert(&config)),
        );
    }
    match synod_expert_llm::Config::from_env() {
        Ok(Some(config)) => add(
            "llm",
            Box::new(move || synod_expert_llm::expert(&config).map_err(|e| e.to_string())),
        ),
        Ok(None) => {}
        Err(error) => tracing::error!(
            expert = "llm",
            error = %error,
            "expert not available; check the SYNOD_LLM_* variables"
        ),
    }
    catalog
}

/// Every expert of [`catalog`] that builds; the others are logged.
fn builders() -> Vec<ExpertServerBuilder> {
    catalog()
        .into_iter()
        .filter_map(|(name, build)| match build() {
            Ok(builder) => Some(builder),
            Err(error) => {
                tracing::error!(expert = %name, error = %error, "expert not available");
                None
            }
        })
        .collect()
}

/// The knowledge expert's data files from `SYNOD_KNOWLEDGE_ATTACK`,
/// `SYNOD_KNOWLEDGE_CAPEC` and `SYNOD_KNOWLEDGE_CWE`; `None` when none is set.
pub fn knowledge_config() -> Option<synod_expert_knowledge::Config> {
    let path = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(std::path::PathBuf::from)
    };
    let config = synod_expert_knowledge::Config {
        attack_path: path("SYNOD_KNOWLEDGE_ATTACK"),
        capec_path: path("SYNOD_KNOWLEDGE_CAPEC"),
        cwe_path: path("SYNOD_KNOWLEDGE_CWE"),
    };
    (config.attack_path.is_some() || config.capec_path.is_some() || config.cwe_path.is_some())
        .then_some(config)
}

/// Names accepted by `synod expert serve` (nothing is built).
pub fn expert_names() -> Vec<String> {
    catalog().into_iter().map(|(name, _)| name).collect()
}

/// Starts every demo expert on `127.0.0.1:0`.
pub async fn start_demo_experts() -> anyhow::Result<Vec<RunningExpert>> {
    start_demo_experts_traced(None).await
}

/// Like [`start_demo_experts`]; with `telemetry`, the experts record their
/// calls as spans exported by it (shared with the orchestrator).
pub async fn start_demo_experts_traced(
    telemetry: Option<&synod_expert_sdk::Telemetry>,
) -> anyhow::Result<Vec<RunningExpert>> {
    let mut running = Vec::new();
    for mut builder in builders() {
        if let Some(telemetry) = telemetry {
            builder = builder.telemetry(telemetry);
        }
        let name = builder.name().to_owned();
        let server = builder
            .build()
            .with_context(|| format!("building expert `{name}`"))?;
        let handle = server
            .spawn_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .with_context(|| format!("starting expert `{name}`"))?;
        running.push(RunningExpert {
            name,
            endpoint: handle.endpoint().to_owned(),
            handle,
        });
    }
    Ok(running)
}

/// `synod expert serve <name>`: serves one expert until Ctrl-C, registering
/// with `orchestrator` when given; exports traces (service name: the
/// expert's) when the OpenTelemetry variables name an endpoint.
pub async fn serve_named(
    name: &str,
    addr: SocketAddr,
    orchestrator: Option<String>,
) -> anyhow::Result<()> {
    // Only the expert asked for is built.
    let mut catalog = catalog();
    let Some(position) = catalog.iter().position(|(known, _)| known == name) else {
        let names: Vec<&str> = catalog.iter().map(|(known, _)| known.as_str()).collect();
        anyhow::bail!("no expert named `{name}`; available: {}", names.join(", "));
    };
    let (_, build) = catalog.swap_remove(position);
    let mut builder =
        build().map_err(|error| anyhow::anyhow!("expert `{name}` cannot be built: {error}"))?;
    if let Some(url) = orchestrator {
        builder = builder.register_with(url);
    }
    let telemetry = crate::telemetry::start_tracing(None, name)?;
    if let Some(telemetry) = &telemetry {
        builder = builder.telemetry(telemetry);
    }
    let server = builder
        .build()
        .with_context(|| format!("building expert `{name}`"))?;
    let handle = server
        .spawn_on(addr)
        .await
        .with_context(|| format!("serving expert `{name}` on {addr}"))?;
    eprintln!("expert `{name}` serving on {}", handle.endpoint());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("shutting down (deregistering)");
    handle.shutdown().await.context("shutting down")?;
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    Ok(())
}
