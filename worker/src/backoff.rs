//! Exponential back-off with jitter, for the job loop's retries (the SDK retries at once;
//! a fleet of workers doing so hammers the platform when it stumbles).

use std::time::Duration;

/// A seed from the clock and the process id.
pub fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    (t as u64 ^ ((std::process::id() as u64) << 32)) | 1
}

/// Delays `base · 2^n`, capped at `max`, each drawn uniformly from its upper half.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    failures: u32,
    state: u64,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max, failures: 0, state: seed() }
    }

    /// The pause after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let full = self.base.saturating_mul(1u32 << self.failures.min(16)).min(self.max);
        self.failures += 1;
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let fraction = 0.5 + 0.5 * (self.state % 1000) as f64 / 1000.0;
        full.mul_f64(fraction)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, x) in d.iter().enumerate() {
            let full = Duration::from_millis(100 * (1 << i)).min(Duration::from_secs(1));
            assert!(*x >= full / 2 && *x <= full, "{i}: {x:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
