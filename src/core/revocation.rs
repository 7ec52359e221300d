//! Whether a login session may still be used: PostgreSQL holds the durable record, Redis
//! caches the answer for the hot path.
//!
//! Redis holds one key per session that has been asked about: `1` (live) or `0`
//! (revoked or never issued). A key that is missing is never read as "live": the check
//! asks PostgreSQL and writes the answer back. So when Redis loses keys — a restart with
//! no persistence, a single key evicted under `allkeys-*` — the check falls back onto the
//! durable record instead of letting a revoked (or forged, never-issued) session
//! through.
//!
//! The two writers cannot undo each other:
//! - a revocation overwrites the key with `0` (inside the revoking transaction, before
//!   commit), for one access-token lifetime, after which every token of the session
//!   has expired anyway;
//! - a read-through writes its answer only when no key exists (`SET NX`), so a check
//!   that read PostgreSQL just before a logout cannot put `1` back over the logout's `0`.
//!
//! What remains is bounded by `LIVE_TTL`: live answers are cached for a minute only.
//! A Redis that comes back with a `1` and without a later `0` — restored from a snapshot
//! taken less than a minute before the revocation, or a replica promoted before the
//! revocation reached it — can accept that session until the `1` expires. A snapshot
//! older than that brings back no live key at all (snapshots keep absolute expiry
//! times).
//!
//! Instances of the previous release kept `revoked:<session>` keys and trusted a
//! `revoked:complete` marker. During a rolling deploy they still run beside this one,
//! so a revocation also writes the old key (and start-up removes the marker, sending
//! old instances to PostgreSQL until they are gone). Both can go with the next release.

use std::time::Duration;

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

/// How long a "live" answer may be served from Redis without asking PostgreSQL.
const LIVE_TTL: Duration = Duration::from_secs(60);

const LIVE: u8 = 1;
const DEAD: u8 = 0;

/// The Redis side of session checks, keyed under the deployment's prefix.
#[derive(Clone)]
pub struct Revocations {
    redis: RedisPool,
    prefix: String,
    /// How long a revocation must stay in Redis: the access-token lifetime plus leeway.
    revoked_ttl: Duration,
}

impl Revocations {
    pub fn new(redis: RedisPool, prefix: &str, access_token_ttl: Duration) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            revoked_ttl: access_token_ttl + Duration::from_secs(30),
        }
    }

    fn key(&self, session: SessionId) -> String {
        format!("{}session:{}", self.prefix, session)
    }

    /// The previous release's key for a revoked session (see the module documentation).
    fn legacy_key(&self, session: SessionId) -> String {
        format!("{}revoked:{}", self.prefix, session)
    }

    /// Removes the previous release's "Redis is complete" marker, so that its instances
    /// still running check PostgreSQL rather than trust a Redis this release writes to.
    pub async fn retire_legacy_marker(&self) -> Result<(), AppError> {
        let del = redis::cmd("DEL")
            .arg(format!("{}revoked:complete", self.prefix))
            .clone();
        redis_pool::run(&self.redis, async |conn| del.query_async::<()>(conn).await).await
    }

    /// One Redis `GET` on the happy path; PostgreSQL when Redis has no answer. Fails
    /// closed: no Redis, no answer (503).
    pub async fn is_revoked(&self, db: &DbPool, session: SessionId) -> Result<bool, AppError> {
        let key = self.key(session);
        let get = redis::cmd("GET").arg(&key).clone();
        let cached: Option<u8> =
            redis_pool::run(&self.redis, async |conn| get.query_async(conn).await).await?;
        if let Some(state) = cached {
            return Ok(state != LIVE);
        }
        let mut conn = crate::db::checkout(db).await?;
        let revoked_at: Option<Option<chrono::DateTime<chrono::Utc>>> = login_sessions::table
            .find(session)
            .select(login_sessions::revoked_at)
            .first(&mut conn)
            .await
            .optional()?;
        drop(conn);
        // A session id this service never issued counts as revoked.
        let revoked = revoked_at.is_none_or(|at| at.is_some());
        let (value, ttl) = if revoked {
            (DEAD, self.revoked_ttl)
        } else {
            (LIVE, LIVE_TTL)
        };
        let set = redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs())
            .clone();
        // The answer stands whether or not it can be cached: a Redis refusing writes
        // (out of memory, a read-only replica) costs the next check a query, not a 503.
        if let Err(err) = redis_pool::run(&self.redis, async |conn| {
            set.query_async::<Option<String>>(conn).await
        })
        .await
        {
            tracing::warn!(error = %err, "could not cache a session check");
        }
        Ok(revoked)
    }

    /// Marks sessions revoked in Redis. Callers do this inside the transaction that
    /// records the revocation in PostgreSQL, before commit: a Redis that cannot take the
    /// write rolls the revocation back (503, safe to retry) rather than leaving a live
    /// answer cached for a session PostgreSQL calls revoked.
    pub async fn revoke(&self, sessions: &[SessionId]) -> Result<(), AppError> {
        if sessions.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for session in sessions {
            let ttl = self.revoked_ttl.as_secs();
            pipe.set_ex(self.key(*session), DEAD, ttl)
                .ignore()
                .set_ex(self.legacy_key(*session), 1u8, ttl)
                .ignore();
        }
        redis_pool::run(&self.redis, async |conn| pipe.query_async::<()>(conn).await).await
    }
}
