//! Who is calling: the bearer scheme and the role guards routes declare.
//!
//! Each guard is a poem-openapi `SecurityScheme` named `bearer`, so the OpenAPI document
//! shows one scheme while every route states, in its signature, which roles it admits.
//! A route that takes no guard is public; one that takes a guard cannot forget to check.

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};

use crate::{
    core::ids::{SessionId, UserId},
    db::enums::UserRole,
    error::AppError,
    state::AppState,
};

/// The authenticated caller, from a valid, unrevoked access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: UserId,
    pub role: UserRole,
    pub session: SessionId,
}

/// Verifies the token, then asks Redis (one round trip) whether its login was revoked.
async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<CurrentUser> {
    Ok(verify(req, &bearer.token).await?)
}

async fn verify(req: &Request, token: &str) -> Result<CurrentUser, AppError> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| AppError::internal("application state missing"))?;
    let claims = state.tokens.verify(token)?;
    // Boxed: the revocation check (Redis, with a PostgreSQL fallback) is a future of
    // several KiB that every guarded handler's future would otherwise carry and copy.
    // On the request's log lines from here on, so the log says who did what.
    tracing::Span::current().record("user_id", tracing::field::display(claims.sub));
    if Box::pin(state.revocations.is_revoked(&state.db, claims.sid)).await? {
        return Err(AppError::TokenRevoked);
    }
    Ok(CurrentUser {
        id: claims.sub,
        role: claims.role,
        session: claims.sid,
    })
}

/// Authenticates, then admits only `role` (others get 403).
async fn require(req: &Request, bearer: Bearer, role: UserRole) -> poem::Result<CurrentUser> {
    let user = authenticate(req, bearer).await?;
    if user.role == role {
        Ok(user)
    } else {
        Err(AppError::Forbidden("your role may not use this endpoint").into())
    }
}

/// Any authenticated user.
#[derive(SecurityScheme)]
#[oai(
    rename = "bearer",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "authenticate"
)]
pub struct AnyUser(pub CurrentUser);

/// Admins only.
#[derive(SecurityScheme)]
#[oai(
    rename = "bearer",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "admin_only"
)]
pub struct AdminUser(pub CurrentUser);

async fn admin_only(req: &Request, bearer: Bearer) -> poem::Result<CurrentUser> {
    require(req, bearer, UserRole::Admin).await
}

/// Workers only.
#[derive(SecurityScheme)]
#[oai(
    rename = "bearer",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "worker_only"
)]
pub struct WorkerUser(pub CurrentUser);

async fn worker_only(req: &Request, bearer: Bearer) -> poem::Result<CurrentUser> {
    require(req, bearer, UserRole::Worker).await
}

/// Clients only.
#[derive(SecurityScheme)]
#[oai(
    rename = "bearer",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "client_only"
)]
pub struct ClientUser(pub CurrentUser);

async fn client_only(req: &Request, bearer: Bearer) -> poem::Result<CurrentUser> {
    require(req, bearer, UserRole::Client).await
}

/// A caller who may or may not be logged in (public reads that show owners more).
pub async fn optional_user(req: &Request) -> Result<Option<CurrentUser>, AppError> {
    let Some(header) = req.headers().get(poem::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ))?;
    verify(req, token).await.map(Some)
}
