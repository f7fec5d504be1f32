//! `GET /metrics`: after a run whose first step fails twice before it
//! succeeds, the scrape parses as Prometheus text, the run, step, retry,
//! failure and latency series moved by exactly what the run did, expert
//! gauges are there, and no label value is a run id; while a run is held
//! at a gate, the gauges show it active with one step running, one queued.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use serde_json::Value;
use synod_integration_tests::TestOrchestrator;
use synod_integration_tests::experts::{flaky_expert, gate_expert, serve};
use synod_proto::orchestrator::RunStatus;

const FLAKY: &str = r#"
name: flaky-metrics
steps:
  call:
    uses: flaky/flaky
    retry: { policy: fixed, interval: 20ms, max_attempts: 3 }
  after:
    needs: [call]
    uses: flaky/flaky
"#;

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the text exposition format (0.0.4): `# HELP`/`# TYPE` comments and
/// `name{label="value",...} number` lines; errors name the bad line.
fn parse(text: &str) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    let mut typed = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let at = || format!("line {}: `{line}`", index + 1);
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            if parts.next() == Some("TYPE") {
                let name = parts.next().with_context(at)?;
                let kind = parts.next().with_context(at)?;
                typed.insert(name.to_owned(), kind.to_owned());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').with_context(at)?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            other => other.parse().with_context(at)?,
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').with_context(at)?;
                (name, parse_labels(body).with_context(at)?)
            }
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| typed.get(*base).is_some_and(|kind| kind == "histogram"))
            .unwrap_or(name);
        if !typed.contains_key(family) {
            bail!("{}: no `# TYPE` line before the sample", at());
        }
        samples.push((name.to_owned(), labels, value));
    }
    Ok(samples)
}

/// `a="x",b="y\"z"` → map, undoing the format's escapes.
fn parse_labels(body: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").context("label without `=\"`")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((position, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => bail!("dangling escape"),
                },
                '"' => {
                    end = Some(position);
                    break;
                }
                other => value.push(other),
            }
        }
        let end = end.context("unterminated label value")?;
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Ok(labels)
}

/// The value of the sample `name` whose labels include all of `labels`
/// (summed over the rest); 0 when there is none.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(sample, sample_labels, _)| {
            sample == name
                && labels
                    .iter()
                    .all(|(key, want)| sample_labels.get(*key).is_some_and(|v| v == want))
        })
        .map(|(_, _, value)| value)
        .sum()
}

async fn scrape(orchestrator: &TestOrchestrator) -> anyhow::Result<(String, Vec<Sample>)> {
    let response = orchestrator
        .http()
        .get(format!("{}/metrics", orchestrator.http_url()))
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await?;
    let samples = parse(&text)?;
    Ok((text, samples))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_retries_moves_the_counters_and_no_label_is_a_run_id() -> anyhow::Result<()> {
    let (builder, _calls) = flaky_expert(2);
    let expert = serve(builder).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;

    let (_, before) = scrape(&orchestrator).await?;
    let workflow = [("workflow", "flaky-metrics")];
    assert_eq!(value(&before, "synod_runs_started_total", &workflow), 0.0);

    let run = orchestrator.run(FLAKY, Value::Null).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let (text, after) = scrape(&orchestrator).await?;

    let flaky = [("expert", "flaky"), ("skill", "flaky")];
    let series = |name: &str, extra: &[(&'static str, &'static str)]| {
        let mut labels = flaky.to_vec();
        labels.extend_from_slice(extra);
        value(&after, name, &labels)
    };
    assert_eq!(value(&after, "synod_runs_started_total", &workflow), 1.0);
    assert_eq!(
        value(
            &after,
            "synod_runs_finished_total",
            &[("workflow", "flaky-metrics"), ("outcome", "succeeded")]
        ),
        1.0,
        "{text}"
    );
    // `call` failed twice (retried twice), then both steps succeeded.
    assert_eq!(series("synod_step_retries_total", &[]), 2.0, "{text}");
    assert_eq!(
        series("synod_step_attempt_failures_total", &[]),
        2.0,
        "{text}"
    );
    assert_eq!(
        series("synod_steps_finished_total", &[("outcome", "succeeded")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        series("synod_step_duration_seconds_count", &[]),
        2.0,
        "{text}"
    );
    assert_eq!(
        series("synod_step_duration_seconds_bucket", &[("le", "+Inf")]),
        2.0
    );
    assert!(
        series("synod_step_duration_seconds_sum", &[]) > 0.0,
        "{text}"
    );
    // Events by type add up to the run's event log.
    assert_eq!(
        value(&after, "synod_run_events_total", &[]),
        run.events.len() as f64,
        "{text}"
    );
    // Nothing in flight once the run ended; the expert's breaker is closed.
    assert_eq!(value(&after, "synod_steps_running", &[]), 0.0);
    assert_eq!(value(&after, "synod_steps_queued", &[]), 0.0);
    let breaker: Vec<&Sample> = after
        .iter()
        .filter(|(name, labels, _)| {
            name == "synod_expert_breaker_open"
                && labels.get("expert").is_some_and(|e| e == "flaky")
        })
        .collect();
    assert_eq!(breaker.len(), 1, "{text}");
    assert_eq!(breaker[0].2, 0.0);
    assert_eq!(
        value(
            &after,
            "synod_expert_instances",
            &[("expert", "flaky"), ("health", "healthy")]
        ),
        1.0,
        "{text}"
    );

    // No label (name or value) carries the run id.
    for (name, labels, _) in &after {
        for (key, label_value) in labels {
            assert!(
                !label_value.contains(&run.run_id) && !key.contains(&run.run_id),
                "{name} has the run id in label {key}={label_value}"
            );
        }
    }
    assert!(!text.contains(&run.run_id), "the run id is in the scrape");

    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}

const GATED: &str = r#"
name: gated-metrics
steps:
  hold:
    uses: gate/wait
  next:
    needs: [hold]
    uses: gate/wait
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gauges_show_the_active_run_its_running_and_queued_steps() -> anyhow::Result<()> {
    let (builder, gate) = gate_expert();
    let expert = serve(builder).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;

    let run_id = orchestrator.start_run(GATED, Value::Null).await?;
    gate.wait_entered(1).await?;
    let (text, held) = scrape(&orchestrator).await?;
    assert_eq!(value(&held, "synod_runs_active", &[]), 1.0, "{text}");
    assert_eq!(value(&held, "synod_steps_running", &[]), 1.0, "{text}");
    assert_eq!(value(&held, "synod_steps_queued", &[]), 1.0, "{text}");
    assert_eq!(
        value(
            &held,
            "synod_expert_outstanding_calls",
            &[("expert", "gate")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(value(&held, "synod_runs_finished_total", &[]), 0.0);

    gate.open();
    let run = orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let (text, done) = scrape(&orchestrator).await?;
    for gauge in ["synod_steps_running", "synod_steps_queued"] {
        assert_eq!(value(&done, gauge, &[]), 0.0, "{gauge}: {text}");
    }
    assert_eq!(
        value(
            &done,
            "synod_steps_finished_total",
            &[("expert", "gate"), ("outcome", "succeeded")]
        ),
        2.0,
        "{text}"
    );
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}
