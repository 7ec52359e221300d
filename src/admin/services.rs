//! Admin actions on users and the dashboard figures. Suspension is revocation: every
//! login of the user dies at once and stays dead after reinstatement.
//!
//! Each table's queries live in the module that owns it (`auth` for users, `job`,
//! `worker::kyc`, `service`, `review`); this module only combines them.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{
    admin::schemas::Stats,
    audit::{self, Target},
    auth::{
        directory,
        models::UserRow,
        schemas::User,
        sessions::{self, RevokeReason, Scope},
    },
    core::validate::moderation_reason,
    core::{auth::CurrentUser, ids::UserId},
    db::{
        enums::{AuditAction, UserStatus},
        schema::users,
    },
    error::AppError,
    events::{self, Event},
    job::services as jobs,
    service::{listed, services as listings},
    state::AppState,
    worker::kyc,
};

/// Sets a user's status, writes the audit row and, on suspension, revokes every
/// login — all in one transaction (Redis included, before commit).
///
/// Checks run in the contract's order: self-suspension (403), unknown user (404),
/// then the reason (422).
pub async fn set_status(
    state: &AppState,
    admin: CurrentUser,
    target: UserId,
    status: UserStatus,
    reason: Option<&str>,
) -> Result<User, AppError> {
    if target == admin.id && status == UserStatus::Suspended {
        return Err(AppError::Forbidden("admins cannot suspend themselves"));
    }
    let mut conn = state.conn().await?;
    let user = conn
        .transaction::<_, AppError, _>(async move |conn| {
            users::table
                .find(target)
                .select(users::id)
                .for_update()
                .first::<UserId>(conn)
                .await?;
            let reason = match status {
                UserStatus::Suspended => Some(moderation_reason(reason.unwrap_or_default())?),
                UserStatus::Active => reason.map(str::trim).filter(|r| !r.is_empty()),
            };
            let user: UserRow = diesel::update(users::table.find(target))
                .set((
                    users::status.eq(status),
                    users::updated_at.eq(chrono::Utc::now()),
                ))
                .returning(UserRow::as_returning())
                .get_result(conn)
                .await?;
            // A worker's listings leave (or return to) the public catalog with them.
            listed::relist(conn, listed::Scope::Worker(target)).await?;
            let event = match status {
                UserStatus::Suspended => Event::UserSuspended {
                    user_id: target,
                    admin_id: admin.id,
                },
                UserStatus::Active => Event::UserReinstated {
                    user_id: target,
                    admin_id: admin.id,
                },
            };
            events::record(conn, &event).await?;
            let action = match status {
                UserStatus::Suspended => {
                    let scope = Scope::User {
                        user: target,
                        except: None,
                    };
                    sessions::revoke_in(state, conn, scope, RevokeReason::Suspended).await?;
                    AuditAction::UserSuspended
                }
                UserStatus::Active => AuditAction::UserReinstated,
            };
            audit::record(conn, admin.id, action, Target::User(target), reason).await?;
            Ok(user)
        })
        .await?;
    Ok(user.into())
}

/// The dashboard figures: one aggregate query per group, on one connection.
pub async fn stats(state: &AppState) -> Result<Stats, AppError> {
    let mut conn = state.conn().await?;
    Ok(Stats {
        users_by_role: directory::count_by_role(&mut conn)
            .await?
            .into_iter()
            .collect(),
        jobs_by_status: jobs::count_by_status(&mut conn)
            .await?
            .into_iter()
            .collect(),
        pending_kyc: kyc::count_pending(&mut conn).await?,
        services_active: listings::count_active(&mut conn).await?,
    })
}
