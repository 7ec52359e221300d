//! Request and response bodies of the job endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::Object;

use crate::{
    core::{
        ids::{JobId, ServiceId, ThreadId, UserId},
        validate::trimmed,
    },
    db::enums::JobStatus,
    error::AppError,
    job::models::{EventRow, JobRow},
};

#[derive(Debug, Object)]
pub struct Job {
    pub id: JobId,
    pub service_id: ServiceId,
    pub client_id: UserId,
    pub worker_id: UserId,
    pub status: JobStatus,
    /// The listing's price when it was booked.
    pub price_cents: i64,
    pub scheduled_at: DateTime<Utc>,
    /// `scheduled_at` plus the listing's duration when it was booked.
    pub ends_at: DateTime<Utc>,
    pub address: String,
    pub notes: String,
    pub thread_id: ThreadId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<JobRow> for Job {
    fn from(row: JobRow) -> Self {
        Self {
            id: row.id,
            service_id: row.service_id,
            client_id: row.client_id,
            worker_id: row.worker_id,
            status: row.status,
            price_cents: row.price_cents,
            scheduled_at: row.scheduled_at,
            ends_at: row.ends_at,
            address: row.address,
            notes: row.notes,
            thread_id: row.thread_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct NewJob {
    pub service_id: ServiceId,
    /// In the future; with the listing's duration it must fit one of the worker's slots.
    pub scheduled_at: DateTime<Utc>,
    /// 1 to 500 characters.
    #[oai(validator(max_length = 500, pattern = r"\S"))]
    pub address: String,
    /// Up to 2000 characters.
    #[oai(nullable, validator(max_length = 2000))]
    pub notes: Option<String>,
}

/// Why a job was cancelled.
#[derive(Debug, Object)]
pub struct CancelBody {
    /// 1 to 1000 characters, not blank.
    #[oai(validator(max_length = 1000, pattern = r"\S"))]
    pub reason: String,
}

impl CancelBody {
    /// The reason, trimmed.
    pub fn into_reason(self) -> Result<Option<String>, AppError> {
        Ok(Some(trimmed("reason", &self.reason, 1..=1000)?))
    }
}

/// Why a job was declined (optional).
#[derive(Debug, Object)]
pub struct ReasonBody {
    #[oai(nullable, validator(max_length = 1000, pattern = r"\S"))]
    pub reason: Option<String>,
}

impl ReasonBody {
    /// The reason, trimmed and at most 1000 characters, if one was given.
    pub fn into_reason(self) -> Result<Option<String>, AppError> {
        self.reason
            .map(|r| trimmed("reason", &r, 1..=1000).map_err(AppError::from))
            .transpose()
    }
}

#[derive(Debug, Object)]
pub struct JobEvent {
    /// Null for the booking itself.
    #[oai(nullable)]
    pub from_status: Option<JobStatus>,
    pub to_status: JobStatus,
    /// Null when the system acted (expiry).
    #[oai(nullable)]
    pub actor_id: Option<UserId>,
    #[oai(nullable)]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<EventRow> for JobEvent {
    fn from(row: EventRow) -> Self {
        Self {
            from_status: row.from_status,
            to_status: row.to_status,
            actor_id: row.actor_id,
            reason: row.reason,
            at: row.at,
        }
    }
}
