//! `/api/v1/threads` and `/api/v1/ws`: thin handlers over the messaging services.

use poem::{
    IntoResponse, Request,
    web::Data,
    web::websocket::{BoxWebSocketUpgraded, WebSocket},
};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
    types::Type,
};

use crate::{
    core::{
        auth::{AnyUser, ClientUser},
        ids::{MessageId, ThreadId},
        json::{DeferredJson, JsonBody},
        pagination::Page,
    },
    error::{Fails, fails::*},
    messaging::{
        domain::NewMessage,
        frames::{ClientFrame, ServerFrame},
        schemas::{Message, NewThread, ReadMarker, SendMessage, Thread, WsTicket},
        services, tickets, websocket,
    },
    routes::{ApiTags, NoContent},
    state::AppState,
};

pub struct MessagingApi;

#[derive(ApiResponse)]
pub enum ThreadOpened {
    /// The pair's inquiry thread was created.
    #[oai(status = 201)]
    Created(Json<Thread>),
    /// The pair already had one: here it is.
    #[oai(status = 200)]
    Existing(Json<Thread>),
}

#[derive(ApiResponse)]
pub enum MessageSent {
    /// Stored, and pushed to the participants' sockets.
    #[oai(status = 201)]
    Created(Json<Message>),
    /// A retry with a known `client_msg_id`: the first message, nothing stored.
    #[oai(status = 200)]
    Existing(Json<Message>),
}

/// A WebSocket handshake that succeeded: 101, then the frames of `ClientFrame` and
/// `ServerFrame`, which this response registers so that the document carries them.
pub struct Upgraded(BoxWebSocketUpgraded);

impl ApiResponse for Upgraded {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "Switching protocols: frames are JSON text, `ClientFrame` from \
                              the client, `ServerFrame` from the server",
                status: Some(101),
                status_range: None,
                // A 101 has no body: this says what each text frame after it is, so the
                // frames' schemas are part of the document (and of generated clients).
                content: vec![MetaMediaType {
                    content_type: "application/json",
                    schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                        description: Some(
                            "Each text frame: a `ClientFrame` from the client, a `ServerFrame` \
                             from the server",
                        ),
                        one_of: vec![ClientFrame::schema_ref(), ServerFrame::schema_ref()],
                        ..MetaSchema::ANY
                    })),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        <ClientFrame as Type>::register(registry);
        <ServerFrame as Type>::register(registry);
    }
}

