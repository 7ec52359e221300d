//! Connection-level limits the HTTP server does not enforce itself: a cap on open
//! connections per client address, a deadline for a request's head, and an idle
//! timeout between requests. (The body's minimum rate is enforced on the decoded body
//! stream, where its end is known exactly: see [`TimedBody`].)
//!
//! poem's server (hyper without a timer) waits forever: 19,900 connections that sent
//! `GET / HTTP/1.1\r\n` and nothing more exhausted the process's descriptors, and a
//! header line every 10 s kept a request open indefinitely. [`GuardedAcceptor`]
//! refuses connections past the per-address cap, and wraps each socket in a
//! [`Guarded`] stream that follows the HTTP/1 request cycle just far enough to know
//! which deadline applies when the server waits for bytes:
//!
//! | phase | the server is waiting for | deadline |
//! |---|---|---|
//! | head | a request's head (from the connection's start, or the head's first byte) | `HTTP_HEADER_TIMEOUT` |
//! | handling | the request's body (timed by [`TimedBody`]), or nothing: the server is answering | none here |
//! | idle | the next request, after a response went out (no traffic either way) | `HTTP_IDLE_TIMEOUT` |
//! | tunnel | WebSocket frames after a `101` to a request that asked to upgrade | none: the socket's own heartbeat |
//!
//! Past its deadline a read fails with `TimedOut` and hyper closes the connection.
//! Cleartext HTTP/2 (the `PRI *` preface) is refused: its streams cannot be timed from
//! here, and clients reach this service over HTTP/1.1 (browsers speak HTTP/2 only over
//! TLS, which a proxy in front terminates). Peers in `TRUSTED_PROXIES` are exempt from
//! the per-address cap (a proxy carries many clients), not from the deadlines.

use std::{
    io::{self, IoSlice},
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker, ready},
    time::Duration,
};

use bytes::Bytes;
use futures_util::Stream;
use ipnet::IpNet;
use poem::{
    listener::Acceptor,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

use crate::{
    config::Settings,
    core::limiter::{ClientIp, InFlight, InFlightGuard},
};

/// The limits every accepted connection and request body is held to.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// For a request's head; also the grace before a body's rate counts, and the
    /// longest a body may leave the server waiting for its next bytes.
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Bytes per second a request body must keep up, on average, after the grace.
    pub min_body_rate: u64,
    pub max_per_address: usize,
    pub trusted_proxies: Vec<IpNet>,
}

impl From<&Settings> for ConnectionLimits {
    fn from(settings: &Settings) -> Self {
        Self {
            header_timeout: settings.http_header_timeout,
            idle_timeout: settings.http_idle_timeout,
            min_body_rate: settings.http_min_body_rate,
            max_per_address: settings.http_max_connections_per_ip,
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }
}

/// Wraps an acceptor: per-address cap at accept time, deadlines on every socket.
pub struct GuardedAcceptor<A> {
    inner: A,
    limits: Arc<ConnectionLimits>,
    /// Open connections per client address (IPv6 by /64, as the rate limits count).
    open: InFlight,
}

impl<A> GuardedAcceptor<A> {
    pub fn new(inner: A, limits: ConnectionLimits) -> Self {
        Self {
            open: InFlight::new(limits.max_per_address),
            inner,
            limits: Arc::new(limits),
        }
    }

    /// Counts a connection from `ip`, or `None` when its address already has its share.
    /// A trusted proxy is admitted without a slot.
    fn admit(&self, ip: IpAddr) -> Option<Option<InFlightGuard>> {
        if self
            .limits
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&ip))
        {
            return Some(None);
        }
        self.open.enter(ClientIp(ip)).map(Some)
    }
}

impl<A: Acceptor> Acceptor for GuardedAcceptor<A> {
    type Io = Guarded<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        loop {
            let (io, local, remote, scheme) = self.inner.accept().await?;
            let ip = remote.as_socket_addr().map(|addr| addr.ip().to_canonical());
            let slot = match ip {
                Some(ip) => match self.admit(ip) {
                    Some(slot) => slot,
                    None => {
                        // Dropping the socket closes it: the client sees a reset at once.
                        metrics::counter!("http_connections_refused_total").increment(1);
                        tracing::debug!(client_ip = %ip, "connection refused: too many from this address");
                        continue;
                    }
                },
                None => None,
            };
            return Ok((
                Guarded::new(io, Arc::clone(&self.limits), slot),
                local,
                remote,
                scheme,
            ));
        }
    }
}

