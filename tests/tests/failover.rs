//! Two instances of one expert, one stopped mid-run: the later steps move to
//! the live instance and the run succeeds.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use synod_integration_tests::events::{check_complete_after, failures, instance, output};
use synod_integration_tests::experts::{gate_expert, serve, worker_expert};
use synod_integration_tests::{TestOrchestrator, eventually, fast_config};
use synod_proto::orchestrator::{InstanceHealth, RunStatus};
use synod_types::{ErrorCode, RunEventKind};

/// Four steps spread over both instances, a gate the test holds while it
/// stops one instance, then four steps that must all land on the survivor.
const FAILOVER: &str = r#"
name: failover
steps:
  warm1: { uses: worker/work, with: { n: 1 } }
  warm2: { uses: worker/work, with: { n: 2 } }
  warm3: { uses: worker/work, with: { n: 3 } }
  warm4: { uses: worker/work, with: { n: 4 } }
  hold:
    needs: [warm1, warm2, warm3, warm4]
    uses: gate/wait
  after1:
    needs: [hold]
    uses: worker/work
    with: { n: 11 }
    retry: { policy: fixed, interval: 50ms, max_attempts: 6 }
  after2:
    needs: [hold]
    uses: worker/work
    with: { n: 12 }
    retry: { policy: fixed, interval: 50ms, max_attempts: 6 }
  after3:
    needs: [after1, after2]
    uses: worker/work
    with: { n: 13 }
    retry: { policy: fixed, interval: 50ms, max_attempts: 6 }
  after4:
    needs: [after3]
    uses: worker/work
    with: { n: 14 }
    retry: { policy: fixed, interval: 50ms, max_attempts: 6 }
"#;

const WARM: [&str; 4] = ["warm1", "warm2", "warm3", "warm4"];
const AFTER: [&str; 4] = ["after1", "after2", "after3", "after4"];

