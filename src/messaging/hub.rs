//! This instance's WebSockets, by user, and the Redis pub/sub that feeds them.
//!
//! Every push goes through Redis, to one channel per user (`{prefix}user:{id}`), so it
//! reaches the user's sockets on every instance; an instance subscribes to a user's
//! channel while it holds at least one of their sockets (SUBSCRIBE on the first,
//! UNSUBSCRIBE after the last), so no instance reads traffic it has no socket for.
//! Subscriptions go through one dedicated connection owned by a task that reconnects
//! with exponential backoff and re-subscribes to every channel it needs. Events
//! published while that connection was down are lost to it, so after a reconnect every
//! local socket is closed with 1013: clients reconnect and re-sync from the history
//! endpoint, which holds every stored message.
//!
//! Each socket has a bounded queue (256 frames). A push finding it full closes that
//! socket (1013, counted as a slow consumer) rather than let memory grow or hold up the
//! other sockets.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering},
    },
    time::Duration,
};

use deadpool_redis::redis::{self, aio::PubSubSink};
use futures_util::StreamExt;
use tokio::{
    sync::{Notify, mpsc, oneshot},
    task::JoinHandle,
};

use crate::{
    core::{
        ids::{SessionId, UserId},
        metrics,
        redis::{RedisPool, run},
    },
    error::AppError,
};

/// A serialized server frame, shared by every socket it is delivered to.
pub type Frame = Arc<str>;

/// Frames a socket may have waiting before it counts as a slow consumer.
pub const QUEUE_FRAMES: usize = 256;
/// WebSocket close codes the hub decides on.
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_TRY_AGAIN: u16 = 1013;
/// How long a new socket waits for its user's SUBSCRIBE to be confirmed.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);
/// How often the subscriber connection is checked with a PING.
const PUBSUB_PING: Duration = Duration::from_secs(15);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Payloads starting so are control events for the hub, never forwarded to a socket.
const REVOKE_PREFIX: &str = r#"{"type":"revoke","sessions":"#;

/// Cheap to clone.
#[derive(Clone)]
pub struct Hub(Arc<Shared>);

struct Shared {
    redis: RedisPool,
    /// Opens the pub/sub connection (TLS included, as configured).
    client: redis::Client,
    /// `{prefix}user:`; the user id follows.
    channel_prefix: String,
    max_per_user: usize,
    sockets: Mutex<HashMap<UserId, Vec<Arc<Socket>>>>,
    commands: mpsc::UnboundedSender<Command>,
    /// The subscriber's end of `commands`, until the first socket starts it.
    pending: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    subscriber: Mutex<Option<JoinHandle<()>>>,
    closing: AtomicBool,
    next_id: AtomicU64,
}

enum Command {
    Subscribe(UserId, oneshot::Sender<()>),
    Unsubscribe(UserId),
}

/// One socket as the hub sees it.
struct Socket {
    id: u64,
    session: SessionId,
    queue: mpsc::Sender<Frame>,
    /// 0 while open; the close code the socket task must send.
    close_code: AtomicU16,
    close: Notify,
}

impl Socket {
    /// Asks the socket's task to close with `code` (the first request wins).
    fn close(&self, code: u16) {
        if self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.close.notify_one();
        }
    }
}

/// A socket's place in the hub, held by its task; dropping it leaves the hub.
pub struct Registration {
    shared: Arc<Shared>,
    user: UserId,
    socket: Arc<Socket>,
}

/// The frames pushed to one socket.
pub type Queue = mpsc::Receiver<Frame>;

impl Registration {
    /// Resolves with a close code when the hub wants this socket closed.
    pub async fn closed(&self) -> u16 {
        loop {
            let code = self.socket.close_code.load(Ordering::Acquire);
            if code != 0 {
                return code;
            }
            self.socket.close.notified().await;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.remove(self.user, self.socket.id);
    }
}

impl Hub {
    pub fn new(redis: RedisPool, client: redis::Client, prefix: &str, max_per_user: usize) -> Self {
        let (commands, pending) = mpsc::unbounded_channel();
        Self(Arc::new(Shared {
            redis,
            client,
            channel_prefix: format!("{prefix}user:"),
            max_per_user,
            sockets: Mutex::default(),
            commands,
            pending: Mutex::new(Some(pending)),
            subscriber: Mutex::default(),
            closing: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
        }))
    }

