//! Background tasks started by `serve`, stopped at shutdown.

use tokio::task::JoinSet;

use crate::{core::limiter::EVICTION_INTERVAL, state::AppState};

/// Starts every background task; dropping (or aborting) the set stops them.
pub fn spawn_all(state: &AppState) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    tasks.spawn(evict_idle_rate_limit_keys(state.clone()));
    tasks
}

/// Keeps limiter memory bounded by forgetting keys whose budget has refilled.
async fn evict_idle_rate_limit_keys(state: AppState) {
    let mut tick = tokio::time::interval(EVICTION_INTERVAL);
    loop {
        tick.tick().await;
        state.limits.evict_idle();
    }
}
