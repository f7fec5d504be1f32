//! End to end: a tiny benchmark, inline, both transports, checked for the
//! shape of the results document (no timing assertions).

use std::path::PathBuf;

use serde_json::Value;

use crate::bench::echo::EchoChoice;
use crate::bench::expert::ExpertKind;
use crate::bench::measure::Protocol;
use crate::bench::mode::Mode;
use crate::bench::runner::{BenchOptions, ProcessModel, RuntimeChoice, run_bench};
use crate::bench::transport::Transport;
use crate::bench::workload::Workload;

fn tiny_protocol() -> Protocol {
    Protocol {
        latency_runs: 5,
        min_runs: 2,
        warmup: 2,
        concurrency: 4,
        throughput_rounds: 1,
        throughput_warmup_rounds: 1,
        latency_cap_s: 0.05,
        throughput_cap_s: 0.05,
        throughput_min_s: 0.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_run_writes_the_peer_schema() {
    let options = BenchOptions {
        workloads: vec![Workload::builtin("diamond6").unwrap()],
        experts: vec![ExpertKind::Noop, ExpertKind::Http],
        modes: vec![Mode::Direct, Mode::None, Mode::Memory, Mode::Sqlite],
        transports: vec![Transport::InProcess, Transport::Grpc],
        protocol: tiny_protocol(),
        http_max_requests: 10_000,
        echo: EchoChoice::Rust,
        python: None,
        bench_py: PathBuf::from("/nonexistent/bench.py"),
        process_model: ProcessModel::Inline,
        runtime: RuntimeChoice { worker_threads: 2 },
        baseline: None,
        max_foreign: 1.0,
        retries: 0,
        progress: false,
    };
    let doc = run_bench(&options).await.unwrap();

    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["system"], "synod");
    for key in [
        "machine",
        "noise",
        "versions",
        "settings",
        "calibration",
        "workloads",
    ] {
        assert!(doc[key].is_object(), "{key}: {}", doc[key]);
    }
    for key in [
        "sleep_1ms_p50_us",
        "http_rtt_p50_us",
        "grpc_raw_rtt_p50_us",
        "grpc_sdk_noop_rtt_p50_us",
    ] {
        assert!(
            doc["calibration"][key].as_f64().is_some_and(|v| v > 0.0),
            "{key}"
        );
    }
    assert_eq!(doc["workloads"]["diamond6"]["dependency_edges"], 8);

    let results = doc["results"].as_array().unwrap();
    // 2 experts x 1 workload x 2 transports x 4 modes.
    assert_eq!(results.len(), 16);
    assert_eq!(doc["summary"].as_array().unwrap().len(), 16);
    for r in results {
        let label = format!("{} {} {}", r["mode"], r["expert"], r["workload"]);
        if r["mode"].as_str().unwrap().ends_with("sqlite") {
            assert!(r["sqlite_db_bytes"].as_u64().unwrap() > 0, "{label}");
        }
        assert!(r.get("error").is_none(), "{label}: {}", r["error"]);
        for key in [
            "p50_us",
            "p99_us",
            "mean_us",
            "min_us",
            "max_us",
            "cpu_per_run_us",
        ] {
            assert!(r["latency"][key].is_number(), "{label} latency.{key}");
        }
        for key in ["runs_per_s", "cpu_per_node_us", "wall_s", "batch_s_min"] {
            assert!(r["throughput"][key].is_number(), "{label} throughput.{key}");
        }
        let runs = r["total_invocations"].as_u64().unwrap();
        assert_eq!(r["expert_calls"].as_u64().unwrap(), runs * 6, "{label}");
        if r["expert"] == "http" {
            assert_eq!(r["http_requests"], r["expert_calls"], "{label}");
        }
        assert!(r["rss"]["peak_mb"].is_number(), "{label}");
        assert!(r["foreign_cpu_frac"].is_number(), "{label}");
        assert!(
            r["overhead_per_node_us"]["latency_vs_direct"].is_number(),
            "{label}"
        );
        assert!(r["ideal"]["direct_runs_per_s"].is_number(), "{label}");
    }
    let modes: Vec<&str> = results.iter().filter_map(|r| r["mode"].as_str()).collect();
    assert!(modes.contains(&"none") && modes.contains(&"grpc-memory"));
    let grpc_rows = doc["grpc_vs_raw_rtt"]["rows"].as_array().unwrap();
    assert_eq!(grpc_rows.len(), 1, "grpc-none with noop");
    assert!(
        grpc_rows[0]["ratio"].is_number() && grpc_rows[0]["met"].is_null(),
        "diamond6 is not sequential"
    );
    let grpc_none = results
        .iter()
        .find(|r| r["mode"] == "grpc-none" && r["expert"] == "noop")
        .unwrap();
    let own_rtt = grpc_none["raw_grpc_rtt_p50_us"].as_f64().unwrap();
    let used_rtt = grpc_rows[0]["raw_rtt_p50_us"].as_f64().unwrap();
    assert!(
        (own_rtt - used_rtt).abs() <= 0.05,
        "the row's own round trip is used"
    );
    let _: Value = serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
}
