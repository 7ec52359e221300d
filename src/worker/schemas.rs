//! Request and response bodies of the worker endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::MaybeUndefined};

use crate::{
    core::ids::{KycId, UserId},
    db::enums::{KycDecision, KycDocumentType, KycStatus},
    worker::models::{KycRow, WorkerRow},
    worker::services::ProfileChanges,
};

/// A worker as clients and the worker see them. `id` is the worker's user id.
#[derive(Debug, Object)]
pub struct WorkerProfile {
    pub id: UserId,
    pub full_name: String,
    pub bio: String,
    pub skills: Vec<String>,
    #[oai(nullable)]
    pub city: Option<String>,
    /// IANA timezone name; availability slots are wall-clock times in it.
    pub timezone: String,
    #[oai(nullable)]
    pub hourly_rate_cents: Option<i64>,
    pub kyc_status: KycStatus,
    #[oai(nullable)]
    pub rating_avg: Option<f64>,
    pub rating_count: i32,
    pub created_at: DateTime<Utc>,
}

impl WorkerProfile {
    pub fn new(row: WorkerRow, full_name: String) -> Self {
        Self {
            id: row.user_id,
            full_name,
            bio: row.bio,
            skills: row.skills.into_iter().flatten().collect(),
            city: row.city,
            timezone: row.timezone,
            hourly_rate_cents: row.hourly_rate_cents,
            kyc_status: row.kyc_status,
            rating_avg: row.rating_avg,
            rating_count: row.rating_count,
            created_at: row.created_at,
        }
    }
}

/// Absent fields are left alone; `null` clears an optional field (a required one → 422).
#[derive(Debug, Object)]
pub struct WorkerPatch {
    #[oai(validator(max_length = 200, pattern = r"\S"))]
    pub full_name: MaybeUndefined<String>,
    #[oai(nullable, validator(max_length = 2000))]
    pub bio: MaybeUndefined<String>,
    #[oai(nullable)]
    pub skills: MaybeUndefined<Vec<String>>,
    #[oai(nullable, validator(max_length = 100, pattern = r"\S"))]
    pub city: MaybeUndefined<String>,
    #[oai(nullable, validator(minimum(value = "0")))]
    pub hourly_rate_cents: MaybeUndefined<i64>,
    /// An IANA name such as `Europe/Lisbon`.
    pub timezone: MaybeUndefined<String>,
}

impl From<WorkerPatch> for ProfileChanges {
    fn from(patch: WorkerPatch) -> Self {
        Self {
            full_name: patch.full_name.into(),
            bio: patch.bio.into(),
            skills: patch.skills.into(),
            city: patch.city.into(),
            hourly_rate_cents: patch.hourly_rate_cents.into(),
            timezone: patch.timezone.into(),
        }
    }
}

/// One weekly slot: wall-clock, `end` exclusive, never across midnight.
#[derive(Debug, Clone, Object)]
pub struct SlotBody {
    /// 0 = Monday … 6 = Sunday.
    #[oai(validator(minimum(value = "0"), maximum(value = "6")))]
    pub weekday: i64,
    /// `HH:MM`.
    #[oai(validator(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: String,
    /// `HH:MM`, up to `24:00`.
    #[oai(validator(pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"))]
    pub end: String,
}

#[derive(Debug, Object)]
pub struct Availability {
    pub slots: Vec<SlotBody>,
}

/// One identity document sent for review.
#[derive(Debug, Object)]
pub struct KycSubmission {
    pub id: KycId,
    pub worker_id: UserId,
    pub document_type: KycDocumentType,
    pub status: KycDecision,
    /// Why it was rejected.
    #[oai(nullable)]
    pub reason: Option<String>,
    /// Detected from the file's bytes: `image/jpeg`, `image/png` or `application/pdf`.
    pub content_type: String,
    pub size_bytes: i64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub reviewed_at: Option<DateTime<Utc>>,
}

impl From<KycRow> for KycSubmission {
    fn from(row: KycRow) -> Self {
        Self {
            id: row.id,
            worker_id: row.worker_id,
            document_type: row.document_type,
            status: row.status,
            reason: row.reason,
            content_type: row.content_type,
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            created_at: row.created_at,
            reviewed_at: row.reviewed_at,
        }
    }
}
