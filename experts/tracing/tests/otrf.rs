//! Reconstruction of a real recorded intrusion: OTRF Security-Datasets
//! `LSASS_campaign_03` (Metasploit payload from Downloads -> discovery ->
//! thread injection into svchost -> service -> LSASS dump with comsvcs.dll),
//! 42k Sysmon/Security/PowerShell events, unpacked from
//! ../shared/datasets/otrf-security-datasets/otrf-host-subset.tar with the
//! system's `tar` and `unzip`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use synod_expert_attack_detection::evaluation::csv_rows;
use synod_expert_tracing::attack::tactic_rank;
use synod_expert_tracing::evaluation::technique_recall;
use synod_expert_tracing::{AttackData, read_records, trace_records};

const MEMBER: &str = "datasets/compound/LSASS_campaign_03/metasploit_comsvcs_lsass_memory_dump.zip";

fn datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/otrf-security-datasets")
}

fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(status.success(), "{command:?} failed: {status}");
}

/// Unpacks the campaign into a fresh temporary folder; returns the JSON file.
fn unpack() -> (PathBuf, PathBuf) {
    let tar = datasets().join("otrf-host-subset.tar");
    assert!(
        tar.exists(),
        "{} is missing: the shared datasets must be beside the checkout",
        tar.display()
    );
    let dir = std::env::temp_dir().join(format!("synod-tracing-otrf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&dir)
        .arg(format!("./{MEMBER}")));
    run(Command::new("unzip")
        .args(["-o", "-q"])
        .arg(dir.join(MEMBER))
        .arg("-d")
        .arg(&dir));
    let json = dir.join("metasploit_comsvcs_lsass_memory_dump.json");
    assert!(json.exists(), "{} not unpacked", json.display());
    (dir, json)
}

fn labelled_techniques() -> Vec<String> {
    let index = std::fs::read_to_string(datasets().join("index.csv")).unwrap();
    let row = csv_rows(&index)
        .into_iter()
        .find(|r| r["file_path"] == MEMBER)
        .expect("LSASS_campaign_03 host row in index.csv");
    let attack = AttackData::embedded();
    row["techniques"]
        .split(';')
        .filter(|t| {
            // resource development (building and staging the payload) leaves no host events
            attack
                .technique(t)
                .is_some_and(|tech| tech.tactics.iter().all(|x| x != "resource-development"))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn lsass_campaign_03_chain() {
    let (dir, json) = unpack();
    let records = read_records(&[&json]).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(records.len() > 30_000, "{} records", records.len());
    let output = trace_records(records);

    // root cause: the payload the user ran from Downloads
    let root = &output["root_cause"];
    assert_eq!(root["kind"], "process", "{root}");
    let description = root["description"].as_str().unwrap();
    assert!(
        description.starts_with("C:\\Users\\pupy.godoy\\Downloads\\winx64_payload.exe"),
        "{description}"
    );
    assert!(
        description.contains("written by C:\\Program Files (x86)\\Microsoft\\Edge"),
        "{description}"
    );

    // the LSASS dump is reached through the thread injected into svchost
    let steps = output["steps"].as_array().unwrap();
    let dump = steps
        .iter()
        .find(|s| {
            s["technique_id"] == "T1003.001"
                && s["process"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("rundll32.exe"))
        })
        .expect("LSASS dump step by rundll32");
    assert_eq!(dump["tactic"], "credential-access");
    assert!(!dump["evidence"].as_array().unwrap().is_empty());
    let edges = output["path"]["edges"].as_array().unwrap();
    assert!(
        edges.iter().any(|e| e["kind"] == "injected-into"
            && e["from"].as_str().unwrap().contains("winx64_payload.exe")),
        "no injection edge from the payload"
    );

    // ATT&CK order: tactics never go backwards
    let ranks: Vec<usize> = steps
        .iter()
        .map(|s| tactic_rank(s["tactic"].as_str().unwrap()))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");

    // recall of the dataset's host-observable techniques (parent level)
    let expected = labelled_techniques();
    let found: Vec<String> = steps
        .iter()
        .filter_map(|s| s["technique_id"].as_str().map(str::to_owned))
        .collect();
    let (hits, total) = technique_recall(&expected, &found);
    println!(
        "LSASS_campaign_03: {hits} of {total} labelled host techniques found ({expected:?} vs {found:?})"
    );
    assert!(total >= 7 && hits + 1 >= total, "{hits} of {total}");

    let hosts = &output["entities"]["hosts"];
    assert_eq!(hosts, &Value::from(vec!["prd01.pandalab.com"]));
    assert!(output["confidence"].as_f64().unwrap() >= 0.5);
}
