//! [`SharedReads`]: a few connections that concurrent one-statement reads share, so
//! their queries are pipelined instead of each request holding a connection to itself.
//!
//! A connection checked out of the pool serves one request at a time: every read is a
//! round trip of its own, and PostgreSQL runs a backend per connection, woken for each
//! query. tokio-postgres (under diesel-async) sends the next query on a connection
//! before the previous answer arrives: queries queue on the connection, are written and
//! read in batches, and the server still runs them one after another. On the hottest
//! read, one listing by key, that takes syscalls and wake-ups off both sides (measured
//! in the README: `GET /services/{id}` from 0.5 to 0.8 of pgbench's bare primary-key
//! lookup on the same machine).
//!
//! Only `&AsyncPgConnection` is handed out, so nothing that needs `&mut` — a
//! transaction, a `SET` — can run on a shared connection: the type system keeps it to
//! single statements. A query waits for the ones queued before it, so only short,
//! indexed reads belong here; each connection takes at most [`IN_FLIGHT_PER_CONNECTION`]
//! at once, and a read that cannot get a place within the pool's wait timeout fails
//! like a pool checkout does (503), instead of queueing without bound.
//!
//! A connection that broke (PostgreSQL restarted) is let go when a read on it fails for
//! that reason, and the next read borrows a new one from the pool; while the database is
//! down, that fails too, and the reads answer 503 until it is back.

use std::{
    ops::Deref,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use deadpool::managed::TimeoutType;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::{AsyncPgConnection, pooled_connection::deadpool::PoolError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{DbConn, DbPool, checkout};

/// Queries one shared connection has in flight at most. PostgreSQL answers a primary-key
/// read in tens of microseconds, so a full queue is a millisecond or two of waiting.
pub const IN_FLIGHT_PER_CONNECTION: usize = 64;

#[derive(Default)]
struct Slot {
    conn: Mutex<Option<Arc<DbConn>>>,
    filling: tokio::sync::Mutex<()>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<Arc<DbConn>>> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> Option<Arc<DbConn>> {
        self.lock().as_ref().map(Arc::clone)
    }
}

pub struct SharedReads {
    pool: DbPool,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    in_flight: Arc<Semaphore>,
    wait: Duration,
}

/// A shared connection, lent for one read.
pub struct Shared<'a> {
    conn: Arc<DbConn>,
    slot: &'a Slot,
    _place: OwnedSemaphorePermit,
}

impl SharedReads {
    /// `connections` slots, filled on first use from `pool`; a read waits at most
    /// `wait` for a place. The pool should hold twice as many connections, so a slot can
    /// be refilled while reads still finish on the connection it let go of.
    pub fn new(pool: DbPool, connections: usize, wait: Duration) -> Self {
        let connections = connections.max(1);
        Self {
            pool,
            slots: (0..connections).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            in_flight: Arc::new(Semaphore::new(connections * IN_FLIGHT_PER_CONNECTION)),
            wait,
        }
    }

    /// One of the shared connections, in turn.
    pub async fn get(&self) -> Result<Shared<'_>, PoolError> {
        let place = tokio::time::timeout(self.wait, Arc::clone(&self.in_flight).acquire_owned())
            .await
            .map_err(|_| PoolError::Timeout(TimeoutType::Wait))?
            .map_err(|_| PoolError::Closed)?;
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let conn = match slot.current() {
            Some(conn) => conn,
            None => {
                // One read fills an empty slot; the others wait for it, rather than each
                // taking a connection of the pool the slots hold.
                let _filling = slot.filling.lock().await;
                match slot.current() {
                    Some(conn) => conn,
                    None => {
                        let fresh = Arc::new(checkout(&self.pool).await?);
                        *slot.lock() = Some(Arc::clone(&fresh));
                        fresh
                    }
                }
            }
        };
        Ok(Shared {
            conn,
            slot,
            _place: place,
        })
    }

    /// Lets go of the connections and closes their pool (shutdown).
    pub fn close(&self) {
        self.in_flight.close();
        for slot in &self.slots {
            slot.lock().take();
        }
        self.pool.close();
    }
}

impl Shared<'_> {
    /// Passes a read's result on; when it says the connection is gone (closed, or the
    /// server is terminating it: a restart), the slot lets go of it (its last reader returns it to the pool, which discards a closed one).
    pub fn check<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error::DatabaseError(kind, info)) = &result
            && (matches!(
                kind,
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
            ) || info.message().starts_with("terminating connection"))
        {
            let mut held = self.slot.lock();
            if held.as_ref().is_some_and(|c| Arc::ptr_eq(c, &self.conn)) {
                held.take();
            }
        }
        result
    }
}

impl Deref for Shared<'_> {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        &self.conn
    }
}
