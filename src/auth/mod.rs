//! Accounts and logins: register, login, refresh, logout, me, password change; the
//! account lifecycle (email verification, password reset) in [`lifecycle`], sign-in
//! with an OpenID Connect provider in [`oidc`].

pub mod directory;
pub mod lifecycle;
pub mod models;
pub mod oidc;
pub mod routes;
pub mod schemas;
pub mod services;
pub mod sessions;
