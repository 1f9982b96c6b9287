//! Engine time per tenant, for the one-shot calls a tenant asks for
//! (validation, explanations, test deliveries).
//!
//! Each tenant has an account of engine time: it earns `rate` seconds of
//! engine time per second of wall time, up to `burst` seconds banked. A call
//! is let in while the balance is above zero and is charged what it took
//! (processor time on its engine thread) when it ends. A tenant's calls take
//! turns, one at a time, so a burst of parallel calls queues behind itself
//! instead of holding every core; a call whose turn comes while the account
//! is in debt waits until it is not. Only a debt deeper than [`MAX_WAIT`]
//! refuses the call, with the time to wait: refusing sooner would invite a
//! client to retry at once, which costs more than waiting. Ingest is not
//! metered here: each tenant's ingest calls already run one at a time on
//! its own rule set, within the engine deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The longest a call waits for its tenant's account to come out of debt;
/// a deeper debt refuses it.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(5);

/// Past this many accounts, idle ones (no call running or waiting, not in
/// debt) are dropped when a new tenant comes. A tenant whose account was
/// dropped starts again with a full one: a gift of at most `burst`, never
/// a way out of debt.
const KEPT_ACCOUNTS: usize = 1024;

/// Every tenant's engine time.
#[derive(Debug)]
pub struct Shares {
    /// Engine seconds a tenant earns per second.
    rate: f64,
    /// Engine seconds a tenant may bank.
    burst: f64,
    accounts: Mutex<HashMap<String, Arc<Account>>>,
}

#[derive(Debug)]
struct Account {
    /// One call at a time.
    turn: Arc<Semaphore>,
    balance: Mutex<Balance>,
}

#[derive(Debug, Clone, Copy)]
struct Balance {
    /// Engine seconds left; below zero after a call that overran it.
    seconds: f64,
    /// When `seconds` was last brought up to date.
    at: Instant,
}

/// A call let in: hold it while the call runs, then [`Turn::charge`] it.
#[derive(Debug)]
pub struct Turn {
    account: Arc<Account>,
    rate: f64,
    burst: f64,
    _permit: OwnedSemaphorePermit,
}

impl Shares {
    /// Each tenant earns `share` of one core's time and banks at most
    /// `burst` of it. `share` must be above zero.
    pub fn new(share: f64, burst: Duration) -> Self {
        Self {
            rate: share,
            burst: burst.as_secs_f64(),
            accounts: Mutex::default(),
        }
    }

    /// Waits for `tenant`'s turn and for its account to be out of debt,
    /// then lets the call in; or, when that would take longer than
    /// [`MAX_WAIT`], says how long the tenant must wait.
    pub async fn enter(&self, tenant: &str) -> Result<Turn, Duration> {
        let account = self.account(tenant);
        account.wait(self.rate, self.burst)?;
        let permit = Arc::clone(&account.turn)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        // Calls queued behind others find the balance those spent.
        let wait = account.wait(self.rate, self.burst)?;
        tokio::time::sleep(wait).await;
        Ok(Turn {
            account,
            rate: self.rate,
            burst: self.burst,
            _permit: permit,
        })
    }

    /// `Ok` unless `tenant`'s debt is deeper than [`MAX_WAIT`]; else how
    /// long it must wait. Lets a caller refuse early, before reading a
    /// request's body.
    pub fn check(&self, tenant: &str) -> Result<(), Duration> {
        self.account(tenant).wait(self.rate, self.burst).map(drop)
    }

    fn account(&self, tenant: &str) -> Arc<Account> {
        let mut accounts = lock(&self.accounts);
        if let Some(account) = accounts.get(tenant) {
            return Arc::clone(account);
        }
        if accounts.len() >= KEPT_ACCOUNTS {
            let (rate, burst) = (self.rate, self.burst);
            accounts.retain(|_, a| Arc::strong_count(a) > 1 || a.balance(rate, burst) <= 0.0);
        }
        let account = Arc::new(Account {
            turn: Arc::new(Semaphore::new(1)),
            balance: Mutex::new(Balance {
                seconds: self.burst,
                at: Instant::now(),
            }),
        });
        accounts.insert(tenant.to_owned(), Arc::clone(&account));
        account
    }
}

