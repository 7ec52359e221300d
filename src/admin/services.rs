//! Admin actions on users. Suspension is revocation: every login of the user dies at
//! once and stays dead after reinstatement.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{
    admin::audit::{self, Target},
    auth::{
        models::UserRow,
        schemas::User,
        sessions::{self, RevokeReason, Scope},
    },
    core::{auth::CurrentUser, ids::UserId},
    db::{
        enums::{AuditAction, UserStatus},
        schema::users,
    },
    error::{AppError, FieldError},
    state::AppState,
};

/// A moderation reason: trimmed, 1 to 1000 characters.
pub fn check_reason(raw: &str) -> Result<&str, FieldError> {
    let reason = raw.trim();
    if (1..=1000).contains(&reason.chars().count()) {
        Ok(reason)
    } else {
        Err(FieldError::new("reason", "must be 1 to 1000 characters"))
    }
}

/// Sets a user's status, writes the audit row and, on suspension, revokes every
/// login — all in one transaction; Redis learns of the revocations after commit.
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
    let mut conn = state.db.get().await?;
    let (user, revoked) = conn
        .transaction::<_, AppError, _>(async move |conn| {
            let user: UserRow = diesel::update(users::table.find(target))
                .set((
                    users::status.eq(status),
                    users::updated_at.eq(chrono::Utc::now()),
                ))
                .returning(UserRow::as_returning())
                .get_result(conn)
                .await?;
            let (action, revoked) = match status {
                UserStatus::Suspended => {
                    let scope = Scope::User {
                        user: target,
                        except: None,
                    };
                    let revoked =
                        sessions::mark_revoked(conn, scope, RevokeReason::Suspended).await?;
                    (AuditAction::UserSuspended, revoked)
                }
                UserStatus::Active => (AuditAction::UserReinstated, Vec::new()),
            };
            audit::record(conn, admin.id, action, Target::User(target), reason).await?;
            Ok((user, revoked))
        })
        .await?;
    drop(conn);
    state.revocations.revoke(&revoked).await?;
    Ok(user.into())
}
