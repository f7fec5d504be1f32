//! Reconstruction from real EVTX recordings of EVTX-ATTACK-SAMPLES
//! (../shared/datasets/evtx-attack-samples, labelled Lateral Movement),
//! unpacked with the system's `zstd` and `tar`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use synod_expert_tracing::{read_records, trace_records};

const PSEXEC: &str = "./Lateral Movement/LM_sysmon_psexec_smb_meterpreter.evtx";
const PASS_THE_HASH: &str = "./Lateral Movement/LM_4624_mimikatz_sekurlsa_pth_source_machine.evtx";

/// Unpacks `members` into a fresh temporary folder.
fn unpack(members: &[&str]) -> PathBuf {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/datasets/evtx-attack-samples/evtx-attack-samples.tar.zst");
    assert!(
        archive.exists(),
        "{} is missing: the shared datasets must be beside the checkout",
        archive.display()
    );
    let dir = std::env::temp_dir().join(format!("synod-tracing-evtx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut zstd = Command::new("zstd")
        .arg("-dc")
        .arg(&archive)
        .stdout(Stdio::piped())
        .spawn()
        .expect("zstd on PATH");
    let status = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&dir)
        .args(members)
        .stdin(zstd.stdout.take().unwrap())
        .status()
        .expect("tar on PATH");
    assert!(
        status.success() && zstd.wait().unwrap().success(),
        "cannot unpack {members:?}"
    );
    dir
}

fn trace(path: &Path) -> Value {
    trace_records(read_records(&[path]).unwrap())
}

fn techniques(output: &Value) -> Vec<(&str, &str)> {
    output["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["tactic"].as_str().unwrap(),
                s["technique_id"].as_str().unwrap(),
            )
        })
        .collect()
}

#[test]
fn lateral_movement_samples() {
    let dir = unpack(&[PSEXEC, PASS_THE_HASH]);

    // Metasploit psexec: a service whose command is %COMSPEC% ... powershell
    let psexec = trace(&dir.join(PSEXEC));
    let root = &psexec["root_cause"];
    assert_eq!(root["node"], "service:iewin7:hello", "{root:#}");
    let description = root["description"].as_str().unwrap();
    assert!(
        description.contains("%%COMSPEC%% /b /c start /b /min powershell.exe"),
        "{description}"
    );
    assert!(
        description.ends_with("cause of 2 of 2 detected activities"),
        "{description}"
    );
    assert_eq!(
        techniques(&psexec),
        [("execution", "T1569.002"), ("persistence", "T1543.003")]
    );
    let edges = psexec["path"]["edges"].as_array().unwrap();
    assert!(edges.iter().any(|e| e["kind"] == "executed"
        && e["from"] == "service:iewin7:hello"
        && e["to"].as_str().unwrap().starts_with("process:iewin7:")));

    // mimikatz sekurlsa::pth on the source machine: a type-9 seclogo logon
    let pth = trace(&dir.join(PASS_THE_HASH));
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(pth["root_cause"]["kind"], "logon");
    assert!(
        techniques(&pth).contains(&("lateral-movement", "T1550.002")),
        "{:?}",
        techniques(&pth)
    );
    assert!(
        pth["entities"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_str().unwrap().ends_with("user01"))
    );
}
