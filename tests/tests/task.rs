//! Planner-driven runs (`synod task`): the typed planner chains the demo
//! experts' skills from the given artifact types to the goal, over gRPC.

use synod_integration_tests::events::{check_complete_after, chosen_skills};
use synod_integration_tests::{TestOrchestrator, fast_config};
use synod_proto::orchestrator::{ListRunsRequest, RunStatus, StartRunRequest, start_run_request};
use synod_server::demo::start_demo_experts;
use synod_types::RunEventKind;

fn task_request(text: &str, goal_type: &str, inputs: serde_json::Value) -> StartRunRequest {
    StartRunRequest {
        source: Some(start_run_request::Source::Goal(text.to_owned())),
        inputs: Some(synod_proto::json::json_to_struct(&inputs).unwrap()),
        file_name: String::new(),
        goal_type: goal_type.to_owned(),
        planner: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_planned_through_artifact_types_explained_and_run() -> anyhow::Result<()> {
    let experts = start_demo_experts().await?;
    let mut config = fast_config();
    config.static_experts = experts.iter().map(|e| e.endpoint.clone()).collect();
    let orchestrator = TestOrchestrator::start_with(config).await?;
    let note = "beacon to 185.220.101.47 and login-micros0ft[.]com from 10.20.4.17";

    // Goal from the text's intent ("report" -> report).
    let run_id = orchestrator
        .runs()
        .start_run(task_request(
            "write a report on this note",
            "",
            serde_json::json!({ "text": note }),
        ))
        .await?
        .into_inner()
        .run_id;
    let run = orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    let RunEventKind::RunPlanned {
        planner,
        goal,
        choices,
        ..
    } = &run.events[1].kind
    else {
        panic!("the second event is the plan: {:#?}", run.events[1]);
    };
    assert_eq!((planner.as_str(), goal.as_str()), ("typed", "report"));
    let uses = chosen_skills(choices);
    // classify-domains and classify-ips tie; the name breaks the tie.
    assert_eq!(
        uses,
        ["ioc/extract", "ioc/classify-domains", "report/summarize"]
    );
    assert!(
        choices[1]["reason"]
            .as_str()
            .unwrap()
            .contains("ties with ioc/classify-ips")
    );

    // An explicit goal type.
    let run_id = orchestrator
        .runs()
        .start_run(task_request(
            "pull out indicators",
            "iocs",
            serde_json::json!({ "text": note }),
        ))
        .await?
        .into_inner()
        .run_id;
    let run = orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Succeeded);
    assert_eq!(run.info.steps.len(), 1, "{:#?}", run.info.steps);

    // The headline task: from logs to a response plan through the reference
    // experts (detect -> reconstruct -> plan).
    let events: serde_json::Value = serde_json::from_str(&synod_integration_tests::repo_file(
        "workflows/examples/sysmon-events.input.json",
    )?)?;
    let run_id = orchestrator
        .runs()
        .start_run(task_request(
            "investigate these logs and recommend containment",
            "",
            events,
        ))
        .await?
        .into_inner()
        .run_id;
    let run = orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let RunEventKind::RunPlanned { goal, choices, .. } = &run.events[1].kind else {
        panic!("the second event is the plan: {:#?}", run.events[1]);
    };
    assert_eq!(goal, "response_plan");
    let uses = chosen_skills(choices);
    assert_eq!(
        uses,
        [
            "attack-detection/detect",
            "tracing/reconstruct",
            "disposition/plan"
        ]
    );
    let plan = run.events.iter().rev().find_map(|event| match &event.kind {
        RunEventKind::StepSucceeded { output, .. } => Some(output.clone()),
        _ => None,
    });
    let plan = plan.expect("the plan step succeeded");
    assert_eq!(plan["playbook"]["spec_version"], "cacao-2.0", "{plan:#}");

    // Unreachable goal: FAILED_PRECONDITION naming what is missing; nothing starts.
    let before = orchestrator
        .runs()
        .list_runs(ListRunsRequest::default())
        .await?;
    let unreachable = orchestrator
        .runs()
        .start_run(task_request(
            "open a ticket",
            "ticket",
            serde_json::json!({ "events": [] }),
        ))
        .await
        .unwrap_err();
    assert_eq!(unreachable.code(), tonic::Code::FailedPrecondition);
    assert!(
        unreachable
            .message()
            .contains("no registered skill produces `ticket`"),
        "{}",
        unreachable.message()
    );
    // No intent and no goal type: INVALID_ARGUMENT listing the goal types.
    let vague = orchestrator
        .runs()
        .start_run(task_request("hello there", "", serde_json::json!({})))
        .await
        .unwrap_err();
    assert_eq!(vague.code(), tonic::Code::InvalidArgument);
    assert!(vague.message().contains("--goal"), "{}", vague.message());
    let after = orchestrator
        .runs()
        .list_runs(ListRunsRequest::default())
        .await?;
    assert_eq!(
        before.into_inner().runs.len(),
        after.into_inner().runs.len()
    );

    orchestrator.shutdown().await?;
    for expert in experts {
        expert.stop().await;
    }
    Ok(())
}