impl Account {
    /// The balance now, refilled for the time since it was last updated.
    fn balance(&self, rate: f64, burst: f64) -> f64 {
        let mut balance = lock(&self.balance);
        let now = Instant::now();
        let earned = now.duration_since(balance.at).as_secs_f64() * rate;
        balance.seconds = (balance.seconds + earned).min(burst);
        balance.at = now;
        balance.seconds
    }

    /// How long until the balance is above zero: `Ok` up to [`MAX_WAIT`],
    /// `Err` past it.
    fn wait(&self, rate: f64, burst: f64) -> Result<Duration, Duration> {
        let debt = -self.balance(rate, burst);
        if debt < 0.0 {
            return Ok(Duration::ZERO);
        }
        let wait = Duration::try_from_secs_f64(debt / rate)
            .unwrap_or(Duration::MAX)
            .max(Duration::from_millis(1));
        if wait <= MAX_WAIT {
            Ok(wait)
        } else {
            Err(wait)
        }
    }
}

impl Turn {
    /// Charges the call's engine time to its tenant and ends the turn.
    pub fn charge(self, spent: Duration) {
        self.account.balance(self.rate, self.burst);
        lock(&self.account.balance).seconds -= spent.as_secs_f64();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the value whole; a panic elsewhere cannot tear it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spends `seconds` of `tenant`'s time as a call would.
    async fn spend(shares: &Shares, tenant: &str, seconds: f64) -> Result<(), Duration> {
        shares
            .enter(tenant)
            .await?
            .charge(Duration::from_secs_f64(seconds));
        Ok(())
    }

    #[tokio::test]
    async fn a_tenant_in_debt_waits_and_a_deep_debt_is_refused_with_the_wait() {
        // Ten seconds of engine time a second, a tenth of a second banked.
        let shares = Shares::new(10.0, Duration::from_millis(100));
        spend(&shares, "a", 0.3).await.expect("within the burst");
        let started = Instant::now();
        spend(&shares, "a", 60.0)
            .await
            .expect("waits out a 0.2 s debt");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(15) && waited < Duration::from_secs(1),
            "{waited:?}"
        );
        let wait = spend(&shares, "a", 0.0)
            .await
            .expect_err("60 s of debt is 6 s of waiting");
        assert!(
            wait > MAX_WAIT && wait <= Duration::from_secs(6),
            "{wait:?}"
        );
        assert!(shares.check("a").is_err(), "refused early as well");
        shares
            .check("b")
            .expect("another tenant has its own account");
        spend(&shares, "b", 0.0).await.expect("and its own turn");
    }

    #[tokio::test]
    async fn a_tenants_calls_take_turns() {
        let shares = Arc::new(Shares::new(1.0, Duration::from_secs(10)));
        let first = shares.enter("a").await.expect("first");
        let waiting = tokio::spawn({
            let shares = Arc::clone(&shares);
            async move { shares.enter("a").await.map(|t| t.charge(Duration::ZERO)) }
        });
        let other = shares.enter("b").await.expect("another tenant's turn");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the second call waits for the first"
        );
        first.charge(Duration::ZERO);
        other.charge(Duration::ZERO);
        waiting
            .await
            .expect("task")
            .expect("let in after the first");
    }

    #[tokio::test]
    async fn idle_accounts_are_dropped_when_many_tenants_came_but_not_debts() {
        let shares = Shares::new(0.1, Duration::from_secs(1));
        spend(&shares, "debtor", 2.0)
            .await
            .expect("within the burst");
        for tenant in 1..KEPT_ACCOUNTS {
            shares
                .enter(&tenant.to_string())
                .await
                .expect("fresh")
                .charge(Duration::ZERO);
        }
        let busy = shares.enter("busy").await.expect("fresh");
        let mut kept: Vec<String> = lock(&shares.accounts).keys().cloned().collect();
        kept.sort();
        assert_eq!(kept, ["busy", "debtor"]);
        spend(&shares, "debtor", 0.0)
            .await
            .expect_err("still in debt");
        busy.charge(Duration::ZERO);
    }
}
