//! The `tracing` expert end to end: attack-detection's `detect` finds the
//! alerts, `tracing/reconstruct` traces them to an inbound network logon,
//! and `tracing/attribute` ranks groups.

use serde_json::{Value, json};
use synod_expert_sdk::testing::TestExpert;
use synod_expert_tracing::{Config, expert};

const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";

/// A remote service execution on WS1: network logon from 10.0.0.66, then
/// services.exe starts a dropped binary that runs `whoami /all`, reads LSASS
/// and calls back to the attacker's address.
fn events() -> Vec<Value> {
    let process = |time: &str,
                   guid: &str,
                   pid: u32,
                   image: &str,
                   command: &str,
                   parent: (&str, u32, &str)| {
        json!({ "Channel": SYSMON, "EventID": 1, "Computer": "WS1.corp.local", "UtcTime": time,
            "ProcessGuid": guid, "ProcessId": pid, "Image": image, "CommandLine": command,
            "User": "NT AUTHORITY\\SYSTEM", "LogonId": "0x3e7",
            "ParentProcessGuid": parent.0, "ParentProcessId": parent.1, "ParentImage": parent.2 })
    };
    let services = ("{S-1}", 612, "C:\\Windows\\System32\\services.exe");
    let evil = "C:\\Windows\\Temp\\evil-svc.exe";
    vec![
        json!({ "Channel": "Security", "EventID": 4624, "Computer": "WS1.corp.local",
            "TimeCreated": "2026-11-20T10:00:00.000Z", "TargetUserName": "adm-bob", "TargetDomainName": "CORP",
            "TargetLogonId": "0x5a1f00", "LogonType": 3, "IpAddress": "10.0.0.66", "WorkstationName": "KALI",
            "LogonProcessName": "NtLmSsp ", "AuthenticationPackageName": "NTLM" }),
        json!({ "Channel": "System", "EventID": 7045, "Computer": "WS1.corp.local",
            "TimeCreated": "2026-11-20T10:00:01.000Z", "ServiceName": "evilsvc", "ImagePath": evil }),
        process(
            "2026-11-20 10:00:02.000",
            "{E-1}",
            4242,
            evil,
            evil,
            services,
        ),
        process(
            "2026-11-20 10:00:05.000",
            "{C-1}",
            4300,
            "C:\\Windows\\System32\\cmd.exe",
            "cmd.exe /c whoami /all",
            ("{E-1}", 4242, evil),
        ),
        process(
            "2026-11-20 10:00:05.100",
            "{W-1}",
            4301,
            "C:\\Windows\\System32\\whoami.exe",
            "whoami /all",
            ("{C-1}", 4300, "C:\\Windows\\System32\\cmd.exe"),
        ),
        json!({ "Channel": SYSMON, "EventID": 10, "Computer": "WS1.corp.local", "UtcTime": "2026-11-20 10:00:09.000",
            "SourceProcessGUID": "{E-1}", "SourceProcessId": 4242, "SourceImage": evil,
            "TargetProcessGUID": "{L-1}", "TargetProcessId": 700, "TargetImage": "C:\\Windows\\System32\\lsass.exe",
            "GrantedAccess": "0x1410" }),
        json!({ "Channel": SYSMON, "EventID": 3, "Computer": "WS1.corp.local", "UtcTime": "2026-11-20 10:00:10.000",
            "ProcessGuid": "{E-1}", "ProcessId": 4242, "Image": evil, "Initiated": "true",
            "DestinationIp": "10.0.0.66", "DestinationPort": 443 }),
        // unrelated activity
        process(
            "2026-11-20 10:00:11.000",
            "{N-1}",
            5000,
            "C:\\Windows\\System32\\notepad.exe",
            "notepad.exe",
            ("{X-1}", 3000, "C:\\Windows\\explorer.exe"),
        ),
    ]
}

