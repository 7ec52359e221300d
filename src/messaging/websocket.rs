//! `GET /api/v1/ws`: the handshake checks, and the task that serves one socket.
//!
//! The handshake is refused with problem+json before any upgrade: 403 for a page whose
//! `Origin` is not in `CORS_ORIGINS` (browsers send cookies-free WebSockets from any
//! page, and poem checks no origin), 401 for a missing or bad credential, 409 when the
//! user already has `WS_MAX_SOCKETS_PER_USER` sockets on this instance. When the `101`
//! is sent the socket is already subscribed, so nothing published after it is missed.
//!
//! Each socket is one task and its memory is bounded: frames and messages of at most
//! 64 KiB (a larger one is closed with 1009), 4 KiB read buffer, writes not buffered,
//! [`hub::QUEUE_FRAMES`] queued pushes, and a frame rate limit. The server pings every
//! `WS_PING_INTERVAL`; a socket from which nothing (frame or pong) arrived for
//! `WS_IDLE_TIMEOUT` is closed.

use std::{num::NonZeroU32, time::Duration};

use futures_util::{SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use poem::{
    Request,
    http::{HeaderValue, header},
    web::websocket::{
        BoxWebSocketUpgraded, CloseCode, Message, WebSocket, WebSocketConfig, WebSocketStream,
    },
};
use tokio::time::Instant;

use crate::{
    core::{
        auth::{CurrentUser, optional_user},
        metrics,
    },
    error::AppError,
    messaging::{
        domain::NewMessage,
        frames::{
            ClientFrame, ClientRead, ClientSend, ClientTyping, ServerAck, ServerFrame, ServerPong,
        },
        hub::{self, Queue, Registration},
        services, tickets,
    },
    state::AppState,
};

/// The largest frame, and message, a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Sustained frames per second a connection may send, and the burst on top.
const FRAMES_PER_SEC: u32 = 20;
const FRAME_BURST: u32 = 40;
/// How long a closing handshake may take before the connection is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_TOO_BIG: u16 = 1009;

/// tungstenite's defaults are 64 MiB messages and 128 KiB buffers per socket.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(8 * MAX_FRAME_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// Checks the handshake and, when it passes, upgrades into `serve`.
pub async fn upgrade(
    state: &AppState,
    req: &Request,
    ticket: Option<String>,
    ws: WebSocket,
) -> Result<BoxWebSocketUpgraded, AppError> {
    check_origin(
        &state.settings.cors_origins,
        req.headers().get(header::ORIGIN),
    )?;
    let user = authenticate(state, req, ticket.as_deref()).await?;
    let (registration, queue) = state.hub.register(user.id, user.session).await?;
    // A logout racing this handshake published its close event either after the socket
    // was subscribed (the event closes it) or before, and then this check sees it.
    if Box::pin(state.revocations.is_revoked(&state.db, user.session)).await? {
        return Err(AppError::TokenRevoked);
    }
    let state = state.clone();
    Ok(ws
        .config(config())
        .on_upgrade(move |socket| serve(state, user, registration, queue, socket))
        .boxed())
}

/// No `Origin` (a native app, a server) is fine; a browser page must be an allowed origin.
fn check_origin(allowed: &[String], origin: Option<&HeaderValue>) -> Result<(), AppError> {
    match origin {
        Some(origin) if !allowed.iter().any(|a| a.as_bytes() == origin.as_bytes()) => Err(
            AppError::Forbidden("pages of this origin may not open a WebSocket here"),
        ),
        _ => Ok(()),
    }
}

/// The bearer header when present, else the ticket.
async fn authenticate(
    state: &AppState,
    req: &Request,
    ticket: Option<&str>,
) -> Result<CurrentUser, AppError> {
    if let Some(user) = optional_user(req).await? {
        return Ok(user);
    }
    match ticket {
        Some(ticket) => tickets::redeem(state, ticket).await,
        None => Err(AppError::Unauthorized(
            "a bearer token or a `ticket` is required",
        )),
    }
}

/// Serves one socket until it closes, the client goes idle or the hub closes it.
async fn serve(
    state: AppState,
    user: CurrentUser,
    registration: Registration,
    mut queue: Queue,
    mut socket: WebSocketStream,
) {
    let metrics = metrics::ws();
    let limiter = frame_limiter();
    let (ping_every, idle_after) = (
        state.settings.ws_ping_interval,
        state.settings.ws_idle_timeout,
    );
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let mut heard = Instant::now();
    let close = loop {
        tokio::select! {
            code = registration.closed() => break Some(code),
            pushed = queue.recv() => {
                let Some(frame) = pushed else { break None };
                if let Err(close) = write(&mut socket, &registration, frame.to_string()).await {
                    break close;
                }
            }
            incoming = socket.next() => {
                let message = match incoming {
                    Some(Ok(message)) => message,
                    Some(Err(err)) if is_oversize(&err) => break Some(CLOSE_TOO_BIG),
                    Some(Err(_)) | None => break None,
                };
                heard = Instant::now();
                let reply = match message {
                    Message::Text(text) => {
                        metrics.frames_in.increment(1);
                        if limiter.check().is_err() {
                            Some(ServerFrame::error(&AppError::RateLimited { retry_after_secs: 1 }, None).to_text())
                        } else {
                            // Boxed: the database futures behind a frame are large, and an idle
                            // socket's task would otherwise carry their space all its life.
                            Box::pin(answer(&state, user, &text)).await
                        }
                    }
                    Message::Binary(_) => Some(ServerFrame::error(&AppError::UnsupportedMediaType("frames are JSON text".into()), None).to_text()),
                    Message::Close(_) => break None,
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(reply) = reply
                    && let Err(close) = write(&mut socket, &registration, reply).await
                {
                    break close;
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() >= idle_after {
                    break Some(CLOSE_NORMAL);
                }
                if socket.send(Message::Ping(Vec::new())).await.is_err() {
                    break None;
                }
            }
        }
    };
    // A client that stopped reading cannot take a close frame either: past CLOSE_WAIT
    // the connection is just dropped.
    let handshake = match close {
        Some(code) => {
            let frame =
                Message::Close(Some((CloseCode::from(code), close_reason(code).to_owned())));
            matches!(
                tokio::time::timeout(CLOSE_WAIT, socket.send(frame)).await,
                Ok(Ok(()))
            )
        }
        None => true,
    };
    if handshake {
        let _ = tokio::time::timeout(CLOSE_WAIT, socket.close()).await;
    }
}

/// Writes one text frame, unless the hub asks for the socket to close first: a write to
/// a client that stopped reading must not outlive a close. `Err` ends the socket, with
/// the close code to send if there is one.
async fn write(
    socket: &mut WebSocketStream,
    registration: &Registration,
    text: String,
) -> Result<(), Option<u16>> {
    tokio::select! {
        sent = socket.send(Message::Text(text)) => {
            sent.map_err(|_| None)?;
            metrics::ws().frames_out.increment(1);
            Ok(())
        }
        code = registration.closed() => Err(Some(code)),
    }
}

fn frame_limiter() -> DefaultDirectRateLimiter {
    let per_sec = NonZeroU32::new(FRAMES_PER_SEC).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(FRAME_BURST).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst))
}

fn close_reason(code: u16) -> &'static str {
    match code {
        CLOSE_TOO_BIG => "frame too large",
        hub::CLOSE_GOING_AWAY => "server shutting down",
        hub::CLOSE_POLICY => "session revoked",
        hub::CLOSE_TRY_AGAIN => "missed events; reconnect and re-sync",
        _ => "idle timeout",
    }
}

