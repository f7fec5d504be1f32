//! The load test's figures from what the client saw and what the store
//! recorded, and their Markdown. Pure.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::bench::stats::{LatencySummary, p50_p99};
use crate::load::track::{Ending, Tracked};

/// Peak resident memory the server must stay under, MiB (2 GiB).
pub const RSS_GOAL_MIB: f64 = 2048.0;

/// What the store says of a run afterwards: its terminal ending, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Recorded with this terminal status.
    Ended(Ending),
    /// Recorded but not in a terminal status.
    NotEnded(String),
    /// `GetRun` does not know it.
    Missing,
    /// `GetRun` failed.
    Unreadable(String),
}

/// Counts of run endings, lost runs and latencies.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcomes {
    /// Runs asked for.
    pub runs: usize,
    /// Runs `StartRun` accepted.
    pub submitted: usize,
    /// Runs `StartRun` refused.
    pub start_errors: usize,
    /// Endings seen by the client, by name.
    pub endings: BTreeMap<String, usize>,
    /// Accepted runs that did not end in a terminal state the store agrees
    /// with (unfinished, missing, not terminal, or a different status).
    pub lost: usize,
    /// Up to 20 lost runs with the reason.
    pub lost_examples: Vec<String>,
    /// Distinct errors (start failures, watch failures) with their counts, at most 10.
    pub errors: BTreeMap<String, usize>,
    /// `WatchRun` reconnections.
    pub reconnects: u64,
    /// End-to-end latency of the runs that ended (µs): `StartRun` sent to the
    /// terminal event received. `cpu_per_run_us` is the server's CPU per run.
    pub latency: Option<LatencySummary>,
    /// `StartRun` round trip p50 (µs).
    pub submit_p50_us: f64,
    /// `StartRun` round trip p99 (µs).
    pub submit_p99_us: f64,
}

/// Folds the tracked runs with the store's view of them.
/// `server_cpu_s` is the server's CPU time over the test.
pub fn outcomes(
    tracked: &[Tracked],
    stored: &HashMap<String, Stored>,
    server_cpu_s: f64,
) -> Outcomes {
    let mut endings: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut lost_examples = Vec::new();
    let mut lost = 0;
    let mut latencies = Vec::new();
    let mut submits = Vec::new();
    for run in tracked {
        let name = serde_json::to_value(run.ending)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *endings.entry(name).or_default() += 1;
        if let Some(error) = &run.error {
            *errors.entry(error_class(error)).or_default() += 1;
        }
        let Some(run_id) = &run.run_id else { continue };
        submits.push(run.submit.as_secs_f64() * 1e6);
        if run.ending.is_terminal() {
            latencies.push(run.latency.as_secs_f64() * 1e6);
        }
        let reason = match (run.ending, stored.get(run_id)) {
            (ending, Some(Stored::Ended(recorded))) if ending == *recorded => None,
            (ending, Some(Stored::Ended(recorded))) if ending.is_terminal() => Some(format!(
                "the client saw {ending:?} but the store recorded {recorded:?}"
            )),
            (ending, Some(Stored::Ended(recorded))) => Some(format!(
                "the client saw {ending:?}; the store recorded {recorded:?}"
            )),
            (ending, Some(Stored::NotEnded(status))) => {
                Some(format!("client {ending:?}; the store still says {status}"))
            }
            (ending, Some(Stored::Missing) | None) => Some(format!(
                "client {ending:?}; the store does not know the run"
            )),
            (ending, Some(Stored::Unreadable(error))) => {
                Some(format!("client {ending:?}; GetRun failed: {error}"))
            }
        };
        if let Some(reason) = reason {
            lost += 1;
            if lost_examples.len() < 20 {
                lost_examples.push(format!("{run_id}: {reason}"));
            }
        }
    }
    let errors = errors.into_iter().take(10).collect();
    let (submit_p50_us, submit_p99_us) = if submits.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        p50_p99(submits)
    };
    Outcomes {
        runs: tracked.len(),
        submitted: tracked.iter().filter(|r| r.run_id.is_some()).count(),
        start_errors: tracked.iter().filter(|r| r.run_id.is_none()).count(),
        endings,
        lost,
        lost_examples,
        errors,
        reconnects: tracked.iter().map(|r| u64::from(r.reconnects)).sum(),
        latency: (!latencies.is_empty())
            .then(|| LatencySummary::from_samples(latencies, server_cpu_s)),
        submit_p50_us,
        submit_p99_us,
    }
}

