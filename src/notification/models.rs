//! Rows of `notifications`, read with raw SQL (`payload` as text: the JSON is passed
//! through, never interpreted).

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Nullable, Text, Timestamptz, Uuid},
};

use crate::core::ids::{NotificationId, UserId};

/// The columns [`NotificationRow`] reads, `payload` as text.
pub const COLUMNS: &str = "id, user_id, kind, payload::text AS payload, read_at, created_at";

#[derive(Debug, Clone, QueryableByName)]
pub struct NotificationRow {
    #[diesel(sql_type = Uuid)]
    pub id: NotificationId,
    #[diesel(sql_type = Uuid)]
    pub user_id: UserId,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub payload: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub read_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}
