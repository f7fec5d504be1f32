//! The embedded group table (`data/groups.tsv`, written by
//! `scripts/gen_attack_data.py`) must match the shared ATT&CK CSV it is
//! derived from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use synod_expert_attack_detection::evaluation::csv_rows;
use synod_expert_tracing::AttackData;

#[test]
fn embedded_groups_match_group_techniques_csv() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/datasets/attack-stix/group_techniques.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): the shared datasets must be beside the checkout",
            path.display()
        )
    });
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in csv_rows(&text) {
        expected
            .entry(row["group_id"].clone())
            .or_default()
            .insert(row["technique_id"].clone());
    }
    let embedded: BTreeMap<String, BTreeSet<String>> = AttackData::embedded()
        .groups()
        .iter()
        .map(|g| (g.id.clone(), g.techniques.iter().cloned().collect()))
        .collect();
    assert_eq!(
        embedded, expected,
        "data/groups.tsv is stale: run `python3 scripts/gen_attack_data.py` in experts/tracing"
    );
    // every technique a group uses is known to the technique table
    let attack = AttackData::embedded();
    let unknown: Vec<&String> = expected
        .values()
        .flatten()
        .filter(|t| attack.technique(t).is_none())
        .collect();
    assert!(unknown.is_empty(), "{unknown:?}");
}
