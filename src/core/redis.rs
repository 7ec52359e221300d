//! The Redis pool, tuned for the hot path.
//!
//! deadpool-redis's manager PINGs every connection on checkout: a second round trip
//! for every authenticated request. Ours trusts a pooled (multiplexed) connection and
//! instead discards one the moment a command on it fails at the transport level, so a
//! restarted Redis costs at most one 503 per stale connection before recovery.

use std::path::Path;

use anyhow::Context;
use deadpool::managed::{self, Metrics, RecycleResult};
use deadpool_redis::redis::{
    self, RedisError, RedisResult, TlsCertificates, aio::MultiplexedConnection,
};

use crate::error::AppError;

/// The client for `REDIS_URL`. `rediss://` is TLS through rustls, the server verified
/// against the PEM file `ca_cert` (`REDIS_CA_CERT`) when given, else the system's roots.
pub fn client(url: &url::Url, ca_cert: Option<&Path>) -> anyhow::Result<redis::Client> {
    let client = match ca_cert {
        Some(path) => {
            let root_cert = std::fs::read(path)
                .with_context(|| format!("reading REDIS_CA_CERT {}", path.display()))?;
            let certs = TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            };
            redis::Client::build_with_tls(url.as_str(), certs)?
        }
        None => redis::Client::open(url.as_str())?,
    };
    Ok(client)
}

/// Creates multiplexed connections; recycling is free.
pub struct RedisManager(redis::Client);

impl managed::Manager for RedisManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        self.0.get_multiplexed_async_connection().await
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
    client: redis::Client,
    max_size: usize,
    timeout: std::time::Duration,
) -> anyhow::Result<RedisPool> {
    let manager = RedisManager(client);
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
