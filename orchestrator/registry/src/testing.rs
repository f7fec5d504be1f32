//! Test support: small experts served over real gRPC on 127.0.0.1:0, each
//! on its own runtime thread so a test can kill one outright (dropping the
//! runtime closes its listener and every connection).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use synod_executor::Invocation;
use synod_proto::expert::expert_server::{Expert, ExpertServer};
use synod_proto::expert::{
    DescribeRequest, ExpertCard, InvokeRequest, InvokeResponse, InvokeStreamMessage, Skill,
};
use synod_proto::json::json_to_struct;
use synod_types::{RunId, SkillRef, StepId};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tonic_health::server::HealthReporter;

/// What a fake expert does with one `Invoke`.
pub(crate) type Handler = Arc<
    dyn Fn(InvokeRequest) -> Pin<Box<dyn Future<Output = Result<InvokeResponse, Status>> + Send>>
        + Send
        + Sync,
>;

/// A handler from an async closure.
pub(crate) fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(InvokeRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<InvokeResponse, Status>> + Send + 'static,
{
    Arc::new(move |request| Box::pin(f(request)))
}

/// A response carrying `output` with `confidence`.
pub(crate) fn response(output: Value, confidence: f64) -> InvokeResponse {
    InvokeResponse {
        output: Some(json_to_struct(&output).unwrap()),
        confidence,
        ..Default::default()
    }
}

/// Always answers `{"alerts": []}` with confidence 0.9.
pub(crate) fn ok_handler() -> Handler {
    handler(|_| async { Ok(response(json!({"alerts": []}), 0.9)) })
}

/// The card of the test expert `det`: skill `detect` must output
/// `{"alerts": [{"id": string}, ...]}`.
pub(crate) fn detector_card(name: &str) -> ExpertCard {
    let output_schema = json!({
        "type": "object",
        "required": ["alerts"],
        "properties": {
            "alerts": {
                "type": "array",
                "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
            }
        }
    });
    ExpertCard {
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        description: "test detector".to_owned(),
        skills: vec![Skill {
            name: "detect".to_owned(),
            description: "finds alerts".to_owned(),
            consumes: vec!["events".to_owned()],
            produces: "alerts".to_owned(),
            input_schema: Some(json_to_struct(&json!({"type": "object"})).unwrap()),
            output_schema: Some(json_to_struct(&output_schema).unwrap()),
            cost_hint: 1.5,
            ..Default::default()
        }],
        external: false,
    }
}

/// An invocation of `uses` with `deadline`.
pub(crate) fn invocation(uses: &str, deadline: Duration) -> Invocation {
    Invocation {
        run_id: RunId::new(),
        step: StepId::new("detect"),
        attempt: 1,
        round: 0,
        feedback: Vec::new(),
        uses: uses.parse::<SkillRef>().unwrap(),
        input: json!({"events": [{"EventID": 1}]}),
        deadline,
    }
}

/// What the fake expert saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// `Invoke` calls received.
    pub(crate) calls: AtomicUsize,
    /// The last `Invoke` request and its `grpc-timeout` header.
    pub(crate) last: Mutex<Option<(InvokeRequest, Option<String>)>>,
}

struct FakeExpert {
    card: ExpertCard,
    handler: Handler,
    seen: Arc<Seen>,
}

#[tonic::async_trait]
impl Expert for FakeExpert {
    async fn describe(
        &self,
        _request: Request<DescribeRequest>,
    ) -> Result<Response<ExpertCard>, Status> {
        Ok(Response::new(self.card.clone()))
    }

    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeResponse>, Status> {
        let timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let request = request.into_inner();
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        *self.seen.last.lock().unwrap() = Some((request.clone(), timeout));
        (self.handler)(request).await.map(Response::new)
    }

    type InvokeStreamStream =
        Pin<Box<dyn futures::Stream<Item = Result<InvokeStreamMessage, Status>> + Send>>;

    async fn invoke_stream(
        &self,
        _request: Request<InvokeRequest>,
    ) -> Result<Response<Self::InvokeStreamStream>, Status> {
        Err(Status::unimplemented("the test expert does not stream"))
    }
}

/// A running fake expert.
pub(crate) struct TestExpert {
    /// `http://127.0.0.1:<port>`.
    pub(crate) endpoint: String,
    /// What it saw.
    pub(crate) seen: Arc<Seen>,
    /// Its health service, when started with one.
    pub(crate) health: Option<HealthReporter>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestExpert {
    /// Serves `card` with `handler`, plus `grpc.health.v1` (serving) when
    /// `with_health`.
    pub(crate) fn start(card: ExpertCard, handler: Handler, with_health: bool) -> TestExpert {
        let address: SocketAddr = "127.0.0.1:0".parse().unwrap();
        TestExpert::start_on(address, card, handler, with_health)
    }

    /// Like [`TestExpert::start`], on `address`.
    pub(crate) fn start_on(
        address: SocketAddr,
        card: ExpertCard,
        handler: Handler,
        with_health: bool,
    ) -> TestExpert {
        let listener = std::net::TcpListener::bind(address).unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let (health, health_service) = if with_health {
            let (reporter, service) = tonic_health::server::health_reporter();
            (Some(reporter), Some(service))
        } else {
            (None, None)
        };
        let expert = FakeExpert {
            card,
            handler,
            seen: seen.clone(),
        };
        let reporter = health.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Some(reporter) = &reporter {
                    reporter.set_serving::<ExpertServer<FakeExpert>>().await;
                }
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::spawn(
                    Server::builder()
                        .add_optional_service(health_service)
                        .add_service(ExpertServer::new(expert))
                        .serve_with_incoming(TcpIncoming::from(listener)),
                );
                ready_tx.send(()).unwrap();
                let _ = stopped.await;
            });
            // Dropping the runtime drops the server and every connection task.
            drop(runtime);
        });
        ready_rx.recv().unwrap();
        TestExpert {
            endpoint,
            seen,
            health,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Kills the server: listener and connections close at once.
    pub(crate) fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }

    /// `Invoke` calls received so far.
    pub(crate) fn calls(&self) -> usize {
        self.seen.calls.load(Ordering::SeqCst)
    }
}

impl Drop for TestExpert {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `condition` every 10ms until it holds; panics after 10s.
pub(crate) async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}
