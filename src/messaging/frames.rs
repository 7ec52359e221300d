//! The JSON text frames of `GET /api/v1/ws`, both directions (see API.md).
//!
//! Each direction is one enum that serde reads or writes and poem-openapi documents:
//! `ClientFrame` and `ServerFrame` are schemas of the published document (the WebSocket
//! operation registers them), so generated clients get types for the frames, and a
//! client frame is checked against that very schema, like a JSON body: a frame of the
//! wrong shape is answered `validation_failed` with `errors` naming each field.

use poem_openapi::{Object, Union};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    core::{
        ids::{MessageId, ThreadId, UserId},
        schema_check::BodySchema,
    },
    error::{AppError, FieldError},
    messaging::schemas::Message,
    notification::schemas::Notification,
};

/// What a client may send, told apart by `type`.
#[derive(Debug, Deserialize, Union)]
#[serde(tag = "type", rename_all = "snake_case")]
#[oai(discriminator_name = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Send(ClientSend),
    Typing(ClientTyping),
    Read(ClientRead),
    Ping(ClientPing),
}

/// Send a message (answered `ack` on this socket once stored, or `error`).
#[derive(Debug, Deserialize, Object)]
pub struct ClientSend {
    pub thread_id: ThreadId,
    /// 1 to 4000 characters, not only whitespace. Not declared as a constraint here, as
    /// it is on `SendMessage`: it is checked with the thread, so that a thread the caller
    /// is not in is `not_found` whatever the body, and the `error` echoes `client_msg_id`.
    pub body: String,
    /// An idempotency key: a retry with the same key is not stored twice.
    #[oai(nullable)]
    pub client_msg_id: Option<String>,
}

/// The caller is typing in a thread (nothing is stored).
#[derive(Debug, Deserialize, Object)]
pub struct ClientTyping {
    pub thread_id: ThreadId,
}

/// Move the caller's read marker forward to a message of the thread.
#[derive(Debug, Deserialize, Object)]
pub struct ClientRead {
    pub thread_id: ThreadId,
    pub message_id: MessageId,
}

/// Answered `pong`.
#[derive(Debug, Deserialize, Object)]
pub struct ClientPing {}

impl ClientFrame {
    /// Text that is not JSON is `malformed_body`; JSON the `ClientFrame` schema refuses
    /// is `validation_failed` with each field's problem (the REST codes for the same
    /// mistakes).
    pub fn parse(text: &str) -> Result<Self, AppError> {
        let value: Value = serde_json::from_str(text).map_err(|err| {
            AppError::MalformedBody(format!("the frame is not valid JSON: {err}"))
        })?;
        let errors = BodySchema::of::<Self>().check(&value);
        if !errors.is_empty() {
            return Err(AppError::invalid_fields(errors));
        }
        // The schema check passed, so serde sees a frame of a known shape; were the two
        // ever to disagree, the refusal still names the frame as a whole.
        serde_json::from_value(value).map_err(|err| {
            AppError::invalid_fields(vec![FieldError::new("", format!("is not a frame: {err}"))])
        })
    }
}

/// What the server sends, told apart by `type`.
#[derive(Debug, Serialize, Union)]
#[serde(tag = "type", rename_all = "snake_case")]
#[oai(discriminator_name = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// To the sending connection, once the message is stored.
    Ack(ServerAck),
    /// To every connection of every participant (the sending one included).
    Message(ServerMessage),
    Typing(ServerTyping),
    Read(ServerRead),
    /// To every connection of the recipient, once the notification is stored.
    Notification(ServerNotification),
    Pong(ServerPong),
    Error(ServerError),
}

/// A `send` was stored: the message, with the frame's `client_msg_id`.
#[derive(Debug, Serialize, Object)]
pub struct ServerAck {
    #[oai(nullable)]
    pub client_msg_id: Option<String>,
    pub message: Message,
}

/// A message of one of the caller's threads.
#[derive(Debug, Serialize, Object)]
pub struct ServerMessage {
    pub message: Message,
}

/// Another participant is typing.
#[derive(Debug, Serialize, Object)]
pub struct ServerTyping {
    pub thread_id: ThreadId,
    pub user_id: UserId,
}