#[tokio::test]
async fn detect_then_reconstruct_then_attribute() {
    let detection = synod_expert_attack_detection::Config::default();
    let detector =
        TestExpert::new(synod_expert_attack_detection::expert(&detection).unwrap()).unwrap();
    let events = events();
    let detected = detector
        .call("detect", json!({ "events": events }))
        .await
        .unwrap();
    let alerts = detected.output["alerts"].clone();
    assert_eq!(alerts.as_array().unwrap().len(), 2, "{alerts:#}");

    let tracer = TestExpert::new(expert(&Config::default())).unwrap();
    let traced = tracer
        .call("reconstruct", json!({ "events": events, "alerts": alerts }))
        .await
        .unwrap();
    let output = &traced.output;

    let root = &output["root_cause"];
    assert_eq!(root["kind"], "logon", "{root:#}");
    assert_eq!(root["node"], "logon:ws1.corp.local:0x5a1f00");
    let description = root["description"].as_str().unwrap();
    assert!(
        description.contains("CORP\\adm-bob") && description.contains("10.0.0.66"),
        "{description}"
    );
    assert!(
        description.contains("remote service execution") && description.contains("3 of 3"),
        "{description}"
    );

    let chain: Vec<(&str, &str)> = output["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["tactic"].as_str().unwrap(),
                s["technique_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        chain,
        [
            ("persistence", "T1543.003"),
            ("credential-access", "T1003.001"),
            ("discovery", "T1033"),
            ("command-and-control", "T1071"),
        ]
    );
    let lsass = &output["steps"][1];
    assert_eq!(lsass["host"], "ws1.corp.local");
    assert_eq!(lsass["process"], "C:\\Windows\\Temp\\evil-svc.exe");
    assert_eq!(lsass["evidence"][0]["index"], 5);
    assert!(
        lsass["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("alert: "))
    );

    let nodes: Vec<&str> = output["path"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["label"].as_str().unwrap())
        .collect();
    assert!(nodes.contains(&"C:\\Windows\\System32\\whoami.exe"));
    assert!(
        !nodes.contains(&"C:\\Windows\\System32\\notepad.exe"),
        "{nodes:?}"
    );
    assert_eq!(output["entities"]["ips"], json!(["10.0.0.66"]));
    assert!(
        output["entities"]["users"]
            .as_array()
            .unwrap()
            .contains(&json!("CORP\\adm-bob"))
    );
    assert!(!output["attribution"].as_array().unwrap().is_empty());
    assert!(traced.confidence >= 0.8, "{}", traced.confidence);
    assert!(traced.evidence.iter().any(|e| e.pointer == "/events/5"));

    let attributed = tracer
        .call(
            "attribute",
            json!({ "techniques": ["T1003.001", "T1550.002", "t1021.002", "T1143"], "limit": 3 }),
        )
        .await
        .unwrap();
    assert_eq!(
        attributed.output["attribution"].as_array().unwrap().len(),
        3
    );
    assert_eq!(attributed.output["unknown_techniques"], json!([]));
    assert!(
        attributed.output["caution"]
            .as_str()
            .unwrap()
            .contains("weak evidence")
    );
}

#[tokio::test]
async fn inputs_are_checked() {
    let tracer = TestExpert::new(expert(&Config::default())).unwrap();
    let refused = tracer
        .call("reconstruct", json!({ "paths": ["/var/log/x.evtx"] }))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("does not read files"),
        "{refused}"
    );
    assert!(tracer.call("reconstruct", json!({})).await.is_err());
    assert!(
        tracer
            .call("attribute", json!({ "techniques": ["mimikatz"] }))
            .await
            .is_err()
    );
    let empty = tracer
        .call("reconstruct", json!({ "events": [] }))
        .await
        .unwrap();
    assert_eq!(empty.output["root_cause"], Value::Null);
    assert!(
        empty.output["summary"]
            .as_str()
            .unwrap()
            .starts_with("No detection")
    );

    // alerts without the events: steps and entities from the alerts alone
    let alerts = json!([{
        "rule_id": "r1", "title": "LSASS read", "level": "high",
        "techniques": ["T1003.001"], "tactics": ["credential-access"],
        "events": [{ "source": "input", "index": 3, "computer": "DC1", "record_id": 9,
            "timestamp": "2026-11-20 10:00:09.5", "fields": { "SourceImage": "C:\\t\\x.exe", "User": "CORP\\eve" } }]
    }]);
    let only_alerts = tracer
        .call(
            "reconstruct",
            json!({ "alerts": alerts, "techniques": ["T1078"] }),
        )
        .await
        .unwrap();
    let output = &only_alerts.output;
    assert_eq!(output["root_cause"], Value::Null);
    let steps = output["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{steps:#?}");
    assert_eq!(steps[0]["technique_id"], "T1078");
    assert_eq!(steps[0]["timestamp"], Value::Null);
    assert_eq!(steps[1]["host"], "dc1");
    assert_eq!(steps[1]["process"], "C:\\t\\x.exe");
    assert_eq!(steps[1]["timestamp"], "2026-11-20T10:00:09.500Z");
    assert_eq!(steps[1]["evidence"][0]["record_id"], 9);
    assert_eq!(output["entities"]["hosts"], json!(["dc1"]));
    assert_eq!(output["entities"]["users"], json!(["CORP\\eve"]));
}