/// Where a connection is in the request cycle (see the module documentation).
#[derive(Debug, Clone, Copy)]
enum Phase {
    Head {
        started: Instant,
        /// How much of `\r\n\r\n` ends what has arrived so far.
        matched: u8,
        upgrade: bool,
    },
    Handling {
        upgrade: bool,
    },
    Idle {
        since: Instant,
    },
    Tunnel,
}

impl Phase {
    fn head() -> Self {
        Self::Head {
            started: Instant::now(),
            matched: 0,
            upgrade: false,
        }
    }
}

/// A socket held to [`ConnectionLimits`].
pub struct Guarded<IO> {
    io: IO,
    limits: Arc<ConnectionLimits>,
    phase: Phase,
    /// The connection's first bytes, to spot the cleartext HTTP/2 preface.
    prefix: [u8; 4],
    prefix_len: u8,
    /// Reset and reused for every deadline; armed only while a read waits.
    timer: Option<Pin<Box<Sleep>>>,
    /// The task of the read waiting now, if any: a response ending a request starts the
    /// idle clock, and that read must be polled again to arm it.
    reader: Option<Waker>,
    /// This connection's place in its address's count; freed when the socket drops.
    _slot: Option<InFlightGuard>,
}

impl<IO> Guarded<IO> {
    fn new(io: IO, limits: Arc<ConnectionLimits>, slot: Option<InFlightGuard>) -> Self {
        Self {
            io,
            limits,
            // A connection that never sends a head is held to the head's deadline.
            phase: Phase::head(),
            prefix: [0; 4],
            prefix_len: 0,
            timer: None,
            reader: None,
            _slot: slot,
        }
    }

    /// When a read that is waiting now must have received something, if ever.
    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Head { started, .. } => Some(started + self.limits.header_timeout),
            Phase::Idle { since } => Some(since + self.limits.idle_timeout),
            Phase::Handling { .. } | Phase::Tunnel => None,
        }
    }

    fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Head { .. } => "head",
            Phase::Handling { .. } => "handling",
            Phase::Idle { .. } => "idle",
            Phase::Tunnel => "tunnel",
        }
    }

    /// Follows the request cycle through bytes just read; an error refuses them.
    fn observe_read(&mut self, bytes: &[u8]) -> io::Result<()> {
        if usize::from(self.prefix_len) < self.prefix.len() {
            let at = usize::from(self.prefix_len);
            let take = bytes.len().min(self.prefix.len() - at);
            self.prefix[at..at + take].copy_from_slice(&bytes[..take]);
            self.prefix_len += take as u8;
            if self.prefix_len == 4 && &self.prefix == b"PRI " {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "cleartext HTTP/2 is not served",
                ));
            }
        }
        if let Phase::Idle { .. } = self.phase {
            self.phase = Phase::head();
        }
        if let Phase::Head {
            matched, upgrade, ..
        } = &mut self.phase
        {
            *upgrade |= mentions_upgrade(bytes);
            // Bytes after the head are its body (timed by `TimedBody`) or a pipelined
            // request (timed from the next response on).
            if scan_head_end(matched, bytes) {
                self.phase = Phase::Handling { upgrade: *upgrade };
            }
        }
        Ok(())
    }

    /// A response (or part of one) went out; `first` is the start of what was written.
    fn observe_write(&mut self, first: &[u8]) {
        match self.phase {
            Phase::Tunnel => {}
            // The client may now send the body it held back for `Expect: 100-continue`.
            _ if first.starts_with(b"HTTP/1.1 100 ") => {}
            Phase::Handling { upgrade: true } if first.starts_with(b"HTTP/1.1 101 ") => {
                self.phase = Phase::Tunnel;
            }
            _ => {
                let was_untimed = self.deadline().is_none();
                self.phase = Phase::Idle {
                    since: Instant::now(),
                };
                if was_untimed && let Some(reader) = self.reader.take() {
                    reader.wake();
                }
            }
        }
    }

    /// A read is waiting: arms the timer for the current deadline, and fails the read
    /// once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(deadline) = self.deadline() else {
            return Poll::Pending;
        };
        ready!(poll_until(&mut self.timer, deadline, cx));
        let phase = self.phase_name();
        metrics::counter!("http_connections_timed_out_total", "phase" => phase).increment(1);
        tracing::debug!(phase, "closing a connection that missed its deadline");
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client was too slow ({phase})"),
        ))
    }
}