impl IntoResponse for Upgraded {
    fn into_response(self) -> poem::Response {
        self.0.into_response()
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Messaging")]
impl MessagingApi {
    /// Open (or find) the caller's inquiry thread with a worker (404 if no such active worker).
    #[oai(path = "/threads", method = "post")]
    async fn open(
        &self,
        user: ClientUser,
        state: Data<&AppState>,
        body: JsonBody<NewThread>,
    ) -> Result<ThreadOpened, Fails<{ ROLE | BODY | NOT_FOUND }>> {
        let (thread, created) = services::open_inquiry(&state, user.0.id, body.0.worker_id).await?;
        Ok(if created {
            ThreadOpened::Created(Json(thread))
        } else {
            ThreadOpened::Existing(Json(thread))
        })
    }

    /// The caller's threads, most recent activity first, each with its last message and
    /// the caller's unread count.
    #[oai(path = "/threads", method = "get")]
    async fn list(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Thread>>, Fails<{ AUTH | LIST }>> {
        services::list(&state, user.0.id, limit.0, cursor.0.as_deref())
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// A thread the caller takes part in (anyone else, admins included: 404).
    #[oai(path = "/threads/:id", method = "get")]
    async fn get(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<ThreadId>,
    ) -> Result<Json<Thread>, Fails<{ AUTH | NOT_FOUND }>> {
        services::get(&state, user.0.id, id.0)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// A thread's messages, newest first. `next_cursor` is the id to pass as `before`
    /// for the next (older) page. Also how a client re-syncs after reconnecting.
    #[oai(path = "/threads/:id/messages", method = "get")]
    async fn history(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<ThreadId>,
        /// Only messages older than this one.
        before: Query<Option<MessageId>>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
    ) -> Result<Json<Page<Message>>, Fails<{ AUTH | NOT_FOUND | LIST }>> {
        services::history(&state, user.0.id, id.0, before.0, limit.0)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Send a message; a retry with the same `client_msg_id` returns the first (200).
    #[oai(path = "/threads/:id/messages", method = "post")]
    async fn send(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<ThreadId>,
        body: DeferredJson<SendMessage>,
    ) -> Result<MessageSent, Fails<{ AUTH | NOT_FOUND | BODY }>> {
        let parsed = body
            .parse()
            .and_then(|b| NewMessage::parse(id.0, user.0.id, b.body, b.client_msg_id));
        let new = match parsed {
            Ok(new) => new,
            Err(err) => return Err(Fails(services::refusal(&state, user.0.id, id.0, err).await)),
        };
        let sent = services::send(&state, new).await?;
        Ok(if sent.created {
            MessageSent::Created(Json(sent.message))
        } else {
            MessageSent::Existing(Json(sent.message))
        })
    }

    /// Move the caller's read marker forward to a message of the thread.
    #[oai(path = "/threads/:id/read", method = "post")]
    async fn read(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<ThreadId>,
        body: DeferredJson<ReadMarker>,
    ) -> Result<NoContent, Fails<{ AUTH | NOT_FOUND | BODY }>> {
        let marker = match body.parse() {
            Ok(marker) => marker,
            Err(err) => return Err(Fails(services::refusal(&state, user.0.id, id.0, err).await)),
        };
        services::mark_read(&state, user.0.id, id.0, marker.message_id).await?;
        Ok(NoContent::Done)
    }

    /// A single-use ticket (30 s) for `GET /ws?ticket=`, for clients that cannot set
    /// an `Authorization` header on a WebSocket (browsers).
    #[oai(path = "/ws/ticket", method = "post")]
    async fn ticket(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
    ) -> Result<Json<WsTicket>, Fails<AUTH>> {
        tickets::issue(&state, user.0)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// The real-time channel (WebSocket).
    ///
    /// Authenticate with `Authorization: Bearer <access token>`, or, where a header
    /// cannot be set (browsers), with `?ticket=` from `POST /ws/ticket` (single use,
    /// 30 s). Refused before the upgrade, as problem+json: 400 a request that is not a
    /// WebSocket handshake; 401 a missing, bad, expired or revoked token, or a ticket
    /// unknown, used or expired; 403 an `Origin` not in `CORS_ORIGINS`; 409
    /// `too_many_sockets` when the account has as many sockets open as it may; 429 the
    /// per-IP rate limit. After the 101, text frames carry JSON objects told apart by
    /// `type`: the client sends `ClientFrame`s, the server `ServerFrame`s (both schemas
    /// of this document). A frame of the wrong shape is answered an `error` frame with
    /// code `validation_failed` and `errors` naming each field, as a 422 does; more than
    /// 20 frames a second are answered `rate_limited`. Frames over 64 KiB close the
    /// socket with 1009; a logout, password change or suspension closes it with 1008; a
    /// client too slow to read its pushes is closed with 1013 and should reconnect and
    /// re-sync from `GET /threads/{id}/messages`.
    #[oai(path = "/ws", method = "get")]
    async fn ws(
        &self,
        state: Data<&AppState>,
        req: &Request,
        /// From `POST /ws/ticket`, when no `Authorization` header is sent.
        ticket: Query<Option<String>>,
        ws: WebSocket,
    ) -> Result<Upgraded, Fails<{ AUTH | FORBIDDEN | CONFLICT | MALFORMED }>> {
        websocket::upgrade(&state, req, ticket.0, ws)
            .await
            .map(Upgraded)
            .map_err(Fails)
    }
}
