//! Request and response bodies of the client endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::MaybeUndefined};

use crate::core::ids::UserId;

#[derive(Debug, Object)]
pub struct ClientProfile {
    pub id: UserId,
    pub full_name: String,
    pub phone: Option<String>,
    pub city: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Absent fields are kept; `null` clears `phone` or `city` (`full_name` is required).
#[derive(Debug, Object)]
pub struct ClientPatch {
    pub full_name: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub city: MaybeUndefined<String>,
}
