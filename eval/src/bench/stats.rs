//! Percentiles and latency summaries. Pure.

use serde::{Deserialize, Serialize};

/// Percentile `p` (0..=100) of sorted values with linear interpolation
/// (numpy's default, as the peer benchmark computes it). NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = (sorted.len() - 1) as f64 * p / 100.0;
    let lo = k.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo as f64)
}

/// The `latency` object of a result row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub n: usize,
    /// Median, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// Mean, microseconds.
    pub mean_us: f64,
    /// Fastest, microseconds.
    pub min_us: f64,
    /// Slowest, microseconds.
    pub max_us: f64,
    /// Process CPU time per run during the latency loop, microseconds.
    pub cpu_per_run_us: f64,
}

impl LatencySummary {
    /// Summarises `samples_us` (any order; must not be empty).
    pub fn from_samples(mut samples_us: Vec<f64>, cpu_s: f64) -> LatencySummary {
        samples_us.sort_by(f64::total_cmp);
        let n = samples_us.len();
        LatencySummary {
            n,
            p50_us: percentile(&samples_us, 50.0),
            p99_us: percentile(&samples_us, 99.0),
            mean_us: samples_us.iter().sum::<f64>() / n as f64,
            min_us: samples_us[0],
            max_us: samples_us[n - 1],
            cpu_per_run_us: cpu_s / n as f64 * 1e6,
        }
    }
}

/// `{p50_us, p99_us}` of calibration samples.
pub fn p50_p99(mut samples_us: Vec<f64>) -> (f64, f64) {
    samples_us.sort_by(f64::total_cmp);
    (percentile(&samples_us, 50.0), percentile(&samples_us, 99.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.5);
        assert!((percentile(&v, 99.0) - 3.97).abs() < 1e-9);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn summary_sorts_and_averages() {
        let s = LatencySummary::from_samples(vec![3.0, 1.0, 2.0], 0.000_003);
        assert_eq!(
            (s.n, s.min_us, s.max_us, s.p50_us, s.mean_us),
            (3, 1.0, 3.0, 2.0, 2.0)
        );
        assert!((s.cpu_per_run_us - 1.0).abs() < 1e-9);
    }
}
