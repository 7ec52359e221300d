//! The dispatcher: turns recorded events into their side effects, at least once.
//!
//! Each round claims a batch of due events with `FOR UPDATE SKIP LOCKED` (so several
//! instances share the queue without taking an event twice at once), runs each event's
//! handler in a savepoint and marks it done, or counts the failure and backs off
//! exponentially (`next_attempt_at`); after `EVENT_MAX_ATTEMPTS` failures the event is
//! parked: logged, counted, kept for inspection, and no longer in the way of later
//! events. Notifications stored by a round are pushed after its commit.
//!
//! Notification handlers are idempotent (a notification is unique per event and
//! recipient), so an event handled twice tells nobody twice. Emails are not: one is sent
//! inside the round's transaction, so a rollback after the server accepted it (a crash,
//! the round aborted at shutdown, a failed commit) sends it again next round — a second
//! email whose new link supersedes the first. SMTP offers no idempotency key to prevent
//! that; README ("Email delivery") says what the open transaction holds meanwhile.
//!
//! A dedicated connection `LISTEN`s on [`super::CHANNEL`]: a commit that recorded
//! events wakes the dispatcher at once. Polling every `EVENT_POLL_INTERVAL` covers a
//! lost notification and the time the listener is reconnecting.

use std::{sync::Arc, time::Duration};

use diesel::{
    QueryableByName,
    sql_types::{BigInt, Integer, Text, Uuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use tokio::sync::{Notify, watch};

use crate::{
    core::ids::EventId,
    db::sql::Sql,
    error::AppError,
    events::Event,
    notification::{self, models::NotificationRow},
    state::AppState,
};

/// Events claimed per round (and per transaction).
const BATCH: i64 = 100;
/// Backoff after the first failure; doubled after each further one, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF_SECS: i64 = 1;
const MAX_BACKOFF_SECS: i64 = 3600;
/// How often done events past the retention period are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);
/// Wait before reconnecting a dropped listener.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// A running dispatcher; [`Dispatcher::stop`] lets its current round finish.
pub struct Dispatcher {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Dispatcher {
    /// Starts dispatching on the runtime (`serve` starts one per instance).
    pub fn start(state: AppState) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(state, stopped));
        Self { stop, task }
    }

    /// Stops after the round in progress (within `grace`, else aborts it: its
    /// transaction then rolls back and the events stay due).
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}

async fn run(state: AppState, mut stopped: watch::Receiver<bool>) {
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(state.clone(), wake.clone()));
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        drain(&state).await;
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL) {
            last_prune = Some(tokio::time::Instant::now());
            match prune(&state).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "pruned dispatched events"),
                Err(err) => tracing::warn!(error = %err, "pruning dispatched events failed"),
            }
        }
        tokio::select! {
            _ = stopped.changed() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(state.settings.event_poll_interval) => {}
        }
    }
    listener.abort();
}

/// Runs rounds until fewer than a batch are due.
async fn drain(state: &AppState) {
    loop {
        match dispatch_round(state, BATCH).await {
            Ok(handled) if handled < BATCH as usize => break,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "dispatching events failed; will retry");
                break;
            }
        }
    }
    if let Ok(lag) = queue_lag(state).await {
        metrics::gauge!("events_queue_lag_seconds").set(lag);
    }
}

/// Keeps a `LISTEN` connection open, waking the dispatcher on each notification, and
/// reconnects when it drops.
async fn listen(state: AppState, wake: Arc<Notify>) {
    let url = crate::db::connection_url(
        &state.settings,
        "marketplace-events",
        state.settings.db_statement_timeout,
    );
    let connector = match crate::db::tls::PgConnector::new(&state.settings.database_tls) {
        Ok(connector) => connector,
        Err(err) => {
            tracing::error!(error = %err, "event listener cannot set up TLS; polling only");
            return;
        }
    };
    loop {
        match connector.connect(url.as_str()).await {
            Ok(mut conn) => {
                let listening = diesel::sql_query(format!("LISTEN {}", super::CHANNEL))
                    .execute(&mut conn)
                    .await;
                if let Err(err) = listening {
                    tracing::warn!(error = %err, "LISTEN failed; polling until it works");
                } else {
                    // Anything committed while we were away is found by this round.
                    wake.notify_one();
                    let mut stream = std::pin::pin!(conn.notifications_stream());
                    while let Some(Ok(_)) = stream.next().await {
                        wake.notify_one();
                    }
                    tracing::warn!("event listener connection lost; reconnecting");
                }
            }
            Err(err) => tracing::warn!(error = %err, "event listener cannot connect; polling"),
        }
        metrics::counter!("events_listener_reconnects_total").increment(1);
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Uuid)]
    id: EventId,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

/// What became of one claimed event.
enum Outcome {
    Done(Vec<NotificationRow>),
    /// `email`: the failure was an email not accepted (also counted as such).
    Failed {
        error: String,
        email: bool,
    },
}