/// An error message with run ids and numbers blanked, so equal causes group.
pub fn error_class(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_number = false;
    for c in message.chars() {
        if c.is_ascii_hexdigit() && (c.is_ascii_digit() || in_number) {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out.chars().take(200).collect()
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) => format!("{x:.2}"),
        None => "n/a".to_owned(),
    }
}

/// The Markdown report of a `load` results document.
pub fn markdown(doc: &Value) -> String {
    let c = &doc["config"];
    let r = &doc["results"];
    let o = &r["outcomes"];
    let ms = |v: &Value| {
        v.as_f64()
            .map_or("n/a".to_owned(), |us| format!("{:.1} ms", us / 1000.0))
    };
    let mut out = format!(
        "# synod load test\n\n{} runs of `{}` ({} expert over gRPC), at most {} in flight, store `{}`, \
         against `synod serve` ({}).\n\nDate: {}. Machine: {} CPUs, {}. Command: `{}`\n\n",
        num(&c["runs"]),
        c["workload"].as_str().unwrap_or("?"),
        c["expert"].as_str().unwrap_or("?"),
        num(&c["concurrency"]),
        c["store"].as_str().unwrap_or("?"),
        c["server"].as_str().unwrap_or("?"),
        doc["date"].as_str().unwrap_or("?"),
        num(&doc["machine"]["cpu_count"]),
        doc["machine"]["cpu_model"].as_str().unwrap_or("?"),
        doc["command"].as_str().unwrap_or("?"),
    );
    out.push_str("| figure | value | goal |\n|---|---|---|\n");
    let rows = [
        ("runs accepted", num(&o["submitted"]), String::new()),
        ("StartRun refused", num(&o["start_errors"]), String::new()),
        (
            "succeeded / failed / cancelled",
            format!(
                "{} / {} / {}",
                num(&o["endings"]["succeeded"]),
                num(&o["endings"]["failed"]),
                num(&o["endings"]["cancelled"])
            ),
            String::new(),
        ),
        ("lost runs", num(&o["lost"]), "0".to_owned()),
        (
            "wall time",
            format!("{} s", num(&r["wall_s"])),
            String::new(),
        ),
        ("runs/s", num(&r["runs_per_s"]), String::new()),
        ("latency p50", ms(&o["latency"]["p50_us"]), String::new()),
        ("latency p99", ms(&o["latency"]["p99_us"]), String::new()),
        (
            "StartRun p50 / p99",
            format!("{} / {}", ms(&o["submit_p50_us"]), ms(&o["submit_p99_us"])),
            String::new(),
        ),
        (
            "peak runs in flight (client)",
            num(&r["peak_in_flight"]),
            String::new(),
        ),
        (
            "peak `synod_runs_active` (server /metrics)",
            num(&r["peak_runs_active"]),
            String::new(),
        ),
        (
            "server peak RSS (VmHWM)",
            format!("{} MiB", num(&r["server_peak_rss_mib"])),
            format!("< {RSS_GOAL_MIB:.0} MiB"),
        ),
        (
            "server CPU",
            format!("{} s", num(&r["server_cpu_s"])),
            String::new(),
        ),
        (
            "server CPU per run",
            ms(&o["latency"]["cpu_per_run_us"]),
            String::new(),
        ),
    ];
    for (name, value, goal) in rows {
        out.push_str(&format!("| {name} | {value} | {goal} |\n"));
    }
    if let Some(goals) = r["goals"].as_object() {
        out.push_str("\nGoals: ");
        let list: Vec<String> = goals.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        out.push_str(&list.join(", "));
        out.push('\n');
    }
    if let Some(errors) = o["errors"].as_object().filter(|e| !e.is_empty()) {
        out.push_str("\nErrors seen by the client:\n\n");
        for (error, count) in errors {
            out.push_str(&format!("- {count} x `{error}`\n"));
        }
    }
    if let Some(note) = r["note"].as_str() {
        out.push_str(&format!("\n{note}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn run(id: Option<&str>, ending: Ending, ms: u64) -> Tracked {
        Tracked {
            run_id: id.map(str::to_owned),
            ending,
            latency: Duration::from_millis(ms),
            submit: Duration::from_millis(1),
            error: (ending == Ending::NotStarted).then(|| "StartRun failed: status 42".into()),
            reconnects: 0,
        }
    }

    #[test]
    fn lost_runs_are_the_unfinished_missing_and_disagreeing_ones() {
        let tracked = vec![
            run(Some("a"), Ending::Succeeded, 10),
            run(Some("b"), Ending::Failed, 20),
            run(Some("c"), Ending::Unfinished, 30),
            run(Some("d"), Ending::Succeeded, 40),
            run(Some("e"), Ending::Succeeded, 50),
            run(None, Ending::NotStarted, 1),
        ];
        let stored: HashMap<String, Stored> = [
            ("a", Stored::Ended(Ending::Succeeded)),
            ("b", Stored::Ended(Ending::Failed)),
            ("c", Stored::NotEnded("running".into())),
            ("d", Stored::Missing),
            ("e", Stored::Ended(Ending::Failed)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let o = outcomes(&tracked, &stored, 0.4);
        assert_eq!((o.runs, o.submitted, o.start_errors), (6, 5, 1));
        assert_eq!(o.lost, 3, "{:?}", o.lost_examples);
        assert!(
            o.lost_examples
                .iter()
                .any(|l| l.starts_with("e: the client saw Succeeded"))
        );
        assert_eq!(o.endings["succeeded"], 3);
        assert_eq!(o.endings["not_started"], 1);
        let latency = o.latency.unwrap();
        // Terminal runs only: 10, 20, 40, 50 ms.
        assert_eq!(latency.n, 4);
        assert_eq!(latency.p50_us, 30_000.0);
        assert!((latency.cpu_per_run_us - 100_000.0).abs() < 1e-6);
        assert_eq!(o.errors["StartRun failed: status #"], 1);
    }

    #[test]
    fn error_classes_blank_numbers_and_ids() {
        assert_eq!(
            error_class("run 0193f2ab-77c1 failed after 12 attempts"),
            "run #-# failed after # attempts"
        );
    }

    #[test]
    fn markdown_shows_the_figures_and_goals() {
        let doc = serde_json::json!({
            "date": "2026-11-23", "command": "synod-eval load",
            "machine": {"cpu_count": 2, "cpu_model": "x"},
            "config": {"runs": 10, "concurrency": 10, "store": "sqlite", "workload": "diamond6",
                        "expert": "noop", "server": "spawned"},
            "results": {"wall_s": 1.5, "runs_per_s": 6.67, "server_peak_rss_mib": 80.0,
                        "outcomes": {"submitted": 10, "lost": 0, "endings": {"succeeded": 10},
                                     "latency": {"p50_us": 1500.0, "p99_us": 2500.0}},
                        "goals": {"zero_lost": true}}
        });
        let md = markdown(&doc);
        assert!(md.contains("| lost runs | 0 | 0 |"), "{md}");
        assert!(md.contains("| latency p99 | 2.5 ms |"), "{md}");
        assert!(md.contains("| runs/s | 6.67 |"), "{md}");
        assert!(md.contains("zero_lost = true"), "{md}");
    }
}
