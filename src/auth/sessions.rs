//! Login sessions and their refresh-token families.
//!
//! One login creates one session; each refresh consumes the presented token (a
//! conditional update, so two racing refreshes cannot both succeed) and issues a new
//! one in the same session. A token presented twice means it leaked: the whole session
//! is revoked.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    auth::{
        models::{NewRefreshToken, NewSession, UserRow},
        schemas::TokenPair,
    },
    core::ids::{SessionId, UserId},
    db::{
        enums::{UserRole, UserStatus},
        schema::{login_sessions, refresh_tokens, users},
    },
    error::AppError,
    state::AppState,
};

/// Why a session was revoked, as recorded in `login_sessions.revoked_reason`.
#[derive(Debug, Clone, Copy)]
pub enum RevokeReason {
    Logout,
    RefreshReuse,
    PasswordChanged,
    PasswordReset,
    Suspended,
}

impl RevokeReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::RefreshReuse => "refresh_token_reuse",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::Suspended => "suspended",
        }
    }
}

/// 256 random bits, URL-safe, and the SHA-256 digest that is all we store of it
/// (refresh tokens here, single-use account links in `auth::lifecycle::tokens`).
pub(crate) fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let digest = digest(&token);
    (token, digest)
}

pub(crate) fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn refresh_expiry(state: &AppState) -> chrono::DateTime<Utc> {
    Utc::now()
        + chrono::Duration::from_std(state.settings.refresh_token_ttl)
            .unwrap_or(chrono::Duration::days(30))
}

/// Stores a refresh token for `session` and signs the matching access token.
async fn issue_pair(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    user: UserId,
    role: UserRole,
    session: SessionId,
) -> Result<TokenPair, AppError> {
    let (refresh_token, hash) = new_token();
    diesel::insert_into(refresh_tokens::table)
        .values(NewRefreshToken {
            token_hash: &hash,
            session_id: session,
            expires_at: refresh_expiry(state),
        })
        .execute(conn)
        .await?;
    Ok(TokenPair {
        access_token: state.tokens.issue(user, role, session)?,
        refresh_token,
        token_type: "Bearer".to_owned(),
        expires_in: state.tokens.ttl().as_secs(),
    })
}

/// Opens a session for a user whose password was just verified against
/// `user.password_hash` (or whom an OpenID provider just vouched for). The user row is
/// share-locked, so a concurrent suspension or password change either sees this session
/// (and revokes it) or commits first, in which case this login is refused.
pub async fn open(state: &AppState, user: &UserRow) -> Result<TokenPair, AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let session = insert_session(conn, user).await?;
        issue_pair(state, conn, user.id, user.role, session).await
    })
    .await
}

/// Opens a session that carries no tokens: the admin console binds its cookie to it, so
/// logout, password change and suspension end it like any other login.
pub async fn open_without_tokens(state: &AppState, user: &UserRow) -> Result<SessionId, AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| insert_session(conn, user).await)
        .await
}

/// Inside the caller's transaction: re-reads the user row under a share lock (see
/// [`open`]) and inserts the session row.
async fn insert_session(
    conn: &mut AsyncPgConnection,
    user: &UserRow,
) -> Result<SessionId, AppError> {
    let (status, hash): (UserStatus, Option<String>) = users::table
        .find(user.id)
        .select((users::status, users::password_hash))
        .for_share()
        .first(conn)
        .await?;
    if hash != user.password_hash {
        return Err(AppError::InvalidCredentials);
    }
    if status == UserStatus::Suspended {
        return Err(AppError::AccountSuspended);
    }
    let session = SessionId::new();
    diesel::insert_into(login_sessions::table)
        .values(NewSession {
            id: session,
            user_id: user.id,
        })
        .execute(conn)
        .await?;
    Ok(session)
}

/// What presenting a refresh token led to, decided inside one transaction.
enum Rotation {
    Rotated(TokenPair),
    /// The token was already used: its session must be revoked.
    Reused(SessionId),
    /// The token's login was revoked (logout, reuse, password change, suspension).
    Revoked,
    Invalid,
}