/// Polls a reusable timer set to `deadline` (created on first use, reset when the
/// deadline moves), so a waiting read allocates no new timer each time.
fn poll_until(
    timer: &mut Option<Pin<Box<Sleep>>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    if timer.deadline() != deadline {
        timer.as_mut().reset(deadline);
    }
    timer.as_mut().poll(cx)
}

/// Feeds `bytes` to a matcher of the `\r\n\r\n` that ends a request head; `matched`
/// carries a partial match from one read to the next.
fn scan_head_end(matched: &mut u8, bytes: &[u8]) -> bool {
    const END: &[u8; 4] = b"\r\n\r\n";
    for &byte in bytes {
        *matched = if byte == END[usize::from(*matched)] {
            *matched + 1
        } else {
            u8::from(byte == b'\r')
        };
        if *matched == 4 {
            *matched = 0;
            return true;
        }
    }
    false
}

/// Whether a chunk of a request head names an `Upgrade` header (WebSocket handshakes).
fn mentions_upgrade(bytes: &[u8]) -> bool {
    bytes
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"\nupgrade:"))
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = &buf.filled()[before..];
                if !filled.is_empty() {
                    this.observe_read(filled)?;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                if !this
                    .reader
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    this.reader = Some(cx.waker().clone());
                }
                this.poll_deadline(cx).map(Err)
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        if written > 0 {
            this.observe_write(buf);
        }
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        if written > 0 {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            this.observe_write(first);
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A request body held to a minimum rate while the server waits for it.
///
/// Timed on the body hyper has already decoded, so its framing (`Content-Length`,
/// chunked, trailers) is hyper's, not a guess, and the clock runs only while a handler
/// is actually waiting for bytes: from its first read (after any `100 Continue`), the
/// body must average `min_body_rate` bytes per second beyond a grace of
/// `header_timeout`, and no single wait may exceed `header_timeout` (so bytes sent
/// early cannot buy minutes of silence later). A body that falls behind ends with a
/// `TimedOut` error, which the extractors answer with 408.
pub struct TimedBody<S> {
    inner: S,
    grace: Duration,
    min_rate: u64,
    started: Option<Instant>,
    received: u64,
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> TimedBody<S> {
    pub fn new(inner: S, limits: &ConnectionLimits) -> Self {
        Self {
            inner,
            grace: limits.header_timeout,
            min_rate: limits.min_body_rate.max(1),
            started: None,
            received: 0,
            waiting_since: None,
            timer: None,
        }
    }

    fn deadline(&self, started: Instant, waiting_since: Instant) -> Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        (started + self.grace + earned).min(waiting_since + self.grace)
    }
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for TimedBody<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let now = Instant::now();
        let started = *this.started.get_or_insert(now);
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received += chunk.len() as u64;
                this.waiting_since = None;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => {
                let waiting_since = *this.waiting_since.get_or_insert(now);
                let deadline = this.deadline(started, waiting_since);
                ready!(poll_until(&mut this.timer, deadline, cx));
                metrics::counter!("http_connections_timed_out_total", "phase" => "body")
                    .increment(1);
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body arrived too slowly",
                ))))
            }
        }
    }
}

