//! A circuit breaker per webhook, so a failing receiver is paused instead
//! of holding workers and filling the log.
//!
//! Closed, it counts the outcomes of the last attempts; when at least
//! `MIN_SAMPLES` of the last `WINDOW` are in and half or more failed, it
//! opens: the webhook's deliveries wait (they are not claimed). After the
//! cool-down it half-opens and lets one attempt through; a success closes
//! it, a failure opens it again for twice as long (up to `MAX_COOL_DOWN`).
//! The counting lives in memory, per process; an opening and a closing are
//! also written to the store ([`Transition`], `Store::pause_webhook`), so
//! that every process's claims leave the webhook's deliveries for the
//! pause, and a restart keeps it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts remembered per webhook.
const WINDOW: usize = 20;
/// Attempts needed before the rate means anything.
const MIN_SAMPLES: usize = 5;
/// The failure rate that opens the breaker.
const FAILURE_RATE: f64 = 0.5;
/// The first pause.
const COOL_DOWN: Duration = Duration::from_secs(30);
/// The longest pause.
const MAX_COOL_DOWN: Duration = Duration::from_secs(30 * 60);

/// A breaker's state, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Deliveries flow.
    Closed,
    /// Deliveries wait for the cool-down to end.
    Open,
    /// One probe is let through.
    HalfOpen,
}

#[derive(Debug)]
enum Breaker {
    Closed { outcomes: VecDeque<bool> },
    Open { until: Instant, pause: Duration },
    HalfOpen { probing: bool, pause: Duration },
}

impl Default for Breaker {
    fn default() -> Self {
        Self::Closed {
            outcomes: VecDeque::with_capacity(WINDOW),
        }
    }
}

/// A change of a breaker that the store records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// It opened (again) for this long.
    Opened(Duration),
    /// A probe succeeded: it closed.
    Closed,
}

/// Every webhook's breaker.
#[derive(Debug, Default)]
pub struct Breakers {
    breakers: Mutex<HashMap<String, Breaker>>,
}

impl Breakers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Breaker>> {
        self.breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks to start an attempt to `webhook` at `now`: always while closed,
    /// once (the probe) when the cool-down is over.
    pub fn allow(&self, webhook: &str, now: Instant) -> bool {
        let mut breakers = self.lock();
        let Some(breaker) = breakers.get_mut(webhook) else {
            return true;
        };
        match breaker {
            Breaker::Closed { .. } => true,
            Breaker::Open { until, pause } if now >= *until => {
                *breaker = Breaker::HalfOpen {
                    probing: true,
                    pause: *pause,
                };
                true
            }
            Breaker::Open { .. } | Breaker::HalfOpen { probing: true, .. } => false,
            Breaker::HalfOpen { probing, .. } => {
                *probing = true;
                true
            }
        }
    }

    /// Whether an attempt to `webhook` would be refused at `now` (without
    /// taking the probe).
    pub fn blocked(&self, webhook: &str, now: Instant) -> bool {
        match self.lock().get(webhook) {
            Some(Breaker::Open { until, .. }) => now < *until,
            Some(Breaker::HalfOpen { probing, .. }) => *probing,
            _ => false,
        }
    }

