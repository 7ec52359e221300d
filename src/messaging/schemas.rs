//! Request and response bodies of the messaging endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::Serialize;

use crate::{
    core::{
        ids::{JobId, MessageId, ThreadId, UserId},
        json::rfc3339,
    },
    messaging::models::{MessageRow, ThreadRow},
};

/// One chat message. Also the `message` of WebSocket `ack` and `message` frames.
#[derive(Debug, Clone, Object, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub thread_id: ThreadId,
    pub sender_id: UserId,
    pub body: String,
    /// The sender's idempotency key, when one was given.
    #[oai(nullable)]
    pub client_msg_id: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        Self {
            id: row.id,
            thread_id: row.thread_id,
            sender_id: row.sender_id,
            body: row.body,
            client_msg_id: row.client_msg_id,
            created_at: row.created_at,
        }
    }
}

/// A conversation between a client and a worker.
#[derive(Debug, Object, Serialize)]
pub struct Thread {
    pub id: ThreadId,
    /// The booking this thread belongs to; null for the pair's inquiry thread.
    #[oai(nullable)]
    pub job_id: Option<JobId>,
    /// The client, then the worker.
    pub participant_ids: Vec<UserId>,
    #[oai(nullable)]
    pub last_message: Option<Message>,
    /// Messages from others after the caller's read marker.
    pub unread_count: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<ThreadRow> for Thread {
    fn from(mut row: ThreadRow) -> Self {
        let last_message = row.last_message().map(Message::from);
        Self {
            id: ThreadId(row.id),
            job_id: row.job_id.map(JobId),
            participant_ids: vec![UserId(row.client_id), UserId(row.worker_id)],
            last_message,
            unread_count: row.unread_count,
            created_at: row.created_at,
        }
    }
}

/// `POST /threads`: the worker a client wants to talk to.
#[derive(Debug, Object)]
pub struct NewThread {
    pub worker_id: UserId,
}

/// `POST /threads/{id}/messages`.
#[derive(Debug, Object)]
pub struct SendMessage {
    /// 1 to 4000 characters, not only whitespace.
    #[oai(validator(max_length = 4000, pattern = r"\S"))]
    pub body: String,
    /// Makes retries safe: the same key from the same sender in the same thread returns
    /// the first message (200) instead of storing another. 1 to 128 characters.
    #[oai(nullable, validator(min_length = 1, max_length = 128))]
    pub client_msg_id: Option<String>,
}

/// `POST /threads/{id}/read`.
#[derive(Debug, Object)]
pub struct ReadMarker {
    /// A message of the thread; the marker only moves forward.
    pub message_id: MessageId,
}

/// A single-use credential for the WebSocket handshake (`GET /ws?ticket=`).
#[derive(Debug, Object)]
pub struct WsTicket {
    pub ticket: String,
    /// Seconds until it expires unused.
    pub expires_in: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::assert_same_json;

    #[test]
    fn serde_and_openapi_agree() {
        let message = Message {
            id: MessageId::new(),
            thread_id: ThreadId::new(),
            sender_id: UserId::new(),
            body: "hello".into(),
            client_msg_id: None,
            created_at: Utc::now(),
        };
        assert_same_json(&message);
        assert_same_json(&Thread {
            id: ThreadId::new(),
            job_id: None,
            participant_ids: vec![UserId::new(), UserId::new()],
            last_message: Some(message),
            unread_count: 3,
            created_at: Utc::now(),
        });
    }
}
