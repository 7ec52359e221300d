//! [`SharedReads`]: a few connections that concurrent one-statement reads share, so
//! their queries are pipelined instead of each request holding a connection to itself.
//!
//! A connection checked out of the pool serves one request at a time: every read is a
//! round trip of its own, and PostgreSQL runs a backend per connection, woken for each
//! query. tokio-postgres (under diesel-async) sends the next query on a connection
//! before the previous answer arrives: queries queue on the connection, are written and
//! read in batches, and the server still runs them one after another, each ending with
//! its own Sync, so answers cannot be mixed up. On the hottest read, one listing by key,
//! that takes syscalls and wake-ups off both sides (README, "Catalog reads":
//! `GET /services/{id}` from about 0.5 to about 0.8 of pgbench's bare primary-key lookup).
//!
//! What may run here, by convention (`&AsyncPgConnection` still offers `batch_execute`):
//! one short, indexed, read-only statement, never `SET`, `BEGIN` or anything else that
//! outlives it — it would change the session of every read that follows. A statement
//! waits for those queued before it, so these connections have a statement timeout of
//! [`STATEMENT_TIMEOUT`], the client waits for an answer no longer than
//! [`ANSWER_TIMEOUT`] (then, unless other reads were answered on it meanwhile — a slow
//! queue, not a dead connection — it is taken for a silent network: let go and closed,
//! never pooled again), and at most [`IN_FLIGHT_PER_CONNECTION`] reads per connection
//! are in flight; a read that cannot start within the pool's wait timeout fails like a
//! pool checkout (503).
//!
//! A connection that is gone (PostgreSQL restarted, `idle_session_timeout`) is let go on
//! the first read that finds it so, and that read is tried once more on a new one, as
//! the pool's recycling would have: reads are idempotent. Connections are replaced at the
//! pool's maximum age (`MAX_CONNECTION_AGE`), as pooled ones are.

use std::{
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use deadpool::managed::TimeoutType;
use diesel::result::{DatabaseErrorKind, Error, QueryResult};
use diesel_async::{
    AsyncPgConnection,
    pooled_connection::deadpool::{Object, PoolError},
};
use futures_util::future::BoxFuture;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

use super::{DbConn, DbPool, MAX_CONNECTION_AGE, checkout};
use crate::error::AppError;

/// Reads in flight per shared connection, at most. PostgreSQL answers a primary-key read
/// in tens of microseconds, so a full queue is a millisecond or two of waiting.
pub const IN_FLIGHT_PER_CONNECTION: usize = 64;

/// Server-side cap on a shared read: every read queued behind it waits as long.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a read waits for its answer: the statement timeout, plus a margin for the
/// queue and the network. Past it with no read answered on the connection meanwhile,
/// the connection is taken for dead (no answer, not even the server's cancellation).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

/// The shared connections and their pool (see the module documentation); one per
/// process, in [`AppState`](crate::state::AppState).
pub struct SharedReads {
    pool: DbPool,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    wait: Duration,
}

/// A pooled connection the slots share. One that stopped answering is condemned: when
/// its last reader is done, it leaves the pool instead of going back to it, where the
/// pool's recycling (which only sees closed connections) would lend it again.
struct Held {
    conn: Option<DbConn>,
    /// Reads answered on it so far: a read that times out while others were answered
    /// waited in a slow queue, not on a dead connection.
    answered: AtomicU64,
    condemned: AtomicBool,
}

impl Held {
    fn conn(&self) -> &AsyncPgConnection {
        self.conn.as_ref().expect("taken only when dropped")
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if *self.condemned.get_mut()
            && let Some(conn) = self.conn.take()
        {
            drop(Object::take(conn));
        }
    }
}

struct Slot {
    conn: Mutex<Option<Arc<Held>>>,
    /// Held by the one read that fills the empty slot; the others wait for it.
    filling: tokio::sync::Mutex<()>,
    /// Places for reads in flight on this slot's connection.
    in_flight: Arc<Semaphore>,
}

/// A shared connection, lent for one read.
struct Shared<'a> {
    held: Arc<Held>,
    slot: &'a Slot,
    _permit: OwnedSemaphorePermit,
}

