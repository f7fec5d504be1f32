//! Generator and drift check of `data/attack-mitigations.tsv`, the compact
//! ATT&CK table the planner embeds (technique -> name, tactics, mitigations).
//!
//! The table is derived from MITRE ATT&CK Enterprise STIX
//! (`../shared/datasets/attack-stix/enterprise-attack.json.zst`): every
//! technique and sub-technique that is neither revoked nor deprecated, with
//! its tactics (`kill_chain_phases`), and the `M`-numbered course-of-action
//! objects linked to it by `mitigates` relationships (revoked or deprecated
//! relationships dropped).
//!
//! Regenerate after a dataset update:
//! `SYNOD_REGENERATE=1 cargo test -p synod-expert-disposition --test attack_table`

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const SOURCE: &str =
    "mitre/cti @ 421deacb77191b38bdd1bf63268954e93da91365 (ATT&CK Enterprise v18.x)";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dataset() -> PathBuf {
    crate_dir().join("../../../shared/datasets/attack-stix/enterprise-attack.json.zst")
}

/// Decompresses the bundle with the system `zstd` (as the eval harness does).
fn read_bundle(path: &Path) -> Value {
    let output = Command::new("zstd")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("cannot run `zstd` (install the zstd package)");
    assert!(
        output.status.success(),
        "zstd -dc {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the ATT&CK bundle is not JSON")
}

fn is_live(object: &Value) -> bool {
    object["revoked"] != Value::Bool(true) && object["x_mitre_deprecated"] != Value::Bool(true)
}

fn attack_id(object: &Value) -> Option<&str> {
    object["external_references"]
        .as_array()?
        .iter()
        .find(|r| r["source_name"] == "mitre-attack")?["external_id"]
        .as_str()
}

/// Tab-separated rows, one per mitigation (`M`) and technique (`T`).
fn derive(bundle: &Value) -> String {
    let objects = bundle["objects"]
        .as_array()
        .expect("bundle without objects");
    // STIX id -> ATT&CK id
    let mut mitigations: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut techniques: BTreeMap<&str, &Value> = BTreeMap::new();
    for object in objects {
        if !is_live(object) {
            continue;
        }
        let Some(id) = attack_id(object) else {
            continue;
        };
        let stix_id = object["id"].as_str().unwrap_or_default();
        match object["type"].as_str() {
            // old ATT&CK versions had one course-of-action per technique (ids
            // T1xxx); those are deprecated, the live ones are M-numbered
            Some("course-of-action") if id.starts_with('M') => {
                mitigations.insert(stix_id, (id, object["name"].as_str().unwrap_or_default()));
            }
            Some("attack-pattern") => {
                techniques.insert(stix_id, object);
            }
            _ => {}
        }
    }
    let mut mitigated_by: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for object in objects {
        if object["type"] != "relationship"
            || object["relationship_type"] != "mitigates"
            || !is_live(object)
        {
            continue;
        }
        let source = object["source_ref"].as_str().unwrap_or_default();
        let target = object["target_ref"].as_str().unwrap_or_default();
        if let (Some((mitigation, _)), Some(technique)) =
            (mitigations.get(source), techniques.get(target))
        {
            let technique_id = attack_id(technique).unwrap_or_default();
            mitigated_by
                .entry(technique_id)
                .or_default()
                .insert(mitigation);
        }
    }
    let names: BTreeMap<&str, &str> = techniques
        .values()
        .map(|t| {
            (
                attack_id(t).unwrap_or_default(),
                t["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();

    let mut out = String::new();
    out.push_str("# ATT&CK technique -> mitigation table for synod-expert-disposition\n");
    out.push_str(&format!(
        "# derived from MITRE ATT&CK STIX data, {SOURCE},\n"
    ));
    out.push_str("# by tests/attack_table.rs; regenerate: SYNOD_REGENERATE=1 cargo test -p synod-expert-disposition --test attack_table\n");
    out.push_str("# \"(c) 2025 The MITRE Corporation. This work is reproduced and distributed with the permission of The MITRE Corporation.\"\n");
    out.push_str("# ATT&CK(R) license and disclaimers: data/LICENSE-MITRE-ATTACK-CAPEC.txt\n");
    out.push_str("# rows: M<TAB>mitigation id<TAB>name | T<TAB>technique id<TAB>name<TAB>tactics (,)<TAB>mitigation ids (,)\n");
    let mut rows: Vec<(&str, &str)> = mitigations.values().copied().collect();
    rows.sort();
    for (id, name) in rows {
        out.push_str(&format!("M\t{id}\t{}\n", clean(name)));
    }
    let mut technique_rows: Vec<(&str, &Value)> = techniques
        .values()
        .map(|t| (attack_id(t).unwrap_or_default(), *t))
        .collect();
    technique_rows.sort_by(|a, b| a.0.cmp(b.0));
    for (id, technique) in technique_rows {
        let name = technique["name"].as_str().unwrap_or_default();
        let full_name = match id.split_once('.') {
            Some((parent, _)) => format!("{}: {name}", names.get(parent).unwrap_or(&"")),
            None => name.to_owned(),
        };
        let tactics: Vec<&str> = technique["kill_chain_phases"]
            .as_array()
            .map(|phases| {
                phases
                    .iter()
                    .filter(|p| p["kill_chain_name"] == "mitre-attack")
                    .filter_map(|p| p["phase_name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let mitigation_ids: Vec<&str> = mitigated_by
            .get(id)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "T\t{id}\t{}\t{}\t{}\n",
            clean(&full_name),
            tactics.join(","),
            mitigation_ids.join(",")
        ));
    }
    out
}

fn clean(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
}

#[test]
fn embedded_table_matches_the_attack_dataset() {
    let path = dataset();
    if !path.exists() {
        eprintln!(
            "skipped: {} is absent (clone the shared datasets beside the repository)",
            path.display()
        );
        return;
    }
    let derived = derive(&read_bundle(&path));
    let table_path = crate_dir().join("data/attack-mitigations.tsv");
    if std::env::var_os("SYNOD_REGENERATE").is_some() {
        std::fs::write(&table_path, &derived).unwrap();
    }
    let committed = std::fs::read_to_string(&table_path).unwrap_or_default();
    assert!(
        committed == derived,
        "{} is out of date with the ATT&CK dataset; regenerate it with \
         SYNOD_REGENERATE=1 cargo test -p synod-expert-disposition --test attack_table",
        table_path.display()
    );
    // sanity: the table covers what the planner relies on
    assert!(derived.contains("\nM\tM1051\tUpdate Software\n"));
    let lsass = derived
        .lines()
        .find(|l| l.starts_with("T\tT1003.001\t"))
        .unwrap();
    assert!(lsass.contains("OS Credential Dumping: LSASS Memory\tcredential-access\t"));
    assert!(lsass.contains("M1040"), "{lsass}");
}
