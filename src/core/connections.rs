//! Connection-level limits the HTTP server does not enforce itself: a cap on open
//! connections per client address, a deadline for a request's head, a minimum rate for
//! its body, and an idle timeout between requests.
//!
//! poem's server (hyper without a timer) waits forever: 19,900 connections that sent
//! `GET / HTTP/1.1\r\n` and nothing more exhausted the process's descriptors, a header
//! line every 10 s kept a request open indefinitely, and so did a body trickled a byte
//! at a time. [`GuardedAcceptor`] refuses connections past the per-address cap, and
//! wraps each socket in a [`Guarded`] stream that follows the HTTP/1 request cycle
//! just far enough to know which deadline applies when the server waits for bytes:
//!
//! | phase | the server is waiting for | deadline |
//! |---|---|---|
//! | idle | the next request (no traffic either way) | `HTTP_IDLE_TIMEOUT` |
//! | head | the rest of a request's head | `HTTP_HEADER_TIMEOUT` from its first byte |
//! | body | the rest of its body (`Content-Length` or chunked) | a grace of `HTTP_HEADER_TIMEOUT`, plus one second per `HTTP_MIN_BODY_RATE` bytes received |
//! | handling | nothing: the request is read, the server is answering | none |
//! | tunnel | WebSocket frames after a `101`, or HTTP/2 | none: that protocol's own heartbeat |
//!
//! Past its deadline a read fails with `TimedOut` and hyper closes the connection.
//! Peers in `TRUSTED_PROXIES` are exempt from the per-address cap (a proxy carries
//! many clients), not from the deadlines.

use std::{
    collections::HashMap,
    io::{self, IoSlice},
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll, Waker, ready},
    time::Duration,
};

use ipnet::IpNet;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

use crate::config::Settings;

/// The limits every accepted connection is held to.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Bytes per second a request body must keep up, on average, after the grace period.
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

/// Open connections per client address.
type OpenCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Wraps an acceptor: per-address cap at accept time, deadlines on every socket.
pub struct GuardedAcceptor<A> {
    inner: A,
    limits: Arc<ConnectionLimits>,
    open: OpenCounts,
}

impl<A> GuardedAcceptor<A> {
    pub fn new(inner: A, limits: ConnectionLimits) -> Self {
        Self {
            inner,
            limits: Arc::new(limits),
            open: OpenCounts::default(),
        }
    }

    /// Counts a connection from `ip`, or `None` when it already has its share.
    fn admit(&self, ip: IpAddr) -> Option<AddressSlot> {
        if self
            .limits
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&ip))
        {
            return Some(AddressSlot(None));
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_default();
        if *count >= self.limits.max_per_address {
            return None;
        }
        *count += 1;
        Some(AddressSlot(Some((ip, Arc::clone(&self.open)))))
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
                None => AddressSlot(None),
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

/// One counted connection; dropping it (the connection closed) frees the slot.
struct AddressSlot(Option<(IpAddr, OpenCounts)>);

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some((ip, open)) = &self.0 {
            let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = open.get_mut(ip) {
                *count -= 1;
                if *count == 0 {
                    open.remove(ip);
                }
            }
        }
    }
}

/// The longest request head kept for parsing its body length. A longer head (hyper
/// itself allows ~400 KiB) is still held to the head deadline; its body is not timed.
const MAX_HEAD: usize = 16 * 1024;

/// Where a connection is in the request cycle (see the module documentation).
#[derive(Debug)]
enum Phase {
    Idle {
        since: Instant,
    },
    /// `head` holds the bytes so far when they came in more than one read.
    Head {
        started: Instant,
        head: Vec<u8>,
    },
    Body {
        started: Instant,
        received: u64,
        length: BodyLength,
    },
    Handling,
    Tunnel,
}

#[derive(Debug)]
enum BodyLength {
    /// Bytes still to come.
    Remaining(u64),
    /// Chunked: the last bytes seen, to spot the terminating `\r\n0\r\n\r\n`.
    Chunked { tail: Vec<u8> },
}

/// The end of a chunked body without trailers.
const LAST_CHUNK: &[u8] = b"\r\n0\r\n\r\n";

/// A socket held to [`ConnectionLimits`].
pub struct Guarded<IO> {
    io: IO,
    limits: Arc<ConnectionLimits>,
    phase: Phase,
    /// Armed only while a read waits with a deadline.
    timer: Option<(Instant, Pin<Box<Sleep>>)>,
    /// The task of the read waiting now, if any: a response ending a request starts the
    /// idle clock, and that read must be polled again to arm it.
    reader: Option<Waker>,
    _slot: AddressSlot,
}

