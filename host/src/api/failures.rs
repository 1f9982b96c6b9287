//! Failed authentication, counted per client address: an address with
//! `auth_failures_per_minute` failures in its current minute is refused
//! (429 `too_many_failures`) until that minute ends, **before** its key is
//! looked up, so guessing keys costs the store nothing and is slow. The
//! window is fixed per address: it starts at the address's first failure.
//!
//! Addresses whose window has ended are forgotten, so the table holds only
//! the addresses that failed in the last minute.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::AppError;

/// How long a window lasts.
const WINDOW: Duration = Duration::from_secs(60);

/// Failed authentications per client address.
#[derive(Debug)]
pub struct AuthFailures {
    /// Failures allowed per address and window.
    allowed: u32,
    /// Per address: when its window started, and its failures in it.
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthFailures {
    /// `allowed` failures per address and minute.
    pub fn new(allowed: u32) -> Self {
        Self {
            allowed,
            windows: Mutex::default(),
        }
    }

    /// Refuses `client` when its failures have used up its window.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), AppError> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get(&client) {
            Some(&(started, failures)) if failures >= self.allowed => {
                let left = (started + WINDOW).saturating_duration_since(now);
                if left.is_zero() {
                    Ok(())
                } else {
                    Err(refused(left))
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `client`.
    pub fn failed(&self, client: IpAddr, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.retain(|_, (started, _)| now.duration_since(*started) < WINDOW);
        let (_, failures) = windows.entry(client).or_insert((now, 0));
        *failures = failures.saturating_add(1);
    }

    /// How many addresses are remembered.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.windows.lock().map_or(0, |w| w.len())
    }
}

fn refused(left: Duration) -> AppError {
    let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    AppError::too_many(
        "too_many_failures",
        format!("too many failed authentications from this address; retry in {seconds} s"),
        seconds,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_address_is_refused_after_its_failures_until_its_window_ends() {
        let failures = AuthFailures::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(failures.check(A, start).is_ok());
            failures.failed(A, start);
        }
        let refused = failures.check(A, start).expect_err("refused");
        assert_eq!(refused.status(), 429);
        let response = axum::response::IntoResponse::into_response(refused);
        assert_eq!(response.headers()["retry-after"], "60");
        assert!(failures.check(B, start).is_ok(), "another address");
        assert!(failures.check(A, start + WINDOW).is_ok(), "a new window");
    }

    #[test]
    fn addresses_whose_window_ended_are_forgotten() {
        let failures = AuthFailures::new(3);
        let start = Instant::now();
        failures.failed(A, start);
        failures.failed(B, start + Duration::from_secs(30));
        assert_eq!(failures.remembered(), 2);
        failures.failed(B, start + WINDOW);
        assert_eq!(failures.remembered(), 1);
    }
}