/// Instance id of the instance serving at `endpoint`.
async fn instance_id(
    orchestrator: &TestOrchestrator,
    endpoint: &str,
) -> anyhow::Result<Option<String>> {
    let instance = orchestrator.instance_at(endpoint).await?;
    Ok(instance.map(|instance| instance.instance_id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_move_to_the_live_instance_when_one_is_stopped() -> anyhow::Result<()> {
    let first = serve(worker_expert("first")).await?;
    let second = serve(worker_expert("second")).await?;
    let (gate_builder, gate) = gate_expert();
    let gate_server = serve(gate_builder).await?;
    let orchestrator =
        TestOrchestrator::start(&[first.endpoint(), second.endpoint(), gate_server.endpoint()])
            .await?;
    let first_id = instance_id(&orchestrator, first.endpoint()).await?;
    let second_id = instance_id(&orchestrator, second.endpoint()).await?;
    let (Some(first_id), Some(second_id)) = (first_id, second_id) else {
        anyhow::bail!("both worker instances should be registered");
    };

    let run_id = orchestrator.start_run(FAILOVER, Value::Null).await?;
    gate.wait_entered(1).await?;
    first.shutdown().await?;
    gate.open();
    let run = orchestrator.finish(&run_id).await?;

    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    // Before the stop, both instances took traffic.
    let mut before = BTreeSet::new();
    for step in WARM {
        before.insert(instance(&run.events, step)?);
    }
    assert_eq!(
        before,
        BTreeSet::from([first_id.clone(), second_id.clone()]),
        "the warm-up steps should use both instances"
    );
    // Attempts sent to the stopped instance failed retryably and were retried.
    for step in AFTER {
        for (attempt, error, will_retry) in failures(&run.events, step) {
            assert!(will_retry, "{step} attempt {attempt}: {error}");
            assert_eq!(error.code, ErrorCode::ExpertTransient, "{error:?}");
            assert!(error.message.contains(&first_id), "{step}: {error}");
        }
    }
    // After it, every step was served by the live one.
    for step in AFTER {
        assert_eq!(instance(&run.events, step)?, second_id, "step {step}");
        assert_eq!(output(&run.events, step)?["served_by"], "second");
    }
    // The registry reports the stopped static instance as not healthy.
    eventually("the stopped instance to be reported unhealthy", || async {
        let experts = orchestrator.experts().await?;
        let health = experts
            .iter()
            .flat_map(|e| &e.instances)
            .find(|i| i.instance_id == first_id)
            .map(|i| i.health);
        Ok(health.filter(|h| *h != InstanceHealth::Healthy as i32))
    })
    .await?;
    orchestrator.shutdown().await?;
    second.shutdown().await?;
    gate_server.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_instance_stops_receiving_calls() -> anyhow::Result<()> {
    let orchestrator = TestOrchestrator::start_with(fast_config()).await?;
    let url = orchestrator.grpc_url();
    let first = serve(worker_expert("first").register_with(&url)).await?;
    let second = serve(worker_expert("second").register_with(&url)).await?;
    let (gate_builder, gate) = gate_expert();
    let gate_server = serve(gate_builder.register_with(&url)).await?;
    let second_id = eventually("both workers and the gate to register", || async {
        let first_id = instance_id(&orchestrator, first.endpoint()).await?;
        let second_id = instance_id(&orchestrator, second.endpoint()).await?;
        let gate_id = instance_id(&orchestrator, gate_server.endpoint()).await?;
        Ok(second_id.filter(|_| first_id.is_some() && gate_id.is_some()))
    })
    .await?;

    let run_id = orchestrator.start_run(FAILOVER, Value::Null).await?;
    gate.wait_entered(1).await?;
    // Graceful stop: the SDK deregisters before the server goes away.
    first.shutdown().await?;
    let remaining: Vec<String> = orchestrator
        .experts()
        .await?
        .iter()
        .filter(|e| e.card.as_ref().is_some_and(|c| c.name == "worker"))
        .flat_map(|e| e.instances.iter().map(|i| i.instance_id.clone()))
        .collect();
    assert_eq!(
        remaining,
        std::slice::from_ref(&second_id),
        "the stopped instance deregistered"
    );
    gate.open();
    let run = orchestrator.finish(&run_id).await?;

    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    for step in AFTER {
        assert_eq!(instance(&run.events, step)?, second_id, "step {step}");
        // Nothing was sent to the deregistered instance: no failed attempt.
        assert_eq!(run.step(step)?.attempts, 1, "step {step}");
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        orchestrator.shutdown().await?;
        second.shutdown().await?;
        gate_server.shutdown().await?;
        Ok::<(), anyhow::Error>(())
    })
    .await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_waits_out_an_expert_restart_through_retries() -> anyhow::Result<()> {
    let orchestrator = TestOrchestrator::start_with(fast_config()).await?;
    let url = orchestrator.grpc_url();
    let old = serve(worker_expert("old").register_with(&url)).await?;
    let (gate_builder, gate) = gate_expert();
    let gate_server = serve(gate_builder.register_with(&url)).await?;
    eventually("the worker and the gate to register", || async {
        let experts = orchestrator.experts().await?;
        let names: BTreeSet<String> = experts
            .iter()
            .filter_map(|e| e.card.as_ref().map(|c| c.name.clone()))
            .collect();
        Ok((names.contains("worker") && names.contains("gate")).then_some(()))
    })
    .await?;
    let workflow = r#"
name: restart
steps:
  hold: { uses: gate/wait }
  after:
    needs: [hold]
    uses: worker/work
    with: { n: 1 }
    retry: { policy: fixed, interval: 50ms, max_attempts: 100 }
"#;
    let run_id = orchestrator.start_run(workflow, Value::Null).await?;
    gate.wait_entered(1).await?;

    // The only instance leaves; the step fails retryably while none is there.
    old.shutdown().await?;
    gate.open();
    let failed = orchestrator
        .wait_for_event(&run_id, "a failed attempt of `after`", |kind| {
            matches!(kind, RunEventKind::StepFailed { step, .. } if step.as_str() == "after")
        })
        .await?;
    let RunEventKind::StepFailed {
        error, will_retry, ..
    } = &failed.kind
    else {
        unreachable!("matched above");
    };
    assert!(will_retry);
    assert_eq!(error.code, ErrorCode::ExpertUnavailable, "{error:?}");
    assert!(error.message.contains("no registered instance"), "{error}");
    // A new instance registers; the next retry lands on it.
    let new = serve(worker_expert("new").register_with(&url)).await?;
    let run = orchestrator.finish(&run_id).await?;

    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    assert_eq!(output(&run.events, "after")?["served_by"], "new");
    assert!(run.step("after")?.attempts >= 2);
    orchestrator.shutdown().await?;
    new.shutdown().await?;
    gate_server.shutdown().await?;
    Ok(())
}
