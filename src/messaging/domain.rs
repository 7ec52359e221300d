//! Parsed inputs of the messaging rules. REST bodies and WebSocket frames are turned
//! into these once, at the edge; the services never see an HTTP or frame type.

use crate::{
    core::ids::{ThreadId, UserId},
    error::{AppError, FieldError},
};

/// Longest message, in characters (not bytes).
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest `client_msg_id`, in characters.
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 128;

/// A message text: 1 to 4000 characters, not only whitespace, no NUL. Kept as typed:
/// leading spaces and line breaks are part of what the sender wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageBody {
    type Error = FieldError;

    fn try_from(body: String) -> Result<Self, FieldError> {
        let chars = body.chars().count();
        if body.trim().is_empty() || chars > MAX_BODY_CHARS {
            Err(FieldError::new(
                "body",
                format!("must be 1 to {MAX_BODY_CHARS} characters, not only whitespace"),
            ))
        } else if body.contains('\0') {
            // PostgreSQL text cannot hold NUL; refused here rather than failing there.
            Err(FieldError::new("body", "must not contain NUL characters"))
        } else {
            Ok(Self(body))
        }
    }
}

/// The client's idempotency key for a message: 1 to 128 characters, no NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientMsgId {
    type Error = FieldError;

    fn try_from(id: String) -> Result<Self, FieldError> {
        let chars = id.chars().count();
        if chars == 0 || chars > MAX_CLIENT_MSG_ID_CHARS || id.contains('\0') {
            Err(FieldError::new(
                "client_msg_id",
                format!("must be 1 to {MAX_CLIENT_MSG_ID_CHARS} characters"),
            ))
        } else {
            Ok(Self(id))
        }
    }
}

/// A message someone wants to send, checked field by field.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub thread: ThreadId,
    pub sender: UserId,
    pub body: MessageBody,
    pub client_msg_id: Option<ClientMsgId>,
}

impl NewMessage {
    /// Every field error at once, as a form would show them.
    pub fn parse(
        thread: ThreadId,
        sender: UserId,
        body: String,
        client_msg_id: Option<String>,
    ) -> Result<Self, AppError> {
        let body = MessageBody::try_from(body);
        let client_msg_id = client_msg_id.map(ClientMsgId::try_from).transpose();
        match (body, client_msg_id) {
            (Ok(body), Ok(client_msg_id)) => Ok(Self {
                thread,
                sender,
                body,
                client_msg_id,
            }),
            (body, id) => Err(AppError::invalid_fields(
                [body.err(), id.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Result<MessageBody, FieldError> {
        MessageBody::try_from(text.to_owned())
    }

    #[test]
    fn bodies_count_characters_not_bytes() {
        assert!(body(&"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(body(&"é".repeat(MAX_BODY_CHARS + 1)).is_err());
        assert!(body(&"😀".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(body("x").is_ok());
    }

    #[test]
    fn empty_blank_and_nul_bodies_are_refused() {
        for bad in ["", "   ", "\n\t", "a\0b"] {
            assert!(body(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bodies_are_kept_as_typed() {
        assert_eq!(body("  hi\n").expect("valid").as_str(), "  hi\n");
    }

    #[test]
    fn client_msg_ids_are_bounded() {
        assert!(ClientMsgId::try_from(String::new()).is_err());
        assert!(ClientMsgId::try_from("k".repeat(MAX_CLIENT_MSG_ID_CHARS + 1)).is_err());
        assert!(ClientMsgId::try_from("k".repeat(MAX_CLIENT_MSG_ID_CHARS)).is_ok());
    }

    #[test]
    fn all_field_errors_come_together() {
        let err = NewMessage::parse(
            ThreadId::new(),
            UserId::new(),
            " ".into(),
            Some(String::new()),
        )
        .expect_err("two errors");
        match err {
            AppError::Validation { errors, .. } => assert_eq!(errors.len(), 2),
            other => panic!("unexpected {other:?}"),
        }
    }
}
