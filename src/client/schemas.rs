//! Request and response bodies of the client endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::MaybeUndefined};

use crate::core::ids::UserId;

#[derive(Debug, Object)]
pub struct ClientProfile {
    pub id: UserId,
    pub full_name: String,
    #[oai(nullable)]
    pub phone: Option<String>,
    #[oai(nullable)]
    pub city: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Absent fields are kept; `null` clears `phone` or `city` (`full_name` is required).
#[derive(Debug, Object)]
pub struct ClientPatch {
    #[oai(validator(max_length = 200, pattern = r"\S"))]
    pub full_name: MaybeUndefined<String>,
    #[oai(nullable, validator(max_length = 40, pattern = r"\S"))]
    pub phone: MaybeUndefined<String>,
    #[oai(nullable, validator(max_length = 100, pattern = r"\S"))]
    pub city: MaybeUndefined<String>,
}
