//! `synod-eval faults` with tiny numbers through a real `synod serve`
//! process (the `synod` binary of the same cargo profile, built with
//! `cargo build -p synod-server --bin synod`, or `SYNOD_BIN`): every run of
//! every fault kind ends in a defined state, and the retries and failed
//! attempts the runs went through are the ones `/metrics` reports.

use std::process::Command;

use serde_json::Value;

#[test]
fn faulty_runs_end_in_defined_states_and_their_retries_show_in_metrics() {
    let dir = std::env::temp_dir().join(format!("synod-eval-faults-test-{}", std::process::id()));
    let out = dir.join("faults");
    let mut command = Command::new(env!("CARGO_BIN_EXE_synod-eval"));
    command.args([
        "faults",
        "--runs",
        "6",
        "--concurrency",
        "3",
        "--kinds",
        "fail,hang,crash,invalid",
        "--seed",
        "3",
        "--step-timeout",
        "300ms",
        "--retry",
        "{ policy: fixed, interval: 50ms, max_attempts: 4 }",
        "--crash-every-ms",
        "100",
        "--crash-down-ms",
        "150",
        "--work-ms",
        "20",
        "--timeout",
        "120",
        "--store",
        "memory",
        "--json",
        "--no-progress",
        "--out",
    ]);
    command.arg(&out);
    if let Some(bin) = std::env::var_os("SYNOD_BIN") {
        command.arg("--synod").arg(bin);
    }
    let output = command.output().expect("synod-eval runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "synod-eval faults failed:\n{stderr}"
    );
    let doc: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(doc["all_defined"], true, "{doc:#}");
    let kinds = doc["kinds"].as_array().expect("kinds");
    assert_eq!(kinds.len(), 4);
    for kind in kinds {
        let name = kind["kind"].as_str().unwrap();
        let ended: u64 = ["succeeded", "failed", "cancelled"]
            .iter()
            .map(|e| kind["endings"][e].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(ended, 6, "{name}: {kind:#}");
        assert_eq!(kind["stuck_or_lost"], 0, "{name}: {kind:#}");
        // Every retry the runs went through was counted by the server.
        assert_eq!(
            kind["metrics"]["synod_step_retries_total"].as_f64(),
            kind["retries_from_runs"].as_f64(),
            "{name}: {kind:#}"
        );
        let finished: f64 = kind["metrics"]["synod_runs_finished_total_by_outcome"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_f64)
            .sum();
        assert_eq!(finished, 6.0, "{name}: {kind:#}");
    }
    // Seed 3 makes the first call misbehave (see the unit test of `roll`),
    // so each kind's first call fails, hangs or answers invalid output.
    let fail = &kinds[0];
    assert!(fail["retries_from_runs"].as_u64().unwrap() > 0, "{fail:#}");
    let codes = |k: &Value| {
        k["metrics"]["synod_step_attempt_failures_total_by_code"]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    };
    // SYN-R0002: deadline exceeded; SYN-R0005: invalid output.
    assert!(codes(&kinds[1]).contains("SYN-R0002"), "{:#}", kinds[1]);
    assert!(codes(&kinds[3]).contains("SYN-R0005"), "{:#}", kinds[3]);
    assert!(
        kinds[3]["endings"]["failed"].as_u64().unwrap() > 0,
        "{:#}",
        kinds[3]
    );
    let md = std::fs::read_to_string(out.with_extension("md")).expect("Markdown report");
    assert!(md.contains("| invalid | 6 |"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}
