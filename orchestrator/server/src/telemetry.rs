//! Logging and tracing set-up for the `synod` binary.
//!
//! Logs go to stderr ([`init`]). Traces go over OTLP/HTTP when an endpoint
//! is configured ([`start_tracing`]: `--otlp-endpoint`, or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and
//! `OTEL_SERVICE_NAME` variables); without one no exporter exists and no
//! span is created. Span names and attribute keys: [`synod_types::telemetry`].

use anyhow::Context as _;
use synod_expert_sdk::{OtlpConfig, Telemetry};
use tracing_subscriber::EnvFilter;

/// The default `service.name` of the orchestrator's spans.
pub const SERVICE_NAME: &str = "synod";

/// Installs a stderr log subscriber. `RUST_LOG` overrides `default_level`.
pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Starts exporting traces to `endpoint` (a base URL such as
/// `http://localhost:4318`, from `--otlp-endpoint`) or to the endpoint of
/// the standard OpenTelemetry variables, as service `default_service_name`
/// unless `OTEL_SERVICE_NAME` says otherwise. `None` when no endpoint is
/// configured. Must run within the Tokio runtime; shut the result down
/// ([`Telemetry::shutdown`]) to flush the last spans.
///
/// # Errors
///
/// When the endpoint is not a valid URL.
pub fn start_tracing(
    endpoint: Option<&str>,
    default_service_name: &str,
) -> anyhow::Result<Option<Telemetry>> {
    let Some(config) = OtlpConfig::from_env(endpoint, default_service_name) else {
        return Ok(None);
    };
    let telemetry = Telemetry::start(config.clone())
        .context("cannot set up trace export (--otlp-endpoint / OTEL_EXPORTER_OTLP_ENDPOINT)")?;
    tracing::info!(
        endpoint = %config.traces_endpoint,
        service = %config.service_name,
        "exporting traces over OTLP/HTTP"
    );
    Ok(Some(telemetry))
}

/// The executor's and expert client's tracer over `telemetry`.
pub fn tracer(telemetry: Option<&Telemetry>) -> Option<synod_executor::Tracer> {
    telemetry.map(|telemetry| synod_executor::Tracer::new(telemetry.tracer()))
}
