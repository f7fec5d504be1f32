//! `synod-eval pipeline`: the alert-triage workflow end to end through the
//! real orchestrator, scored against labelled attack recordings.
//!
//! An orchestrator ([`synod_server::app::Orchestrator`], SQLite store in a
//! temporary folder) is started in-process with the reference experts on
//! loopback gRPC (attack-detection with the SigmaHQ rules of the shared
//! dataset, tracing, disposition, and knowledge when its data is
//! configured), as `synod up` does. Each case is one run of
//! `workflows/alert-triage.yaml` (detect → trace → respond with
//! reflection, then the ticket and containment bindings) submitted over the
//! orchestrator's gRPC API, at most `--concurrency` at a time; the files are
//! passed as `paths` (the LSASS recordings are ~100 MB, too large to send
//! inline). The bindings go to a local receiver standing in for the SOAR,
//! and the gated containment is approved as a SOC lead would. When the
//! knowledge expert is served, a second run per case
//! (`eval/workflows/technique-context.yaml`) looks up the names and
//! mitigations of the techniques found.
//!
//! Cases: the EVTX_full_APT_attack_steps chains (no technique labels: what
//! was found is reported), the technique-labelled files of
//! EVTX-to-MITRE-Attack (labels read by the detection evaluation's
//! [`read_technique_labels`]) and the OTRF LSASS campaigns (labels from the
//! OTRF index, resource-development techniques dropped: they leave no host
//! events). Scoring is in [`score`], charts in [`svg`].

pub mod score;
pub mod svg;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Value, json};
use synod_expert_attack_detection::RuleSet;
use synod_expert_attack_detection::evaluation::{
    csv_rows, load_sigma_rules, read_technique_labels,
};
use synod_expert_sdk::{ExpertHandle, ExpertServerBuilder};
use synod_expert_tracing::evaluation::host_techniques;
use synod_proto::json::{json_to_struct, opt_struct_to_json};
use synod_proto::orchestrator as pb;
use synod_proto::orchestrator::runs_client::RunsClient;
use synod_server::app::{MAX_MESSAGE_BYTES, Orchestrator, ServerConfig};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use self::score::{Counts, per_technique_recall, quantile, root_cause_found, technique_counts};
use self::svg::{Bar, bar_chart};
use crate::bench::runner::RuntimeChoice;
use crate::bench::sys::cpu_count;
use crate::bench::transport::connect;
use crate::detection::unpack;
use crate::load::put_workflow;

/// The LSASS campaigns' objective: credential dumping of LSASS memory.
pub const LSASS_OBJECTIVE: &str = "T1003.001";
/// The enrichment workflow run when the knowledge expert is served.
pub const TECHNIQUE_CONTEXT_YAML: &str = include_str!("../workflows/technique-context.yaml");
/// At most this many techniques are enriched per case.
const MAX_ENRICHED: usize = 40;
/// Token the local SOAR receiver is given (it checks nothing).
const RECEIVER_TOKEN: &str = "synod-eval-local-receiver";

/// Which Sigma rules the attack-detection expert loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesChoice {
    /// SigmaHQ's rules from the shared dataset when present, else the builtin ones.
    Auto,
    /// SigmaHQ's rules from `<datasets>/sigma` (fails when missing).
    Sigma,
    /// The expert's small embedded rule set (what `synod up` serves by default).
    Builtin,
}

/// Arguments of `synod-eval pipeline`.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// The EVTX-to-MITRE-Attack folder (holds labels.csv), or the shared
    /// datasets folder holding it. Its sibling folders otrf-security-datasets/
    /// (LSASS campaigns) and sigma/ (rules) are used when present.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets/evtx-to-mitre-attack"))]
    pub data: PathBuf,
    /// Where archives are unpacked (kept between runs; shared with `detection`).
    #[arg(long, default_value = "eval/out/datasets")]
    pub work: PathBuf,
    /// Report path without extension: writes <out>.json, <out>.md,
    /// <out>-recall.svg and <out>-latency.svg.
    #[arg(long, default_value = "eval/results/pipeline")]
    pub out: PathBuf,
    /// Runs in flight at once.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Case sets, comma-separated: apt (the EVTX_full_APT_attack_steps
    /// chains), labelled (technique-labelled EVTX files), lsass (OTRF
    /// LSASS campaigns).
    #[arg(long, value_delimiter = ',', default_value = "apt,labelled,lsass")]
    pub sets: Vec<String>,
    /// Only cases whose name contains this text (case-insensitive).
    #[arg(long)]
    pub only: Option<String>,
    /// At most this many cases (after --only), for a quick look.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Sigma rules of the attack-detection expert.
    #[arg(long, value_enum, default_value = "auto")]
    pub rules: RulesChoice,
    /// The workflow run on each case.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/alert-triage.yaml"))]
    pub workflow: PathBuf,
    /// The SOAR origin in the workflow's bindings, replaced by a local receiver.
    #[arg(long, default_value = "https://soar.example.org")]
    pub soar_origin: String,
    /// Timeout of each step attempt, in seconds.
    #[arg(long, default_value_t = 300)]
    pub step_timeout: u64,
    /// Skip the knowledge enrichment even when SYNOD_KNOWLEDGE_* are set.
    #[arg(long)]
    pub no_knowledge: bool,
    /// Print the JSON summary (the report without the per-case list) to stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// The set a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseSet {
    /// A multi-step chain of EVTX_full_APT_attack_steps (no technique label).
    AptChain,
    /// A technique-labelled EVTX-to-MITRE-Attack file.
    Labelled,
    /// An OTRF LSASS campaign (JSON lines).
    Lsass,
}

