//! The planner over a fixture incident (alerts from `detect`, a tracing
//! chain, assets): targets, skipped targets, approval, priority order,
//! mitigations, impact and determinism.

use std::path::Path;

use serde_json::{Value, json};
use synod_expert_disposition::{
    Action, ActionKind, AttackCatalog, Config, PlanInput, Policy, TargetKind, plan, respond,
};

fn incident() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/incident.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn planned(input: &Value) -> Vec<Action> {
    let input = PlanInput::from_json(input).unwrap();
    plan(&input, &Policy::default(), AttackCatalog::embedded()).actions
}

fn find<'a>(actions: &'a [Action], kind: ActionKind, value: &str) -> &'a Action {
    actions
        .iter()
        .find(|a| a.kind == kind && a.target.value.eq_ignore_ascii_case(value))
        .unwrap_or_else(|| {
            let all: Vec<String> = actions
                .iter()
                .map(|a| format!("{} {}", a.kind.as_str(), a.target.value))
                .collect();
            panic!("no {} {value} in {all:#?}", kind.as_str())
        })
}

fn has(actions: &[Action], kind: ActionKind, value: &str) -> bool {
    actions
        .iter()
        .any(|a| a.kind == kind && a.target.value.eq_ignore_ascii_case(value))
}

#[test]
fn targets_come_from_matched_events_and_the_chain() {
    let actions = planned(&incident());
    // hosts of high/critical alerts and of the chain
    find(&actions, ActionKind::IsolateHost, "WS01.corp.local");
    find(&actions, ActionKind::IsolateHost, "DC01.corp.local");
    // FS01 only has a high alert: isolated too (policy isolate_min_level high)
    find(&actions, ActionKind::IsolateHost, "FS01.corp.local");
    // the LSASS reader from Sysmon 10 SourceImage/SourceProcessId, merged with
    // the chain's process entity (same host, image and pid)
    let dumper = find(
        &actions,
        ActionKind::KillProcess,
        "C:\\Users\\Public\\m.exe",
    );
    assert_eq!(dumper.target.details["pid"], "6666");
    assert_eq!(dumper.target.host.as_deref(), Some("DC01.corp.local"));
    let sources: Vec<&str> = dumper.evidence.iter().map(|e| e.source).collect();
    assert!(
        sources.contains(&"alert") && sources.contains(&"chain_step"),
        "{sources:?}"
    );
    assert!(sources.contains(&"chain_entity"), "{sources:?}");
    // a dropped tool outside system directories is quarantined, with its hash
    let beacon = find(
        &actions,
        ActionKind::QuarantineFile,
        "C:\\Users\\alice\\AppData\\Local\\Temp\\beacon.exe",
    );
    assert!(beacon.target.details["hashes"].starts_with("SHA256=9F86"));
    find(
        &actions,
        ActionKind::QuarantineFile,
        "C:\\Users\\Public\\m.exe",
    );
    // PowerShell is a LOLBin: killed (pid from the event), not quarantined
    let powershell = find(
        &actions,
        ActionKind::KillProcess,
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    );
    assert_eq!(powershell.target.details["pid"], "4242");
    assert_eq!(
        actions
            .iter()
            .filter(
                |a| a.kind == ActionKind::KillProcess && a.target.value.ends_with("powershell.exe")
            )
            .count(),
        1,
        "the chain step without pid merges into the event's process"
    );
    assert!(!has(
        &actions,
        ActionKind::QuarantineFile,
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    ));
    // external address and domains
    find(&actions, ActionKind::BlockIp, "203.0.113.50");
    find(&actions, ActionKind::BlockDomain, "evil-c2.example.com");
    find(
        &actions,
        ActionKind::BlockDomain,
        "update.evil-c2.example.com",
    );
    // accounts: the created backdoor account (with its domain) and users
    find(&actions, ActionKind::DisableAccount, "WS01\\svc-backup");
    find(&actions, ActionKind::DisableAccount, "helper");
    find(&actions, ActionKind::DisableAccount, "CORP\\alice");
    find(&actions, ActionKind::DisableAccount, "CORP\\bob");
    // credential dumping on DC01 exposes bob's credentials there
    let reset = find(&actions, ActionKind::ResetCredentials, "CORP\\bob");
    assert_eq!(reset.target.host.as_deref(), Some("DC01.corp.local"));
    // SMB exploitation (T1210): ATT&CK mitigates it with M1051 Update Software
    let patch = find(&actions, ActionKind::Patch, "FS01.corp.local");
    assert!(patch.instruction.contains("T1210"), "{}", patch.instruction);
}

