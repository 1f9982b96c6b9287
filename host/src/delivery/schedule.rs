//! When to try again: the configured steps (SPEC §6: 5 s, 5 min, 30 min,
//! 2 h, 5 h, 10 h, 10 h), each with ±jitter, or what the receiver asked for
//! with `Retry-After`, capped at the step it replaces.

use std::time::Duration;

/// The retry schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    steps: Vec<Duration>,
    jitter: f64,
}

impl Schedule {
    /// `steps` in order; `jitter` the share of each wait added or taken at
    /// random (0.2 = ±20 %).
    pub fn new(steps: Vec<Duration>, jitter: f64) -> Self {
        Self {
            steps,
            jitter: jitter.clamp(0.0, 0.99),
        }
    }

    /// After `failed` attempts, the wait before the next one, or `None`
    /// when the schedule is used up. `random` is uniform in `[0, 1)`.
    pub fn after(
        &self,
        failed: u32,
        retry_after: Option<Duration>,
        random: f64,
    ) -> Option<Duration> {
        let index = usize::try_from(failed.checked_sub(1)?).ok()?;
        let step = *self.steps.get(index)?;
        if let Some(asked) = retry_after {
            return Some(asked.min(step));
        }
        let factor = 1.0 + self.jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
        Some(step.mul_f64(factor))
    }

    /// How many attempts a delivery gets in all.
    pub fn attempts(&self) -> usize {
        self.steps.len() + 1
    }
}

/// A uniform random number in `[0, 1)` from the operating system.
pub fn random() -> f64 {
    let mut bytes = [0; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    // 53 random bits: every f64 in [0, 1) with that spacing.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Schedule {
        Schedule::new(
            [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
                .map(Duration::from_secs)
                .to_vec(),
            0.2,
        )
    }

    #[test]
    fn steps_follow_the_contract_within_the_jitter() {
        let schedule = contract();
        assert_eq!(schedule.attempts(), 8);
        assert_eq!(schedule.after(1, None, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(schedule.after(1, None, 0.0), Some(Duration::from_secs(4)));
        assert_eq!(schedule.after(2, None, 1.0), Some(Duration::from_secs(360)));
        assert_eq!(
            schedule.after(7, None, 0.5),
            Some(Duration::from_secs(36_000))
        );
        assert_eq!(schedule.after(8, None, 0.5), None, "used up");
        assert_eq!(schedule.after(0, None, 0.5), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_step() {
        let schedule = contract();
        let asked = Some(Duration::from_secs(60));
        assert_eq!(schedule.after(2, asked, 0.9), Some(Duration::from_secs(60)));
        assert_eq!(
            schedule.after(1, asked, 0.9),
            Some(Duration::from_secs(5)),
            "capped"
        );
    }

    #[test]
    fn random_numbers_are_in_range_and_vary() {
        let draws: Vec<f64> = (0..100).map(|_| random()).collect();
        assert!(draws.iter().all(|r| (0.0..1.0).contains(r)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
