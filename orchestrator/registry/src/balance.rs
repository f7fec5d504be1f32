//! Instance selection: power of two choices on load. Pure: the caller passes
//! the candidates and the random source.

use std::cmp::Ordering;

/// The load of one candidate instance, as the balancer compares it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Load<'a> {
    /// Calls in flight.
    pub(crate) outstanding: u32,
    /// Mean latency of successful calls in ms; 0 before the first one, so
    /// new instances get traffic quickly.
    pub(crate) latency_ewma_ms: f64,
    /// Instance id: the deterministic last tie-break.
    pub(crate) id: &'a str,
}

/// Orders loads from least to most loaded: fewer outstanding calls, then
/// lower latency, then the smaller id.
pub(crate) fn compare_load(a: &Load<'_>, b: &Load<'_>) -> Ordering {
    a.outstanding
        .cmp(&b.outstanding)
        .then(a.latency_ewma_ms.total_cmp(&b.latency_ewma_ms))
        .then(a.id.cmp(b.id))
}

/// Picks the index of one candidate: two distinct candidates drawn at random,
/// the less loaded one wins. With one or two candidates there is no chance
/// involved. Returns `None` when `candidates` is empty.
pub(crate) fn pick_two(candidates: &[Load<'_>], rng: &mut fastrand::Rng) -> Option<usize> {
    match candidates.len() {
        0 => None,
        1 => Some(0),
        len => {
            let (first, second) = if len == 2 {
                (0, 1)
            } else {
                let first = rng.usize(0..len);
                let mut second = rng.usize(0..len - 1);
                if second >= first {
                    second += 1;
                }
                (first, second)
            };
            match compare_load(&candidates[first], &candidates[second]) {
                Ordering::Greater => Some(second),
                Ordering::Less | Ordering::Equal => Some(first),
            }
        }
    }
}

/// Folds one latency sample into an exponentially weighted mean.
pub(crate) fn update_ewma(previous: Option<f64>, sample_ms: f64) -> f64 {
    /// Weight of the newest sample.
    const ALPHA: f64 = 0.3;
    match previous {
        None => sample_ms,
        Some(mean) => ALPHA * sample_ms + (1.0 - ALPHA) * mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(outstanding: u32, latency_ewma_ms: f64, id: &str) -> Load<'_> {
        Load {
            outstanding,
            latency_ewma_ms,
            id,
        }
    }

    #[test]
    fn prefers_fewer_outstanding_then_lower_latency_then_smaller_id() {
        let mut rng = fastrand::Rng::with_seed(7);
        let busy_fast = load(2, 1.0, "a");
        let idle_slow = load(0, 90.0, "b");
        assert_eq!(pick_two(&[busy_fast, idle_slow], &mut rng), Some(1));
        let slow = load(1, 50.0, "a");
        let fast = load(1, 5.0, "b");
        assert_eq!(pick_two(&[slow, fast], &mut rng), Some(1));
        let tie_b = load(1, 5.0, "b");
        let tie_a = load(1, 5.0, "a");
        assert_eq!(pick_two(&[tie_b, tie_a], &mut rng), Some(1));
    }

    #[test]
    fn never_picks_the_most_loaded_of_many() {
        let ids: Vec<String> = (0..5).map(|i| format!("i{i}")).collect();
        let loads: Vec<Load<'_>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| load(i as u32, 0.0, id))
            .collect();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut picked = [0usize; 5];
        for _ in 0..1000 {
            picked[pick_two(&loads, &mut rng).unwrap()] += 1;
        }
        assert_eq!(picked[4], 0, "the worst candidate never wins a pair");
        assert!(
            picked[0] > picked[3],
            "less loaded wins more often: {picked:?}"
        );
    }

    #[test]
    fn empty_and_single_candidates() {
        let mut rng = fastrand::Rng::with_seed(0);
        assert_eq!(pick_two(&[], &mut rng), None);
        assert_eq!(pick_two(&[load(9, 9.0, "x")], &mut rng), Some(0));
    }

    #[test]
    fn ewma_starts_at_the_first_sample_and_moves_toward_new_ones() {
        assert_eq!(update_ewma(None, 10.0), 10.0);
        let next = update_ewma(Some(10.0), 20.0);
        assert!((next - 13.0).abs() < 1e-9, "{next}");
    }
}