/// One round: claims up to `batch` due events, handles them, records the outcomes and
/// commits, then pushes the notifications stored. Returns how many were claimed.
/// Public so tests and tools can dispatch without the background task.
pub async fn dispatch_round(state: &AppState, batch: i64) -> Result<usize, AppError> {
    let mut conn = state.conn().await?;
    let max_attempts = state.settings.event_max_attempts;
    let (claimed, pushes) = conn
        .transaction::<_, AppError, _>(async |conn| {
            let mut sql = Sql::new();
            sql.push(
                "SELECT id, payload::text AS payload, attempts FROM events \
                     WHERE done_at IS NULL AND parked_at IS NULL AND next_attempt_at <= now() \
                     ORDER BY next_attempt_at, id LIMIT ",
            )
            .bind::<BigInt, _>(batch)
            .push(" FOR UPDATE SKIP LOCKED");
            let due: Vec<Claimed> = sql.load(conn).await?;
            let mut pushes = Vec::new();
            for event in &due {
                match handle(state, conn, event).await {
                    Outcome::Done(rows) => {
                        mark_done(conn, event.id).await?;
                        metrics::counter!("events_dispatched_total").increment(1);
                        pushes.extend(rows);
                    }
                    Outcome::Failed { error, email } => {
                        fail(conn, event, &error, email, max_attempts).await?;
                    }
                }
            }
            Ok((due.len(), pushes))
        })
        .await?;
    drop(conn);
    notification::services::push(state, pushes).await;
    Ok(claimed)
}

/// Runs an event's handler in a savepoint, so a failing one undoes only its own work,
/// then sends the email the event asks for, if any.
async fn handle(state: &AppState, conn: &mut AsyncPgConnection, claimed: &Claimed) -> Outcome {
    let event: Event = match serde_json::from_str(&claimed.payload) {
        Ok(event) => event,
        Err(err) => {
            return Outcome::Failed {
                error: format!("payload does not decode: {err}"),
                email: false,
            };
        }
    };
    let id = claimed.id;
    let stored = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            notification::services::store(conn, id, &event).await
        })
        .await;
    let rows = match stored {
        Ok(rows) => rows,
        Err(err) => {
            return Outcome::Failed {
                error: err.to_string(),
                email: false,
            };
        }
    };
    match crate::auth::lifecycle::services::send_email_for(state, &event).await {
        Ok(()) => Outcome::Done(rows),
        Err(err) => Outcome::Failed {
            error: format!("{err:#}"),
            email: true,
        },
    }
}

async fn mark_done(conn: &mut AsyncPgConnection, id: EventId) -> Result<(), AppError> {
    let mut sql = Sql::new();
    sql.push("UPDATE events SET done_at = now(), attempts = attempts + 1 WHERE id = ")
        .bind::<Uuid, _>(id.0);
    sql.execute(conn).await?;
    Ok(())
}

/// Counts a failed attempt: backs off, or parks the event after the last one.
async fn fail(
    conn: &mut AsyncPgConnection,
    event: &Claimed,
    error: &str,
    email: bool,
    max_attempts: i32,
) -> Result<(), AppError> {
    let attempts = event.attempts + 1;
    let parked = attempts >= max_attempts;
    let mut sql = Sql::new();
    sql.push("UPDATE events SET attempts = ")
        .bind::<Integer, _>(attempts)
        .push(", last_error = ")
        .bind::<Text, _>(error.to_owned());
    if parked {
        sql.push(", parked_at = now()");
    } else {
        sql.push(", next_attempt_at = now() + make_interval(secs => ")
            .bind::<BigInt, _>(backoff_secs(attempts))
            .push("::float8)");
    }
    sql.push(" WHERE id = ").bind::<Uuid, _>(event.id.0);
    sql.execute(conn).await?;
    if email {
        let outcome = if parked {
            "emails_failed_total"
        } else {
            "emails_retried_total"
        };
        metrics::counter!(outcome).increment(1);
    }
    if parked {
        metrics::counter!("events_parked_total").increment(1);
        tracing::error!(event_id = %event.id, attempts, error, "event parked after its last attempt");
    } else {
        metrics::counter!("events_failed_total").increment(1);
        tracing::warn!(event_id = %event.id, attempts, error, "event handler failed; will retry");
    }
    Ok(())
}

/// Seconds to wait after the `attempts`-th failure: 1, 2, 4, … up to an hour.
fn backoff_secs(attempts: i32) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    (FIRST_BACKOFF_SECS << doublings).min(MAX_BACKOFF_SECS)
}

/// Deletes done events older than `EVENT_RETENTION`, in bounded batches.
async fn prune(state: &AppState) -> Result<usize, AppError> {
    let mut conn = state.conn().await?;
    let mut total = 0;
    loop {
        let mut sql = Sql::new();
        sql.push(
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE done_at IS NOT NULL \
             AND done_at < now() - make_interval(secs => ",
        )
        .bind::<BigInt, _>(
            i64::try_from(state.settings.event_retention.as_secs()).unwrap_or(i64::MAX),
        )
        .push("::float8) LIMIT 1000)");
        let deleted = sql.execute(&mut conn).await?;
        total += deleted;
        if deleted < 1000 {
            return Ok(total);
        }
    }
}

#[derive(QueryableByName)]
struct Lag {
    #[diesel(sql_type = diesel::sql_types::Double)]
    seconds: f64,
}

/// Age of the oldest due event, 0 when none is (what `events_queue_lag_seconds` shows).
async fn queue_lag(state: &AppState) -> Result<f64, AppError> {
    let mut conn = state.conn().await?;
    let mut sql = Sql::new();
    sql.push(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS seconds \
         FROM events WHERE done_at IS NULL AND parked_at IS NULL AND next_attempt_at <= now()",
    );
    let lag: Lag = sql.get_result(&mut conn).await?;
    Ok(lag.seconds)
}

#[cfg(test)]
mod tests {
    use super::backoff_secs;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(
            (1..=5).map(backoff_secs).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16]
        );
        assert_eq!(backoff_secs(40), 3600);
    }
}
