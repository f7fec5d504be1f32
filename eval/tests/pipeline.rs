//! `synod-eval pipeline` end to end on one small labelled file: the events
//! of `workflows/examples/alert-triage.input.json` (an intrusion ending in
//! an LSASS memory read) written to a file labelled T1003.001, run through
//! a real orchestrator (SQLite store, gRPC) with the reference experts on
//! loopback, then scored and reported.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use synod_eval::pipeline::{
    Case, CaseSet, Harness, HarnessOptions, LSASS_OBJECTIVE, latency_svg, recall_svg, report,
    run_cases,
};
use synod_expert_attack_detection::RuleSet;

fn repo_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_labelled_file_through_the_orchestrator() -> anyhow::Result<()> {
    let input: Value =
        serde_json::from_str(&repo_file("workflows/examples/alert-triage.input.json"))?;
    let dir = std::env::temp_dir().join(format!("synod-eval-pipeline-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("intrusion.json");
    std::fs::write(&file, serde_json::to_string(&input["events"])?)?;
    let case = Case {
        name: "intrusion.json".to_owned(),
        set: CaseSet::Labelled,
        path: file,
        labels: vec![LSASS_OBJECTIVE.to_owned()],
        objective: Some(LSASS_OBJECTIVE.to_owned()),
    };

    let harness = Harness::start(&HarnessOptions {
        rules: Arc::new(RuleSet::builtin()),
        workflow_yaml: repo_file("workflows/alert-triage.yaml"),
        soar_origin: "https://soar.example.org".to_owned(),
        step_timeout: Duration::from_secs(60),
        knowledge: None,
    })
    .await?;
    let results = run_cases(&harness, &[case], 1, &indicatif::ProgressBar::hidden()).await;
    let requests = harness.receiver_requests();
    harness.shutdown().await?;
    std::fs::remove_dir_all(&dir).ok();

    let result = &results[0];
    assert_eq!(result.status, "succeeded", "{result:#?}");
    assert!(result.alerts > 0, "{result:#?}");
    assert!(result.found.iter().any(|t| t == "T1003.001"), "{result:#?}");
    assert_eq!(result.exact.true_positives, 1, "{result:#?}");
    assert_eq!(result.parent.recall(), Some(1.0));
    assert!(result.root_cause.is_some(), "{result:#?}");
    assert_eq!(result.root_cause_found, Some(true), "{result:#?}");
    assert!(result.plan && result.actions > 0, "{result:#?}");
    // no asset context: nothing is gated, so the ticket and the unattended
    // containment reached the local SOAR receiver and no approval was asked
    assert_eq!(result.approvals, 0, "{result:#?}");
    assert_eq!(result.bindings_delivered, 2, "{result:#?}");
    assert_eq!(requests, 2);
    assert!(result.reflection_rounds >= 1, "{result:#?}");
    assert!(result.wall_s > 0.0);

    let doc = report(&results, json!({ "date": "test" }));
    assert_eq!(doc["overall"]["cases"], 1);
    assert_eq!(doc["overall"]["root_cause_found"], 1);
    assert_eq!(doc["per_technique_recall"][0]["technique"], "T1003");
    assert_eq!(doc["per_technique_recall"][0]["found"], 1);
    assert!(recall_svg(&doc).contains("T1003"));
    assert!(latency_svg(&doc).contains("intrusion.json"));
    Ok(())
}
