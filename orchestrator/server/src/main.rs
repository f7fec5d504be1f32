//! The `synod` command: orchestrator server, reference experts and CLI.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use synod_server::cli::{self, Output};

/// synod: a collaboration-of-experts orchestrator for security operations.
///
/// Quick start:
///   synod up                                   # orchestrator + demo experts on loopback
///   synod run workflows/ioc-triage.yaml --input workflows/examples/ioc-triage.input.json
///   synod runs watch <run id>                  # live events (reconnect with --from-seq N)
///   curl -N -H "Authorization: Bearer $(cat synod-admin.token)" \
///        localhost:7180/runs/<run id>/events     # the same events as SSE
///
/// Access control is on: `synod serve`/`synod up` write an admin token to
/// ./synod-admin.token on first start, which the CLI sends automatically;
/// see `synod token --help` for tokens for people and experts.
#[derive(Debug, Parser)]
#[command(name = "synod", version, about, long_about, verbatim_doc_comment)]
struct Cli {
    /// API token to send (default: $SYNOD_TOKEN, else the file
    /// $SYNOD_TOKEN_FILE or ./synod-admin.token).
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args, Clone)]
struct ServerArgs {
    /// gRPC listen address (experts register here; CLI clients connect here).
    #[arg(long, env = "SYNOD_GRPC_ADDR", default_value = "127.0.0.1:7100")]
    grpc_addr: SocketAddr,
    /// HTTP listen address (JSON API, SSE event streams).
    #[arg(long, env = "SYNOD_HTTP_ADDR", default_value = "127.0.0.1:7180")]
    http_addr: SocketAddr,
    /// Expert endpoint to register at start and never expire (repeatable),
    /// e.g. `--expert http://10.0.0.5:7101`.
    #[arg(long = "expert", value_name = "URL")]
    experts: Vec<String>,
    /// Workflow file or directory of `*.yaml` to store at start (repeatable);
    /// stored workflows can be started by name.
    #[arg(long = "workflows", value_name = "PATH")]
    workflows: Vec<PathBuf>,
    /// Most step attempts in flight per run.
    #[arg(long, default_value_t = 64)]
    max_concurrency: usize,
    /// Deadline of one step attempt unless the workflow sets `timeout`, e.g. `30s`.
    #[arg(long, default_value = "60s")]
    step_timeout: synod_types::HumanDuration,
    /// Where runs and their events are kept: `sqlite://PATH` (the default,
    /// one file, WAL, fsync per commit), `postgres://USER@HOST/DB`, or
    /// `memory:` (lost on exit). Unfinished runs found there at start are
    /// resumed.
    #[arg(
        long,
        env = "SYNOD_DATABASE_URL",
        default_value = "sqlite://synod.db",
        value_name = "URL"
    )]
    database_url: String,
    /// This replica's id in run leases; replicas sharing one PostgreSQL
    /// database need distinct ids (default: `<host>/<gRPC address>`).
    #[arg(long, env = "SYNOD_REPLICA_ID")]
    replica_id: Option<String>,
    /// Delete finished runs (and their events) older than this, e.g. `30d`;
    /// by default runs are kept.
    #[arg(long, value_name = "DURATION")]
    retain: Option<synod_types::HumanDuration>,
    /// Destination workflow bindings may be sent to (repeatable):
    /// `[scheme://]host[:port]`, e.g. `https://tickets.example.org` or
    /// `https://*.example.com`. Without any, every binding is refused.
    #[arg(long = "allow-destination", value_name = "RULE")]
    allowed_destinations: Vec<String>,
    /// Directory of binding secrets, one file per secret name (besides the
    /// `SYNOD_SECRET_<NAME>` environment variables).
    #[arg(long, env = "SYNOD_SECRETS_DIR", value_name = "DIR")]
    secrets_dir: Option<PathBuf>,
    /// Export OpenTelemetry traces over OTLP/HTTP to this collector, e.g.
    /// `http://localhost:4318` (Jaeger, Tempo, otel-collector): one trace
    /// per run. Default: the OTEL_EXPORTER_OTLP_ENDPOINT variable; with
    /// neither, no traces are made.
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Access control: `enabled` (every call needs an API token with the
    /// right role) or `disabled` (every call is allowed; refused unless
    /// both addresses are loopback, and logged as a warning).
    #[arg(long, env = "SYNOD_AUTH", default_value = "enabled", value_parser = ["enabled", "disabled"])]
    auth: String,
    /// Where the first admin token is written (mode 0600) when no token
    /// exists yet (default: synod-admin.token next to the SQLite database,
    /// else in the current directory). The CLI reads it from there.
    #[arg(long, env = "SYNOD_ADMIN_TOKEN_FILE", value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Requests per token: `N/s[:BURST]` (e.g. `50/s:200`, the default), or
    /// `off`. Over it, calls get HTTP 429 / gRPC RESOURCE_EXHAUSTED with a
    /// retry-after.
    #[arg(long, default_value = "50/s:200", value_name = "RATE")]
    rate_limit: String,
    /// LLM planner (`synod task` with an expert offering `plan`): how many
    /// times an invalid plan is sent back for repair before the typed
    /// planner is used.
    #[arg(
        long,
        env = "SYNOD_PLAN_REPAIRS",
        default_value_t = 2,
        value_name = "N"
    )]
    plan_repairs: u32,
    /// LLM planner: most steps a plan may have.
    #[arg(long, default_value_t = 12, value_name = "N")]
    plan_max_steps: usize,
    /// LLM planner: highest total declared cost (sum of the skills' cost hints).
    #[arg(long, default_value_t = 100.0, value_name = "COST")]
    plan_max_cost: f64,
}

