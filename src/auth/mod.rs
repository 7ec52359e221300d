//! Accounts and logins: register, login, refresh, logout, me, password change; the
//! account lifecycle (email verification, password reset) in [`lifecycle`].

pub mod directory;
pub mod lifecycle;
pub mod models;
pub mod routes;
pub mod schemas;
pub mod services;
pub mod sessions;
