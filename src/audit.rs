//! The audit log: one row per moderation action, written in the action's transaction.
//!
//! This module owns the `audit_log` table: feature modules write through [`record`],
//! the admin API reads through [`list`].

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use poem_openapi::Object;

use crate::{
    core::{
        ids::{AuditId, KycId, ReviewId, ServiceId, UserId},
        pagination::{self, Page},
    },
    db::{enums::AuditAction, schema::audit_log},
    error::AppError,
    state::AppState,
};

/// What kind of object an action targeted.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    User(UserId),
    Kyc(KycId),
    Service(ServiceId),
    Review(ReviewId),
}

impl Target {
    fn parts(self) -> (&'static str, uuid::Uuid) {
        match self {
            Self::User(id) => ("user", id.0),
            Self::Kyc(id) => ("kyc_submission", id.0),
            Self::Service(id) => ("service", id.0),
            Self::Review(id) => ("review", id.0),
        }
    }
}

/// Records `actor` doing `action` to `target`.
pub async fn record(
    conn: &mut AsyncPgConnection,
    actor: UserId,
    action: AuditAction,
    target: Target,
    reason: Option<&str>,
) -> Result<(), AppError> {
    let (target_type, target_id) = target.parts();
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(AuditId::new()),
            audit_log::actor_id.eq(actor),
            audit_log::action.eq(action),
            audit_log::target_type.eq(target_type),
            audit_log::target_id.eq(target_id),
            audit_log::reason.eq(reason),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// One audit row as `GET /admin/audit-log` shows it.
#[derive(Debug, Object, Queryable, Selectable)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
pub struct AuditEntry {
    pub id: AuditId,
    /// The admin who acted.
    pub actor_id: UserId,
    pub action: AuditAction,
    /// `user`, `kyc_submission`, `service` or `review`.
    pub target_type: String,
    pub target_id: uuid::Uuid,
    #[oai(nullable)]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// The audit log, newest first: ids are time-ordered (v7), so the keyset is the
/// primary key walked backwards.
pub async fn list(
    state: &AppState,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<AuditEntry>, AppError> {
    let limit = pagination::limit(limit)?;
    let after: Option<AuditId> = state.cursors.decode_opt(cursor)?;
    let mut query = audit_log::table
        .order(audit_log::id.desc())
        .limit(limit + 1)
        .select(AuditEntry::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(audit_log::id.lt(after));
    }
    let rows = query.load(&mut state.conn().await?).await?;
    pagination::paginate(&state.cursors, rows, limit, |r| r.id, |r| r)
}