    /// Admits a socket of `user` (at most `WS_MAX_SOCKETS_PER_USER` on this instance,
    /// else 409 `too_many_sockets`). When it is the user's first here, returns once the
    /// instance is subscribed to their channel (or after a short wait if Redis is slow),
    /// so a push published after the handshake reaches the socket.
    pub async fn register(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<(Registration, Queue), AppError> {
        if self.0.closing.load(Ordering::Acquire) {
            return Err(AppError::Unavailable("messaging"));
        }
        let (queue, receiver) = mpsc::channel(QUEUE_FRAMES);
        let socket = Arc::new(Socket {
            id: self.0.next_id.fetch_add(1, Ordering::Relaxed),
            session,
            queue,
            close_code: AtomicU16::new(0),
            close: Notify::new(),
        });
        let subscribed = {
            let mut sockets = self.0.lock();
            let mine = sockets.entry(user).or_default();
            if mine.len() >= self.0.max_per_user {
                return Err(AppError::conflict(
                    crate::error::codes::TOO_MANY_SOCKETS,
                    "this account has as many WebSockets open as it may",
                ));
            }
            mine.push(socket.clone());
            metrics::ws().open_sockets.increment(1);
            // Sent under the lock, so subscribe and unsubscribe commands for a user are
            // queued in the order its sockets came and went.
            (mine.len() == 1).then(|| {
                let (done, subscribed) = oneshot::channel();
                let _ = self.0.commands.send(Command::Subscribe(user, done));
                subscribed
            })
        };
        self.start_subscriber();
        if let Some(subscribed) = subscribed {
            let _ = tokio::time::timeout(SUBSCRIBE_WAIT, subscribed).await;
        }
        let registration = Registration {
            shared: self.0.clone(),
            user,
            socket,
        };
        Ok((registration, receiver))
    }

    /// Publishes a serialized frame to each user's channel, in one round trip.
    pub async fn publish(&self, users: &[UserId], frame: &str) -> Result<(), AppError> {
        if users.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.cmd("PUBLISH")
                .arg(self.0.channel(*user))
                .arg(frame)
                .ignore();
        }
        run(&self.0.redis, async |conn| {
            pipe.query_async::<()>(conn).await
        })
        .await
    }

    /// Closes, on every instance, `user`'s sockets opened under one of `sessions`.
    pub async fn close_sessions(
        &self,
        user: UserId,
        sessions: &[SessionId],
    ) -> Result<(), AppError> {
        let ids = serde_json::to_string(sessions).map_err(AppError::internal)?;
        self.publish(&[user], &format!("{REVOKE_PREFIX}{ids}}}"))
            .await
    }

    /// Closes every local socket with 1001 and waits (up to `grace`) for them to go,
    /// then stops the subscriber. New sockets are refused from the start.
    pub async fn shutdown(&self, grace: Duration) {
        self.0.closing.store(true, Ordering::Release);
        self.0.close_all(CLOSE_GOING_AWAY);
        let deadline = tokio::time::Instant::now() + grace;
        while !self.0.lock().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(task) = self
            .0
            .subscriber
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }

    /// Sockets open on this instance.
    pub fn open_sockets(&self) -> usize {
        self.0.lock().values().map(Vec::len).sum()
    }

