//! The application state shared by every request: pools, keys, limiters, settings.

use std::{ops::Deref, sync::Arc};

use diesel_async::pooled_connection::deadpool::PoolError;

use crate::{
    auth::oidc::providers::Providers,
    config::Settings,
    console::session::ConsoleKeys,
    core::{
        jwt::TokenKeys,
        limiter::RateLimits,
        pagination::Cursors,
        password::Passwords,
        redis::{self, RedisPool},
        revocation::Revocations,
        signing_key,
        upload::{LocalStore, UploadStore},
    },
    db::{self, DbPool, shared::SharedReads},
    mail::Mailer,
    messaging::hub::Hub,
};

/// Cheap to clone: one `Arc` around everything.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    pub db: DbPool,
    /// Public search's own small pool (see [`db::search_pool`]).
    pub search_db: DbPool,
    /// Connections that one-statement public reads share, pipelined.
    pub reads: SharedReads,
    pub redis: RedisPool,
    pub tokens: TokenKeys,
    pub cursors: Cursors,
    /// The admin console's cookie seals and CSRF tokens.
    pub console_keys: ConsoleKeys,
    pub passwords: Passwords,
    pub revocations: Revocations,
    pub limits: RateLimits,
    /// Where KYC documents are kept.
    pub uploads: Arc<dyn UploadStore>,
    /// This instance's WebSockets and their Redis pub/sub fan-out.
    pub hub: Hub,
    /// Outgoing email (used by the event dispatcher).
    pub mailer: Mailer,
    /// The OpenID Connect providers and what discovery taught us about them.
    pub oidc: Providers,
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the pools and everything that hangs off settings. Without a configured
    /// `JWT_SECRET` the signing key is read from the database, so it must be reachable.
    pub async fn new(settings: Settings) -> anyhow::Result<Self> {
        let db = db::pool(&settings)?;
        let secret = signing_key::resolve(&settings, &db).await?;
        let redis_client = redis::client(&settings.redis_url, settings.redis_ca_cert.as_deref())?;
        let redis = redis::pool(
            redis_client.clone(),
            settings.db_pool_size * 2,
            settings.db_pool_timeout,
        )?;
        let revocations = Revocations::new(
            redis.clone(),
            &settings.redis_prefix,
            settings.access_token_ttl,
        );
        let hub = Hub::new(
            redis.clone(),
            redis_client,
            &settings.redis_prefix,
            settings.ws_max_sockets_per_user,
        );
        Ok(Self(Arc::new(Inner {
            hub,
            mailer: Mailer::new(&settings)?,
            oidc: Providers::new(&settings.oidc_providers)?,
            tokens: TokenKeys::new(&secret, settings.access_token_ttl),
            cursors: Cursors::new(&secret),
            console_keys: ConsoleKeys::new(&secret),
            passwords: Passwords::new(),
            limits: RateLimits::new(&settings),
            uploads: Arc::new(LocalStore::new(&settings.upload_dir)),
            revocations,
            search_db: db::search_pool(&settings)?,
            reads: db::shared_reads(&settings)?,
            db,
            redis,
            settings,
        })))
    }

    /// Borrows a database connection (see [`db::checkout`]).
    pub async fn conn(&self) -> Result<db::DbConn, PoolError> {
        db::checkout(&self.db).await
    }
}
