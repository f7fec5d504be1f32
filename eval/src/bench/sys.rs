//! What the benchmark reads from Linux `/proc`: CPU time, resident memory,
//! the whole machine's busy time, and a description of the machine.
//! Every reader degrades to `None` / 0 elsewhere.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

/// Clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// CPU seconds used by this process so far, all threads, nanosecond
/// resolution when the kernel has schedstats (`/proc/self/task/*/schedstat`),
/// else from `/proc/self/stat` (10 ms ticks).
pub fn process_cpu_s() -> f64 {
    schedstat_cpu_s().unwrap_or_else(|| pid_cpu_s("self").unwrap_or(0.0))
}

fn schedstat_cpu_s() -> Option<f64> {
    let mut total_ns: u128 = 0;
    for entry in fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path().join("schedstat");
        // A thread may exit between listing and reading: skip it.
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        total_ns += text.split_whitespace().next()?.parse::<u128>().ok()?;
    }
    Some(total_ns as f64 / 1e9)
}

/// User + system CPU seconds of a process (`self` or a pid) from its stat file.
pub fn pid_cpu_s(pid: &str) -> Option<f64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_S)
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`) in MiB.
pub fn status_mb(field: &str) -> Option<f64> {
    pid_status_mb("self", field)
}

/// A `kB` field of `/proc/<pid>/status` (`self` or a pid) in MiB, e.g.
/// `VmHWM` (peak resident memory) of a server process.
pub fn pid_status_mb(pid: &str, field: &str) -> Option<f64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU seconds the whole machine spent busy so far (all processes).
pub fn machine_busy_s() -> Option<f64> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<f64> = text
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy =
        v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).unwrap_or(&0.0);
    Some(busy / TICKS_PER_S)
}

/// Number of CPUs.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The 1-minute load average.
pub fn loadavg_1m() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Share of all CPUs used by other processes while `own_cpu_s` seconds
/// were ours, over `wall_s` seconds of `busy_s` machine-busy seconds.
pub fn foreign_fraction(busy_s: f64, own_cpu_s: f64, wall_s: f64) -> f64 {
    let foreign = (busy_s - own_cpu_s).max(0.0);
    let frac = foreign / (wall_s * cpu_count() as f64);
    (frac * 1000.0).round() / 1000.0
}

/// The `machine` object: platform, kernel, CPU, memory, toolchain, and the
/// peer benchmark's Python speed yardstick when `python` is given.
pub fn machine_info(python: Option<&Path>) -> Value {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .ok();
    let cpu_model = fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    });
    let mem_total_gib = fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        let kb: f64 = t.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
        Some((kb / 1024.0 / 1024.0 * 10.0).round() / 10.0)
    });
    let rustc = command_line("rustc", &["--version"]);
    let python_yardstick = python.and_then(|p| {
        command_line(
            &p.to_string_lossy(),
            &[
                "-c",
                "import timeit; print(round(min(timeit.repeat('sum(range(10000))', number=500, repeat=5)) / 500 * 1e6, 1))",
            ],
        )
        .and_then(|s| s.parse::<f64>().ok())
    });
    json!({
        "platform": format!("{}-{}", std::env::consts::OS, kernel.clone().unwrap_or_default()),
        "kernel": kernel,
        "machine": std::env::consts::ARCH,
        "cpu_count": cpu_count(),
        "cpus_allowed": cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_gib": mem_total_gib,
        "rustc": rustc,
        "build_profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "python_sum_range_10k_us": python_yardstick,
    })
}

/// First line of a command's stdout, if it runs.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()
    })
}

/// Versions of the crates that matter for the figures, from the workspace's
/// `Cargo.lock` as it was when this binary was built.
pub fn versions() -> Value {
    const CRATES: [&str; 9] = [
        "tokio",
        "tonic",
        "prost",
        "hyper",
        "h2",
        "reqwest",
        "axum",
        "serde_json",
        "jsonschema",
    ];
    let lock = include_str!("../../../Cargo.lock");
    let mut out = serde_json::Map::new();
    out.insert("synod".to_owned(), json!(env!("CARGO_PKG_VERSION")));
    for name in CRATES {
        let version = lock
            .split("[[package]]")
            .find(|block| block.contains(&format!("\nname = \"{name}\"\n")))
            .and_then(|block| block.lines().find(|l| l.starts_with("version = ")))
            .map(|l| {
                l.trim_start_matches("version = ")
                    .trim_matches('"')
                    .to_owned()
            });
        out.insert(name.to_owned(), json!(version));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_lock_file() {
        let v = versions();
        assert!(
            v["tokio"].as_str().is_some_and(|s| s.starts_with('1')),
            "{v}"
        );
        assert!(v["tonic"].is_string(), "{v}");
    }

    #[test]
    fn foreign_fraction_is_relative_to_all_cpus() {
        let cpus = cpu_count() as f64;
        let f = foreign_fraction(2.0 * cpus, cpus, 2.0);
        assert!((f - 0.5).abs() < 1e-3);
        assert_eq!(foreign_fraction(1.0, 3.0, 1.0), 0.0);
    }
}
