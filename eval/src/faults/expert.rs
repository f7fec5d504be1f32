//! The faulty experts: one process per fault kind (`synod-eval
//! fault-expert`), each a hand-written tonic `synod.expert.v1.Expert`
//! (not the SDK, which would refuse to send invalid outputs) with one skill
//! `work` taking and returning the benchmark node maps.
//!
//! - `fail`: a share of calls (`--fail-rate`, 30%) answer `UNAVAILABLE`.
//! - `hang`: that share never answers (sleeps an hour; the caller's
//!   deadline ends the call).
//! - `crash`: answers after `--work-ms`; the driver kills the process
//!   (SIGKILL) and starts it again on the same port while runs are in flight.
//! - `invalid`: that share answers output breaking the skill's output
//!   schema, or a confidence outside 0..1 (1.7, -0.3).
//!
//! Which calls fail is decided by a seeded hash of the call number, so a
//! run of the evaluation is reproducible in its fault pattern.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use synod_proto::expert::expert_server::{Expert, ExpertServer};
use synod_proto::expert::{
    DescribeRequest, ExpertCard, InvokeRequest, InvokeResponse, InvokeStreamMessage, Sensitivity,
    Skill,
};
use synod_proto::json::{json_to_struct, opt_struct_to_json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tonic::{Request, Response, Status};

use crate::bench::expert::node_result;
use crate::bench::runner::RuntimeChoice;
use crate::bench::transport::{node_args, node_input_schema, node_output_schema};

/// The skill every faulty expert offers.
pub const SKILL: &str = "work";
/// Names of the fault kinds, in report order.
pub const KINDS: [&str; 4] = ["fail", "hang", "crash", "invalid"];

/// A fault kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// A share of calls fail with `UNAVAILABLE` (retryable).
    Fail,
    /// A share of calls never answer.
    Hang,
    /// The process is killed and restarted mid-run.
    Crash,
    /// A share of calls return schema-violating output or an impossible confidence.
    Invalid,
}

impl FaultKind {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Fail => "fail",
            FaultKind::Hang => "hang",
            FaultKind::Crash => "crash",
            FaultKind::Invalid => "invalid",
        }
    }

    /// The expert's name (`fault-<kind>`).
    pub fn expert(self) -> String {
        format!("fault-{}", self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail" => Ok(FaultKind::Fail),
            "hang" => Ok(FaultKind::Hang),
            "crash" => Ok(FaultKind::Crash),
            "invalid" => Ok(FaultKind::Invalid),
            other => Err(format!(
                "unknown fault kind `{other}`; known: {}",
                KINDS.join(", ")
            )),
        }
    }
}

/// A uniform number in `[0, 1)` for call `n` (SplitMix64 of `seed + n`).
pub fn roll(seed: u64, n: u64) -> f64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// What one call does.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// Answer `output` with `confidence`.
    Answer {
        /// The output.
        output: Value,
        /// The confidence claimed.
        confidence: f64,
    },
    /// Fail with `UNAVAILABLE`.
    Unavailable,
    /// Never answer.
    Hang,
}

/// The behaviour of call `n` of a `kind` expert for `{node, n_inputs}`. Pure.
pub fn behaviour(
    kind: FaultKind,
    rate: f64,
    seed: u64,
    n: u64,
    node: &str,
    n_inputs: u64,
) -> Behaviour {
    let good = Behaviour::Answer {
        output: node_result(node, n_inputs),
        confidence: 1.0,
    };
    if roll(seed, n) >= rate {
        return good;
    }
    match kind {
        FaultKind::Crash => good,
        FaultKind::Fail => Behaviour::Unavailable,
        FaultKind::Hang => Behaviour::Hang,
        FaultKind::Invalid => match n % 3 {
            // `ok` missing and `node` not a string: breaks the output schema.
            0 => Behaviour::Answer {
                output: json!({"node": 42, "n_inputs": n_inputs}),
                confidence: 1.0,
            },
            1 => Behaviour::Answer {
                output: node_result(node, n_inputs),
                confidence: 1.7,
            },
            _ => Behaviour::Answer {
                output: node_result(node, n_inputs),
                confidence: -0.3,
            },
        },
    }
}