/// A participant's read marker moved.
#[derive(Debug, Serialize, Object)]
pub struct ServerRead {
    pub thread_id: ThreadId,
    pub user_id: UserId,
    pub message_id: MessageId,
}

/// A notification for the caller.
#[derive(Debug, Serialize, Object)]
pub struct ServerNotification {
    pub notification: Notification,
}

/// The answer to `ping`.
#[derive(Debug, Serialize, Object)]
pub struct ServerPong {}

/// A frame was refused: the REST error codes, and for `validation_failed` the fields.
#[derive(Debug, Serialize, Object)]
pub struct ServerError {
    pub code: String,
    pub detail: String,
    /// The `client_msg_id` of the `send` refused, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub client_msg_id: Option<String>,
    /// Present on `validation_failed`: which fields failed and why, as in a 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldError>>,
}

impl ServerFrame {
    pub fn to_text(&self) -> String {
        // Plain structs and strings: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("frames serialize"))
    }

    /// An `error` frame for `err`, echoing the `client_msg_id` of the frame it answers.
    pub fn error(err: &AppError, client_msg_id: Option<&str>) -> Self {
        if let AppError::Internal(inner) = err {
            tracing::error!(error = ?inner, "websocket frame failed");
        }
        Self::Error(ServerError {
            code: err.code().to_owned(),
            detail: err.public_detail(),
            client_msg_id: client_msg_id.map(str::to_owned),
            errors: err.field_errors().map(<[FieldError]>::to_vec),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_by_type() {
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping(_))
        ));
        let thread = ThreadId::new();
        let send =
            format!(r#"{{"type":"send","thread_id":"{thread}","body":"hi","client_msg_id":"k1"}}"#);
        assert!(matches!(
            ClientFrame::parse(&send),
            Ok(ClientFrame::Send(ClientSend { thread_id, .. })) if thread_id == thread
        ));
    }

    #[test]
    fn bad_json_and_unknown_types_have_their_codes() {
        let code = |text: &str| ClientFrame::parse(text).expect_err(text).code();
        assert_eq!(code("{not json"), "malformed_body");
        assert_eq!(code(r#"{"type":"dance"}"#), "validation_failed");
        assert_eq!(code(r#"{"type":"typing"}"#), "validation_failed");
        assert_eq!(code("[]"), "validation_failed");
    }

    /// A refused frame names its fields as a 422 does, from the documented schema.
    #[test]
    fn invalid_frames_name_each_field() {
        let fields = |text: &str| -> Vec<(String, String)> {
            let err = ClientFrame::parse(text).expect_err(text);
            let errors = err.field_errors().expect("validation_failed").to_vec();
            errors.into_iter().map(|e| (e.field, e.message)).collect()
        };
        assert_eq!(
            fields(r#"{"type":"dance"}"#),
            [(
                "type".into(),
                "must be one of: send, typing, read, ping".into()
            )]
        );
        let missing = fields(r#"{"type":"read","thread_id":"nope"}"#);
        let named: Vec<&str> = missing.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(named, ["thread_id", "message_id"], "{missing:?}");
        assert_eq!(missing[1].1, "is required");
        assert_eq!(
            fields(
                r#"{"type":"send","thread_id":"0190a5d2-7e3c-7000-8000-000000000001","body":5}"#
            ),
            [("body".into(), "expected a string".into())]
        );
        assert_eq!(fields("[]"), [(String::new(), "expected an object".into())]);
    }

    #[test]
    fn server_frames_carry_their_type_first() {
        assert_eq!(
            ServerFrame::Pong(ServerPong {}).to_text(),
            r#"{"type":"pong"}"#
        );
        let err = ServerFrame::error(&AppError::NotFound, Some("k")).to_text();
        assert!(
            err.starts_with(r#"{"type":"error","code":"not_found""#),
            "{err}"
        );
        assert!(err.contains(r#""client_msg_id":"k""#), "{err}");
        assert!(!err.contains("errors"), "{err}");
        let invalid = AppError::from(FieldError::new("body", "is required"));
        let err = ServerFrame::error(&invalid, None).to_text();
        assert!(
            err.ends_with(r#""errors":[{"field":"body","message":"is required"}]}"#),
            "{err}"
        );
    }
}
