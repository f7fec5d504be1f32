//! Technique recall of the tracer's chain on the seven OTRF LSASS
//! campaigns (host logs), against each dataset's ATT&CK labels (parent
//! level; resource-development techniques excluded: they leave no host
//! events), with the root cause found.
//!
//! ```text
//! mkdir -p /tmp/otrf && tar -xf ../shared/datasets/otrf-security-datasets/otrf-host-subset.tar -C /tmp/otrf
//! for z in /tmp/otrf/datasets/compound/LSASS_campaign_0*/*.zip; do unzip -o -q "$z" -d "$(dirname "$z")"; done
//! cargo run -p synod-expert-tracing --release --example lsass_campaigns -- \
//!     /tmp/otrf ../shared/datasets/otrf-security-datasets/index.csv
//! ```

use std::path::Path;

use synod_expert_attack_detection::evaluation::csv_rows;
use synod_expert_tracing::evaluation::{host_techniques, technique_recall};
use synod_expert_tracing::{AttackData, read_records, trace_records};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, index] = &args[..] else {
        return Err("usage: lsass_campaigns UNPACKED_DIR INDEX_CSV".into());
    };
    let attack = AttackData::embedded();
    let (mut hits_total, mut expected_total, mut extra_total) = (0, 0, 0);
    for row in csv_rows(&std::fs::read_to_string(index)?) {
        let zip = &row["file_path"];
        if !zip.contains("LSASS_campaign") || row["in_bundle"] != "yes" {
            continue;
        }
        let json = Path::new(root).join(zip.replace(".zip", ".json"));
        let output = trace_records(read_records(&[json])?);
        let expected = host_techniques(attack, &row["techniques"]);
        let found: Vec<String> = output["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["technique_id"].as_str().map(str::to_owned))
            .collect();
        let (hits, total) = technique_recall(&expected, &found);
        let missed: Vec<&String> = expected
            .iter()
            .filter(|t| technique_recall(&[(*t).clone()], &found).0 == 0)
            .collect();
        // found techniques (parent level, deduplicated) outside the labels
        let mut extra: Vec<String> = found
            .iter()
            .filter(|t| technique_recall(&[(*t).clone()], &expected).0 == 0)
            .cloned()
            .collect();
        extra.sort();
        extra.dedup();
        extra_total += extra.len();
        hits_total += hits;
        expected_total += total;
        let root = output["root_cause"]["description"]
            .as_str()
            .unwrap_or("none");
        println!(
            "{}: {hits}/{total} techniques (missed {missed:?}; unlabelled {extra:?}); root cause: {}",
            row["title"],
            root.chars().take(110).collect::<String>()
        );
    }
    println!(
        "total: {hits_total}/{expected_total} labelled host techniques found; {extra_total} unlabelled techniques reported"
    );
    Ok(())
}