#[derive(Debug, Args, Clone)]
struct ClientArgs {
    /// Orchestrator gRPC endpoint.
    #[arg(long, env = "SYNOD_SERVER", default_value = "http://127.0.0.1:7100")]
    server: String,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the orchestrator (gRPC + HTTP). Experts register themselves, or
    /// are listed with --expert.
    Serve(ServerArgs),
    /// Run the orchestrator together with the demo experts, all on loopback.
    ///
    /// The experts are real gRPC servers on 127.0.0.1 ephemeral ports,
    /// registered with the orchestrator. Stop with Ctrl-C.
    Up {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Run one workflow and show its progress and result.
    ///
    /// Uses the orchestrator at --server if one answers there; otherwise (or
    /// with --embedded) starts an embedded orchestrator with the demo experts
    /// for this one run.
    ///
    /// Example:
    ///   synod run workflows/ioc-triage.yaml --input workflows/examples/ioc-triage.input.json
    #[command(verbatim_doc_comment)]
    Run {
        /// The workflow YAML file.
        workflow: PathBuf,
        /// JSON file with the inputs object (`-` for stdin).
        #[arg(long, short = 'i', value_name = "FILE")]
        input: Option<PathBuf>,
        /// Set one input, `name=value` (value parsed as JSON, else a string); repeatable.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Always start an embedded orchestrator, even if one is running.
        #[arg(long)]
        embedded: bool,
        /// Do not draw a progress bar (events are printed as lines).
        #[arg(long)]
        no_progress: bool,
        /// Run the steps on an embedded orchestrator and print every binding
        /// request as it would be sent, without sending it (no approvals).
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Plan and run a task with no workflow file.
    ///
    /// With an expert offering a `plan` skill registered (the `llm` expert,
    /// served when SYNOD_LLM_ENDPOINT is set) the LLM planner asks it for a
    /// plan over the registered skills, validates it (skills exist, inputs
    /// bind, types match, acyclic, within budget) and sends the problems back
    /// for repair up to 2 times; an invalid plan never runs, and the typed
    /// planner is used when no plan is valid. Each attempt is printed.
    ///
    /// The typed planner chains registered skills through artifact types from the
    /// inputs you give (each input is named after its artifact type, e.g.
    /// `events`) to the goal: `--goal <artifact>`, or derived from the text by
    /// intent rules ("recommend containment" -> response_plan, "root cause"
    /// -> attack_chain, "detect" -> alerts, ...). The plan and why each step
    /// was chosen are printed and recorded as the run's `run_planned` event.
    ///
    /// Examples:
    ///   synod task "extract the indicators" --goal iocs --input text=@note.txt
    ///   synod task "investigate these logs and recommend containment" --input events=@logs.json
    #[command(verbatim_doc_comment)]
    Task {
        /// What you want, in words.
        text: String,
        /// The artifact type to produce (default: derived from the text).
        #[arg(long, value_name = "ARTIFACT")]
        goal: Option<String>,
        /// The planner: `llm` or `typed` (default: `llm` when a registered
        /// expert offers a `plan` skill, else `typed`).
        #[arg(long, value_name = "llm|typed", value_parser = ["llm", "typed"])]
        planner: Option<String>,
        /// An input, `NAME=@FILE` (JSON, or text if not JSON) or `NAME=VALUE`; repeatable.
        #[arg(long = "input", short = 'i', value_name = "NAME=@FILE|NAME=VALUE")]
        inputs: Vec<String>,
        /// Always start an embedded orchestrator, even if one is running.
        #[arg(long)]
        embedded: bool,
        /// Do not draw a progress bar (events are printed as lines).
        #[arg(long)]
        no_progress: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Inspect and control runs on a running orchestrator.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Inspect registered experts.
    Experts {
        #[command(subcommand)]
        command: ExpertsCommand,
    },
    /// Check a workflow file and report every problem with file:line:col.
    ///
    /// Offline by default (syntax, fields, references, cycles). With
    /// --server, also checks experts and skills against the running
    /// orchestrator's registry. Exit code 1 when there are errors.
    Validate {
        /// The workflow YAML file.
        workflow: PathBuf,
        /// Check against this orchestrator's registry too.
        #[arg(long, env = "SYNOD_VALIDATE_SERVER")]
        server: Option<String>,
        /// Print diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reference experts.
    Expert {
        #[command(subcommand)]
        command: ExpertCommand,
    },
    /// API tokens: create, list, revoke.
    ///
    /// Roles: viewer (read runs, events, experts, metrics), operator (+ start
    /// and cancel runs, workflows), approver (+ approve/reject bindings),
    /// expert (register expert instances), admin (everything). Other names
    /// (e.g. soc-lead) are approval groups a workflow's `approval.roles` can
    /// require. These commands work on the server's database directly
    /// (--database-url), so they need no token and work before the server
    /// starts; a running server sees changes on the next call.
    ///
    /// Examples:
    ///   synod token create --subject alice --role operator --role approver --expires 30d
    ///   synod token create --subject detector-1 --role expert   # for SYNOD_TOKEN of an expert
    ///   synod token list
    ///   synod token revoke 3f9c0a1b2c3d4e5f
    #[command(verbatim_doc_comment)]
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Args, Clone)]
struct StoreArgs {
    /// The server's database (see `synod serve --help`).
    #[arg(
        long,
        env = "SYNOD_DATABASE_URL",
        default_value = "sqlite://synod.db",
        value_name = "URL"
    )]
    database_url: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it (shown only this once; only its hash is stored).
    Create {
        /// Who holds it (a person or a service); named in audit entries.
        #[arg(long)]
        subject: String,
        /// A role (repeatable): viewer, operator, approver, expert, admin,
        /// or an approval group name.
        #[arg(long = "role", required = true, value_name = "ROLE")]
        roles: Vec<String>,
        /// Validity, e.g. `30d`, `12h` (default: until revoked).
        #[arg(long, value_name = "DURATION")]
        expires: Option<synod_types::HumanDuration>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List tokens (ids, subjects, roles, state; never secrets).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by id; calls with it are refused from then on.
    Revoke {
        /// The token id (`synod token list`).
        token_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// Newest runs first.
    List {
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One run with its steps and result.
    Get {
        /// Run id.
        run_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stream a run's events live; resume after a disconnect with --from-seq.
    Watch {
        /// Run id.
        run_id: String,
        /// Deliver events after this sequence number (the last one you saw).
        #[arg(long, default_value_t = 0)]
        from_seq: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the events a run has recorded so far (after --from-seq) and exit;
    /// unlike `watch`, does not wait for the run to end. `--json` prints each
    /// event as CloudEvents JSON, one per line.
    Events {
        /// Run id.
        run_id: String,
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        from_seq: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve a binding waiting for approval; it is sent at once.
    Approve {
        /// Run id.
        run_id: String,
        /// The binding's name.
        binding: String,
        /// Why (recorded in the run's events).
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reject a binding waiting for approval; it is never sent and the run fails.
    Reject {
        /// Run id.
        run_id: String,
        /// The binding's name.
        binding: String,
        /// Why (recorded in the run's events and its error).
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a running run.
    Cancel {
        /// Run id.
        run_id: String,
        /// Why (recorded in the run's events).
        #[arg(long, default_value = "cancelled from the CLI")]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ExpertsCommand {
    /// Registered experts with their skills and instance health.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ExpertCommand {
    /// Serve one reference expert over gRPC and register it with an orchestrator.
    Serve {
        /// Expert name (see `synod expert names`).
        name: String,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        /// Orchestrator to register with (omit to serve without registering).
        #[arg(long, env = "SYNOD_SERVER")]
        orchestrator: Option<String>,
    },
    /// List the reference experts this binary can serve.
    Names,
}

impl ServerArgs {
    fn store_options(&self) -> cli::StoreOptions {
        cli::StoreOptions {
            database_url: self.database_url.clone(),
            retain: self.retain.map(|retain| retain.get()),
        }
    }

    /// `synod serve` (`with_demo_experts`: `synod up`).
    async fn serve(self, with_demo_experts: bool) -> anyhow::Result<()> {
        let telemetry = synod_server::telemetry::start_tracing(
            self.otlp_endpoint.as_deref(),
            synod_server::telemetry::SERVICE_NAME,
        )?;
        let store = self.store_options();
        cli::serve(
            traced(self.into_config()?, telemetry),
            with_demo_experts,
            store,
        )
        .await
    }

    fn auth_config(&self) -> anyhow::Result<synod_server::auth::AuthConfig> {
        let rate_limit = match self.rate_limit.as_str() {
            "off" => None,
            text => Some(
                synod_server::auth::RateLimit::parse(text)
                    .map_err(anyhow::Error::msg)
                    .context("--rate-limit")?,
            ),
        };
        let bootstrap_token_file = self.admin_token_file.clone().unwrap_or_else(|| {
            let name = synod_server::auth::client::BOOTSTRAP_TOKEN_FILE_NAME;
            match synod_store::StoreUrl::parse(&self.database_url) {
                Ok(synod_store::StoreUrl::Sqlite(path)) => path
                    .parent()
                    .map(|dir| dir.join(name))
                    .unwrap_or_else(|| PathBuf::from(name)),
                _ => PathBuf::from(name),
            }
        });
        Ok(synod_server::auth::AuthConfig {
            enabled: self.auth == "enabled",
            bootstrap_token_file: Some(bootstrap_token_file),
            rate_limit,
        })
    }

    fn into_config(self) -> anyhow::Result<synod_server::app::ServerConfig> {
        let auth = self.auth_config()?;
        anyhow::ensure!(
            self.plan_max_cost.is_finite() && self.plan_max_cost > 0.0,
            "--plan-max-cost must be a positive number, got {}",
            self.plan_max_cost
        );
        let mut config = synod_server::app::ServerConfig {
            grpc_addr: self.grpc_addr,
            http_addr: self.http_addr,
            static_experts: self.experts,
            workflow_paths: self.workflows,
            allowed_destinations: self.allowed_destinations,
            secrets_dir: self.secrets_dir,
            replica_id: self.replica_id,
            auth,
            llm_planner: synod_planner::LlmPlannerConfig {
                max_repairs: self.plan_repairs,
                max_steps: self.plan_max_steps.max(1),
                max_cost: self.plan_max_cost,
            },
            ..Default::default()
        };
        config.executor.max_concurrency = self.max_concurrency.max(1);
        config.executor.default_timeout = self.step_timeout.get();
        Ok(config)
    }
}

/// `config` exporting traces with `telemetry`.
fn traced(
    mut config: synod_server::app::ServerConfig,
    telemetry: Option<synod_expert_sdk::Telemetry>,
) -> synod_server::app::ServerConfig {
    config.telemetry = telemetry;
    config
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    synod_server::auth::client::set_cli_token(cli.token.clone());
    let verbose = matches!(
        cli.command,
        Command::Serve(_) | Command::Up { .. } | Command::Expert { .. }
    );
    synod_server::telemetry::init(if verbose { "info" } else { "warn" });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<std::process::ExitCode> {
    let ok = std::process::ExitCode::SUCCESS;
    match command {
        Command::Serve(args) => args.serve(false).await.map(|()| ok),
        Command::Up { server } => server.serve(true).await.map(|()| ok),
        Command::Run {
            workflow,
            input,
            set,
            embedded,
            no_progress,
            dry_run,
            client,
        } => {
            let inputs = cli::read_inputs(input.as_deref(), &set)?;
            let source = std::fs::read_to_string(&workflow)
                .with_context(|| format!("cannot read workflow file {}", workflow.display()))?;
            let file = workflow.display().to_string();
            if dry_run {
                return synod_server::bindings::run_dry(&source, &file, inputs, client.json).await;
            }
            let output = Output::new(client.json, !no_progress);
            cli::run(cli::RunRequest {
                what: cli::RunWhat::Workflow { source, file },
                inputs,
                server: client.server,
                embedded,
                output,
            })
            .await
        }
        Command::Task {
            text,
            goal,
            planner,
            inputs,
            embedded,
            no_progress,
            client,
        } => {
            let inputs = cli::read_named_inputs(&inputs)?;
            let output = Output::new(client.json, !no_progress);
            cli::run(cli::RunRequest {
                what: cli::RunWhat::Task {
                    text,
                    goal_type: goal,
                    planner: planner.unwrap_or_default(),
                },
                inputs,
                server: client.server,
                embedded,
                output,
            })
            .await
        }
        Command::Runs { command } => match command {
            RunsCommand::List { limit, client } => {
                cli::runs_list(&client.server, limit, client.json)
                    .await
                    .map(|()| ok)
            }
            RunsCommand::Get { run_id, client } => {
                cli::runs_get(&client.server, &run_id, client.json)
                    .await
                    .map(|()| ok)
            }
            RunsCommand::Watch {
                run_id,
                from_seq,
                client,
            } => cli::runs_watch(&client.server, &run_id, from_seq, client.json).await,
            RunsCommand::Events {
                run_id,
                from_seq,
                client,
            } => cli::runs_events(&client.server, &run_id, from_seq, client.json)
                .await
                .map(|()| ok),
            RunsCommand::Approve {
                run_id,
                binding,
                comment,
                client,
            } => synod_server::approvals::decide_from_cli(
                &client.server,
                &run_id,
                &binding,
                true,
                &comment,
                client.json,
            )
            .await
            .map(|()| ok),
            RunsCommand::Reject {
                run_id,
                binding,
                comment,
                client,
            } => synod_server::approvals::decide_from_cli(
                &client.server,
                &run_id,
                &binding,
                false,
                &comment,
                client.json,
            )
            .await
            .map(|()| ok),
            RunsCommand::Cancel {
                run_id,
                reason,
                client,
            } => cli::runs_cancel(&client.server, &run_id, &reason, client.json)
                .await
                .map(|()| ok),
        },
        Command::Experts {
            command: ExpertsCommand::List { client },
        } => cli::experts_list(&client.server, client.json)
            .await
            .map(|()| ok),
        Command::Validate {
            workflow,
            server,
            json,
        } => cli::validate(&workflow, server.as_deref(), json).await,
        Command::Token { command } => match command {
            TokenCommand::Create {
                subject,
                roles,
                expires,
                store,
            } => synod_server::auth::commands::create(
                &store.database_url,
                &subject,
                &roles,
                expires.map(|e| e.get()),
                store.json,
            )
            .await
            .map(|()| ok),
            TokenCommand::List { store } => {
                synod_server::auth::commands::list(&store.database_url, store.json)
                    .await
                    .map(|()| ok)
            }
            TokenCommand::Revoke { token_id, store } => {
                synod_server::auth::commands::revoke(&store.database_url, &token_id, store.json)
                    .await
                    .map(|()| ok)
            }
        },
        Command::Expert { command } => match command {
            ExpertCommand::Serve {
                name,
                addr,
                orchestrator,
            } => cli::expert_serve(&name, addr, orchestrator)
                .await
                .map(|()| ok),
            ExpertCommand::Names => {
                cli::expert_names();
                Ok(ok)
            }
        },
    }
}
