//! Request and response bodies of the auth endpoints.
//!
//! Bodies holding passwords or tokens deliberately do not derive `Debug`, so they
//! cannot end up in a log line by accident.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::Email};

use crate::{
    auth::models::UserRow,
    core::ids::UserId,
    db::enums::{UserRole, UserStatus},
};

/// A user as the API shows it.
#[derive(Debug, Object)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub full_name: String,
    pub role: UserRole,
    pub status: UserStatus,
    /// Whether the owner proved the address (the link of the verification email).
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            full_name: row.full_name,
            role: row.role,
            status: row.status,
            email_verified: row.email_verified,
            created_at: row.created_at,
        }
    }
}

/// Sign-up. Fields not listed here (`status`, `id`…) are ignored, never assigned.
#[derive(Object)]
pub struct RegisterRequest {
    #[oai(validator(max_length = 254))]
    pub email: Email,
    /// 8 to 128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: String,
    #[oai(validator(max_length = 200, pattern = r"\S"))]
    pub full_name: String,
    /// `client` or `worker`; admins are created with `marketplace create-admin`.
    pub role: UserRole,
}

#[derive(Object)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Object)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Object)]
pub struct LogoutRequest {
    /// The login's refresh token; the caller's own login is revoked either way.
    #[oai(nullable)]
    pub refresh_token: Option<String>,
}

#[derive(Object)]
pub struct PasswordChangeRequest {
    pub current_password: String,
    /// 8 to 128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub new_password: String,
}

/// Credentials of one login.
#[derive(Object)]
pub struct TokenPair {
    pub access_token: String,
    /// Opaque, single use: each refresh returns a new one.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
}
