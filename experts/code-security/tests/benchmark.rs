//! The fixture benchmark (tests/fixtures/benchmark + expectedresults.csv,
//! OWASP Benchmark format) scored with the Benchmark's method: the score
//! must stay at or above what the engine achieves today.

use std::path::PathBuf;

use synod_expert_code_security::Scanner;
use synod_expert_code_security::benchmark::{case_files, parse_expected, reported_cwes, score};

/// Average score (TPR - FPR over categories) the fixtures must reach.
const MIN_AVERAGE_SCORE: f64 = 0.96;
/// Average TPR the fixtures must reach.
const MIN_AVERAGE_TPR: f64 = 0.98;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn fixture_benchmark_score() {
    let csv = std::fs::read_to_string(fixtures().join("expectedresults.csv")).unwrap();
    let cases = parse_expected(&csv).unwrap();
    let files = case_files(&fixtures().join("benchmark"), &cases).unwrap();
    assert_eq!(files.len(), cases.len(), "every case has a file");
    let scanner = Scanner::builtin().unwrap();
    let card = score(&cases, &reported_cwes(&scanner, &files, &|_| {}));
    assert!(card.missing.is_empty());
    let mut table = String::new();
    for c in &card.categories {
        table.push_str(&format!(
            "{:16} tp {:2} fn {:2} fp {:2} tn {:2} tpr {:.2} fpr {:.2} score {:.2}\n",
            c.category, c.tp, c.fn_, c.fp, c.tn, c.tpr, c.fpr, c.score
        ));
    }
    for case in card.cases.iter().filter(|c| c.real != c.reported) {
        table.push_str(&format!(
            "wrong: {} {} real={} reported={}\n",
            case.name, case.category, case.real, case.reported
        ));
    }
    eprintln!(
        "{table}average tpr {:.3} fpr {:.3} score {:.3}",
        card.average_tpr, card.average_fpr, card.average_score
    );
    assert!(
        card.average_score >= MIN_AVERAGE_SCORE && card.average_tpr >= MIN_AVERAGE_TPR,
        "fixture benchmark regressed:\n{table}average score {:.3}",
        card.average_score
    );
}