/// The expert's card: one skill `work` with the benchmark node schemas.
pub fn card(kind: FaultKind) -> anyhow::Result<ExpertCard> {
    Ok(ExpertCard {
        name: kind.expert(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        description: format!("synod-eval faulty expert: {}", kind.name()),
        skills: vec![Skill {
            name: SKILL.to_owned(),
            description: "one benchmark node execution, with faults".to_owned(),
            consumes: Vec::new(),
            produces: String::new(),
            input_schema: Some(json_to_struct(&node_input_schema())?),
            output_schema: Some(json_to_struct(&node_output_schema())?),
            cost_hint: 1.0,
            max_sensitivity: Sensitivity::Internal as i32,
            streaming: false,
        }],
        external: false,
    })
}

#[derive(Debug)]
struct Faulty {
    kind: FaultKind,
    card: ExpertCard,
    rate: f64,
    seed: u64,
    work: Duration,
    calls: AtomicU64,
}

type MessageStream =
    Pin<Box<dyn futures::Stream<Item = Result<InvokeStreamMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Expert for Faulty {
    async fn describe(&self, _: Request<DescribeRequest>) -> Result<Response<ExpertCard>, Status> {
        Ok(Response::new(self.card.clone()))
    }

    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeResponse>, Status> {
        let request = request.into_inner();
        let input = opt_struct_to_json(request.input.as_ref())
            .map_err(|e| Status::invalid_argument(format!("input is not JSON: {e}")))?;
        let (node, n_inputs) = node_args(&input);
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.work.is_zero() {
            tokio::time::sleep(self.work).await;
        }
        match behaviour(self.kind, self.rate, self.seed, n, node, n_inputs) {
            Behaviour::Unavailable => Err(Status::unavailable(format!(
                "simulated outage of {} (call {n})",
                self.card.name
            ))),
            Behaviour::Hang => {
                // Dropped when the caller gives up (its deadline).
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(Status::deadline_exceeded("hung for an hour"))
            }
            Behaviour::Answer { output, confidence } => Ok(Response::new(InvokeResponse {
                output: Some(json_to_struct(&output).map_err(|e| Status::internal(e.to_string()))?),
                confidence,
                ..Default::default()
            })),
        }
    }

    type InvokeStreamStream = MessageStream;

    async fn invoke_stream(
        &self,
        _: Request<InvokeRequest>,
    ) -> Result<Response<Self::InvokeStreamStream>, Status> {
        Err(Status::unimplemented("the faulty experts do not stream"))
    }
}

/// Arguments of the hidden `synod-eval fault-expert`.
#[derive(Debug, Clone, Args)]
pub struct FaultExpertArgs {
    /// fail, hang, crash or invalid.
    #[arg(long)]
    pub kind: String,
    /// Listen address (port 0: any; the endpoint is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// How it misbehaves.
    #[command(flatten)]
    pub fault: FaultConfig,
}

/// How the faulty experts misbehave.
#[derive(Debug, Clone, Args)]
pub struct FaultConfig {
    /// Share of calls that fail, hang or answer invalid output.
    #[arg(long, default_value_t = 0.3)]
    pub fail_rate: f64,
    /// Seed of the fault pattern.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Milliseconds every expert call works before answering.
    #[arg(long, default_value_t = 2)]
    pub work_ms: u64,
}

/// Serves one faulty expert until killed; prints `listening <endpoint>`.
pub fn serve_main(args: &FaultExpertArgs) -> anyhow::Result<()> {
    let kind: FaultKind = args.kind.parse().map_err(anyhow::Error::msg)?;
    let runtime = RuntimeChoice { worker_threads: 1 }.build()?;
    runtime.block_on(async {
        let listener = bind_retrying(args.addr).await?;
        let addr = listener.local_addr()?;
        println!("listening http://{addr}");
        let expert = Faulty {
            kind,
            card: card(kind)?,
            rate: args.fault.fail_rate,
            seed: args.fault.seed,
            work: Duration::from_millis(args.fault.work_ms),
            calls: AtomicU64::new(0),
        };
        tonic::transport::Server::builder()
            .add_service(ExpertServer::new(expert))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            )
            .await
            .context("the faulty expert's gRPC server failed")
    })
}

