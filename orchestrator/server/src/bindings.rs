//! [`HttpBindings`]: the server's [`Deliverer`]: resolves a workflow's
//! secrets, renders a binding (`synod_workflow::runtime::render_binding`),
//! checks the destination against the configured allowlist and sends it
//! with `synod_connectors::HttpDelivery` (retries, `Idempotency-Key`).
//! Everything it reports is passed through a [`Redactor`] of the resolved
//! secrets, so secret values never reach run events.

use std::path::PathBuf;

use serde_json::{Map, Value};
use synod_connectors::{
    Allowlist, BindingRequest, DeliveryOutcome, DeliveryPolicy, DeliveryReport, DryRun,
    HttpDelivery, Redactor, RequestBody, ResolvedSecrets, Secrets, render_dry_run,
};
use synod_executor::{BindingCall, BindingResult, Deliverer, DeliveryAttempt};
use synod_workflow::runtime::render_binding;
use synod_workflow::{BindingSpec, Workflow};

/// Where binding secrets come from and where bindings may go.
#[derive(Debug, Clone, Default)]
pub struct BindingSettings {
    /// Allowed destinations (`[scheme://]host[:port]`, `*.` wildcards); empty
    /// refuses every binding.
    pub allowed_destinations: Vec<String>,
    /// A directory holding one file per secret (besides `SYNOD_SECRET_<NAME>`
    /// environment variables).
    pub secrets_dir: Option<PathBuf>,
}

/// Delivers bindings over HTTP(S).
#[derive(Debug)]
pub struct HttpBindings {
    delivery: HttpDelivery,
    secrets: Secrets,
}

impl HttpBindings {
    /// A sender for `settings`, reading secrets from the process environment
    /// (snapshot taken now) and the secrets directory.
    pub fn new(settings: &BindingSettings) -> anyhow::Result<HttpBindings> {
        Self::with_secrets(
            settings,
            Secrets::from_process_env(settings.secrets_dir.clone()),
        )
    }

    /// A sender for `settings` with these secrets.
    pub fn with_secrets(settings: &BindingSettings, secrets: Secrets) -> anyhow::Result<Self> {
        let allowlist = parse_allowlist(&settings.allowed_destinations)?;
        let delivery = HttpDelivery::new(allowlist, DeliveryPolicy::default())?;
        Ok(HttpBindings { delivery, secrets })
    }

    /// Renders `binding` of `workflow` as it would be sent, without sending
    /// it (`synod run --dry-run`): secrets that cannot be resolved stand as
    /// `***` and are listed among the problems.
    pub fn dry_run(&self, workflow: &Workflow, binding: &BindingSpec, scope: &Value) -> DryRun {
        let (resolved, warnings) = self.secrets.resolve_for_dry_run(&workflow.secrets);
        let redactor = resolved.redactor();
        let mut shown = match render_binding(binding, scope, &secrets_object(&resolved)) {
            Ok(rendered) => {
                let request = to_request(rendered);
                render_dry_run(&request, &redactor, self.delivery.allowlist())
            }
            Err(error) => DryRun {
                binding: binding.name.clone(),
                method: binding.http.method.clone(),
                url: binding.http.origin.clone(),
                headers: Vec::new(),
                body: None,
                destination_allowed: false,
                problems: vec![
                    redactor.redact(&format!("the binding cannot be rendered: {error}")),
                ],
            },
        };
        shown
            .problems
            .extend(warnings.iter().map(|warning| format!("{warning}")));
        shown
    }
}

/// A [`Deliverer`] for `synod run --dry-run`: renders each binding as it
/// would be sent ([`HttpBindings::dry_run`]), keeps it for the caller to
/// show, and sends nothing. Runs using it are made dry runs
/// (`RunMachine::with_dry_run`), so bindings end as `BindingSkipped`.
#[derive(Debug)]
pub struct DryRunBindings {
    bindings: HttpBindings,
    rendered: std::sync::Mutex<Vec<DryRun>>,
}

