//! Revoked logins: PostgreSQL holds the durable record, Redis answers the hot-path check.
//!
//! A revoked session id is kept in Redis for one access-token lifetime (plus leeway):
//! after that every access token it covered has expired anyway, so Redis never grows
//! without bound. Refresh tokens are checked against PostgreSQL directly.
//!
//! Redis on this stack may restart empty. A marker key, written after Redis has been
//! filled from PostgreSQL, tells a complete Redis from an emptied one; without it the
//! check asks PostgreSQL and a refill starts in the background. A logged-out token
//! therefore never works again, whatever happened to Redis in between.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use deadpool_redis::redis;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::{
    core::{
        ids::SessionId,
        redis::{self as redis_pool, RedisPool},
    },
    db::{DbPool, schema::login_sessions},
    error::AppError,
};

/// The Redis side of revocation, keyed under the deployment's prefix.
#[derive(Clone)]
pub struct Revocations {
    redis: RedisPool,
    prefix: String,
    /// How long a revocation must stay in Redis: the access-token lifetime plus leeway.
    ttl: Duration,
    refilling: Arc<AtomicBool>,
}

impl Revocations {
    pub fn new(redis: RedisPool, prefix: &str, access_token_ttl: Duration) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            ttl: access_token_ttl + Duration::from_secs(30),
            refilling: Arc::new(AtomicBool::new(false)),
        }
    }

    fn key(&self, session: SessionId) -> String {
        format!("{}revoked:{}", self.prefix, session)
    }

    fn marker(&self) -> String {
        format!("{}revoked:complete", self.prefix)
    }

    /// One Redis round trip on the happy path. Fails closed: no Redis, no answer (503).
    pub async fn is_revoked(&self, db: &DbPool, session: SessionId) -> Result<bool, AppError> {
        let mget = redis::cmd("MGET")
            .arg(self.key(session))
            .arg(self.marker())
            .clone();
        let (revoked, complete): (Option<u8>, Option<u8>) =
            redis_pool::run(&self.redis, async |conn| mget.query_async(conn).await).await?;
        if complete.is_some() {
            return Ok(revoked.is_some());
        }
        self.spawn_refill(db.clone());
        let mut conn = crate::db::checkout(db).await?;
        let revoked_at: Option<Option<chrono::DateTime<chrono::Utc>>> = login_sessions::table
            .find(session)
            .select(login_sessions::revoked_at)
            .first(&mut conn)
            .await
            .optional()?;
        // An unknown session cannot have been issued by us with this key: treat as revoked.
        Ok(revoked_at.is_none_or(|at| at.is_some()))
    }

    /// Marks sessions revoked in Redis. Callers do this inside the transaction that
    /// records the revocation in PostgreSQL, before commit: a Redis that cannot take the
    /// write rolls the revocation back (503, safe to retry) rather than leaving the two
    /// stores disagreeing.
    pub async fn revoke(&self, sessions: &[SessionId]) -> Result<(), AppError> {
        if sessions.is_empty() {
            return Ok(());
        }
        let pipe = self.pipeline(sessions);
        redis_pool::run(&self.redis, async |conn| pipe.query_async::<()>(conn).await).await
    }

    fn pipeline(&self, sessions: &[SessionId]) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        for session in sessions {
            pipe.set_ex(self.key(*session), 1u8, self.ttl.as_secs())
                .ignore();
        }
        pipe
    }

    /// Copies every revocation that may still matter from PostgreSQL into Redis, then
    /// writes the marker. Returns how many sessions it copied.
    pub async fn refill(&self, db: &DbPool) -> Result<usize, AppError> {
        let since = chrono::Utc::now() - self.ttl;
        let mut conn = crate::db::checkout(db).await?;
        let sessions: Vec<SessionId> = login_sessions::table
            .filter(login_sessions::revoked_at.gt(since))
            .select(login_sessions::id)
            .load(&mut conn)
            .await?;
        drop(conn);
        // Keys and marker in one MULTI/EXEC: a marker can never land without its keys.
        let mut pipe = self.pipeline(&sessions);
        pipe.atomic().set(self.marker(), 1u8).ignore();
        redis_pool::run(&self.redis, async |conn| pipe.query_async::<()>(conn).await).await?;
        Ok(sessions.len())
    }

    /// One refill at a time per process; requests keep using PostgreSQL meanwhile.
    fn spawn_refill(&self, db: DbPool) {
        if self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            match this.refill(&db).await {
                Ok(count) => tracing::info!(count, "refilled revoked sessions into redis"),
                Err(err) => {
                    tracing::warn!(error = %err, "refilling revoked sessions failed; will retry")
                }
            }
            this.refilling.store(false, Ordering::Release);
        });
    }
}