    /// Every webhook blocked at `now`.
    pub fn blocked_webhooks(&self, now: Instant) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, breaker)| match breaker {
                Breaker::Open { until, .. } => now < *until,
                Breaker::HalfOpen { probing, .. } => *probing,
                Breaker::Closed { .. } => false,
            })
            .map(|(webhook, _)| webhook.clone())
            .collect()
    }

    /// Records an attempt's outcome; how the breaker changed, if it did.
    pub fn record(&self, webhook: &str, succeeded: bool, now: Instant) -> Option<Transition> {
        let mut breakers = self.lock();
        let breaker = breakers.entry(webhook.to_owned()).or_default();
        match breaker {
            Breaker::Closed { outcomes } => {
                if outcomes.len() == WINDOW {
                    outcomes.pop_front();
                }
                outcomes.push_back(succeeded);
                let failures = outcomes.iter().filter(|ok| !**ok).count();
                if outcomes.len() >= MIN_SAMPLES
                    && failures as f64 >= FAILURE_RATE * outcomes.len() as f64
                {
                    *breaker = Breaker::Open {
                        until: now + COOL_DOWN,
                        pause: COOL_DOWN,
                    };
                    return Some(Transition::Opened(COOL_DOWN));
                }
                None
            }
            Breaker::HalfOpen { pause, .. } | Breaker::Open { pause, .. } => {
                if succeeded {
                    *breaker = Breaker::default();
                    return Some(Transition::Closed);
                }
                let pause = (*pause * 2).min(MAX_COOL_DOWN);
                *breaker = Breaker::Open {
                    until: now + pause,
                    pause,
                };
                Some(Transition::Opened(pause))
            }
        }
    }

    /// The state of `webhook`'s breaker at `now`.
    pub fn state(&self, webhook: &str, now: Instant) -> State {
        match self.lock().get(webhook) {
            None | Some(Breaker::Closed { .. }) => State::Closed,
            Some(Breaker::Open { until, .. }) if now < *until => State::Open,
            Some(Breaker::Open { .. } | Breaker::HalfOpen { .. }) => State::HalfOpen,
        }
    }

    /// Forgets a webhook's breaker (deleted, or enabled again by hand).
    pub fn reset(&self, webhook: &str) {
        self.lock().remove(webhook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_open_then_a_probe_closes() {
        let breakers = Breakers::default();
        let start = Instant::now();
        for _ in 0..4 {
            assert_eq!(breakers.record("wh", false, start), None);
        }
        assert_eq!(
            breakers.state("wh", start),
            State::Closed,
            "too few samples"
        );
        assert_eq!(
            breakers.record("wh", false, start),
            Some(Transition::Opened(COOL_DOWN)),
            "the opening is the store's to record"
        );
        assert_eq!(breakers.state("wh", start), State::Open);
        assert!(!breakers.allow("wh", start));
        assert!(breakers.blocked("wh", start));
        assert_eq!(breakers.blocked_webhooks(start), ["wh"]);

        let later = start + COOL_DOWN;
        assert_eq!(breakers.state("wh", later), State::HalfOpen);
        assert!(breakers.allow("wh", later), "one probe");
        assert!(!breakers.allow("wh", later), "only one");
        assert_eq!(breakers.record("wh", true, later), Some(Transition::Closed));
        assert_eq!(breakers.state("wh", later), State::Closed);
        assert!(breakers.allow("wh", later));
    }

    #[test]
    fn a_failed_probe_doubles_the_pause() {
        let breakers = Breakers::default();
        let start = Instant::now();
        for _ in 0..5 {
            breakers.record("wh", false, start);
        }
        let probe = start + COOL_DOWN;
        assert!(breakers.allow("wh", probe));
        assert_eq!(
            breakers.record("wh", false, probe),
            Some(Transition::Opened(COOL_DOWN * 2))
        );
        assert_eq!(breakers.state("wh", probe + COOL_DOWN), State::Open);
        assert_eq!(breakers.state("wh", probe + COOL_DOWN * 2), State::HalfOpen);
    }

    #[test]
    fn a_healthy_mix_stays_closed_and_others_are_unaffected() {
        let breakers = Breakers::default();
        let now = Instant::now();
        for i in 0..40 {
            breakers.record("wh", i % 3 != 0, now);
        }
        assert_eq!(
            breakers.state("wh", now),
            State::Closed,
            "a third failing is under half"
        );
        for _ in 0..10 {
            breakers.record("bad", false, now);
        }
        assert_eq!(breakers.state("bad", now), State::Open);
        assert!(breakers.allow("wh", now));
        assert!(breakers.allow("new", now));
        breakers.reset("bad");
        assert_eq!(breakers.state("bad", now), State::Closed);
    }
}
