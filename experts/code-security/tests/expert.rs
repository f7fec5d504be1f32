//! The `code-security` expert through the SDK: in-process calls with
//! schema validation, and over loopback gRPC.

use serde_json::json;
use synod_expert_code_security::{Config, expert};
use synod_expert_sdk::proto::expert::DescribeRequest;
use synod_expert_sdk::testing::TestExpert;

fn input() -> serde_json::Value {
    json!({ "files": [
        { "path": "app.py", "content": "from flask import request\nimport pickle\n\ndef v():\n    pickle.loads(request.data)\n" },
        { "path": "Safe.java", "content": "class S { void f() { int x = 1; } }" }
    ]})
}

#[tokio::test]
async fn scan_skill_in_process() {
    let expert = TestExpert::new(expert(&Config::default()).unwrap()).unwrap();
    let output = expert.call("scan", input()).await.unwrap();
    let summary = &output.output["summary"];
    assert_eq!(summary["findings"], 1);
    assert_eq!(summary["by_cwe"]["CWE-502"], 1);
    assert_eq!(summary["by_language"]["python"]["files"], 1);
    assert_eq!(output.output["sarif"]["version"], "2.1.0");
    let refused = expert
        .call("scan", json!({ "paths": ["/etc"] }))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("does not read files"),
        "{refused}"
    );
    assert!(expert.call("scan", json!({ "file": [] })).await.is_err());
    let filtered = expert
        .call(
            "scan",
            json!({ "files": input()["files"], "min_severity": "high" }),
        )
        .await
        .unwrap();
    assert_eq!(filtered.output["summary"]["findings"], 1);
}

#[tokio::test]
async fn scan_skill_reads_directories_when_allowed() {
    let config = Config {
        allow_file_input: true,
        ..Config::default()
    };
    let expert = TestExpert::new(expert(&config).unwrap()).unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/benchmark");
    let output = expert
        .call("scan", json!({ "paths": [dir] }))
        .await
        .unwrap();
    let summary = &output.output["summary"];
    assert!(summary["files"].as_u64().unwrap() >= 90);
    assert!(summary["by_language"]["java"]["files"].as_u64().unwrap() > 0);
    assert!(summary["findings"].as_u64().unwrap() > 40);
}

#[tokio::test]
async fn scan_skill_over_grpc() {
    let (endpoint, handle) = TestExpert::spawn(expert(&Config::default()).unwrap())
        .await
        .unwrap();
    let mut client = TestExpert::connect(&endpoint).await.unwrap();
    let card = client
        .describe(DescribeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(card.name, "code-security");
    assert_eq!(card.skills[0].name, "scan");
    assert!(card.skills[0].input_schema.is_some() && card.skills[0].output_schema.is_some());
    let (_, output) = TestExpert::invoke(&mut client, "scan", &input())
        .await
        .unwrap();
    assert_eq!(
        output["sarif"]["runs"][0]["results"][0]["ruleId"],
        "python.deserialization"
    );
    assert_eq!(output["summary"]["by_category"]["deserialization"], 1);
    handle.shutdown().await.unwrap();
}