impl DryRunBindings {
    /// Renders with `bindings`' secrets and allowlist.
    pub fn new(bindings: HttpBindings) -> Self {
        DryRunBindings {
            bindings,
            rendered: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The requests rendered so far, in order, taken out.
    pub fn take(&self) -> Vec<DryRun> {
        std::mem::take(
            &mut *self
                .rendered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

#[async_trait::async_trait]
impl Deliverer for DryRunBindings {
    async fn deliver(&self, call: BindingCall) -> BindingResult {
        let Some(binding) = binding_of(&call) else {
            return BindingResult::not_sent("", format!("no binding `{}`", call.binding));
        };
        let shown = self.bindings.dry_run(&call.workflow, binding, &call.scope);
        let url = shown.url.clone();
        self.rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(shown);
        BindingResult {
            url,
            attempts: Vec::new(),
            outcome: Ok(0),
        }
    }
}

/// The spec of the binding `call` delivers, if its workflow has it.
fn binding_of(call: &BindingCall) -> Option<&BindingSpec> {
    call.workflow
        .bindings
        .iter()
        .find(|spec| spec.name == call.binding)
}

/// Parses the allowlist, reporting every bad entry.
pub fn parse_allowlist(rules: &[String]) -> anyhow::Result<Allowlist> {
    Allowlist::parse(rules).map_err(|errors| {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", errors.join("; "))
    })
}

#[async_trait::async_trait]
impl Deliverer for HttpBindings {
    async fn deliver(&self, call: BindingCall) -> BindingResult {
        let Some(binding) = binding_of(&call) else {
            return BindingResult::not_sent(
                "",
                format!(
                    "workflow `{}` has no binding `{}`",
                    call.workflow.name, call.binding
                ),
            );
        };
        let resolved = match self.secrets.resolve_all(&call.workflow.secrets) {
            Ok(resolved) => resolved,
            Err(errors) => {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                return BindingResult::not_sent(
                    "",
                    format!(
                        "the secrets of workflow `{}` cannot be resolved: {}",
                        call.workflow.name,
                        errors.join("; ")
                    ),
                );
            }
        };
        let redactor = resolved.redactor();
        let rendered = match render_binding(binding, &call.scope, &secrets_object(&resolved)) {
            Ok(rendered) => rendered,
            Err(error) => {
                return BindingResult::not_sent(
                    "",
                    redactor.redact(&format!(
                        "binding `{}` cannot be rendered: {error}",
                        binding.name
                    )),
                );
            }
        };
        let url = redactor.redact(&rendered.url);
        let mut request = to_request(rendered);
        if request.idempotency_key.is_none() && !has_idempotency_header(&request) {
            request.idempotency_key = Some(default_idempotency_key(&call));
        }
        let report = match &binding.retry {
            None => self.delivery.deliver(&request, &redactor).await,
            Some(retry) => {
                let policy = DeliveryPolicy {
                    retry: retry.clone(),
                    ..self.delivery.policy().clone()
                };
                match HttpDelivery::new(self.delivery.allowlist().clone(), policy) {
                    Ok(delivery) => delivery.deliver(&request, &redactor).await,
                    Err(error) => {
                        return BindingResult::not_sent(
                            url,
                            format!(
                                "binding `{}` has an unusable `retry`: {error}",
                                binding.name
                            ),
                        );
                    }
                }
            }
        };
        to_result(url, report, &redactor)
    }
}

/// `{ "<name>": "<value>" }` of the resolved secrets, for rendering headers.
fn secrets_object(resolved: &ResolvedSecrets) -> Value {
    let mut map = Map::new();
    for name in resolved.names() {
        if let Some(value) = resolved.get(name.as_str()) {
            map.insert(
                name.as_str().to_owned(),
                Value::String(value.expose().to_owned()),
            );
        }
    }
    Value::Object(map)
}

/// The `Idempotency-Key` of a binding that sets none: the same for every
/// attempt and every resend after a restart, so a receiver that honours the
/// header applies the binding once per run.
fn default_idempotency_key(call: &BindingCall) -> String {
    format!("synod-{}-{}", call.run_id, call.binding)
}

fn has_idempotency_header(request: &BindingRequest) -> bool {
    request
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(synod_connectors::IDEMPOTENCY_KEY_HEADER))
}

fn to_request(rendered: synod_workflow::runtime::RenderedBinding) -> BindingRequest {
    BindingRequest {
        binding: rendered.binding,
        method: rendered.method,
        url: rendered.url,
        headers: rendered.headers,
        body: rendered.body.map(RequestBody::Json),
        idempotency_key: rendered.idempotency_key,
    }
}

fn to_result(url: String, report: DeliveryReport, redactor: &Redactor) -> BindingResult {
    let attempts = report
        .attempts
        .into_iter()
        .map(|record| DeliveryAttempt {
            attempt: record.attempt,
            status: record.status,
            duration_ms: record.duration_ms,
            error: record.error.map(|error| redactor.redact(&error)),
            retry_in_ms: record.retry_in_ms,
        })
        .collect();
    let outcome = match report.outcome {
        DeliveryOutcome::Delivered { status, .. } => Ok(status),
        DeliveryOutcome::Failed { error, .. } => Err(redactor.redact(&error)),
    };
    BindingResult {
        url,
        attempts,
        outcome,
    }
}

/// `synod run --dry-run`: runs the workflow's steps on an embedded
/// orchestrator with the demo experts, renders every binding as it would be
/// sent (secrets that resolve are shown masked, the others as `***` with a
/// warning) and prints the requests after the run; nothing is sent and no
/// approval is asked for. Exit code as for `synod run`.
pub async fn run_dry(
    source: &str,
    file: &str,
    inputs: Value,
    as_json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let (orchestrator, experts) = crate::cli::start_embedded().await?;
    let rendered = std::sync::Arc::new(DryRunBindings::new(HttpBindings::new(
        &BindingSettings::default(),
    )?));
    orchestrator.manager.set_deliverer(rendered.clone());
    orchestrator.manager.set_dry_run(true);
    let started = orchestrator.manager.start(source, file, inputs).await;
    let outcome = match started {
        Ok(run_id) => {
            crate::cli::runs_watch(&orchestrator.grpc_url(), &run_id.to_string(), 0, as_json).await
        }
        Err(error) => Err(anyhow::anyhow!("{error}")),
    };
    for shown in rendered.take() {
        if as_json {
            println!("{}", shown.to_json());
        } else {
            println!("\n{}", shown.to_text());
        }
    }
    orchestrator.shutdown().await?;
    for expert in experts {
        expert.stop().await;
    }
    outcome
}