impl CaseSet {
    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseSet::AptChain => "apt-chain",
            CaseSet::Labelled => "labelled",
            CaseSet::Lsass => "lsass",
        }
    }

    const ALL: [CaseSet; 3] = [CaseSet::AptChain, CaseSet::Labelled, CaseSet::Lsass];
}

/// One recording to triage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    /// Short name (path inside the dataset, or campaign title).
    pub name: String,
    /// Its set.
    pub set: CaseSet,
    /// The file passed to the workflow.
    pub path: PathBuf,
    /// Labelled techniques (empty when unlabelled).
    pub labels: Vec<String>,
    /// The technique the root cause must explain (`None`: not checked).
    pub objective: Option<String>,
}

/// What one run produced and how it scores.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case.
    #[serde(flatten)]
    pub case: Case,
    /// Run id in the orchestrator.
    pub run_id: String,
    /// Final run status (`succeeded`, `failed`, ...).
    pub status: String,
    /// Why the run (or its submission) failed.
    pub error: Option<String>,
    /// Alerts of the detect step.
    pub alerts: usize,
    /// Distinct techniques found (alert tags and chain steps).
    pub found: Vec<String>,
    /// Techniques of the tracer's chain steps.
    pub chain: Vec<String>,
    /// Exact-level counts.
    pub exact: Counts,
    /// Parent-level counts.
    pub parent: Counts,
    /// The tracer's root cause description, when it named one.
    pub root_cause: Option<String>,
    /// Whether the root cause was found (see [`score::root_cause_found`]).
    pub root_cause_found: Option<bool>,
    /// Whether the respond step produced a plan (CACAO playbook).
    pub plan: bool,
    /// Actions of the plan.
    pub actions: usize,
    /// Actions gated by approval (approved by the harness).
    pub approvals: usize,
    /// Bindings delivered to the local SOAR receiver.
    pub bindings_delivered: usize,
    /// Reflection rounds the respond step used.
    pub reflection_rounds: usize,
    /// Wall time of the triage run, submission to end, in seconds.
    pub wall_s: f64,
    /// Knowledge enrichment (`None`: not run).
    pub knowledge: Option<Value>,
}

/// Where the datasets are.
#[derive(Debug, Clone)]
struct DataPaths {
    mitre: PathBuf,
    otrf: PathBuf,
    sigma: PathBuf,
}

fn data_paths(data: &Path) -> DataPaths {
    let (mitre, root) = if data.join("labels.csv").exists() {
        (
            data.to_owned(),
            data.parent()
                .map_or_else(|| PathBuf::from("."), Path::to_owned),
        )
    } else {
        (data.join("evtx-to-mitre-attack"), data.to_owned())
    };
    DataPaths {
        mitre,
        otrf: root.join("otrf-security-datasets"),
        sigma: root.join("sigma"),
    }
}

/// The EVTX-to-MITRE-Attack cases: the APT chains and the labelled files.
/// Returns the cases and the missing dataset files.
pub fn mitre_cases(mitre: &Path, work: &Path) -> anyhow::Result<(Vec<Case>, Vec<String>)> {
    let archive = mitre.join("evtx-to-mitre-attack.tar.zst");
    let labels = mitre.join("labels.csv");
    let missing = missing_files(&[&archive, &labels]);
    if !missing.is_empty() {
        return Ok((Vec::new(), missing));
    }
    let dir = unpack(&archive, &work.join("evtx-to-mitre-attack"))?;
    let csv = std::fs::read_to_string(&labels)
        .with_context(|| format!("cannot read {}", labels.display()))?;
    let mut cases: Vec<Case> = csv_rows(&csv)
        .into_iter()
        .filter(|row| row.get("tactic").map(String::as_str) == Some("EVTX_full_APT_attack_steps"))
        .map(|row| Case {
            name: row["path"].clone(),
            set: CaseSet::AptChain,
            path: dir.join(&row["path"]),
            labels: Vec::new(),
            objective: None,
        })
        .collect();
    for labelled in read_technique_labels(&csv, &dir).map_err(anyhow::Error::msg)? {
        let name = labelled
            .path
            .strip_prefix(&dir)
            .unwrap_or(&labelled.path)
            .display()
            .to_string();
        cases.push(Case {
            name,
            set: CaseSet::Labelled,
            path: labelled.path,
            objective: Some(labelled.technique.clone()),
            labels: vec![labelled.technique],
        });
    }
    Ok((cases, Vec::new()))
}