    /// Starts the subscriber task on first use (commands issued before it queue up).
    fn start_subscriber(&self) {
        let pending = self
            .0
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(commands) = pending {
            let task = tokio::spawn(subscribe_loop(self.0.clone(), commands));
            *self
                .0
                .subscriber
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task);
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Vec<Arc<Socket>>>> {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn channel(&self, user: UserId) -> String {
        format!("{}{user}", self.channel_prefix)
    }

    fn remove(&self, user: UserId, id: u64) {
        let mut sockets = self.lock();
        let Some(mine) = sockets.get_mut(&user) else {
            return;
        };
        mine.retain(|socket| socket.id != id);
        metrics::ws().open_sockets.decrement(1);
        if mine.is_empty() {
            sockets.remove(&user);
            let _ = self.commands.send(Command::Unsubscribe(user));
        }
    }

    fn close_all(&self, code: u16) {
        for socket in self.lock().values().flatten() {
            socket.close(code);
        }
    }

    /// Hands one pub/sub event to the sockets of the user whose channel it came on.
    fn dispatch(&self, channel: &str, payload: &str) {
        let Some(user) = channel
            .strip_prefix(&self.channel_prefix)
            .and_then(|id| id.parse().ok())
            .map(UserId)
        else {
            return;
        };
        let sockets = self.lock();
        let Some(mine) = sockets.get(&user) else {
            return;
        };
        if let Some(ids) = payload.strip_prefix(REVOKE_PREFIX) {
            let revoked: Vec<SessionId> =
                serde_json::from_str(ids.strip_suffix('}').unwrap_or(ids)).unwrap_or_default();
            for socket in mine.iter().filter(|s| revoked.contains(&s.session)) {
                socket.close(CLOSE_POLICY);
            }
            return;
        }
        let frame: Frame = Arc::from(payload);
        let metrics = metrics::ws();
        for socket in mine {
            match socket.queue.try_send(frame.clone()) {
                Ok(()) => metrics.deliveries.increment(1),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if socket.close_code.load(Ordering::Acquire) == 0 {
                        metrics.slow_consumer_disconnects.increment(1);
                        tracing::info!(%user, "closing a websocket that does not keep up");
                    }
                    socket.close(CLOSE_TRY_AGAIN);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}

/// The subscriber task: connect, subscribe to every user with a local socket, then
/// serve commands and events until the connection fails; back off and start over.
async fn subscribe_loop(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let client = shared.client.clone();
    let mut backoff = BACKOFF_MIN;
    let mut reconnecting = false;
    loop {
        let connected = match client.get_async_pubsub().await {
            Ok(pubsub) => {
                let (mut sink, stream) = pubsub.split();
                let users: Vec<String> = shared.lock().keys().map(|u| shared.channel(*u)).collect();
                if users.is_empty() || sink.subscribe(&users).await.is_ok() {
                    Some((sink, stream))
                } else {
                    None
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "pub/sub connection failed");
                None
            }
        };
        let Some((sink, stream)) = connected else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        };
        if reconnecting {
            metrics::ws().pubsub_reconnects.increment(1);
            tracing::info!("pub/sub reconnected; closing local sockets so clients re-sync");
            shared.close_all(CLOSE_TRY_AGAIN);
        }
        reconnecting = true;
        backoff = BACKOFF_MIN;
        if serve_subscription(&shared, &mut commands, sink, stream)
            .await
            .is_break()
        {
            return;
        }
        tracing::warn!("pub/sub connection lost; reconnecting");
    }
}

/// Serves one subscriber connection. `Break` when the hub is gone (stop for good),
/// `Continue` when the connection failed (reconnect).
async fn serve_subscription(
    shared: &Shared,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    mut sink: PubSubSink,
    mut stream: redis::aio::PubSubStream,
) -> std::ops::ControlFlow<()> {
    use std::ops::ControlFlow::{Break, Continue};
    let mut ping = tokio::time::interval(PUBSUB_PING);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return Break(()),
                Some(Command::Subscribe(user, done)) => {
                    if sink.subscribe(shared.channel(user)).await.is_err() {
                        return Continue(());
                    }
                    let _ = done.send(());
                }
                Some(Command::Unsubscribe(user)) => {
                    if sink.unsubscribe(shared.channel(user)).await.is_err() {
                        return Continue(());
                    }
                }
            },
            message = stream.next() => match message {
                Some(message) => {
                    if let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) {
                        shared.dispatch(message.get_channel_name(), payload);
                    }
                }
                None => return Continue(()),
            },
            _ = ping.tick() => {
                let pong = tokio::time::timeout(PUBSUB_PING, sink.ping::<redis::Value>()).await;
                if !matches!(pong, Ok(Ok(_))) {
                    return Continue(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_events_round_trip_through_the_prefix() {
        let sessions = vec![SessionId::new(), SessionId::new()];
        let payload = format!(
            "{REVOKE_PREFIX}{}}}",
            serde_json::to_string(&sessions).expect("json")
        );
        let value: serde_json::Value = serde_json::from_str(&payload).expect("valid JSON");
        assert_eq!(value["type"], "revoke");
        let ids = payload.strip_prefix(REVOKE_PREFIX).expect("prefix");
        let parsed: Vec<SessionId> =
            serde_json::from_str(ids.strip_suffix('}').expect("suffix")).expect("ids");
        assert_eq!(parsed, sessions);
    }
}