impl SharedReads {
    /// `connections` slots, filled on first use from `pool`; a read waits at most
    /// `wait` to start. The pool should hold twice as many connections, so a slot can
    /// be refilled while reads still finish on the connection it let go of.
    pub fn new(pool: DbPool, connections: usize, wait: Duration) -> Self {
        let connections = connections.max(1);
        Self {
            pool,
            slots: (0..connections)
                .map(|_| Slot {
                    conn: Mutex::new(None),
                    filling: tokio::sync::Mutex::new(()),
                    in_flight: Arc::new(Semaphore::new(IN_FLIGHT_PER_CONNECTION)),
                })
                .collect(),
            next: AtomicUsize::new(0),
            wait,
        }
    }

    /// Runs `query` on one of the shared connections (see the module documentation for
    /// what it may be); once more on a new connection when the first was gone.
    pub async fn read<T, F>(&self, query: F) -> Result<T, AppError>
    where
        F: for<'c> Fn(&'c AsyncPgConnection) -> BoxFuture<'c, QueryResult<T>>,
    {
        let deadline = Instant::now() + self.wait;
        let mut retried = false;
        loop {
            let shared = tokio::time::timeout_at(deadline, self.get())
                .await
                .map_err(|_| PoolError::Timeout(TimeoutType::Wait))??;
            let held = &shared.held;
            let answered = held.answered.load(Ordering::Relaxed);
            let Ok(answer) = tokio::time::timeout(ANSWER_TIMEOUT, query(held.conn())).await else {
                if held.answered.load(Ordering::Relaxed) == answered {
                    shared.let_go("no answer");
                    held.condemned.store(true, Ordering::Relaxed);
                }
                return Err(AppError::Unavailable("database"));
            };
            held.answered.fetch_add(1, Ordering::Relaxed);
            match answer {
                Err(Error::DatabaseError(kind, info)) if is_gone(&kind, info.message()) => {
                    shared.let_go(info.message());
                    if retried {
                        return Err(AppError::Unavailable("database"));
                    }
                    retried = true;
                }
                answer => return answer.map_err(AppError::from),
            }
        }
    }

    /// One of the shared connections, in turn, with a place among its reads in flight.
    async fn get(&self) -> Result<Shared<'_>, PoolError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let permit = Arc::clone(&slot.in_flight)
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Closed)?;
        let held = match slot.current() {
            Some(held) => held,
            None => {
                let _filling = slot.filling.lock().await;
                match slot.current() {
                    Some(held) => held,
                    None => {
                        let fresh = Arc::new(Held {
                            conn: Some(checkout(&self.pool).await?),
                            answered: AtomicU64::new(0),
                            condemned: AtomicBool::new(false),
                        });
                        *slot.lock() = Some(Arc::clone(&fresh));
                        fresh
                    }
                }
            }
        };
        Ok(Shared {
            held,
            slot,
            _permit: permit,
        })
    }

    /// Lets go of the connections and closes their pool (shutdown).
    pub fn close(&self) {
        for slot in &self.slots {
            slot.in_flight.close();
            slot.lock().take();
        }
        self.pool.close();
    }
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<Arc<Held>>> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot's connection, unless it is empty or its connection too old (let go:
    /// its last reader returns it to the pool, whose recycling discards it).
    fn current(&self) -> Option<Arc<Held>> {
        let mut held = self.lock();
        if held.as_ref().is_some_and(|held| {
            held.conn
                .as_ref()
                .is_none_or(|conn| Object::metrics(conn).age() > MAX_CONNECTION_AGE)
        }) {
            held.take();
        }
        held.as_ref().map(Arc::clone)
    }
}

impl Shared<'_> {
    /// Empties the slot if it still holds this connection.
    fn let_go(&self, why: &str) {
        let mut held = self.slot.lock();
        if held.as_ref().is_some_and(|h| Arc::ptr_eq(h, &self.held)) {
            tracing::warn!(
                reason = why,
                "a shared read connection is gone; replacing it"
            );
            held.take();
        }
    }
}

/// Whether a read's error says its connection is gone: closed (tokio-postgres gives no
/// SQLSTATE, diesel-async calls that `UnableToSendCommand`), or being terminated by the
/// server (a restart, `idle_session_timeout`: PostgreSQL's message, as
/// [`crate::error`] reads outages).
fn is_gone(kind: &DatabaseErrorKind, message: &str) -> bool {
    matches!(kind, DatabaseErrorKind::UnableToSendCommand)
        || message.starts_with("terminating connection")
}
