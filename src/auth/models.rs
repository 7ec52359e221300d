//! Rows of `users`, `login_sessions` and `refresh_tokens`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    core::ids::{SessionId, UserId},
    db::{
        enums::{UserRole, UserStatus},
        schema::{login_sessions, refresh_tokens, users},
    },
};

/// A user as stored, password hash included: never serialised as is. Accounts made by
/// an OpenID Connect sign-in have no password (`None`) until a reset sets one.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub password_hash: Option<String>,
    pub full_name: String,
    pub role: UserRole,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub email_verified: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a str,
    pub password_hash: Option<&'a str>,
    pub full_name: &'a str,
    pub role: UserRole,
    pub email_verified: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = login_sessions)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub token_hash: &'a [u8],
    pub session_id: SessionId,
    pub expires_at: DateTime<Utc>,
}
