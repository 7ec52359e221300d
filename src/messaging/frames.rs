//! The JSON text frames of `GET /api/v1/ws`, both directions (see API.md).

use serde::{Deserialize, Serialize};

use crate::{
    core::ids::{MessageId, ThreadId, UserId},
    error::AppError,
    messaging::schemas::Message,
    notification::schemas::Notification,
};

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Send {
        thread_id: ThreadId,
        body: String,
        client_msg_id: Option<String>,
    },
    Typing {
        thread_id: ThreadId,
    },
    Read {
        thread_id: ThreadId,
        message_id: MessageId,
    },
    Ping,
}

impl ClientFrame {
    /// Text that is not JSON is `malformed_body`; JSON of an unknown type or shape is
    /// `validation_failed` (the REST codes for the same mistakes).
    pub fn parse(text: &str) -> Result<Self, AppError> {
        serde_json::from_str(text).map_err(|err| {
            if err.is_data() {
                AppError::Validation {
                    detail: format!("not a frame this server knows: {err}"),
                    errors: Vec::new(),
                }
            } else {
                AppError::MalformedBody(format!("the frame is not valid JSON: {err}"))
            }
        })
    }
}

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// To the sending connection, once the message is stored.
    Ack {
        client_msg_id: Option<&'a str>,
        message: &'a Message,
    },
    /// To every connection of every participant.
    Message {
        message: &'a Message,
    },
    Typing {
        thread_id: ThreadId,
        user_id: UserId,
    },
    Read {
        thread_id: ThreadId,
        user_id: UserId,
        message_id: MessageId,
    },
    /// To every connection of the recipient, once the notification is stored.
    Notification {
        notification: &'a Notification,
    },
    Pong,
    Error {
        code: &'a str,
        detail: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
    },
}

impl ServerFrame<'_> {
    pub fn to_text(&self) -> String {
        // Plain structs and strings: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("frames serialize"))
    }
}

impl<'a> ServerFrame<'a> {
    /// An `error` frame for `err`, echoing the `client_msg_id` of the frame it answers.
    pub fn error(err: &AppError, client_msg_id: Option<&'a str>) -> Self {
        if let AppError::Internal(inner) = err {
            tracing::error!(error = ?inner, "websocket frame failed");
        }
        Self::Error {
            code: err.code(),
            detail: err.public_detail(),
            client_msg_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_by_type() {
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping)
        ));
        let thread = ThreadId::new();
        let send =
            format!(r#"{{"type":"send","thread_id":"{thread}","body":"hi","client_msg_id":"k1"}}"#);
        assert!(matches!(
            ClientFrame::parse(&send),
            Ok(ClientFrame::Send { thread_id, .. }) if thread_id == thread
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

    #[test]
    fn server_frames_carry_their_type_first() {
        assert_eq!(ServerFrame::Pong.to_text(), r#"{"type":"pong"}"#);
        let err = ServerFrame::error(&AppError::NotFound, Some("k")).to_text();
        assert!(
            err.starts_with(r#"{"type":"error","code":"not_found""#),
            "{err}"
        );
        assert!(err.contains(r#""client_msg_id":"k""#), "{err}");
    }
}
