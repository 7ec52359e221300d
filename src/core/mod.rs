//! Cross-cutting machinery every feature module shares.

pub mod auth;
pub mod connections;
pub mod document_index;
pub mod edge;
pub mod ids;
pub mod json;
pub mod jwt;
pub mod limiter;
pub mod logging;
pub mod metrics;
pub mod multipart;
pub mod pagination;
pub mod password;
pub mod patch;
pub mod redis;
pub mod request_id;
pub mod revocation;
pub mod schema_check;
pub mod signing_key;
pub mod upload;
pub mod validate;
