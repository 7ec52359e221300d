//! Background tasks started by `serve`, stopped at shutdown (each iteration is one
//! transaction, so stopping between iterations leaves nothing half done).

use std::time::Duration;

use tokio::task::JoinSet;

use crate::{core::limiter::EVICTION_INTERVAL, events::dispatcher::Dispatcher, state::AppState};

/// The running background tasks.
pub struct Background {
    tasks: JoinSet<()>,
    dispatcher: Dispatcher,
}

impl Background {
    /// Lets the event dispatcher finish its round (up to `grace`), then stops the rest.
    pub async fn shutdown(mut self, grace: Duration) {
        self.dispatcher.stop(grace).await;
        self.tasks.shutdown().await;
    }
}

/// Starts every background task, the event dispatcher included.
pub fn spawn_all(state: &AppState) -> Background {
    let mut tasks = JoinSet::new();
    tasks.spawn(evict_idle_rate_limit_keys(state.clone()));
    tasks.spawn(expire_job_requests(state.clone()));
    tasks.spawn(purge_rejected_kyc_files(state.clone()));
    Background {
        tasks,
        dispatcher: Dispatcher::start(state.clone()),
    }
}

/// How often files of long-rejected KYC submissions are looked for.
const KYC_PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes the files of KYC submissions rejected longer ago than the retention period,
/// in batches, until none is due.
async fn purge_rejected_kyc_files(state: AppState) {
    let mut tick = tokio::time::interval(KYC_PURGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match crate::worker::kyc::purge_rejected_files(&state, EXPIRY_BATCH).await {
                // None due, or only files that could not be deleted (logged): next hour.
                Ok(0) => break,
                Ok(count) => tracing::info!(count, "deleted files of rejected KYC submissions"),
                Err(err) => {
                    tracing::warn!(error = %err, "deleting rejected KYC files failed; will retry");
                    break;
                }
            }
        }
    }
}

/// Rows expired per statement: bounded, so one sweep never holds many row locks.
const EXPIRY_BATCH: i64 = 500;

/// Expires booking requests past their deadline every `JOB_EXPIRY_INTERVAL`. Safe with
/// several instances running: each batch skips rows another sweeper has locked.
async fn expire_job_requests(state: AppState) {
    let mut tick = tokio::time::interval(state.settings.job_expiry_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match crate::job::services::expire_due(&state, EXPIRY_BATCH).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "expired booking requests"),
            Err(err) => {
                tracing::warn!(error = %err, "expiring booking requests failed; will retry")
            }
        }
    }
}

/// Keeps limiter memory bounded by forgetting keys whose budget has refilled.
async fn evict_idle_rate_limit_keys(state: AppState) {
    let mut tick = tokio::time::interval(EVICTION_INTERVAL);
    loop {
        tick.tick().await;
        state.limits.evict_idle();
    }
}
