//! The Redis pool, tuned for the hot path.
//!
//! deadpool-redis's manager PINGs every connection on checkout: a second round trip
//! for every authenticated request. Ours trusts a pooled (multiplexed) connection and
//! instead discards one the moment a command on it fails at the transport level, so a
//! restarted Redis costs at most one 503 per stale connection before recovery.

use deadpool::managed::{self, Metrics, RecycleResult};
use deadpool_redis::redis::{RedisError, RedisResult, aio::MultiplexedConnection};

use crate::error::AppError;

/// Creates multiplexed connections; recycling is free.
pub struct RedisManager(deadpool_redis::Manager);

impl managed::Manager for RedisManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        managed::Manager::create(&self.0).await
    }

    async fn recycle(
        &self,
        _: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        Ok(())
    }
}

pub type RedisPool = managed::Pool<RedisManager>;

/// A pool whose waits are bounded like the database pool's, so a dead Redis answers
/// 503 after the timeout instead of hanging requests.
pub fn pool(
    url: &url::Url,
    max_size: usize,
    timeout: std::time::Duration,
) -> anyhow::Result<RedisPool> {
    let manager = RedisManager(deadpool_redis::Manager::new(url.as_str())?);
    Ok(managed::Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?)
}

/// Runs `commands` on a pooled connection. Transport failures drop the connection
/// (it is not returned to the pool) and answer 503.
pub async fn run<T>(
    pool: &RedisPool,
    commands: impl AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<T>,
) -> Result<T, AppError> {
    let mut conn = pool.get().await.map_err(|err| {
        tracing::warn!(error = %err, "redis pool");
        AppError::Unavailable("redis")
    })?;
    match commands(&mut conn).await {
        Ok(value) => Ok(value),
        Err(err) if is_transport(&err) => {
            drop(managed::Object::take(conn));
            tracing::warn!(error = %err, "redis connection lost");
            Err(AppError::Unavailable("redis"))
        }
        // Loading after a restart, a replica during failover, out of memory: transient,
        // not a bug.
        Err(err)
            if matches!(
                err.code(),
                Some("LOADING" | "READONLY" | "MASTERDOWN" | "TRYAGAIN" | "BUSY" | "OOM")
            ) =>
        {
            tracing::warn!(error = %err, "redis busy");
            Err(AppError::Unavailable("redis"))
        }
        Err(err) => Err(AppError::Internal(err.into())),
    }
}

fn is_transport(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_timeout()
        || err.is_connection_refusal()
}