impl<IO> Guarded<IO> {
    fn new(io: IO, limits: Arc<ConnectionLimits>, slot: AddressSlot) -> Self {
        Self {
            io,
            limits,
            phase: Phase::Idle {
                since: Instant::now(),
            },
            timer: None,
            reader: None,
            _slot: slot,
        }
    }

    /// When a read that is waiting now must have received something, if ever.
    fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Idle { since } => Some(*since + self.limits.idle_timeout),
            Phase::Head { started, .. } => Some(*started + self.limits.header_timeout),
            Phase::Body {
                started, received, ..
            } => {
                let earned = Duration::from_secs_f64(
                    *received as f64 / self.limits.min_body_rate.max(1) as f64,
                );
                Some(*started + self.limits.header_timeout + earned)
            }
            Phase::Handling | Phase::Tunnel => None,
        }
    }

    fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Idle { .. } => "idle",
            Phase::Head { .. } => "head",
            Phase::Body { .. } => "body",
            Phase::Handling => "handling",
            Phase::Tunnel => "tunnel",
        }
    }

    /// Follows the request cycle through bytes just read.
    fn observe_read(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.phase {
                Phase::Idle { .. } | Phase::Handling => {
                    self.phase = Phase::Head {
                        started: Instant::now(),
                        head: Vec::new(),
                    };
                }
                Phase::Head { head, .. } => {
                    let (rest, next) = if head.is_empty() {
                        match find_head_end(bytes, 0) {
                            // The usual case: the whole head in one read, parsed in place.
                            Some(end) => (&bytes[end..], Some(after_head(&bytes[..end]))),
                            None => {
                                head.extend_from_slice(&bytes[..bytes.len().min(MAX_HEAD)]);
                                (&[][..], None)
                            }
                        }
                    } else {
                        let searched_from = head.len().saturating_sub(3);
                        let take = bytes.len().min(MAX_HEAD.saturating_sub(head.len()));
                        head.extend_from_slice(&bytes[..take]);
                        match find_head_end(head, searched_from) {
                            Some(end) => {
                                let consumed = end - (head.len() - take);
                                (&bytes[consumed..], Some(after_head(&head[..end])))
                            }
                            // Past MAX_HEAD: the end of the head still stops its clock,
                            // but the body (length unknown here) goes untimed.
                            None => match find_head_end(&bytes[take..], 0) {
                                Some(end) => (&bytes[take + end..], Some(Phase::Handling)),
                                None => (&[][..], None),
                            },
                        }
                    };
                    if let Some(next) = next {
                        self.phase = next;
                    }
                    bytes = rest;
                }
                Phase::Body {
                    received, length, ..
                } => {
                    *received += bytes.len() as u64;
                    let done = match length {
                        BodyLength::Remaining(left) => {
                            *left = left.saturating_sub(bytes.len() as u64);
                            *left == 0
                        }
                        BodyLength::Chunked { tail } => {
                            tail.extend_from_slice(bytes);
                            let keep = tail.len().saturating_sub(LAST_CHUNK.len());
                            tail.drain(..keep);
                            tail.ends_with(LAST_CHUNK)
                        }
                    };
                    if done {
                        self.phase = Phase::Handling;
                    }
                    // Bytes past the body belong to a pipelined request: rare enough
                    // to leave untimed until the next response.
                    bytes = &[];
                }
                Phase::Tunnel => bytes = &[],
            }
        }
    }

    /// A response (or part of one) went out.
    fn observe_write(&mut self, first: &[u8]) {
        match self.phase {
            Phase::Tunnel => {}
            // The client may now send the body it held back for `Expect: 100-continue`.
            Phase::Body { .. } if first.starts_with(b"HTTP/1.1 100 ") => {}
            _ if first.starts_with(b"HTTP/1.1 101 ") => self.phase = Phase::Tunnel,
            _ => {
                let was_untimed = self.deadline().is_none();
                self.phase = Phase::Idle {
                    since: Instant::now(),
                };
                if was_untimed {
                    if let Some(reader) = self.reader.take() {
                        reader.wake();
                    }
                }
            }
        }
    }

    /// A read is waiting: arms the timer for the current deadline, and fails the read
    /// once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(deadline) = self.deadline() else {
            self.timer = None;
            return Poll::Pending;
        };
        match &mut self.timer {
            Some((armed, sleep)) if *armed != deadline => {
                sleep.as_mut().reset(deadline);
                *armed = deadline;
            }
            Some(_) => {}
            None => {
                self.timer = Some((deadline, Box::pin(tokio::time::sleep_until(deadline))));
            }
        }
        let Some((_, sleep)) = &mut self.timer else {
            return Poll::Pending;
        };
        ready!(sleep.as_mut().poll(cx));
        let phase = self.phase_name();
        metrics::counter!("http_connections_timed_out_total", "phase" => phase).increment(1);
        tracing::debug!(phase, "closing a connection that missed its deadline");
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client was too slow ({phase})"),
        ))
    }
}

