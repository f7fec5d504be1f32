//! End-to-end: the builtin rules plus fixture rules over fixture events,
//! through the library and through the expert's `detect` skill.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use synod_expert_attack_detection::{Config, Detector, RuleSet, expert, read_file};
use synod_expert_sdk::testing::TestExpert;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Which rule ids fire on which fixture event indices.
const EXPECTED: [(&str, usize); 9] = [
    ("0d3e4a6c-1f2b-4c5d-8e9f-a0b1c2d3e4f5", 0), // run key to AppData (Teams filtered)
    ("6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d", 2), // SMB to a public address (private filtered)
    ("52f2a9d3-8605-4996-8a3f-55b74e7d5c14", 4), // whoami /all
    ("8934a2f3-bebb-4494-b17a-53801ae0d24e", 5), // net1 user /add via Security 4688
    ("16114b0b-72a0-4837-b80f-457cbc758106", 6), // LSASS read (wininit filtered)
    ("2049b21b-8c2e-49b0-9c32-af329571993f", 8), // Invoke-Mimikatz in 4104
    ("41a56a88-040c-49b6-a844-d54ed3f8da3e", 9), // -enc blob (-ExecutionPolicy not)
    ("b67bf485-05fd-4d3c-8e80-0805c873e89d", 11), // 1102 in EVTX-style JSON
    ("4a7184a1-2b7f-4599-8c80-c4a84480cac3", 12), // 7045 with %COMSPEC%
];

fn rules() -> RuleSet {
    let mut rules = RuleSet::builtin();
    rules.load_paths(&[fixtures().join("rules")]);
    rules
}

#[test]
fn library_detects_exactly_the_expected_events() {
    let rules = rules();
    assert_eq!(rules.rules().len(), 9);
    assert_eq!(rules.failures().len(), 1);
    let failure = &rules.failures()[0];
    assert!(failure.source.ends_with("broken_unknown_modifier.yml"));
    assert!(
        failure.reason.contains("unknown modifier `endswith_typo`"),
        "{failure}"
    );

    let mut detector = Detector::new(&rules, 10);
    let stats = read_file(&fixtures().join("events.jsonl"), |r, e| {
        detector.observe(r, &e)
    })
    .unwrap();
    assert_eq!(stats.events, 14);
    let report = detector.finish();
    let mut fired: Vec<(String, usize)> = report
        .alerts
        .iter()
        .flat_map(|a| {
            a.events
                .iter()
                .map(|e| (a.rule.id.clone(), e.reference.index))
        })
        .collect();
    fired.sort();
    let mut expected: Vec<(String, usize)> = EXPECTED
        .iter()
        .map(|(id, i)| ((*id).to_owned(), *i))
        .collect();
    expected.sort();
    assert_eq!(fired, expected);
    assert_eq!(report.matched_events, 9);
    // most severe first
    assert_eq!(report.alerts[0].rule.level, "critical");
    let cleared = report
        .fired("b67bf485-05fd-4d3c-8e80-0805c873e89d")
        .unwrap();
    assert_eq!(cleared.events[0].reference.record_id, Some(77));
    assert_eq!(
        cleared.events[0].timestamp.as_deref(),
        Some("2026-11-23T10:05:00Z")
    );
}

#[tokio::test]
async fn expert_detect_skill() {
    let config = Config {
        rule_paths: vec![fixtures().join("rules")],
        ..Config::default()
    };
    let expert = TestExpert::new(expert(&config).unwrap()).unwrap();
    let events: Vec<Value> = std::fs::read_to_string(fixtures().join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let output = expert
        .call("detect", json!({ "events": events, "min_level": "high" }))
        .await
        .unwrap();
    let alerts = output.output["alerts"].as_array().unwrap();
    let levels: Vec<&str> = alerts
        .iter()
        .map(|a| a["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["critical", "high", "high", "high", "high"]);
    let mimikatz = &alerts[0];
    assert_eq!(mimikatz["techniques"], json!(["T1003.001", "T1059.001"]));
    assert_eq!(
        mimikatz["tactics"],
        json!(["credential-access", "execution"])
    );
    assert_eq!(mimikatz["events"][0]["index"], 8);
    assert!(
        mimikatz["events"][0]["fields"]["ScriptBlockText"]
            .as_str()
            .unwrap()
            .starts_with("Invoke-Mimikatz")
    );
    assert_eq!(output.output["counts"]["events"], 14);
    assert_eq!(output.output["rules"]["failed"], 1);
    assert!(output.evidence.iter().any(|e| e.pointer == "/events/8"));

    let refused = expert
        .call("detect", json!({ "paths": ["/etc/passwd"] }))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("does not read files"),
        "{refused}"
    );
    assert!(expert.call("detect", json!({ "event": [] })).await.is_err());
}

#[tokio::test]
async fn expert_reads_files_when_allowed() {
    let config = Config {
        allow_file_input: true,
        ..Config::default()
    };
    let expert = TestExpert::new(expert(&config).unwrap()).unwrap();
    let path = fixtures().join("events.jsonl");
    let output = expert
        .call(
            "detect",
            json!({ "paths": [path], "max_events_per_alert": 1 }),
        )
        .await
        .unwrap();
    assert_eq!(output.output["counts"]["alerts"], 7);
    let missing = expert
        .call("detect", json!({ "paths": ["/nonexistent/x.evtx"] }))
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("cannot read"), "{missing}");
}

#[test]
fn expert_without_rules_is_an_error() {
    let config = Config {
        rule_paths: vec![PathBuf::from("/nonexistent/rules")],
        builtin_rules: false,
        ..Config::default()
    };
    let error = expert(&config).unwrap_err().to_string();
    assert!(error.contains("no Sigma rule loaded"), "{error}");
    assert!(error.contains("cannot list"), "{error}");
}
