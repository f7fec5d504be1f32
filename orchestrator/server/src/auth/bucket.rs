//! Per-token rate limiting: a token bucket (pure; the caller passes the
//! time).

use std::time::{Duration, Instant};

/// How many requests a token may make: `per_second` on average, bursts of
/// up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second (refill rate).
    pub per_second: f64,
    /// Most requests at once (bucket size).
    pub burst: u32,
}

impl Default for RateLimit {
    /// 50 requests per second, bursts of 200.
    fn default() -> Self {
        RateLimit {
            per_second: 50.0,
            burst: 200,
        }
    }
}

impl RateLimit {
    /// Parses `N/s` or `N/s:BURST` (e.g. `20/s`, `20/s:100`, `0.5/s`);
    /// the burst defaults to 4 × N (at least 1).
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let error = || {
            format!(
                "`{text}` is not a rate limit; write REQUESTS/s[:BURST], e.g. `50/s` or `20/s:100`"
            )
        };
        let (rate, burst) = match text.split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let per_second: f64 = rate
            .trim()
            .strip_suffix("/s")
            .ok_or_else(error)?
            .parse()
            .map_err(|_| error())?;
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(error());
        }
        let burst = match burst {
            Some(burst) => burst.trim().parse::<u32>().map_err(|_| error())?,
            None => (per_second * 4.0).ceil().min(f64::from(u32::MAX)) as u32,
        };
        Ok(RateLimit {
            per_second,
            burst: burst.max(1),
        })
    }
}

/// One token's bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    available: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn full(limit: RateLimit, now: Instant) -> Self {
        TokenBucket {
            available: f64::from(limit.burst),
            updated: now,
        }
    }

    /// Takes one request's worth at `now`; `Err(wait)` when the bucket is
    /// empty, with how long until one is available.
    pub fn take(&mut self, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.available = (self.available + elapsed * limit.per_second).min(f64::from(limit.burst));
        self.updated = now;
        if self.available >= 1.0 {
            self.available -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - self.available;
        Err(Duration::from_secs_f64(missing / limit.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refill_at_the_rate() {
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3,
        };
        let start = Instant::now();
        let mut bucket = TokenBucket::full(limit, start);
        for _ in 0..3 {
            assert!(bucket.take(limit, start).is_ok());
        }
        let wait = bucket.take(limit, start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Half a second later one request is available again, not two.
        let later = start + Duration::from_millis(500);
        assert!(bucket.take(limit, later).is_ok());
        assert!(bucket.take(limit, later).is_err());
        // Never more than the burst, however long it waited.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(bucket.take(limit, much_later).is_ok());
        }
        assert!(bucket.take(limit, much_later).is_err());
    }

    #[test]
    fn parsing() {
        assert_eq!(
            RateLimit::parse("20/s:100").unwrap(),
            RateLimit {
                per_second: 20.0,
                burst: 100
            }
        );
        assert_eq!(RateLimit::parse("0.5/s").unwrap().burst, 2);
        for bad in ["", "20", "20/m", "-1/s", "0/s", "x/s", "5/s:x"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
    }
}