/// Exchanges a refresh token for a new pair.
pub async fn rotate(state: &AppState, presented: &str) -> Result<TokenPair, AppError> {
    let hash = digest(presented);
    let mut conn = state.conn().await?;
    let rotation = conn
        .transaction::<_, AppError, _>(async move |conn| {
            let consumed: Option<SessionId> = diesel::update(refresh_tokens::table)
                .filter(refresh_tokens::token_hash.eq(&hash))
                .filter(refresh_tokens::used_at.is_null())
                .filter(refresh_tokens::expires_at.gt(Utc::now()))
                .set(refresh_tokens::used_at.eq(Utc::now()))
                .returning(refresh_tokens::session_id)
                .get_result(conn)
                .await
                .optional()?;
            let Some(session) = consumed else {
                let used: Option<SessionId> = refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&hash))
                    .filter(refresh_tokens::used_at.is_not_null())
                    .select(refresh_tokens::session_id)
                    .first(conn)
                    .await
                    .optional()?;
                return Ok(used.map_or(Rotation::Invalid, Rotation::Reused));
            };
            let (user, role, status, revoked_at) = login_sessions::table
                .inner_join(users::table)
                .filter(login_sessions::id.eq(session))
                .select((
                    users::id,
                    users::role,
                    users::status,
                    login_sessions::revoked_at,
                ))
                .first::<(UserId, UserRole, UserStatus, Option<chrono::DateTime<Utc>>)>(conn)
                .await?;
            if revoked_at.is_some() || status == UserStatus::Suspended {
                return Ok(Rotation::Revoked);
            }
            issue_pair(state, conn, user, role, session)
                .await
                .map(Rotation::Rotated)
        })
        .await?;
    // Give the connection back before revoking, which takes one of its own.
    drop(conn);
    match rotation {
        Rotation::Rotated(pair) => Ok(pair),
        Rotation::Reused(session) => {
            revoke(
                state,
                Scope::Sessions(&[session]),
                RevokeReason::RefreshReuse,
            )
            .await?;
            tracing::warn!(%session, "refresh token reused; session revoked");
            Err(AppError::TokenRevoked)
        }
        Rotation::Revoked => Err(AppError::TokenRevoked),
        Rotation::Invalid => Err(AppError::Unauthorized(
            "the refresh token is invalid, expired or revoked",
        )),
    }
}

/// The session a refresh token belongs to, if it is one of `user`'s.
pub async fn session_of(
    state: &AppState,
    user: UserId,
    presented: &str,
) -> Result<Option<SessionId>, AppError> {
    let mut conn = state.conn().await?;
    Ok(refresh_tokens::table
        .inner_join(login_sessions::table)
        .filter(refresh_tokens::token_hash.eq(digest(presented)))
        .filter(login_sessions::user_id.eq(user))
        .select(login_sessions::id)
        .first(&mut conn)
        .await
        .optional()?)
}

/// Which live sessions a revocation covers.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Sessions(&'a [SessionId]),
    /// Every session of the user, except optionally the caller's own.
    User {
        user: UserId,
        except: Option<SessionId>,
    },
}

/// Revokes the sessions in `scope` in a transaction of its own.
pub async fn revoke(
    state: &AppState,
    scope: Scope<'_>,
    reason: RevokeReason,
) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        revoke_in(state, conn, scope, reason).await
    })
    .await
}

/// Within the caller's transaction: records the revocation in PostgreSQL (durable) and
/// writes it to Redis (fast path) before commit, so a Redis failure rolls it all back.
pub async fn revoke_in(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    scope: Scope<'_>,
    reason: RevokeReason,
) -> Result<(), AppError> {
    let revoked = mark_revoked(conn, scope, reason).await?;
    state.revocations.revoke(&revoked).await?;
    crate::messaging::services::close_sockets(state, conn, &revoked).await
}

/// Marks the live sessions in `scope` revoked and returns their ids.
async fn mark_revoked(
    conn: &mut AsyncPgConnection,
    scope: Scope<'_>,
    reason: RevokeReason,
) -> Result<Vec<SessionId>, AppError> {
    let mut query = diesel::update(login_sessions::table)
        .filter(login_sessions::revoked_at.is_null())
        .into_boxed();
    query = match scope {
        Scope::Sessions(ids) => query.filter(login_sessions::id.eq_any(ids)),
        Scope::User { user, except } => {
            let query = query.filter(login_sessions::user_id.eq(user));
            match except {
                Some(keep) => query.filter(login_sessions::id.ne(keep)),
                None => query,
            }
        }
    };
    Ok(query
        .set((
            login_sessions::revoked_at.eq(Utc::now()),
            login_sessions::revoked_reason.eq(reason.as_str()),
        ))
        .returning(login_sessions::id)
        .get_results(conn)
        .await?)
}