#[test]
fn internal_addresses_system_accounts_and_os_processes_are_not_targets() {
    let input = PlanInput::from_json(&incident()).unwrap();
    let result = plan(&input, &Policy::default(), AttackCatalog::embedded());
    let actions = &result.actions;
    for private in ["10.0.0.15", "192.168.1.20", "10.0.0.30"] {
        assert!(!has(actions, ActionKind::BlockIp, private), "{private}");
    }
    for internal in ["fileserver", "dc01.corp.local"] {
        assert!(
            !has(actions, ActionKind::BlockDomain, internal),
            "{internal}"
        );
    }
    for system in [
        "SYSTEM",
        "NT AUTHORITY\\SYSTEM",
        "WS01$",
        "CORP\\WS01$",
        "NT AUTHORITY\\LOCAL SERVICE",
    ] {
        assert!(
            !has(actions, ActionKind::DisableAccount, system),
            "{system}"
        );
        assert!(
            !has(actions, ActionKind::ResetCredentials, system),
            "{system}"
        );
    }
    assert!(
        !actions
            .iter()
            .any(|a| a.target.kind == TargetKind::Process && a.target.value.ends_with("lsass.exe"))
    );
    let skipped: Vec<(&str, &str)> = result
        .skipped
        .iter()
        .map(|s| (s.kind.as_str(), s.target.as_str()))
        .collect();
    for expected in [
        ("block_ip", "10.0.0.15"),
        ("block_ip", "192.168.1.20"),
        ("block_domain", "fileserver"),
        ("block_domain", "dc01.corp.local"),
        ("disable_account", "NT AUTHORITY\\SYSTEM"),
        ("disable_account", "CORP\\WS01$"),
        ("disable_account", "NT AUTHORITY\\LOCAL SERVICE"),
    ] {
        assert!(
            skipped.contains(&expected),
            "{expected:?} not in {skipped:#?}"
        );
    }
    let lsass = result
        .skipped
        .iter()
        .find(|s| s.target.contains("lsass.exe"))
        .unwrap();
    assert!(
        lsass.reason.contains("crashes the host"),
        "{}",
        lsass.reason
    );
    assert_eq!(lsass.pointer, "/chain/entities/processes/1");
}

#[test]
fn approval_follows_the_policy() {
    let actions = planned(&incident());
    let dc = find(&actions, ActionKind::IsolateHost, "DC01.corp.local");
    assert!(dc.approval.required);
    assert_eq!(dc.approval.rule.as_deref(), Some("isolate-infrastructure"));
    assert_eq!(dc.approval.approvers, ["soc-lead", "it-operations"]);
    let fs = find(&actions, ActionKind::IsolateHost, "FS01.corp.local");
    assert_eq!(fs.approval.rule.as_deref(), Some("isolate-important-host"));
    let ws = find(&actions, ActionKind::IsolateHost, "WS01.corp.local");
    assert!(
        !ws.approval.required,
        "a medium workstation is isolated at once"
    );
    let bob = find(&actions, ActionKind::DisableAccount, "CORP\\bob");
    assert!(
        bob.approval.required,
        "domain-admin role makes bob privileged"
    );
    assert_eq!(
        bob.approval.rule.as_deref(),
        Some("disable-privileged-account")
    );
    let reset_bob = find(&actions, ActionKind::ResetCredentials, "CORP\\bob");
    assert!(reset_bob.approval.required);
    let alice = find(&actions, ActionKind::DisableAccount, "CORP\\alice");
    assert!(!alice.approval.required);
    let ip = find(&actions, ActionKind::BlockIp, "203.0.113.50");
    assert!(!ip.approval.required);
    assert_eq!(ip.approval.rule.as_deref(), Some("block-external"));
    let patch = find(&actions, ActionKind::Patch, "FS01.corp.local");
    assert_eq!(patch.approval.rule.as_deref(), Some("patch-change-window"));

    // a stricter policy: everything without a rule needs approval
    let strict = Policy::from_json_str(
        r#"{"version": 1, "approval": {"default_requires_approval": true, "default_approvers": ["duty-officer"]}}"#,
        "strict",
    )
    .unwrap();
    let input = PlanInput::from_json(&incident()).unwrap();
    let strict_plan = plan(&input, &strict, AttackCatalog::embedded());
    assert!(strict_plan.actions.iter().all(|a| a.approval.required
        && a.approval.approvers == ["duty-officer"]
        && a.approval.rule.is_none()));
}

