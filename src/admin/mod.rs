//! Moderation: suspending and reinstating users, with an audit trail.

pub mod routes;
pub mod schemas;
pub mod services;