/// The OTRF LSASS campaigns (host logs): unpacks them from the subset tar
/// into `work` (once) and labels each with its index row's techniques
/// minus resource development. Returns the cases and the missing files.
pub fn lsass_cases(otrf: &Path, work: &Path) -> anyhow::Result<(Vec<Case>, Vec<String>)> {
    let tar = otrf.join("otrf-host-subset.tar");
    let index = otrf.join("index.csv");
    let missing = missing_files(&[&tar, &index]);
    if !missing.is_empty() {
        return Ok((Vec::new(), missing));
    }
    let dir = work.join("otrf-lsass");
    let csv = std::fs::read_to_string(&index)
        .with_context(|| format!("cannot read {}", index.display()))?;
    let attack = synod_expert_tracing::AttackData::embedded();
    let rows: Vec<_> = csv_rows(&csv)
        .into_iter()
        .filter(|r| r["file_path"].contains("LSASS_campaign") && r["in_bundle"] == "yes")
        .collect();
    let marker = dir.join(".complete");
    if !marker.exists() && !rows.is_empty() {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        eprintln!(
            "unpacking the LSASS campaigns of {} into {}",
            tar.display(),
            dir.display()
        );
        let mut extract = Command::new("tar");
        extract.arg("-xf").arg(&tar).arg("-C").arg(&dir);
        for row in &rows {
            extract.arg(format!("./{}", row["file_path"]));
        }
        run_tool(&mut extract)?;
        for row in &rows {
            let zip = dir.join(&row["file_path"]);
            let into = zip.parent().unwrap_or(&dir).to_owned();
            run_tool(
                Command::new("unzip")
                    .args(["-o", "-q"])
                    .arg(&zip)
                    .arg("-d")
                    .arg(into),
            )?;
        }
        std::fs::write(&marker, b"")?;
    }
    let mut cases = Vec::new();
    for row in rows {
        let json = dir.join(row["file_path"].replace(".zip", ".json"));
        if !json.exists() {
            bail!("{} was not unpacked from {}", json.display(), tar.display());
        }
        let labels = host_techniques(attack, &row["techniques"]);
        let campaign = row["file_path"]
            .split('/')
            .find(|p| p.starts_with("LSASS_campaign"))
            .unwrap_or_default()
            .to_owned();
        cases.push(Case {
            name: format!("{campaign} {}", row["title"]),
            set: CaseSet::Lsass,
            path: json,
            labels,
            objective: Some(LSASS_OBJECTIVE.to_owned()),
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((cases, Vec::new()))
}

/// The paths of `files` that do not exist.
fn missing_files(files: &[&Path]) -> Vec<String> {
    files
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect()
}

fn run_tool(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?} (is it installed?)"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

/// How the harness is set up.
#[derive(Debug, Clone)]
pub struct HarnessOptions {
    /// Rules of the attack-detection expert.
    pub rules: Arc<RuleSet>,
    /// The workflow YAML run on each case (bindings still naming `soar_origin`).
    pub workflow_yaml: String,
    /// Origin in the workflow replaced by the local receiver.
    pub soar_origin: String,
    /// Timeout of each step attempt.
    pub step_timeout: Duration,
    /// Knowledge expert configuration (`None`: no enrichment).
    pub knowledge: Option<synod_expert_knowledge::Config>,
}

/// A running orchestrator with its experts and a local SOAR receiver, and
/// a gRPC client to it.
#[derive(Debug)]
pub struct Harness {
    orchestrator: Orchestrator,
    experts: Vec<ExpertHandle>,
    receiver_stop: CancellationToken,
    receiver_hits: Arc<AtomicUsize>,
    dir: PathBuf,
    runs: RunsClient<Channel>,
    workflow: String,
    enrich: Option<String>,
}

/// The run of one workflow as followed through its events.
#[derive(Debug)]
struct Followed {
    run_id: String,
    info: pb::RunInfo,
    reflection_rounds: usize,
    approvals: usize,
    bindings_delivered: usize,
}

impl Harness {
    /// Starts the experts, the receiver and the orchestrator (SQLite store
    /// in a fresh temporary folder) and stores the workflows.
    pub async fn start(options: &HarnessOptions) -> anyhow::Result<Harness> {
        let dir = std::env::temp_dir().join(format!(
            "synod-eval-pipeline-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let secrets = dir.join("secrets");
        std::fs::create_dir_all(&secrets)?;
        std::fs::write(secrets.join("SOAR_TOKEN"), RECEIVER_TOKEN)?;

        let mut builders: Vec<ExpertServerBuilder> = vec![
            synod_expert_attack_detection::expert_with_rules(
                options.rules.clone(),
                &synod_expert_attack_detection::Config {
                    allow_file_input: true,
                    ..Default::default()
                },
            ),
            synod_expert_tracing::expert(&synod_expert_tracing::Config {
                allow_file_input: true,
                ..Default::default()
            }),
            synod_expert_disposition::expert(&Default::default()),
        ];
        if let Some(config) = &options.knowledge {
            builders.push(
                synod_expert_knowledge::expert(config)
                    .map_err(|e| anyhow::anyhow!("the knowledge expert cannot be built: {e}"))?,
            );
        }
        let mut experts = Vec::new();
        for builder in builders {
            let name = builder.name().to_owned();
            let handle = builder
                .build()
                .with_context(|| format!("building expert `{name}`"))?
                .spawn_on(([127, 0, 0, 1], 0).into())
                .await
                .with_context(|| format!("starting expert `{name}`"))?;
            experts.push(handle);
        }

        let (receiver_origin, receiver_stop, receiver_hits) = start_receiver().await?;
        let store = synod_store::open(&format!("sqlite://{}", dir.join("runs.db").display()))
            .await
            .context("cannot open the SQLite run store")?;
        let config = ServerConfig {
            grpc_addr: ([127, 0, 0, 1], 0).into(),
            http_addr: ([127, 0, 0, 1], 0).into(),
            static_experts: experts.iter().map(|e| e.endpoint().to_owned()).collect(),
            executor: synod_executor::ExecutorConfig {
                default_timeout: options.step_timeout,
                ..Default::default()
            },
            allowed_destinations: vec![receiver_origin.clone()],
            secrets_dir: Some(secrets),
            ..Default::default()
        };
        let orchestrator = Orchestrator::start_with_store(config, store).await?;
        let channel = connect(&orchestrator.grpc_url()).await?;
        let runs = RunsClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let workflow = put_workflow(
            &channel,
            &options
                .workflow_yaml
                .replace(&options.soar_origin, &receiver_origin),
            "alert-triage.yaml",
        )
        .await?;
        let enrich = match options.knowledge {
            Some(_) => Some(
                put_workflow(&channel, TECHNIQUE_CONTEXT_YAML, "technique-context.yaml").await?,
            ),
            None => None,
        };
        Ok(Harness {
            orchestrator,
            experts,
            receiver_stop,
            receiver_hits,
            dir,
            runs,
            workflow,
            enrich,
        })
    }

    /// Requests the local SOAR receiver has answered.
    pub fn receiver_requests(&self) -> usize {
        self.receiver_hits.load(Ordering::Relaxed)
    }

    /// Runs the workflow on one case and scores it; a failed run is a
    /// result with `error`, not an `Err`.
    pub async fn run_case(&self, case: &Case) -> CaseResult {
        let started = Instant::now();
        let inputs = json!({ "paths": [case.path.display().to_string()], "assets": [] });
        let followed = self.follow(&self.workflow, &inputs).await;
        let wall_s = started.elapsed().as_secs_f64();
        let mut result = match followed {
            Ok(followed) => score_run(case, &followed),
            Err(error) => failed(case, format!("{error:#}")),
        };
        result.wall_s = wall_s;
        if let Some(enrich) = &self.enrich
            && !result.found.is_empty()
        {
            // ids ATT&CK knows (rule tags can name techniques newer than the bundle)
            let attack = synod_expert_tracing::AttackData::embedded();
            let techniques: Vec<&String> = result
                .found
                .iter()
                .filter(|t| attack.technique(t).is_some())
                .take(MAX_ENRICHED)
                .collect();
            let started = Instant::now();
            let enriched = self
                .follow(enrich, &json!({ "techniques": techniques }))
                .await;
            result.knowledge = Some(match enriched {
                Ok(followed) => knowledge_summary(&followed, started.elapsed()),
                Err(error) => json!({ "error": format!("{error:#}") }),
            });
        }
        result
    }

    /// Starts a run of the stored `workflow` and follows its events to the
    /// end, approving what waits for approval.
    async fn follow(&self, workflow: &str, inputs: &Value) -> anyhow::Result<Followed> {
        let mut runs = self.runs.clone();
        let run_id = runs
            .start_run(pb::StartRunRequest {
                source: Some(pb::start_run_request::Source::WorkflowName(
                    workflow.to_owned(),
                )),
                inputs: Some(json_to_struct(inputs)?),
                ..Default::default()
            })
            .await
            .context("StartRun refused")?
            .into_inner()
            .run_id;
        let mut events = runs
            .watch_run(pb::WatchRunRequest {
                run_id: run_id.clone(),
                after_seq: 0,
                recorded_only: false,
            })
            .await
            .context("WatchRun refused")?
            .into_inner();
        let (mut reflection_rounds, mut approvals, mut bindings_delivered) = (0, 0, 0);
        while let Some(event) = events.message().await.context("the event stream broke")? {
            match event.r#type.as_str() {
                "synod.step.reflected" if event.subject == "respond" => reflection_rounds += 1,
                "synod.binding.delivered" => bindings_delivered += 1,
                "synod.approval.requested" => {
                    let cloud: Value = serde_json::from_str(&event.cloud_event_json)?;
                    let binding = cloud["data"]["binding"].as_str().unwrap_or_default();
                    approvals += 1;
                    runs.decide(pb::DecideRequest {
                        run_id: run_id.clone(),
                        binding: binding.to_owned(),
                        approve: true,
                        comment: "approved by synod-eval pipeline (SOC lead stand-in)".to_owned(),
                    })
                    .await
                    .with_context(|| format!("Decide on `{binding}` refused"))?;
                }
                "synod.run.succeeded" | "synod.run.failed" | "synod.run.cancelled" => break,
                _ => {}
            }
        }
        let info = runs
            .get_run(pb::GetRunRequest {
                run_id: run_id.clone(),
            })
            .await
            .context("GetRun refused")?
            .into_inner();
        Ok(Followed {
            run_id,
            info,
            reflection_rounds,
            approvals,
            bindings_delivered,
        })
    }

    /// Stops the orchestrator, the experts and the receiver and removes the
    /// temporary folder.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.orchestrator.shutdown().await?;
        for expert in self.experts {
            expert.shutdown().await.ok();
        }
        self.receiver_stop.cancel();
        std::fs::remove_dir_all(&self.dir).ok();
        Ok(())
    }
}

/// A short random-enough suffix for temporary folder names.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{nanos:08x}")
}

/// A loopback HTTP server answering 201 to everything (the SOAR stand-in):
/// its origin, a token stopping it and its request counter.
async fn start_receiver() -> anyhow::Result<(String, CancellationToken, Arc<AtomicUsize>)> {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            (axum::http::StatusCode::CREATED, "{}")
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot start the local SOAR receiver")?;
    let origin = format!("http://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped.cancelled_owned())
            .await
            .ok();
    });
    Ok((origin, stop, hits))
}

fn step_output(info: &pb::RunInfo, step: &str) -> Value {
    info.steps
        .iter()
        .find(|s| s.step_id == step)
        .and_then(|s| opt_struct_to_json(s.output.as_ref()).ok())
        .unwrap_or(Value::Null)
}

fn strings_at(values: &Value, field: &str) -> Vec<String> {
    values
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| match &v[field] {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn failed(case: &Case, error: String) -> CaseResult {
    CaseResult {
        case: case.clone(),
        run_id: String::new(),
        status: "not started".to_owned(),
        error: Some(error),
        alerts: 0,
        found: Vec::new(),
        chain: Vec::new(),
        exact: technique_counts(&[], &case.labels, false),
        parent: technique_counts(&[], &case.labels, true),
        root_cause: None,
        root_cause_found: root_cause_found(false, &[], case.objective.as_deref()),
        plan: false,
        actions: 0,
        approvals: 0,
        bindings_delivered: 0,
        reflection_rounds: 0,
        wall_s: 0.0,
        knowledge: None,
    }
}

/// Reads the steps' outputs of a finished triage run and scores them.
fn score_run(case: &Case, run: &Followed) -> CaseResult {
    let detect = step_output(&run.info, "detect");
    let trace = step_output(&run.info, "trace");
    let respond = step_output(&run.info, "respond");
    let chain: Vec<String> = strings_at(&trace["steps"], "technique_id")
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let found: Vec<String> = strings_at(&detect["alerts"], "techniques")
        .into_iter()
        .chain(chain.iter().cloned())
        .map(|t| t.to_ascii_uppercase())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let root_cause = trace["root_cause"]["description"]
        .as_str()
        .map(str::to_owned);
    let status = pb::RunStatus::try_from(run.info.status)
        .map_or("unknown", |s| s.as_str_name())
        .trim_start_matches("RUN_STATUS_")
        .to_ascii_lowercase();
    let step_errors: Vec<String> = run
        .info
        .steps
        .iter()
        .filter(|s| s.status == "failed" && !s.error.is_empty())
        .map(|s| format!("{}: {}", s.step_id, s.error))
        .collect();
    let error = (!run.info.error.is_empty())
        .then(|| run.info.error.clone())
        .or_else(|| (!step_errors.is_empty()).then(|| step_errors.join("; ")));
    CaseResult {
        case: case.clone(),
        run_id: run.run_id.clone(),
        status,
        error,
        alerts: detect["alerts"].as_array().map_or(0, Vec::len),
        exact: technique_counts(&found, &case.labels, false),
        parent: technique_counts(&found, &case.labels, true),
        root_cause_found: root_cause_found(root_cause.is_some(), &chain, case.objective.as_deref()),
        root_cause,
        found,
        chain,
        plan: respond["playbook"].is_object(),
        actions: respond["actions"].as_array().map_or(0, Vec::len),
        approvals: run.approvals,
        bindings_delivered: run.bindings_delivered,
        reflection_rounds: run.reflection_rounds,
        wall_s: 0.0,
        knowledge: None,
    }
}

/// Names and mitigation counts from a technique-context run (its
/// workflow outputs).
fn knowledge_summary(run: &Followed, wall: Duration) -> Value {
    let result = opt_struct_to_json(run.info.result.as_ref()).unwrap_or(Value::Null);
    json!({
        "run_id": run.run_id,
        "status": pb::RunStatus::try_from(run.info.status).map_or("unknown", |s| s.as_str_name()),
        "error": (!run.info.error.is_empty()).then(|| run.info.error.clone()),
        "techniques": result["citations"].as_array().map_or(0, Vec::len),
        "with_mitigations": result["with_mitigations"],
        "citations": result["citations"],
        "wall_s": wall.as_secs_f64(),
    })
}

/// Runs every case through `harness`, `concurrency` at a time; results
/// come back in case order.
pub async fn run_cases(
    harness: &Harness,
    cases: &[Case],
    concurrency: usize,
    progress: &ProgressBar,
) -> Vec<CaseResult> {
    let mut results: Vec<(usize, CaseResult)> = futures::stream::iter(cases.iter().enumerate())
        .map(|(i, case)| async move {
            let result = harness.run_case(case).await;
            progress.set_message(short_name(&case.name));
            progress.inc(1);
            (i, result)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn short_name(name: &str) -> String {
    name.rsplit('/')
        .next()
        .unwrap_or(name)
        .chars()
        .take(40)
        .collect()
}

fn ratio(value: Option<f64>) -> Value {
    value.map_or(Value::Null, |v| json!((v * 1000.0).round() / 1000.0))
}

fn counts_json(counts: Counts) -> Value {
    json!({
        "true_positives": counts.true_positives,
        "found": counts.found,
        "labelled": counts.labelled,
        "precision": ratio(counts.precision()),
        "recall": ratio(counts.recall()),
    })
}

/// Totals over `results`: micro-averaged precision/recall, root causes,
/// plans, reflection rounds, wall-time quantiles.
pub fn summary(results: &[&CaseResult]) -> Value {
    let (mut exact, mut parent) = (Counts::default(), Counts::default());
    for r in results.iter().filter(|r| !r.case.labels.is_empty()) {
        exact.add(r.exact);
        parent.add(r.parent);
    }
    let checked: Vec<bool> = results.iter().filter_map(|r| r.root_cause_found).collect();
    let walls: Vec<f64> = results.iter().map(|r| r.wall_s).collect();
    let rounds: Vec<usize> = results.iter().map(|r| r.reflection_rounds).collect();
    let labelled: Vec<&&CaseResult> = results
        .iter()
        .filter(|r| !r.case.labels.is_empty())
        .collect();
    json!({
        "cases": results.len(),
        "succeeded": results.iter().filter(|r| r.status == "succeeded").count(),
        "failed": results.iter().filter(|r| r.status != "succeeded").count(),
        "with_alerts": results.iter().filter(|r| r.alerts > 0).count(),
        "labelled_cases": labelled.len(),
        "labelled_cases_hit": labelled.iter().filter(|r| r.parent.true_positives > 0).count(),
        "exact": counts_json(exact),
        "parent": counts_json(parent),
        "root_cause_reported": results.iter().filter(|r| r.root_cause.is_some()).count(),
        "root_cause_checked": checked.len(),
        "root_cause_found": checked.iter().filter(|f| **f).count(),
        "plans": results.iter().filter(|r| r.plan).count(),
        "actions": results.iter().map(|r| r.actions).sum::<usize>(),
        "approvals": results.iter().map(|r| r.approvals).sum::<usize>(),
        "knowledge_runs_ok": results.iter().filter(|r| r.knowledge.as_ref().is_some_and(|k| k["status"] == "RUN_STATUS_SUCCEEDED")).count(),
        "knowledge_techniques_with_mitigations": results.iter().filter_map(|r| r.knowledge.as_ref()?["with_mitigations"].as_u64()).sum::<u64>(),
        "bindings_delivered": results.iter().map(|r| r.bindings_delivered).sum::<usize>(),
        "reflection_rounds": {
            "total": rounds.iter().sum::<usize>(),
            "max": rounds.iter().max().copied().unwrap_or(0),
            "runs_with_second_round": rounds.iter().filter(|r| **r > 1).count(),
        },
        "wall_s": {
            "sum": walls.iter().sum::<f64>(),
            "p50": quantile(&walls, 0.5),
            "p95": quantile(&walls, 0.95),
            "max": quantile(&walls, 1.0),
        },
    })
}

/// The whole report: per set and overall summaries, per-technique recall,
/// per-case results.
pub fn report(results: &[CaseResult], meta: Value) -> Value {
    let all: Vec<&CaseResult> = results.iter().collect();
    let mut sets = serde_json::Map::new();
    for set in CaseSet::ALL {
        let members: Vec<&CaseResult> = results.iter().filter(|r| r.case.set == set).collect();
        if !members.is_empty() {
            sets.insert(set.as_str().to_owned(), summary(&members));
        }
    }
    let recall = per_technique_recall(
        results
            .iter()
            .map(|r| (r.found.as_slice(), r.case.labels.as_slice())),
    );
    let recall: Vec<Value> = recall
        .into_iter()
        .map(|(technique, (hits, cases))| {
            json!({ "technique": technique, "found": hits, "cases": cases, "recall": ratio(Some(hits as f64 / cases as f64)) })
        })
        .collect();
    let mut doc = meta;
    doc["overall"] = summary(&all);
    doc["sets"] = Value::Object(sets);
    doc["per_technique_recall"] = Value::Array(recall);
    doc["cases"] = serde_json::to_value(results).unwrap_or(Value::Null);
    doc
}

fn fmt_ratio(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"))
}

fn fmt_s(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| "–".to_owned(), |v| format!("{v:.2} s"))
}

/// The summary table (Markdown; also printed).
pub fn table(doc: &Value) -> String {
    let mut out = String::from(
        "| set | cases | runs ok | with alerts | P exact | R exact | P parent | R parent | labelled cases hit | root cause found | plans (actions) | 2nd reflection round | wall p50 / p95 / max |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut row = |name: &str, s: &Value| {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {}/{} | {} ({}) | {} | {} / {} / {} |",
            s["cases"],
            s["succeeded"],
            s["with_alerts"],
            fmt_ratio(&s["exact"]["precision"]),
            fmt_ratio(&s["exact"]["recall"]),
            fmt_ratio(&s["parent"]["precision"]),
            fmt_ratio(&s["parent"]["recall"]),
            s["labelled_cases_hit"],
            s["labelled_cases"],
            s["root_cause_found"],
            s["root_cause_checked"],
            s["plans"],
            s["actions"],
            s["reflection_rounds"]["runs_with_second_round"],
            fmt_s(&s["wall_s"]["p50"]),
            fmt_s(&s["wall_s"]["p95"]),
            fmt_s(&s["wall_s"]["max"]),
        );
    };
    for (name, s) in doc["sets"].as_object().into_iter().flatten() {
        row(name, s);
    }
    row("**all**", &doc["overall"]);
    out
}

fn markdown(doc: &Value) -> String {
    let mut md = String::from("# synod-eval pipeline: alert triage end to end\n\n");
    let _ = writeln!(
        md,
        "{} on {} CPUs, {}; rules: {}; knowledge enrichment: {}; concurrency {}.\n",
        doc["date"].as_str().unwrap_or_default(),
        doc["cpus"],
        doc["workflow"].as_str().unwrap_or_default(),
        doc["rules"]["source"].as_str().unwrap_or_default(),
        if doc["knowledge"] == true {
            "yes"
        } else {
            "no"
        },
        doc["concurrency"],
    );
    md.push_str(&table(doc));
    md.push_str(
        "\nP/R: precision/recall of the techniques found (alert tags and chain steps) against the labels, micro-averaged over labelled cases; \
         root cause found: the tracer named an entry point and its chain contains the labelled objective technique (parent level; LSASS campaigns: T1003.001).\n",
    );
    for path in doc["missing"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "\nmissing dataset file: {}",
            path.as_str().unwrap_or_default()
        );
    }
    md.push_str("\n## Recall per labelled technique (parent level)\n\n| technique | found / cases |\n|---|---|\n");
    for t in doc["per_technique_recall"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| {} | {}/{} |",
            t["technique"].as_str().unwrap_or_default(),
            t["found"],
            t["cases"]
        );
    }
    md.push_str("\n## Cases\n\n| set | case | status | alerts | labels | found | R parent | root cause | plan (actions) | rounds | wall |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for c in doc["cases"].as_array().into_iter().flatten() {
        let labels: Vec<&str> = c["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let root = match c["root_cause_found"].as_bool() {
            Some(true) => "found",
            Some(false) if c["root_cause"].is_string() => "other",
            Some(false) => "none",
            None if c["root_cause"].is_string() => "reported",
            None => "–",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {:.2} s |",
            c["set"].as_str().unwrap_or_default(),
            c["name"].as_str().unwrap_or_default().replace('|', "\\|"),
            c["status"].as_str().unwrap_or_default(),
            c["alerts"],
            labels.join(" "),
            c["found"].as_array().map_or(0, Vec::len),
            fmt_ratio(&c["parent"]["recall"]),
            root,
            if c["plan"] == true { "yes" } else { "no" },
            c["actions"],
            c["reflection_rounds"],
            c["wall_s"].as_f64().unwrap_or_default(),
        );
    }
    md
}

/// Per-technique recall chart.
pub fn recall_svg(doc: &Value) -> String {
    let bars: Vec<Bar> = doc["per_technique_recall"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| Bar {
            label: t["technique"].as_str().unwrap_or_default().to_owned(),
            value: t["recall"].as_f64().unwrap_or_default(),
            note: format!("{}/{}", t["found"], t["cases"]),
        })
        .collect();
    bar_chart(
        "alert-triage: recall per labelled technique (parent level)",
        "share of labelled cases where the pipeline found the technique",
        &bars,
        Some(1.0),
    )
}

/// Per-case wall-time chart, slowest first.
pub fn latency_svg(doc: &Value) -> String {
    let mut bars: Vec<Bar> = doc["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let wall = c["wall_s"].as_f64().unwrap_or_default();
            Bar {
                label: format!(
                    "[{}] {}",
                    c["set"].as_str().unwrap_or_default(),
                    short_name(c["name"].as_str().unwrap_or_default())
                ),
                value: wall,
                note: format!("{wall:.2} s"),
            }
        })
        .collect();
    bars.sort_by(|a, b| b.value.total_cmp(&a.value));
    bar_chart(
        "alert-triage: wall time per case (submission to end of run)",
        "seconds",
        &bars,
        None,
    )
}

fn load_rules(choice: RulesChoice, sigma: &Path, work: &Path) -> anyhow::Result<(RuleSet, String)> {
    let archive = sigma.join("sigma-rules-and-regression.tar.zst");
    match (choice, archive.exists()) {
        (RulesChoice::Builtin, _) | (RulesChoice::Auto, false) => {
            Ok((RuleSet::builtin(), "builtin".to_owned()))
        }
        (RulesChoice::Sigma, false) => bail!("--rules sigma: {} is missing", archive.display()),
        (_, true) => {
            let dir = unpack(&archive, &work.join("sigma"))?;
            Ok((
                load_sigma_rules(&dir),
                "SigmaHQ (shared dataset)".to_owned(),
            ))
        }
    }
}

/// Runs the evaluation; fails on I/O errors of the report or when no case
/// could be found.
pub fn run(args: &PipelineArgs) -> anyhow::Result<ExitCode> {
    let paths = data_paths(&args.data);
    let mut wanted = BTreeSet::new();
    for set in &args.sets {
        match set.trim() {
            "apt" => wanted.insert(CaseSet::AptChain),
            "labelled" => wanted.insert(CaseSet::Labelled),
            "lsass" => wanted.insert(CaseSet::Lsass),
            other => bail!("unknown set `{other}`; known: apt, labelled, lsass"),
        };
    }
    let (mut cases, mut missing) = mitre_cases(&paths.mitre, &args.work)?;
    if wanted.contains(&CaseSet::Lsass) {
        let (lsass, lsass_missing) = lsass_cases(&paths.otrf, &args.work)?;
        cases.extend(lsass);
        missing.extend(lsass_missing);
    }
    cases.retain(|c| wanted.contains(&c.set));
    if let Some(only) = &args.only {
        let only = only.to_lowercase();
        cases.retain(|c| c.name.to_lowercase().contains(&only));
    }
    if let Some(limit) = args.limit {
        cases.truncate(limit);
    }
    for path in &missing {
        eprintln!("missing dataset file: {path}");
    }
    if cases.is_empty() {
        bail!(
            "no case to run (data: {}; sets: {}; only: {:?})",
            args.data.display(),
            args.sets.join(","),
            args.only
        );
    }
    let (rules, source) = load_rules(args.rules, &paths.sigma, &args.work)?;
    let rules_loaded = rules.rules().len();
    let knowledge = if args.no_knowledge {
        None
    } else {
        synod_server::demo::knowledge_config()
    };
    let workflow_yaml = std::fs::read_to_string(&args.workflow)
        .with_context(|| format!("cannot read {}", args.workflow.display()))?;
    let options = HarnessOptions {
        rules: Arc::new(rules),
        workflow_yaml,
        soar_origin: args.soar_origin.clone(),
        step_timeout: Duration::from_secs(args.step_timeout),
        knowledge: knowledge.clone(),
    };
    let progress = if args.no_progress {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(cases.len() as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>40} [{bar:40}] {pos}/{len} runs ({elapsed}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    };
    let started = Instant::now();
    let runtime = RuntimeChoice {
        worker_threads: cpu_count(),
    }
    .build()?;
    let (results, receiver_requests) = runtime.block_on(async {
        let harness = Harness::start(&options).await?;
        let results = run_cases(&harness, &cases, args.concurrency, &progress).await;
        let requests = harness.receiver_requests();
        harness.shutdown().await?;
        anyhow::Ok((results, requests))
    })?;
    progress.finish_and_clear();
    let meta = json!({
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "cpus": cpu_count(),
        "command": format!("synod-eval pipeline --data {} --concurrency {}", args.data.display(), args.concurrency),
        "workflow": args.workflow.file_name().map(|n| n.to_string_lossy().into_owned()),
        "rules": { "source": source, "loaded": rules_loaded },
        "knowledge": knowledge.is_some(),
        "concurrency": args.concurrency,
        "total_wall_s": started.elapsed().as_secs_f64(),
        "receiver_requests": receiver_requests,
        "missing": missing,
    });
    let doc = report(&results, meta);
    write_reports(&args.out, &doc)?;
    eprintln!("{}", table(&doc));
    if args.json {
        let mut summary = doc.clone();
        if let Some(map) = summary.as_object_mut() {
            map.remove("cases");
        }
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    eprintln!(
        "wrote {}.{{json,md}}, {}-recall.svg and {}-latency.svg",
        args.out.display(),
        args.out.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `<out>.json`, `<out>.md`, `<out>-recall.svg`, `<out>-latency.svg`.
pub fn write_reports(out: &Path, doc: &Value) -> anyhow::Result<()> {
    crate::write_json(&out.with_extension("json"), doc)?;
    let write = |path: PathBuf, text: String| {
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write(out.with_extension("md"), markdown(doc))?;
    let stem = out.display().to_string();
    write(PathBuf::from(format!("{stem}-recall.svg")), recall_svg(doc))?;
    write(
        PathBuf::from(format!("{stem}-latency.svg")),
        latency_svg(doc),
    )
}
