//! PostgreSQL: the connection pool, database creation and embedded migrations.

pub mod enums;
pub mod schema;
pub mod shared;
pub mod sql;
pub mod tls;

use std::time::Duration;

use anyhow::Context;
use diesel::sql_types::BigInt;
use diesel_async::{
    AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
        deadpool::{Hook, HookError, Object, Pool, PoolError},
    },
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use url::Url;

use crate::config::Settings;
use tls::{PgConnector, PgTls};

/// The shared pool; every request borrows one connection from it.
pub type DbPool = Pool<AsyncPgConnection>;
/// A connection checked out of [`DbPool`].
pub type DbConn = Object<AsyncPgConnection>;

/// Borrows a connection from the pool.
///
/// The checkout future is boxed on purpose: deadpool's is about 2 KiB (it inlines
/// connection set-up), and every request future that awaited it inline would carry
/// those bytes and copy them each time poem moves the future into a box.
pub async fn checkout(pool: &DbPool) -> Result<DbConn, PoolError> {
    Box::pin(pool.get()).await
}

/// Every migration in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Serialises migrators of every instance: `hashtext('marketplace.migrations')` would do
/// too, but a constant is easier to find in `pg_locks`.
const MIGRATION_LOCK_KEY: i64 = 0x6d61_726b_6574_0001;

/// Connections are replaced after this long, so server-side memory and
/// configuration changes do not live forever.
pub(crate) const MAX_CONNECTION_AGE: Duration = Duration::from_secs(30 * 60);

/// Creates the main pool. Connections are opened lazily: a database that is down at
/// start-up makes requests answer 503, and the pool recovers when it returns.
pub fn pool(settings: &Settings) -> anyhow::Result<DbPool> {
    build_pool(
        settings,
        "marketplace",
        settings.db_pool_size,
        settings.db_statement_timeout,
    )
}

/// The pool public search runs on: few connections and a short statement timeout.
///
/// Search is the one anonymous endpoint whose cost the caller controls (the query
/// text). On its own small pool, a flood of expensive searches queues for these
/// connections and times out quickly, while logins, bookings and reads keep the main
/// pool to themselves.
pub fn search_pool(settings: &Settings) -> anyhow::Result<DbPool> {
    build_pool(
        settings,
        "marketplace-search",
        settings.search_pool_size,
        settings.search_statement_timeout,
    )
}

/// The connections one-statement public reads share (see [`shared`]).
pub fn shared_reads(settings: &Settings) -> anyhow::Result<shared::SharedReads> {
    let pool = build_pool(
        settings,
        "marketplace-reads",
        2 * settings.db_shared_reads,
        shared::STATEMENT_TIMEOUT,
    )?;
    Ok(shared::SharedReads::new(
        pool,
        settings.db_shared_reads,
        settings.db_pool_timeout,
    ))
}

/// A pool whose connections show as `application_name` in `pg_stat_activity`.
fn build_pool(
    settings: &Settings,
    application_name: &str,
    size: usize,
    statement_timeout: Duration,
) -> anyhow::Result<DbPool> {
    let url = connection_url(settings, application_name, statement_timeout);
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // A broken connection is detected on use and discarded; verifying every checkout
    // with `SELECT 1` would add a round trip to every request.
    config.recycling_method = RecyclingMethod::Fast;
    let connector = PgConnector::new(&settings.database_tls)?;
    config.custom_setup = Box::new(move |url| {
        let connector = connector.clone();
        let url = url.to_owned();
        Box::pin(async move { connector.connect(&url).await })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url.as_str(), config);
    let timeout = Some(settings.db_pool_timeout);
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(deadpool::Runtime::Tokio1)
        .pre_recycle(Hook::sync_fn(|_, metrics| {
            if metrics.age() > MAX_CONNECTION_AGE {
                Err(HookError::message("connection reached its maximum age"))
            } else {
                Ok(())
            }
        }))
        .build()
        .context("building the database pool")
}

/// The configured URL plus the per-connection settings PostgreSQL applies at
/// connect time, so they cost no extra round trip.
pub(crate) fn connection_url(
    settings: &Settings,
    application_name: &str,
    statement_timeout: Duration,
) -> Url {
    let mut url = settings.database_url.clone();
    let statement_timeout_ms = statement_timeout.as_millis();
    let connect_timeout = settings.db_pool_timeout.as_secs().max(1);
    // Built by hand: `query_pairs_mut` writes spaces as `+`, which libpq-style parsers
    // (tokio-postgres included) do not decode.
    let extra = format!(
        "application_name={application_name}&connect_timeout={connect_timeout}&options=-c%20statement_timeout%3D{statement_timeout_ms}"
    );
    let query = match url.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}&{extra}"),
        _ => extra,
    };
    url.set_query(Some(&query));
    url
}

/// Creates the database named in `DATABASE_URL` when it does not exist yet.
pub async fn ensure_database(database_url: &Url, tls: &PgTls) -> anyhow::Result<()> {
    let name = database_url.path().trim_start_matches('/').to_owned();
    anyhow::ensure!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "DATABASE_URL must name a database made of letters, digits, '_' or '-'"
    );
    let mut admin_url = database_url.clone();
    admin_url.set_path("/postgres");
    let mut conn = PgConnector::new(tls)?
        .connect(admin_url.as_str())
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redacted(database_url)))?;
    let exists: i64 = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(&name)
        .get_result::<Count>(&mut conn)
        .await?
        .n;
    if exists == 0 {
        // The name was checked above to be a plain identifier.
        match conn
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            Ok(()) => tracing::info!(database = %name, "created database"),
            // Another instance created it between our check and now.
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("already exists") => {}
            Err(err) => return Err(err).context("creating the database"),
        }
    }
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Applies pending migrations under an advisory lock, so instances starting together
/// migrate one at a time; returns the versions it applied.
pub async fn run_migrations(database_url: &Url, tls: &PgTls) -> anyhow::Result<Vec<String>> {
    let conn = PgConnector::new(tls)?
        .connect(database_url.as_str())
        .await
        .context("connecting for migrations")?;
    // The harness is synchronous: it runs on a blocking thread, driving the async
    // connection through the runtime's handle.
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
        advisory(&mut conn, "SELECT pg_advisory_lock($1)")?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| anyhow::anyhow!("running migrations: {e}"));
        advisory(&mut conn, "SELECT pg_advisory_unlock($1)")?;
        applied
    })
    .await?
}

fn advisory(
    conn: &mut AsyncConnectionWrapper<AsyncPgConnection>,
    sql: &str,
) -> diesel::QueryResult<usize> {
    diesel::RunQueryDsl::execute(
        diesel::sql_query(sql).bind::<BigInt, _>(MIGRATION_LOCK_KEY),
        conn,
    )
}

/// The URL without its password, for messages.
pub fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}
