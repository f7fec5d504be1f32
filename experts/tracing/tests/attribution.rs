//! Attribution accuracy on ATT&CK's attributed campaigns and on the CTID
//! adversary emulation plans (../shared/datasets; run `cargo test -p
//! synod-expert-tracing --test attribution -- --nocapture` for the figures).

use std::path::{Path, PathBuf};

use synod_expert_attack_detection::evaluation::csv_rows;
use synod_expert_tracing::Attributor;
use synod_expert_tracing::evaluation::{AttributionScore, cases_from_rows, score_attribution};

fn datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets")
}

fn read(relative: &str) -> String {
    let path = datasets().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): the shared datasets must be beside the checkout",
            path.display()
        )
    })
}

fn column_pairs(text: &str, key: &str, value: &str) -> Vec<(String, String)> {
    csv_rows(text)
        .into_iter()
        .map(|row| (row[key].clone(), row[value].clone()))
        .collect()
}

fn report(name: &str, score: &AttributionScore) {
    println!(
        "{name}: {} cases, top-1 {} ({:.0}%), top-5 {} ({:.0}%), MRR {:.3}",
        score.cases,
        score.top1,
        100.0 * score.top1 as f64 / score.cases as f64,
        score.top5,
        100.0 * score.top5 as f64 / score.cases as f64,
        score.mrr
    );
    for (case, rank) in &score.ranks {
        println!("  {case}: rank {rank:?}");
    }
}

#[test]
fn attributed_campaigns() {
    let techniques = read("attack-stix/campaign_techniques.csv");
    let attribution = read("attack-stix/campaign_attribution.csv");
    let cases = cases_from_rows(
        column_pairs(&techniques, "campaign_id", "technique_id"),
        column_pairs(&attribution, "campaign_id", "group_id"),
    );
    // campaigns with techniques; those whose group has no technique in
    // ATT&CK Enterprise (TEMP.Veles is ICS-only) cannot be attributed
    let attributor = Attributor::embedded();
    let score = score_attribution(&attributor, &cases);
    report("ATT&CK campaigns (full technique sets)", &score);
    assert_eq!(score.cases, 23);
    assert!(score.top1 >= 3, "top-1 {} of {}", score.top1, score.cases);
    assert!(score.top5 >= 9, "top-5 {} of {}", score.top5, score.cases);

    // partial observation: every other technique (sorted), as a detector
    // seeing only part of an intrusion would
    let half: Vec<_> = cases
        .iter()
        .map(|c| {
            let mut case = c.clone();
            case.techniques.sort();
            case.techniques = case.techniques.iter().step_by(2).cloned().collect();
            case
        })
        .collect();
    let score = score_attribution(&attributor, &half);
    report("ATT&CK campaigns (half the techniques)", &score);
    assert!(score.top5 >= 6, "top-5 {} of {}", score.top5, score.cases);
}

#[test]
fn adversary_emulation_plans() {
    let steps = read("adversary-emulation-plans/steps.csv");
    let rows = csv_rows(&steps);
    let cases = cases_from_rows(
        rows.iter()
            .map(|r| (r["plan_file"].clone(), r["technique_id"].clone())),
        rows.iter()
            .map(|r| (r["plan_file"].clone(), r["attack_group_id"].clone())),
    );
    let score = score_attribution(&Attributor::embedded(), &cases);
    report("CTID adversary emulation plans", &score);
    assert_eq!(score.cases, 10);
    assert!(score.top1 >= 4, "top-1 {} of {}", score.top1, score.cases);
    assert!(score.top5 >= 4, "top-5 {} of {}", score.top5, score.cases);
}
