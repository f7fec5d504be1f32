//! Workflows.Validate (gRPC) and `POST /workflows/validate` (HTTP) report
//! every problem of a broken workflow with its stable code and its line and
//! column; StartRun refuses the same workflow with the rendered diagnostics.

use serde_json::Value;
use synod_integration_tests::TestOrchestrator;
use synod_integration_tests::experts::{serve, text_expert};
use synod_proto::orchestrator::{ValidateWorkflowRequest, ValidateWorkflowResponse};

/// A cycle, an unknown input and an unknown field: loader diagnostics.
const BROKEN: &str = "name: broken
steps:
  a:
    uses: text/tag
    needs: [c]
    with: { text: \"${{ inputs.missing }}\", tag: x }
  c:
    uses: text/tag
    needs: [a]
    colour: red
";

/// Well-formed, but names an unknown expert and a misspelt skill: planner
/// diagnostics against the registry.
const UNKNOWN_SKILLS: &str = "name: unknown-skills
steps:
  a:
    uses: nope/tag
  b:
    uses: text/tagg
";

/// `(code, line, column, words the message must contain, words the help must contain)`.
type Expected = (
    &'static str,
    u64,
    u64,
    &'static [&'static str],
    &'static str,
);

const BROKEN_EXPECTED: &[Expected] = &[
    ("SYN-W0010", 5, 13, &["cycle", "`a`", "`c`"], "remove"),
    (
        "SYN-W0012",
        6,
        24,
        &["unknown input", "`missing`"],
        "known inputs",
    ),
    ("SYN-W0003", 10, 5, &["unknown field", "`colour`"], "`uses`"),
];

const UNKNOWN_EXPECTED: &[Expected] = &[
    ("SYN-P0001", 4, 11, &["unknown expert", "`nope`"], "`text`"),
    (
        "SYN-P0002",
        6,
        11,
        &["unknown skill", "`tagg`"],
        "did you mean `tag`",
    ),
];

async fn validate_grpc(
    orchestrator: &TestOrchestrator,
    source: &str,
) -> anyhow::Result<ValidateWorkflowResponse> {
    Ok(orchestrator
        .workflows()
        .validate(ValidateWorkflowRequest {
            workflow_yaml: source.to_owned(),
            file_name: "broken.yaml".to_owned(),
        })
        .await?
        .into_inner())
}

async fn validate_http(orchestrator: &TestOrchestrator, source: &str) -> anyhow::Result<Value> {
    let response = orchestrator
        .http()
        .post(format!("{}/workflows/validate", orchestrator.http_url()))
        .body(source.to_owned())
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    Ok(response.json().await?)
}

fn check_grpc(answer: &ValidateWorkflowResponse, expected: &[Expected]) {
    assert!(!answer.valid);
    let found: Vec<(&str, u64, u64)> = answer
        .diagnostics
        .iter()
        .map(|d| (d.code.as_str(), u64::from(d.line), u64::from(d.column)))
        .collect();
    let wanted: Vec<(&str, u64, u64)> = expected.iter().map(|e| (e.0, e.1, e.2)).collect();
    assert_eq!(found, wanted, "{answer:#?}");
    for (diagnostic, (_, _, _, words, help)) in answer.diagnostics.iter().zip(expected) {
        assert_eq!(diagnostic.severity, "error");
        assert_eq!(diagnostic.file, "broken.yaml");
        for word in *words {
            assert!(diagnostic.message.contains(word), "{diagnostic:?}");
        }
        assert!(diagnostic.help.contains(help), "{diagnostic:?}");
    }
}

fn check_http(answer: &Value, expected: &[Expected]) {
    assert_eq!(answer["valid"], false, "{answer}");
    let found: Vec<(&str, u64, u64)> = answer["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default(),
                d["line"].as_u64().unwrap_or_default(),
                d["column"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let wanted: Vec<(&str, u64, u64)> = expected.iter().map(|e| (e.0, e.1, e.2)).collect();
    assert_eq!(found, wanted, "{answer:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reports_every_problem_with_code_and_location() -> anyhow::Result<()> {
    let text = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[text.endpoint()]).await?;

    for (source, expected) in [
        (BROKEN, BROKEN_EXPECTED),
        (UNKNOWN_SKILLS, UNKNOWN_EXPECTED),
    ] {
        check_grpc(&validate_grpc(&orchestrator, source).await?, expected);
        check_http(&validate_http(&orchestrator, source).await?, expected);
    }
    // The cycle's other edge is a secondary label (HTTP carries the labels).
    let http = validate_http(&orchestrator, BROKEN).await?;
    let labels = &http["diagnostics"][0]["labels"];
    assert_eq!(labels[0]["line"], 9, "{http:#}");

    // A valid workflow: no diagnostics.
    let fixed = "name: fine\nsteps:\n  a: { uses: text/tag, with: { text: x, tag: y } }\n";
    let answer = validate_grpc(&orchestrator, fixed).await?;
    assert!(answer.valid && answer.diagnostics.is_empty(), "{answer:?}");
    let answer = validate_http(&orchestrator, fixed).await?;
    assert_eq!(answer["valid"], true, "{answer}");

    // StartRun refuses the broken workflow, showing where.
    let refused = orchestrator
        .start_run(BROKEN, Value::Null)
        .await
        .expect_err("a broken workflow must not start");
    let message = refused.to_string();
    assert!(
        message.contains("InvalidArgument") || message.contains("invalid"),
        "{message}"
    );
    assert!(
        message.contains("SYN-W0010") && message.contains("SYN-W0003"),
        "{message}"
    );
    orchestrator.shutdown().await?;
    text.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reports_loader_and_catalog_problems_together() -> anyhow::Result<()> {
    let text = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[text.endpoint()]).await?;
    let source = format!("{BROKEN}  d:\n    uses: nope/tag\n");

    let answer = validate_grpc(&orchestrator, &source).await?;

    let codes: Vec<&str> = answer.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert!(codes.contains(&"SYN-W0010"), "{codes:?}");
    assert!(codes.contains(&"SYN-P0001"), "{codes:?}");
    orchestrator.shutdown().await?;
    text.shutdown().await?;
    Ok(())
}