/// Whether `err` (from reading a body, possibly wrapped by a parser) is a
/// [`TimedBody`] timeout.
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            min_body_rate: 1024,
            max_per_address: 2,
            trusted_proxies: Vec::new(),
        }
    }

    fn guarded() -> Guarded<tokio::io::Empty> {
        Guarded::new(tokio::io::empty(), Arc::new(limits()), None)
    }

    #[test]
    fn a_new_connection_must_send_its_head_in_time() {
        let conn = guarded();
        assert_eq!(conn.phase_name(), "head");
        assert!(conn.deadline().is_some());
    }

    #[test]
    fn a_head_in_one_read_is_being_handled_until_the_response() {
        let mut conn = guarded();
        conn.observe_read(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("read");
        assert_eq!(conn.phase_name(), "handling");
        assert!(conn.deadline().is_none());
        conn.observe_write(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(conn.phase_name(), "idle");
    }

    #[test]
    fn a_head_trickled_in_keeps_its_first_byte_deadline() {
        let mut conn = guarded();
        conn.observe_write(b"HTTP/1.1 200 OK\r\n"); // a previous response: idle
        conn.observe_read(b"GET / HTTP/1.1\r\n").expect("read");
        let deadline = conn.deadline();
        assert_eq!(conn.phase_name(), "head");
        conn.observe_read(b"X-a: 1\r\n").expect("read");
        conn.observe_read(b"\r").expect("read");
        assert_eq!(conn.deadline(), deadline, "more lines buy no time");
        conn.observe_read(b"\n").expect("read");
        assert_eq!(conn.phase_name(), "handling");
    }

    #[test]
    fn the_terminator_is_found_across_reads_and_not_in_near_misses() {
        let mut matched = 0;
        assert!(!scan_head_end(&mut matched, b"a\r\n\rb\r\n"));
        assert!(!scan_head_end(&mut matched, b"\r"));
        assert!(scan_head_end(&mut matched, b"\n"));
        let mut matched = 0;
        assert!(scan_head_end(&mut matched, b"x\r\r\n\r\n"));
    }

    #[test]
    fn continue_keeps_handling_and_only_an_asked_upgrade_opens_a_tunnel() {
        let mut conn = guarded();
        conn.observe_read(b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")
            .expect("read");
        conn.observe_write(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(conn.phase_name(), "handling");
        conn.observe_write(b"HTTP/1.1 101 Switching Protocols\r\n");
        assert_eq!(conn.phase_name(), "idle", "nobody asked to upgrade");

        let mut ws = guarded();
        ws.observe_read(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
            .expect("read");
        ws.observe_write(b"HTTP/1.1 101 Switching Protocols\r\n");
        ws.observe_read(b"\x81\x05hello").expect("read");
        assert_eq!(ws.phase_name(), "tunnel");
        assert!(ws.deadline().is_none());
    }

    #[test]
    fn cleartext_http2_is_refused_even_a_byte_at_a_time() {
        let mut conn = guarded();
        for byte in b"PRI " {
            let result = conn.observe_read(std::slice::from_ref(byte));
            if *byte == b' ' {
                assert!(result.is_err());
            }
        }
    }

    #[test]
    fn ipv6_addresses_share_a_slot_budget_per_64() {
        let acceptor = GuardedAcceptor::new((), limits());
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2::2".parse().expect("ip");
        let first = acceptor.admit(a);
        let second = acceptor.admit(b);
        assert!(first.is_some() && second.is_some());
        assert!(
            acceptor.admit(a).is_none(),
            "the /64 has used its two slots"
        );
        drop(first);
        assert!(acceptor.admit(b).is_some());
    }

    async fn collect(
        body: TimedBody<impl Stream<Item = io::Result<Bytes>> + Unpin>,
    ) -> io::Result<u64> {
        use futures_util::StreamExt;
        let mut body = body;
        let mut total = 0;
        while let Some(chunk) = body.next().await {
            total += chunk?.len() as u64;
        }
        Ok(total)
    }

    fn trickle(
        every: Duration,
        chunks: usize,
        size: usize,
    ) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
        Box::pin(futures_util::stream::unfold(0, move |n| async move {
            (n < chunks).then_some(())?;
            tokio::time::sleep(every).await;
            Some((Ok(Bytes::from(vec![b'x'; size])), n + 1))
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_the_rate_is_read_whole() {
        // 4 KiB every second: four times the floor, for a minute.
        let body = TimedBody::new(trickle(Duration::from_secs(1), 60, 4096), &limits());
        assert_eq!(collect(body).await.expect("read"), 60 * 4096);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_body_times_out() {
        let body = TimedBody::new(trickle(Duration::from_secs(5), 100, 1), &limits());
        let err = collect(body).await.expect_err("too slow");
        assert!(is_body_timeout(&err));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_sent_early_do_not_buy_a_long_silence() {
        let fast_then_silent =
            Box::pin(
                futures_util::stream::iter([Ok(Bytes::from(vec![b'x'; 1024 * 1024]))])
                    .chain(trickle(Duration::from_secs(60), 1, 1)),
            );
        use futures_util::StreamExt;
        let err = collect(TimedBody::new(fast_then_silent, &limits()))
            .await
            .expect_err("silent too long");
        assert!(is_body_timeout(&err));
    }
}