/// Binds `addr`, retrying for 5 s while the port is still held (a killed
/// predecessor's socket).
async fn bind_retrying(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let mut tries = 0;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(error) if tries < 100 && error.kind() == std::io::ErrorKind::AddrInUse => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error).with_context(|| format!("cannot bind {addr}")),
        }
    }
}

/// A faulty expert running as a child process of this one.
#[derive(Debug)]
pub struct ExpertProcess {
    kind: FaultKind,
    args: Vec<String>,
    exe: PathBuf,
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`: stays the same across restarts.
    pub endpoint: String,
}

impl ExpertProcess {
    /// Starts `synod-eval fault-expert --kind <kind>` on a free port.
    pub async fn spawn(kind: FaultKind, fault: &FaultConfig) -> anyhow::Result<Self> {
        let port = crate::load::harness::free_port()?;
        let args = vec![
            "fault-expert".to_owned(),
            "--kind".to_owned(),
            kind.name().to_owned(),
            "--addr".to_owned(),
            format!("127.0.0.1:{port}"),
            "--fail-rate".to_owned(),
            fault.fail_rate.to_string(),
            "--seed".to_owned(),
            fault.seed.to_string(),
            "--work-ms".to_owned(),
            fault.work_ms.to_string(),
        ];
        let mut process = ExpertProcess {
            kind,
            args,
            exe: std::env::current_exe().context("cannot find this executable")?,
            child: None,
            endpoint: String::new(),
        };
        process.start().await?;
        Ok(process)
    }

    /// Starts the process (again) and waits for its `listening` line.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let mut child = Command::new(&self.exe)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} fault-expert", self.exe.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .with_context(|| {
                format!("the {} expert did not start within 20 s", self.kind.name())
            })??;
        let Some(endpoint) = line.as_deref().and_then(|l| l.strip_prefix("listening ")) else {
            bail!(
                "the {} expert did not start (said {line:?})",
                self.kind.name()
            );
        };
        self.endpoint = endpoint.to_owned();
        self.child = Some(child);
        Ok(())
    }

    /// Kills the process with SIGKILL (a crash) and reaps it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_the_rate_of_calls_misbehave_and_the_pattern_is_reproducible() {
        let bad = (0..10_000)
            .filter(|n| behaviour(FaultKind::Fail, 0.3, 7, *n, "a", 0) == Behaviour::Unavailable)
            .count();
        assert!((2_700..3_300).contains(&bad), "{bad}");
        assert_eq!(roll(7, 123), roll(7, 123));
        assert_ne!(roll(7, 123), roll(8, 123));
        assert!((0..1000).all(|n| (0.0..1.0).contains(&roll(3, n))));
        // The integration test relies on seed 3's first call misbehaving.
        assert!(roll(3, 0) < 0.3 && roll(3, 1) < 0.3);
    }

    #[test]
    fn invalid_answers_break_the_schema_or_the_confidence_range() {
        let bad: Vec<Behaviour> = (0..300)
            .map(|n| behaviour(FaultKind::Invalid, 0.3, 1, n, "b0", 1))
            .filter(|b| !matches!(b, Behaviour::Answer { confidence, output } if *confidence == 1.0 && output["ok"] == true))
            .collect();
        assert!(!bad.is_empty());
        for b in &bad {
            let Behaviour::Answer { output, confidence } = b else {
                panic!("{b:?}");
            };
            assert!(
                output["node"].is_number() || !(0.0..=1.0).contains(confidence),
                "{b:?}"
            );
        }
        // Crash and rate 0 never misbehave in the call itself.
        assert!((0..100).all(|n| matches!(
            behaviour(FaultKind::Crash, 0.3, 1, n, "a", 0),
            Behaviour::Answer { confidence, .. } if confidence == 1.0
        )));
        assert!((0..100).all(|n| !matches!(
            behaviour(FaultKind::Hang, 0.0, 1, n, "a", 0),
            Behaviour::Hang
        )));
    }

    #[test]
    fn the_card_offers_work_with_the_node_schemas() {
        let card = card(FaultKind::Hang).unwrap();
        assert_eq!(card.name, "fault-hang");
        assert_eq!(card.skills[0].name, SKILL);
        assert!(card.skills[0].output_schema.is_some());
        assert_eq!("invalid".parse::<FaultKind>(), Ok(FaultKind::Invalid));
        assert!("boom".parse::<FaultKind>().unwrap_err().contains("hang"));
    }
}
