//! The `data-protection` expert served on 127.0.0.1 through the SDK:
//! Describe, then `scan` and `redact` over real gRPC.

use serde_json::{Value, json};
use synod_expert_data_protection::{Config, RedactionKey, expert, unredact};
use synod_expert_sdk::proto::expert::{DescribeRequest, InvokeRequest};
use synod_expert_sdk::proto::json::{json_to_struct, struct_to_json};
use synod_expert_sdk::testing::TestExpert;
use tonic::Code;

const TEXT: &str = "Contact jane.doe@example.org or +1-984-182-0190. Card 4111 1111 1111 1111. \
AWS key AKIADEADBEEFDEADBEEF";

fn key() -> RedactionKey {
    RedactionKey::new(&[9u8; 32]).unwrap()
}

fn config() -> Config {
    Config {
        redaction_key: Some(key()),
        ..Config::default()
    }
}

fn request(skill: &str, input: Value) -> InvokeRequest {
    InvokeRequest {
        run_id: "run-1".into(),
        step_id: "guard".into(),
        skill: skill.into(),
        input: Some(json_to_struct(&input).unwrap()),
        ..Default::default()
    }
}

#[tokio::test]
async fn scan_and_redact_over_grpc() {
    let (endpoint, handle) = TestExpert::spawn(expert(&config()).unwrap()).await.unwrap();
    let mut client = TestExpert::connect(&endpoint).await.unwrap();
    let card = client
        .describe(DescribeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(card.name, "data-protection");
    let names: Vec<&str> = card.skills.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["scan", "redact"]);

    let response = client
        .invoke(request("scan", json!({ "text": TEXT })))
        .await
        .unwrap()
        .into_inner();
    let output = struct_to_json(response.output.as_ref().unwrap()).unwrap();
    let types: Vec<&str> = output["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["entity_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IDENTIFIER"]
    );
    assert_eq!(output["classification"]["level"], "restricted");
    let serialized = output.to_string();
    for raw in [
        "jane.doe@example.org",
        "4111 1111 1111 1111",
        "AKIADEADBEEFDEADBEEF",
    ] {
        assert!(
            !serialized.contains(raw),
            "scan output leaks {raw}: {serialized}"
        );
    }
    let aws = &output["findings"][3];
    assert_eq!(aws["rule_id"], "np.aws.1");
    assert_eq!(aws["preview"], "AKI*****************");
    assert_eq!(
        &TEXT[aws["start"].as_u64().unwrap() as usize..aws["end"].as_u64().unwrap() as usize],
        "AKIADEADBEEFDEADBEEF"
    );

    let response = client
        .invoke(request("redact", json!({ "text": TEXT, "mode": "token" })))
        .await
        .unwrap()
        .into_inner();
    let output = struct_to_json(response.output.as_ref().unwrap()).unwrap();
    let redacted = output["text"].as_str().unwrap();
    assert_eq!(output["redacted_count"], 4);
    assert!(!redacted.contains("AKIADEADBEEFDEADBEEF"));
    assert_eq!(unredact(redacted, &key()).unwrap(), TEXT);
    let first = &output["mappings"][0];
    let start = first["redacted_start"].as_u64().unwrap() as usize;
    let end = first["redacted_end"].as_u64().unwrap() as usize;
    assert_eq!(
        unredact(&redacted[start..end], &key()).unwrap(),
        "jane.doe@example.org"
    );

    let input = json!({ "alert": { "user": "jane.doe@example.org", "note": ["ssn 460-89-9847"] } });
    let response = client
        .invoke(request("redact", json!({ "json": input, "mode": "mask" })))
        .await
        .unwrap()
        .into_inner();
    let output = struct_to_json(response.output.as_ref().unwrap()).unwrap();
    assert_eq!(output["json"]["alert"]["user"], "********************");
    assert_eq!(output["json"]["alert"]["note"][0], "ssn ***********");
    assert_eq!(
        output["counts_by_type"],
        json!({ "EMAIL_ADDRESS": 1, "US_SSN": 1 })
    );
    assert_eq!(output["findings"][0]["pointer"], "/alert/note/0");

    // `name` is echoed, not scanned: fanned-out results stay attributable.
    let response = client
        .invoke(request(
            "scan",
            json!({ "text": "nothing here", "name": "jane.doe@example.org.txt" }),
        ))
        .await
        .unwrap()
        .into_inner();
    let output = struct_to_json(response.output.as_ref().unwrap()).unwrap();
    assert_eq!(output["name"], "jane.doe@example.org.txt");
    assert_eq!(output["total_findings"], 0);

    let status = client
        .invoke(request("redact", json!({ "text": "x", "mode": "rot13" })))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn hash_and_token_need_a_key() {
    let expert = TestExpert::new(expert(&Config::default()).unwrap()).unwrap();
    let error = expert
        .call(
            "redact",
            json!({ "text": "jane@example.org", "mode": "token" }),
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("needs a redaction key"),
        "{error}"
    );
    let output = expert
        .call("redact", json!({ "text": "jane@example.org" }))
        .await
        .unwrap();
    assert_eq!(output.output["text"], "****************");
}

#[test]
fn bad_rule_files_stop_the_expert_with_file_and_rule() {
    let dir = std::env::temp_dir().join(format!("synod-dp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.yml");
    std::fs::write(
        &path,
        "rules:\n- id: x.1\n  name: X\n  pattern: '[unclosed'\n",
    )
    .unwrap();
    let config = Config {
        rule_paths: vec![path.clone()],
        ..Config::default()
    };
    let error = expert(&config).unwrap_err().to_string();
    assert!(error.contains("broken.yml:4: rule `x.1`"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
