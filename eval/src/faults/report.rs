//! The Markdown of a `faults` results document. Pure.

use std::fmt::Write as _;

use serde_json::Value;

fn int(v: &Value) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.0}"),
        None => "0".to_owned(),
    }
}

/// `code: n, …` of a JSON object of counts.
fn counts(v: &Value) -> String {
    match v.as_object() {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(k, n)| format!("{k}: {}", int(n)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "none".to_owned(),
    }
}

/// `SYN-R0002` → `SYN-R0002 deadline_exceeded` (the code's name).
pub fn code_label(code_text: &str) -> String {
    use synod_types::ErrorCode as E;
    let all = [
        E::ExpertUnavailable,
        E::DeadlineExceeded,
        E::ExpertTransient,
        E::ExpertFailed,
        E::InvalidOutput,
        E::InvalidInput,
        E::Cancelled,
        E::BindingError,
        E::UnknownSkill,
        E::Internal,
    ];
    let name = all
        .into_iter()
        .find(|code| code.code() == code_text)
        .and_then(|code| serde_json::to_value(code).ok())
        .and_then(|v| v.as_str().map(str::to_owned));
    match name {
        Some(name) => format!("{code_text} {name}"),
        None => code_text.to_owned(),
    }
}

/// The Markdown report.
pub fn markdown(doc: &Value) -> String {
    let c = &doc["config"];
    let mut out = String::from("# synod fault injection\n\n");
    let _ = writeln!(
        out,
        "{} runs per fault kind of `{}` (6 steps, every step: timeout {}, retry `{}`), {} in flight; \
         {}% of calls misbehave (seed {}); crash: SIGKILL every {} ms, restart after {} ms. Server: {}.\n",
        int(&c["runs_per_kind"]),
        c["workload"].as_str().unwrap_or("?"),
        c["step_timeout"].as_str().unwrap_or("?"),
        c["retry"].as_str().unwrap_or("?"),
        int(&c["concurrency"]),
        c["fail_rate"]
            .as_f64()
            .map_or("?".to_owned(), |r| format!("{:.0}", r * 100.0)),
        int(&c["seed"]),
        int(&c["crash_every_ms"]),
        int(&c["crash_down_ms"]),
        c["server"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(
        out,
        "Date: {}. Machine: {} CPUs, {}. Command: `{}`\n",
        doc["date"].as_str().unwrap_or("?"),
        int(&doc["machine"]["cpu_count"]),
        doc["machine"]["cpu_model"].as_str().unwrap_or("?"),
        doc["command"].as_str().unwrap_or("?"),
    );
    out.push_str(
        "| fault | runs | succeeded | failed | cancelled | stuck/lost | retries (/metrics) | retries (GetRun attempts) \
         | failed attempts by code (/metrics) | breaker opens (/metrics, log) | crashes | time to complete | run p50 / p99 |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for k in doc["kinds"].as_array().into_iter().flatten() {
        let m = &k["metrics"];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}, {} | {} | {:.1} s | {} |",
            k["kind"].as_str().unwrap_or("?"),
            int(&k["runs"]),
            int(&k["endings"]["succeeded"]),
            int(&k["endings"]["failed"]),
            int(&k["endings"]["cancelled"]),
            int(&k["stuck_or_lost"]),
            int(&m["synod_step_retries_total"]),
            int(&k["retries_from_runs"]),
            m["synod_step_attempt_failures_total_by_code"]
                .as_object()
                .filter(|codes| !codes.is_empty())
                .map_or("none".to_owned(), |codes| codes
                    .iter()
                    .map(|(code, n)| format!("{}: {}", code_label(code), int(n)))
                    .collect::<Vec<_>>()
                    .join(", ")),
            int(&k["breaker"]["opens_sampled"]),
            k["breaker"]["opens_logged"]
                .as_u64()
                .map_or("n/a".to_owned(), |n| n.to_string()),
            int(&k["crashes"]),
            k["time_to_complete_s"].as_f64().unwrap_or(f64::NAN),
            k["latency_ms"]
                .as_object()
                .map_or("n/a".to_owned(), |l| format!(
                    "{:.0} / {:.0} ms",
                    l["p50"].as_f64().unwrap_or(f64::NAN),
                    l["p99"].as_f64().unwrap_or(f64::NAN)
                )),
        );
    }
    let _ = writeln!(
        out,
        "\nEvery run ended in a defined state (succeeded, or failed with an error): **{}**.\n",
        doc["all_defined"]
    );
    for k in doc["kinds"].as_array().into_iter().flatten() {
        let errors = k["top_run_errors"].as_array().cloned().unwrap_or_default();
        if errors.is_empty() && k["stuck_examples"].as_array().is_none_or(Vec::is_empty) {
            continue;
        }
        let _ = writeln!(
            out,
            "**{}**: runs finished by outcome in /metrics: {}; steps by outcome: {}.",
            k["kind"].as_str().unwrap_or("?"),
            counts(&k["metrics"]["synod_runs_finished_total_by_outcome"]),
            counts(&k["metrics"]["synod_steps_finished_total_by_outcome"]),
        );
        for e in errors {
            let _ = writeln!(
                out,
                "- {} runs: `{}`",
                int(&e["runs"]),
                e["error"].as_str().unwrap_or("")
            );
        }
        for s in k["stuck_examples"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "- stuck/lost: {}", s.as_str().unwrap_or(""));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_row_per_kind_with_metrics_figures() {
        let doc = json!({
            "date": "2026-11-23", "command": "synod-eval faults",
            "machine": {"cpu_count": 2, "cpu_model": "x"},
            "config": {"runs_per_kind": 10, "workload": "diamond6", "step_timeout": "1s",
                       "retry": "{ policy: none }", "concurrency": 5, "fail_rate": 0.3,
                       "seed": 1, "crash_every_ms": 1500, "crash_down_ms": 500, "server": "spawned"},
            "all_defined": true,
            "kinds": [{
                "kind": "fail", "runs": 10, "endings": {"succeeded": 9, "failed": 1},
                "stuck_or_lost": 0, "retries_from_runs": 7, "crashes": 0,
                "metrics": {"synod_step_retries_total": 7.0,
                            "synod_step_attempt_failures_total_by_code": {"SYN-R0003": 8.0},
                            "synod_runs_finished_total_by_outcome": {"succeeded": 9.0, "failed": 1.0}},
                "breaker": {"opens_sampled": 2, "opens_logged": 2},
                "time_to_complete_s": 3.26, "latency_ms": {"p50": 120.0, "p99": 900.0},
                "top_run_errors": [{"error": "step `a` failed", "runs": 1}]
            }]
        });
        let md = markdown(&doc);
        assert!(
            md.contains("| fail | 10 | 9 | 1 | 0 | 0 | 7 | 7 | SYN-R0003 expert_transient: 8 | 2, 2 | 0 | 3.3 s | 120 / 900 ms |"),
            "{md}"
        );
        assert!(md.contains("- 1 runs: `step `a` failed`"), "{md}");
        assert!(md.contains("**true**"), "{md}");
    }
}
