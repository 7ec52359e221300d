//! Accounts and logins: register, login, refresh, logout, me, password change.

pub mod directory;
pub mod models;
pub mod routes;
pub mod schemas;
pub mod services;
pub mod sessions;