#[test]
fn priority_is_ordered_and_explained_by_its_factors() {
    let actions = planned(&incident());
    let policy = Policy::default();
    for (i, action) in actions.iter().enumerate() {
        assert_eq!(action.priority, i + 1);
        let f = action.factors;
        let w = policy.weights;
        let expected = (100.0
            * f.urgency
            * (w.severity * f.severity
                + w.tactic_stage * f.tactic_stage
                + w.criticality * f.criticality
                + w.confidence * f.confidence))
            .round() as u32;
        assert_eq!(action.score, expected, "{}", action.rationale);
    }
    for pair in actions.windows(2) {
        assert!(pair[0].score >= pair[1].score);
    }
    // critical alert + critical asset + credential-access stage: first
    let first = &actions[0];
    assert_eq!(
        (first.kind, first.target.value.as_str()),
        (ActionKind::IsolateHost, "DC01.corp.local")
    );
    assert_eq!(first.factors.severity, 1.0);
    assert_eq!(first.factors.criticality, 1.0);
    // containment of the critical DC outranks isolating the medium workstation
    let ws = find(&actions, ActionKind::IsolateHost, "WS01.corp.local");
    assert!(first.score > ws.score);
    // recovery comes after containment of the same host
    let patch = find(&actions, ActionKind::Patch, "FS01.corp.local");
    let isolate_fs = find(&actions, ActionKind::IsolateHost, "FS01.corp.local");
    assert!(patch.priority > isolate_fs.priority);
    // the rationale names the evidence
    assert!(first.rationale.contains("LSASS Memory Access by Unusual Process (critical) [rule 16114b0b-72a0-4837-b80f-457cbc758106]"), "{}", first.rationale);
    // lateral movement comes after credential access in the ATT&CK kill chain
    assert!(
        first.rationale.contains("latest stage lateral-movement"),
        "{}",
        first.rationale
    );
    let pointers: Vec<&str> = first.evidence.iter().map(|e| e.pointer.as_str()).collect();
    assert!(
        pointers.contains(&"/alerts/alerts/1/events/0"),
        "{pointers:?}"
    );
    assert!(pointers.contains(&"/chain/steps/3"), "{pointers:?}");
    assert!(
        pointers.contains(&"/chain/entities/hosts/1"),
        "{pointers:?}"
    );
}

#[test]
fn mitigations_and_impact_are_attached() {
    let actions = planned(&incident());
    let dumper = find(
        &actions,
        ActionKind::KillProcess,
        "C:\\Users\\Public\\m.exe",
    );
    let ids: Vec<&str> = dumper.mitigations.iter().map(|m| m.id.as_str()).collect();
    // ATT&CK: LSASS Memory is mitigated by Behavior Prevention on Endpoint,
    // Credential Access Protection, Privileged Account Management, ...
    for expected in ["M1040", "M1043", "M1026"] {
        assert!(ids.contains(&expected), "{expected} not in {ids:?}");
    }
    let m1040 = dumper.mitigations.iter().find(|m| m.id == "M1040").unwrap();
    assert_eq!(m1040.name, "Behavior Prevention on Endpoint");
    assert!(m1040.techniques.contains(&"T1003.001".to_owned()));

    let dc = find(&actions, ActionKind::IsolateHost, "DC01.corp.local");
    assert_eq!(dc.impact.level.as_str(), "critical");
    assert_eq!(dc.impact.role.as_deref(), Some("domain-controller"));
    assert!(
        dc.impact.description.contains("owner IT Operations"),
        "{}",
        dc.impact.description
    );
    let ws = find(&actions, ActionKind::IsolateHost, "WS01.corp.local");
    assert_eq!(ws.impact.level.as_str(), "high");
    let ip = find(&actions, ActionKind::BlockIp, "203.0.113.50");
    assert_eq!(ip.impact.level.as_str(), "low");
    assert!(ip.impact.description.contains("not in the asset context"));
}