/// The index just past the `\r\n\r\n` ending a request head, searching from `from`.
fn find_head_end(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| from + at + 4)
}

/// The phase after a complete request head: its body, if it has one.
fn after_head(head: &[u8]) -> Phase {
    if head.starts_with(b"PRI * HTTP/2.0\r\n") {
        // The HTTP/2 connection preface: frames from here on.
        return Phase::Tunnel;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
        // hyper will answer 400 and close.
        return Phase::Handling;
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let chunked = header("transfer-encoding")
        .and_then(|v| std::str::from_utf8(v).ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = if chunked {
        BodyLength::Chunked {
            tail: b"\r\n".to_vec(),
        }
    } else {
        match header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(0) | None => return Phase::Handling,
            Some(n) => BodyLength::Remaining(n),
        }
    };
    Phase::Body {
        started: Instant::now(),
        received: 0,
        length,
    }
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
                this.timer = None;
                let filled = &buf.filled()[before..];
                if !filled.is_empty() {
                    this.observe_read(filled);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                if !this.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded() -> Guarded<tokio::io::Empty> {
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            min_body_rate: 1024,
            max_per_address: 2,
            trusted_proxies: Vec::new(),
        };
        Guarded::new(tokio::io::empty(), Arc::new(limits), AddressSlot(None))
    }

    #[test]
    fn a_head_in_one_read_without_a_body_is_being_handled() {
        let mut conn = guarded();
        conn.observe_read(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(conn.phase_name(), "handling");
        assert!(conn.deadline().is_none());
        conn.observe_write(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(conn.phase_name(), "idle");
    }

    #[test]
    fn a_head_trickled_in_keeps_its_first_byte_deadline() {
        let mut conn = guarded();
        conn.observe_read(b"GET / HTTP/1.1\r\n");
        let deadline = conn.deadline();
        assert_eq!(conn.phase_name(), "head");
        conn.observe_read(b"X-a: 1\r\n");
        conn.observe_read(b"\r");
        assert_eq!(conn.deadline(), deadline, "more lines buy no time");
        conn.observe_read(b"\n");
        assert_eq!(conn.phase_name(), "handling");
    }

    #[test]
    fn a_body_earns_time_as_it_arrives_and_ends_at_its_length() {
        let mut conn = guarded();
        conn.observe_read(b"POST /x HTTP/1.1\r\nContent-Length: 4096\r\n\r\nab");
        assert_eq!(conn.phase_name(), "body");
        let early = conn.deadline().expect("deadline");
        conn.observe_read(&[b'x'; 2048]);
        let later = conn.deadline().expect("deadline");
        assert!(
            later >= early + Duration::from_secs(1),
            "{early:?} {later:?}"
        );
        conn.observe_read(&[b'x'; 2046]);
        assert_eq!(conn.phase_name(), "handling");
    }

    #[test]
    fn chunked_bodies_end_at_the_last_chunk_even_split_across_reads() {
        let mut conn = guarded();
        conn.observe_read(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        conn.observe_read(b"3\r\nabc\r\n0\r");
        assert_eq!(conn.phase_name(), "body");
        conn.observe_read(b"\n\r\n");
        assert_eq!(conn.phase_name(), "handling");
    }

    #[test]
    fn continue_keeps_the_body_and_switching_protocols_opens_a_tunnel() {
        let mut conn = guarded();
        conn.observe_read(b"PUT /x HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n");
        conn.observe_write(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(conn.phase_name(), "body");
        let mut ws = guarded();
        ws.observe_read(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
        ws.observe_write(b"HTTP/1.1 101 Switching Protocols\r\n");
        ws.observe_read(b"\x81\x05hello");
        assert_eq!(ws.phase_name(), "tunnel");
        assert!(ws.deadline().is_none());
    }

    #[test]
    fn the_http2_preface_is_a_tunnel() {
        let mut conn = guarded();
        conn.observe_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(conn.phase_name(), "tunnel");
    }

    #[test]
    fn a_split_terminator_is_found() {
        let mut conn = guarded();
        conn.observe_read(b"GET / HTTP/1.1\r\nHost: x\r\n\r");
        assert_eq!(conn.phase_name(), "head");
        conn.observe_read(b"\n");
        assert_eq!(conn.phase_name(), "handling");
    }
}
