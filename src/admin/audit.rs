//! The audit log: one row per admin action, written in the action's transaction.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    core::ids::{AuditId, KycId, ServiceId, UserId},
    db::{enums::AuditAction, schema::audit_log},
    error::AppError,
};

/// What kind of object an action targeted.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    User(UserId),
    Kyc(KycId),
    Service(ServiceId),
}

impl Target {
    fn parts(self) -> (&'static str, uuid::Uuid) {
        match self {
            Self::User(id) => ("user", id.0),
            Self::Kyc(id) => ("kyc_submission", id.0),
            Self::Service(id) => ("service", id.0),
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
