//! The `Notification` body of the REST endpoints and of WebSocket `notification` frames.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::Serialize;

use crate::{
    core::{ids::NotificationId, json::rfc3339},
    notification::models::NotificationRow,
};

/// Something that happened to the caller: `kind` is the event's kind (`job_booked`,
/// `job_transitioned`, `job_expired`, `message_sent`, `kyc_decided`, `review_posted`),
/// `payload` the event's details.
#[derive(Debug, Clone, Object, Serialize)]
pub struct Notification {
    pub id: NotificationId,
    pub kind: String,
    pub payload: serde_json::Value,
    #[serde(serialize_with = "rfc3339_opt")]
    #[oai(nullable)]
    pub read_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

fn rfc3339_opt<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

impl From<NotificationRow> for Notification {
    fn from(row: NotificationRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            // Written by us from a serialized event: always JSON.
            payload: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
            read_at: row.read_at,
            created_at: row.created_at,
        }
    }
}
