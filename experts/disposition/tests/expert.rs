//! The `disposition` expert over loopback gRPC, and end to end: the
//! attack-detection library on a real EVTX attack sample, its alerts fed to
//! the planner.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use synod_expert_attack_detection::{Detector, RuleSet, read_file};
use synod_expert_disposition::{Config, expert, plan_output_schema};
use synod_expert_sdk::proto::expert::{Artifact, DescribeRequest, InvokeRequest};
use synod_expert_sdk::proto::json::{json_to_struct, struct_to_json};
use synod_expert_sdk::testing::TestExpert;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn incident() -> Value {
    let path = crate_dir().join("tests/fixtures/incident.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn plan_skill_over_grpc() {
    let (endpoint, handle) = TestExpert::spawn(expert(&Config::default())).await.unwrap();
    let mut client = TestExpert::connect(&endpoint).await.unwrap();
    let card = client
        .describe(DescribeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(card.name, "disposition");
    let skill = &card.skills[0];
    assert_eq!(skill.name, "plan");
    // `assets` is optional context, not a planner artifact the skill needs
    assert_eq!(skill.consumes, ["alerts", "attack_chain"]);
    assert_eq!(skill.produces, "response_plan");

    let (response, output) = TestExpert::invoke(&mut client, "plan", &incident())
        .await
        .unwrap();
    let validator = jsonschema::validator_for(&plan_output_schema()).unwrap();
    assert!(validator.is_valid(&output));
    let first = &output["actions"][0];
    assert_eq!(first["kind"], "isolate_host");
    assert_eq!(first["target"]["value"], "DC01.corp.local");
    assert_eq!(first["requires_approval"], true);
    assert!(response.confidence > 0.9, "{}", response.confidence);
    // evidence points into the input
    assert_eq!(
        response.evidence[0].pointer,
        first["evidence"][0]["pointer"]
    );
    assert!(
        response.evidence[0]
            .note
            .starts_with("P1 isolate_host DC01")
    );

    // bad input: named field, INVALID_ARGUMENT
    let error = TestExpert::invoke(
        &mut client,
        "plan",
        &json!({ "alerts": [], "assets": [{ "host": "a", "criticality": "urgent" }] }),
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(
        error.message().contains("criticality"),
        "{}",
        error.message()
    );
    let empty = TestExpert::invoke(&mut client, "plan", &json!({}))
        .await
        .unwrap_err();
    assert!(
        empty.message().contains("nothing to plan from"),
        "{}",
        empty.message()
    );

    // the chain can come as a context artifact (an answered need)
    let mut alerts_only = incident();
    let chain = alerts_only
        .as_object_mut()
        .unwrap()
        .remove("chain")
        .unwrap();
    let response = client
        .invoke(InvokeRequest {
            skill: "plan".into(),
            input: Some(json_to_struct(&alerts_only).unwrap()),
            context: vec![Artifact {
                r#type: "attack_chain".into(),
                source: "trace".into(),
                data: Some(json_to_struct(&chain).unwrap()),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let output = struct_to_json(response.output.as_ref().unwrap()).unwrap();
    assert_eq!(output["summary"]["chain_steps"], 4);
    handle.shutdown().await.unwrap();
}

/// Extracts one member of the evtx-attack-samples archive with the system
/// `zstd` and `tar`; `None` (test skipped) when the dataset is absent.
fn extract_sample(member: &str) -> Option<(PathBuf, PathBuf)> {
    let archive = crate_dir()
        .join("../../../shared/datasets/evtx-attack-samples/evtx-attack-samples.tar.zst");
    if !archive.exists() {
        eprintln!("skipped: {} is absent", archive.display());
        return None;
    }
    // one directory per sample: tests run in parallel and each removes its own
    let dir = std::env::temp_dir().join(format!(
        "synod-disposition-{}-{}",
        std::process::id(),
        member.replace(['/', ' ', '.'], "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut zstd = Command::new("zstd")
        .arg("-dc")
        .arg(&archive)
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run `zstd` (install the zstd package)");
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&dir)
        .arg(format!("./{member}"))
        .stdin(zstd.stdout.take().unwrap())
        .status()
        .unwrap();
    assert!(
        zstd.wait().unwrap().success() && tar.success(),
        "cannot extract {member}"
    );
    let file = dir.join(member);
    Some((dir, file))
}

fn detect(path: &Path) -> Value {
    let rules = RuleSet::builtin();
    let mut detector = Detector::new(&rules, 20);
    read_file(path, |reference, event| detector.observe(reference, &event)).unwrap();
    let report = detector.finish();
    json!({ "alerts": report.alerts.iter().map(|a| a.to_json()).collect::<Vec<_>>() })
}

#[tokio::test]
async fn real_evtx_lsass_dump_plans_a_response_on_the_right_host() {
    let member = "Credential Access/sysmon_10_lsass_mimikatz_sekurlsa_logonpasswords.evtx";
    let Some((dir, path)) = extract_sample(member) else {
        return;
    };
    let alerts = detect(&path);
    std::fs::remove_dir_all(dir).ok();
    let alert = &alerts["alerts"][0];
    assert_eq!(alert["techniques"], json!(["T1003.001"]));
    let host = alert["events"][0]["computer"].as_str().unwrap().to_owned();
    let image = alert["events"][0]["fields"]["SourceImage"]
        .as_str()
        .unwrap()
        .to_owned();

    let expert = TestExpert::new(expert(&Config::default())).unwrap();
    let input = json!({
        "alerts": alerts,
        "assets": [{ "host": host, "criticality": "critical", "role": "domain-controller", "owner": "IT" }]
    });
    let output = expert.call("plan", input).await.unwrap().output;
    let actions = output["actions"].as_array().unwrap();
    // the host of the LSASS access is isolated first, with approval (critical DC)
    assert_eq!(actions[0]["kind"], "isolate_host");
    assert_eq!(actions[0]["target"]["value"], host.as_str());
    assert_eq!(actions[0]["requires_approval"], true);
    assert_eq!(actions[0]["evidence"][0]["rule_id"], alert["rule_id"]);
    // the process that read LSASS memory is killed on that host
    let kill = actions
        .iter()
        .find(|a| a["kind"] == "kill_process")
        .unwrap_or_else(|| panic!("no kill_process in {actions:#?}"));
    assert_eq!(kill["target"]["value"], image.as_str());
    assert_eq!(kill["target"]["host"], host.as_str());
    // credentials on the host are exposed: a reset is planned
    assert!(actions.iter().any(|a| a["kind"] == "reset_credentials"));
    // ATT&CK mitigations of T1003.001 attached
    let mitigations: Vec<&str> = actions[0]["mitigations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(mitigations.contains(&"M1040"), "{mitigations:?}");
    assert!(actions.iter().all(|a| a["kind"] != "block_ip"));
    assert_eq!(output["playbook"]["spec_version"], "cacao-2.0");
}

/// The tracing expert's real output as the chain: detect -> reconstruct ->
/// plan on an Impacket wmiexec sample (WmiPrvSE -> cmd -> whoami /all).
#[tokio::test]
async fn detect_then_trace_then_plan_on_real_evtx() {
    let member = "Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx";
    let Some((dir, path)) = extract_sample(member) else {
        return;
    };
    let alerts = detect(&path);
    let tracer = TestExpert::new(synod_expert_tracing::expert(
        &synod_expert_tracing::Config {
            allow_file_input: true,
            ..Default::default()
        },
    ))
    .unwrap();
    let chain = tracer
        .call(
            "reconstruct",
            json!({ "paths": [path], "alerts": alerts["alerts"] }),
        )
        .await
        .unwrap()
        .output;
    std::fs::remove_dir_all(dir).ok();
    assert!(!chain["steps"].as_array().unwrap().is_empty(), "{chain:#}");
    let host = chain["root_cause"]["host"].as_str().unwrap().to_owned();

    let planner = TestExpert::new(expert(&Config::default())).unwrap();
    let output = planner
        .call(
            "plan",
            json!({ "alerts": alerts, "chain": chain, "assets": [{ "host": host, "criticality": "low" }] }),
        )
        .await
        .unwrap()
        .output;
    let actions = output["actions"].as_array().unwrap();
    // the traced host is contained first, without approval (a low-criticality asset)
    assert_eq!(actions[0]["kind"], "isolate_host");
    assert!(
        actions[0]["target"]["value"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&host)
    );
    assert_eq!(actions[0]["requires_approval"], false);
    let sources: Vec<&str> = actions[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.contains(&"root_cause") && sources.contains(&"chain_step"),
        "{sources:?}"
    );
    // the alert's whoami (no pid in the rule's fields) merged with the chain's process
    let whoami: Vec<&Value> = actions
        .iter()
        .filter(|a| {
            a["kind"] == "kill_process"
                && a["target"]["value"]
                    .as_str()
                    .unwrap()
                    .ends_with("whoami.exe")
        })
        .collect();
    assert_eq!(whoami.len(), 1, "{whoami:#?}");
    assert!(whoami[0]["target"]["pid"].is_string());
    let evidence = whoami[0]["evidence"].as_array().unwrap();
    assert!(evidence.iter().any(|e| e["source"] == "alert"));
    assert!(evidence.iter().any(|e| e["source"] == "chain_entity"));
    assert_eq!(
        output["summary"]["chain_steps"],
        chain["steps"].as_array().unwrap().len()
    );
}
