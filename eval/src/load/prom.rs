//! Reading the orchestrator's `GET /metrics` (Prometheus text format 0.0.4):
//! samples with their labels, and sums over the series that match. Pure,
//! except [`scrape`].

use std::collections::BTreeMap;

use anyhow::{Context, bail};

/// One sample line: `name{label="value",…} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with `_bucket`/`_sum`/`_count` for histograms).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses the text format; comments and blank lines are skipped.
    pub fn parse(text: &str) -> anyhow::Result<Exposition> {
        let mut samples = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            samples.push(
                parse_sample(line)
                    .with_context(|| format!("/metrics line {}: `{line}`", index + 1))?,
            );
        }
        Ok(Exposition { samples })
    }

    /// Sum of the samples of `name` whose labels include every `(key, value)`
    /// of `want` (0 when none matches).
    pub fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.matching(name, want).map(|s| s.value).sum()
    }

    /// Samples of `name` whose labels include every pair of `want`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        want: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v))
        })
    }

    /// Sums of `name` over the matching samples, grouped by label `by`.
    pub fn sum_by(&self, name: &str, want: &[(&str, &str)], by: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for sample in self.matching(name, want) {
            let key = sample.labels.get(by).cloned().unwrap_or_default();
            *out.entry(key).or_insert(0.0) += sample.value;
        }
        out
    }
}

fn parse_sample(line: &str) -> anyhow::Result<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(at) => line.split_at(at),
        None => bail!("no value"),
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(body)?;
        labels = parsed;
        after
    } else {
        rest
    };
    let value_text = rest
        .split_whitespace()
        .next()
        .context("no value after the name")?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        other => other
            .parse()
            .with_context(|| format!("`{other}` is not a number"))?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `key="value",…}` and returns the labels and what follows `}`.
fn parse_labels(body: &str) -> anyhow::Result<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').context("label without `=`")?;
        let key = rest[..eq].trim().to_owned();
        let quoted = rest[eq + 1..]
            .strip_prefix('"')
            .context("label value without quotes")?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => bail!("unterminated escape"),
                },
                Some((at, '"')) => break at,
                Some((_, c)) => value.push(c),
                None => bail!("unterminated label value"),
            }
        };
        labels.insert(key, value);
        rest = &quoted[end + 1..];
    }
}

/// `GET <http_url>/metrics`, parsed.
pub async fn scrape(client: &reqwest::Client, http_url: &str) -> anyhow::Result<Exposition> {
    let url = format!("{http_url}/metrics");
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url} failed"))?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("GET {url} answered {status}: {text}");
    }
    Exposition::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP synod_step_retries_total Step attempts retried, by expert and skill.
# TYPE synod_step_retries_total counter
synod_step_retries_total{expert="fault-fail",skill="work"} 17
synod_step_retries_total{expert="other",skill="work"} 2
synod_expert_breaker_open{expert="fault-fail",instance="http://127.0.0.1:1"} 1
synod_expert_breaker_open{expert="fault-fail",instance="http://127.0.0.1:2"} 0
synod_runs_active 3
synod_step_attempt_failures_total{expert="fault-fail",skill="work",code="EXPERT_TRANSIENT"} 20
synod_step_attempt_failures_total{expert="fault-fail",skill="work",code="DEADLINE_EXCEEDED"} 4
weird{msg="a \"quoted\" \\ value,}"} +Inf
synod_step_duration_seconds_sum{expert="x",skill="y"} 0.25
"#;

    #[test]
    fn parses_labels_values_and_escapes() {
        let e = Exposition::parse(TEXT).unwrap();
        assert_eq!(e.samples.len(), 9);
        assert_eq!(e.sum("synod_runs_active", &[]), 3.0);
        assert_eq!(
            e.sum("synod_step_retries_total", &[("expert", "fault-fail")]),
            17.0
        );
        assert_eq!(e.sum("synod_step_retries_total", &[]), 19.0);
        assert_eq!(
            e.sum("synod_expert_breaker_open", &[("expert", "fault-fail")]),
            1.0
        );
        let weird = &e.samples[7];
        assert_eq!(weird.labels["msg"], r#"a "quoted" \ value,}"#);
        assert!(weird.value.is_infinite());
        let by_code = e.sum_by(
            "synod_step_attempt_failures_total",
            &[("expert", "fault-fail")],
            "code",
        );
        assert_eq!(by_code["EXPERT_TRANSIENT"], 20.0);
        assert_eq!(by_code["DEADLINE_EXCEEDED"], 4.0);
        assert_eq!(e.sum("missing", &[]), 0.0);
    }

    #[test]
    fn rejects_lines_that_are_not_samples() {
        assert!(Exposition::parse("synod_runs_active").is_err());
        assert!(Exposition::parse("x{a=\"1\" 2").is_err());
        assert!(Exposition::parse("x{a=1} 2").is_err());
        assert!(Exposition::parse("x 1.5e").is_err());
    }
}