/// tungstenite's capacity error, which poem hands over as text only.
fn is_oversize(err: &std::io::Error) -> bool {
    err.to_string().contains("Space limit exceeded")
}

/// The reply to one client frame, if it gets one.
async fn answer(state: &AppState, user: CurrentUser, text: &str) -> Option<String> {
    let frame = match ClientFrame::parse(text) {
        Ok(frame) => frame,
        Err(err) => return Some(ServerFrame::error(&err, None).to_text()),
    };
    match frame {
        ClientFrame::Ping(_) => Some(ServerFrame::Pong(ServerPong {}).to_text()),
        ClientFrame::Send(ClientSend {
            thread_id,
            body,
            client_msg_id,
        }) => {
            let key = client_msg_id.clone();
            let sent = match NewMessage::parse(thread_id, user.id, body, client_msg_id) {
                Ok(new) => services::send(state, new).await,
                Err(err) => Err(services::refusal(state, user.id, thread_id, err).await),
            };
            Some(match sent {
                Ok(sent) => ServerFrame::Ack(ServerAck {
                    client_msg_id: key.clone(),
                    message: sent.message,
                })
                .to_text(),
                Err(err) => ServerFrame::error(&err, key.as_deref()).to_text(),
            })
        }
        ClientFrame::Typing(ClientTyping { thread_id }) => {
            services::typing(state, user.id, thread_id)
                .await
                .err()
                .map(|err| ServerFrame::error(&err, None).to_text())
        }
        ClientFrame::Read(ClientRead {
            thread_id,
            message_id,
        }) => services::mark_read(state, user.id, thread_id, message_id)
            .await
            .err()
            .map(|err| ServerFrame::error(&err, None).to_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_listed_when_present() {
        let allowed = vec!["https://app.example".to_owned()];
        let origin = |v: &'static str| HeaderValue::from_static(v);
        assert!(check_origin(&allowed, None).is_ok());
        assert!(check_origin(&allowed, Some(&origin("https://app.example"))).is_ok());
        assert!(check_origin(&allowed, Some(&origin("https://evil.example"))).is_err());
        assert!(check_origin(&[], Some(&origin("https://app.example"))).is_err());
    }
}
