//! Rows of `messages` and of the thread list query.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid},
};

use crate::{
    core::ids::{MessageId, ThreadId, UserId},
    db::schema::messages,
};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub struct MessageRow {
    pub id: MessageId,
    pub thread_id: ThreadId,
    pub sender_id: UserId,
    pub body: String,
    pub client_msg_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A message just stored, with who takes part in its thread (whom to tell).
#[derive(Debug, QueryableByName)]
pub struct StoredRow {
    #[diesel(embed)]
    pub message: MessageRow,
    #[diesel(sql_type = Array<Uuid>)]
    pub participants: Vec<uuid::Uuid>,
}

/// One thread as a participant sees it: its newest message and their unread count.
#[derive(Debug, QueryableByName)]
pub struct ThreadRow {
    #[diesel(sql_type = Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Uuid>)]
    pub job_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Uuid)]
    pub client_id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    pub worker_id: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// The caller's activity key: the thread's creation, then its newest message.
    #[diesel(sql_type = Timestamptz)]
    pub activity_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub unread_count: i64,
    #[diesel(sql_type = Nullable<Uuid>)]
    pub m_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Uuid>)]
    pub m_sender_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub m_body: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub m_client_msg_id: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub m_created_at: Option<DateTime<Utc>>,
}

impl ThreadRow {
    /// The newest message, when the thread has one (the LEFT JOIN's columns are set together).
    pub fn last_message(&mut self) -> Option<MessageRow> {
        Some(MessageRow {
            id: MessageId(self.m_id?),
            thread_id: ThreadId(self.id),
            sender_id: UserId(self.m_sender_id?),
            body: self.m_body.take()?,
            client_msg_id: self.m_client_msg_id.take(),
            created_at: self.m_created_at?,
        })
    }
}
