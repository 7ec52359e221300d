//! `services.listed`: whether a listing is publicly visible, kept on the listing row.
//!
//! Publicly visible = the listing is `active`, its worker is not suspended and the
//! worker's KYC is `approved`. Those live in three tables; every public read (search, a
//! listing by id, favorites, booking) would otherwise join all three. Instead every change
//! to any of them calls [`relist`] in its own transaction, and reads test one column.
//!
//! Concurrency: a change to the worker side (suspension, reinstatement, a KYC decision or
//! upload) holds the worker row locked (`FOR NO KEY UPDATE`) from before it reads until it
//! commits, so such changes to one worker run one after the other, each seeing the last.
//! A new listing takes the same row `FOR SHARE` before computing its flag: a concurrent
//! worker change either committed before (and is seen) or starts after the insert commits
//! (and updates the new row). Changes to one listing's own status need no worker lock: a
//! worker change that meets the locked listing waits for it, then re-evaluates
//! `s.status` on the new row version.

use diesel::{prelude::*, sql_types::Uuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    core::ids::{ServiceId, UserId},
    db::{schema::workers, sql::Sql},
    error::AppError,
};

/// The visibility rule, over `services s`, `workers w`, `users u`. Also the reference
/// the tests compare `listed` with.
pub const VISIBLE: &str =
    "(s.status = 'active' AND u.status = 'active' AND w.kyc_status = 'approved')";

/// Which listings a change may have made or unmade public.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Every listing of a worker (their suspension, reinstatement or KYC status changed).
    Worker(UserId),
    /// One listing (created, hidden, unhidden or deleted).
    Listing(ServiceId),
}

/// Locks the worker row against concurrent worker-side visibility changes: exclusively
/// for a change of the worker's own state, shared for a new listing. Users without a
/// worker row (clients, admins) have no listings: nothing to lock.
pub async fn lock_worker(
    conn: &mut AsyncPgConnection,
    worker: UserId,
    exclusive: bool,
) -> Result<(), AppError> {
    let query = workers::table.find(worker).select(workers::user_id);
    let _: Option<UserId> = if exclusive {
        query.for_no_key_update().first(conn).await.optional()?
    } else {
        query.for_share().first(conn).await.optional()?
    };
    Ok(())
}

/// Recomputes `listed` for the listings in `scope`, inside the caller's transaction and
/// after the caller's change. A worker scope takes the worker lock itself (a no-op when
/// the caller already holds it). Returns how many rows changed.
pub async fn relist(conn: &mut AsyncPgConnection, scope: Scope) -> Result<usize, AppError> {
    let mut sql = Sql::new();
    sql.push("UPDATE services s SET listed = ")
        .push(VISIBLE)
        .push(
            " FROM workers w JOIN users u ON u.id = w.user_id WHERE w.user_id = s.worker_id AND ",
        );
    match scope {
        Scope::Worker(worker) => {
            lock_worker(conn, worker, true).await?;
            sql.push("s.worker_id = ").bind::<Uuid, _>(worker.0);
        }
        Scope::Listing(id) => {
            sql.push("s.id = ").bind::<Uuid, _>(id.0);
        }
    }
    sql.push(" AND s.listed IS DISTINCT FROM ").push(VISIBLE);
    Ok(sql.execute(conn).await?)
}
