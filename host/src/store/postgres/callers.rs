//! API keys looked up on Postgres in groups (see `group.rs`).
//!
//! Every request presents a key, and a key is looked up per request, not
//! cached, so that one revoked through any instance is refused by every
//! instance at once. Under load, the lookups waiting together are one
//! statement: one round trip and one wake-up of a Postgres backend for
//! many requests. A group of one costs what a lookup alone would.

use std::collections::{BTreeSet, HashMap};

use sqlx::{PgPool, Row as _};

use super::group::{Groups, Waiting};
use super::key_kind;
use crate::store::{Caller, StoreError};

/// Reader tasks: while one group's statement runs, the next group forms.
const READERS: usize = 2;

/// A key's digest, and the caller it belongs to if it is valid.
pub(super) type Callers = Groups<Vec<u8>, Option<Caller>>;

/// Starts the readers on `pool`.
pub(super) fn start(pool: PgPool) -> Callers {
    Groups::start(1, READERS, move |group| {
        let pool = pool.clone();
        async move { look_up(&pool, group).await }
    })
}

/// Looks up every digest of the group in one statement and answers each
/// with its key's caller, or `None` for no valid key. A failed statement
/// fails every lookup of the group alike.
pub(super) async fn look_up(pool: &PgPool, group: Vec<Waiting<Vec<u8>, Option<Caller>>>) {
    let digests: Vec<&[u8]> = group
        .iter()
        .map(|waiting| waiting.request.as_slice())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let found = sqlx::query(
        "SELECT digest, id, tenant_id, kind FROM api_keys
         WHERE digest = ANY($1) AND revoked_at IS NULL",
    )
    .bind(&digests)
    .fetch_all(pool)
    .await
    .and_then(|rows| {
        rows.iter()
            .map(|row| {
                let caller = Caller {
                    key_id: row.try_get("id")?,
                    tenant_id: row.try_get("tenant_id")?,
                    kind: key_kind(row)?,
                };
                Ok((row.try_get::<Vec<u8>, _>("digest")?, caller))
            })
            .collect::<Result<HashMap<_, _>, sqlx::Error>>()
    });
    match found {
        Ok(callers) => {
            for waiting in group {
                let caller = callers.get(&waiting.request).cloned();
                waiting.answer(Ok(caller));
            }
        }
        Err(error) => {
            for waiting in group {
                waiting.answer(Err(StoreError::shared(&error)));
            }
        }
    }
}