#[test]
fn plans_are_deterministic_and_action_ids_stable() {
    let input = incident();
    let config = Config::default();
    let first = respond(
        &PlanInput::from_json(&input).unwrap(),
        &config,
        "2030-01-01T00:00:00.000Z",
    )
    .0;
    let second = respond(
        &PlanInput::from_json(&input).unwrap(),
        &config,
        "2031-01-01T00:00:00.000Z",
    )
    .0;
    assert_eq!(
        first, second,
        "same input, same plan (the clock is not used when evidence has times)"
    );
    assert_eq!(first["summary"]["created"], "2026-11-23T10:09:30.123Z");

    // the same action keeps its id when less evidence is known
    let mut partial = input.clone();
    partial["alerts"]["alerts"]
        .as_array_mut()
        .unwrap()
        .truncate(2);
    partial.as_object_mut().unwrap().remove("chain");
    let partial = respond(&PlanInput::from_json(&partial).unwrap(), &config, "x").0;
    let id_of = |plan: &Value, kind: &str, value: &str| -> String {
        plan["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == kind && a["target"]["value"] == value)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        id_of(&first, "isolate_host", "DC01.corp.local"),
        id_of(&partial, "isolate_host", "DC01.corp.local")
    );
    assert_ne!(first["playbook"]["id"], partial["playbook"]["id"]);
}

#[test]
fn chain_only_and_alerts_only_inputs_plan() {
    let mut input = incident();
    input.as_object_mut().unwrap().remove("alerts");
    let chain_only = planned(&input);
    find(&chain_only, ActionKind::IsolateHost, "DC01.corp.local");
    find(&chain_only, ActionKind::BlockIp, "203.0.113.50");
    let reset = find(&chain_only, ActionKind::ResetCredentials, "DC01.corp.local");
    assert_eq!(
        reset.target.kind,
        TargetKind::Host,
        "no account seen on DC01: reset all that logged on"
    );

    let alerts_only = planned(&json!({ "alerts": [{
        "rule_id": "r", "title": "whoami", "level": "low", "techniques": ["T1033"],
        "events": [{ "computer": "WS9", "fields": { "Image": "C:\\Windows\\System32\\whoami.exe" } }]
    }]}));
    // a low alert does not isolate its host, but the process is handled
    assert!(!has(&alerts_only, ActionKind::IsolateHost, "WS9"));
    find(
        &alerts_only,
        ActionKind::KillProcess,
        "C:\\Windows\\System32\\whoami.exe",
    );
    // tactic derived from the ATT&CK table (T1033 is discovery)
    assert!(
        alerts_only[0].rationale.contains("latest stage discovery"),
        "{}",
        alerts_only[0].rationale
    );
}

#[test]
fn root_causes_that_are_addresses_or_accounts_are_acted_on() {
    let chain = |kind: &str, node: &str| {
        json!({ "chain": { "root_cause": { "node": node, "kind": kind, "host": "web01",
            "description": "inbound logon", "timestamp": null }, "steps": [] } })
    };
    let external = planned(&chain("ip", "ip:198.51.100.23"));
    let block = find(&external, ActionKind::BlockIp, "198.51.100.23");
    assert_eq!(block.evidence[0].source, "root_cause");
    assert_eq!(block.evidence[0].pointer, "/chain/root_cause");
    find(&external, ActionKind::IsolateHost, "web01");
    let internal = planned(&chain("ip", "ip:10.1.1.1"));
    assert!(!has(&internal, ActionKind::BlockIp, "10.1.1.1"));
    let user = planned(&chain("user", "user:corp\\mallory"));
    find(&user, ActionKind::DisableAccount, "corp\\mallory");
    let system = planned(&chain("user", "user:nt authority\\system"));
    assert!(!system.iter().any(|a| a.kind == ActionKind::DisableAccount));
}

#[test]
fn binaries_in_writable_folders_are_quarantined() {
    let actions = planned(&json!({ "alerts": [{
        "rule_id": "r", "title": "t", "level": "high", "techniques": ["T1543.003"],
        "events": [
            { "computer": "WS1", "fields": { "Image": "C:\\Windows\\Temp\\evil-svc.exe", "ProcessId": "1" } },
            { "computer": "WS1", "fields": { "Image": "C:\\Windows\\System32\\cmd.exe", "ProcessId": "2" } },
            { "computer": "WS1", "fields": { "Image": "C:\\ProgramData\\x\\tool.exe", "ProcessId": "3" } },
            { "computer": "WS1", "fields": { "Image": "C:\\Program Files\\App\\app.exe", "ProcessId": "4" } }
        ]
    }]}));
    find(
        &actions,
        ActionKind::QuarantineFile,
        "C:\\Windows\\Temp\\evil-svc.exe",
    );
    find(
        &actions,
        ActionKind::QuarantineFile,
        "C:\\ProgramData\\x\\tool.exe",
    );
    assert!(!has(
        &actions,
        ActionKind::QuarantineFile,
        "C:\\Windows\\System32\\cmd.exe"
    ));
    assert!(!has(
        &actions,
        ActionKind::QuarantineFile,
        "C:\\Program Files\\App\\app.exe"
    ));
    for pid in ["1", "2", "3", "4"] {
        assert!(actions.iter().any(|a| a.kind == ActionKind::KillProcess
            && a.target.details.get("pid").map(String::as_str) == Some(pid)));
    }
}

#[test]
fn max_actions_keeps_the_top_of_the_ranking() {
    let input = PlanInput::from_json(&incident()).unwrap();
    let full = plan(&input, &Policy::default(), AttackCatalog::embedded());
    let small_policy = Policy::from_json_str(
        &Policy::default_json().replace("\"max_actions\": 250", "\"max_actions\": 3"),
        "small",
    )
    .unwrap();
    let small = plan(&input, &small_policy, AttackCatalog::embedded());
    assert_eq!(small.actions.len(), 3);
    assert_eq!(small.dropped, full.actions.len() - 3);
    for (kept, reference) in small.actions.iter().zip(&full.actions) {
        assert_eq!(
            (kept.id.as_str(), kept.priority),
            (reference.id.as_str(), reference.priority)
        );
    }
}
