//! `marketplace serve` and `marketplace migrate`: start-up, serving, graceful shutdown.

use std::time::Instant;

use anyhow::Context;
use poem::{
    Server,
    listener::{Listener, TcpListener},
};

use crate::{
    app,
    config::Settings,
    core::connections::{ConnectionLimits, GuardedAcceptor},
    db,
    state::AppState,
    tasks,
};

/// Creates the database when missing and applies pending migrations.
pub async fn migrate(settings: &Settings) -> anyhow::Result<Vec<String>> {
    db::ensure_database(&settings.database_url, &settings.database_tls).await?;
    db::run_migrations(&settings.database_url, &settings.database_tls).await
}

/// Migrates, then serves until SIGTERM or Ctrl-C; in-flight requests get
/// `SHUTDOWN_TIMEOUT` to finish, then pools are closed.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let applied = migrate(&settings).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied migrations");
    }
    if settings.jwt_secret.is_none() {
        // Said where tokens are signed only: `create-admin` and `seed` sign none.
        tracing::warn!(
            "JWT_SECRET is not set: tokens are signed with a key generated for this deployment \
             and stored in its database (set JWT_SECRET; APP_ENV=production requires it)"
        );
    }
    let state = AppState::new(settings).await?;
    if let Err(err) = state.revocations.retire_legacy_marker().await {
        tracing::warn!(error = %err, "could not remove the previous release's revocation marker");
    }
    let background = tasks::spawn_all(&state);

    let bind = state.settings.bind;
    let timeout = state.settings.shutdown_timeout;
    let descriptors = raise_descriptor_limit();
    let acceptor = GuardedAcceptor::new(
        TcpListener::bind(bind)
            .into_acceptor()
            .await
            .with_context(|| format!("binding {bind}"))?,
        ConnectionLimits::from(&state.settings),
    );
    tracing::info!(
        %bind,
        descriptors,
        startup_ms = started.elapsed().as_millis() as u64,
        "listening"
    );
    // WebSockets are long-lived: they are closed (1001) on the signal, before the
    // server drains requests and the pools close, instead of holding shutdown up.
    let hub = state.hub.clone();
    let signal = async move {
        shutdown_signal().await;
        hub.shutdown(timeout).await;
    };
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(state.clone()), signal, Some(timeout))
        .await
        .with_context(|| format!("serving on {bind}"))?;

    background.shutdown(timeout).await;
    state.db.close();
    state.search_db.close();
    state.reads.close();
    state.redis.close();
    tracing::info!("stopped");
    Ok(())
}

/// Raises the open-file limit to its hard maximum: every connection is a descriptor,
/// and the default soft limit (often 1,024) would cap the server far below what the
/// per-address limit and the machine allow. Returns the limit in force.
fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %err, "could not raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
