//! Single-use WebSocket tickets: how a browser, which cannot set an `Authorization`
//! header on a WebSocket, authenticates the handshake without putting its access token
//! in a URL (and so in proxy logs).
//!
//! A ticket is 256 random bits; Redis holds only its SHA-256 digest, for 30 seconds
//! (`SET … NX EX 30`), and redeeming it is one atomic `GETDEL`: of two handshakes
//! presenting it, on any instances, exactly one gets the user.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use deadpool_redis::redis;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    core::{
        auth::CurrentUser,
        ids::{SessionId, UserId},
        redis::run,
    },
    db::enums::UserRole,
    error::AppError,
    messaging::schemas::WsTicket,
    state::AppState,
};

/// How long a ticket stays redeemable.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// Who a ticket authenticates, as stored in Redis.
#[derive(serde::Serialize, serde::Deserialize)]
struct Holder {
    user: UserId,
    role: UserRole,
    session: SessionId,
}

fn key(state: &AppState, ticket: &str) -> String {
    let digest = Sha256::digest(ticket.as_bytes());
    format!(
        "{}ws-ticket:{}",
        state.settings.redis_prefix,
        URL_SAFE_NO_PAD.encode(digest)
    )
}

/// Issues a ticket for the caller's session.
pub async fn issue(state: &AppState, user: CurrentUser) -> Result<WsTicket, AppError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let ticket = URL_SAFE_NO_PAD.encode(bytes);
    let holder = serde_json::to_string(&Holder {
        user: user.id,
        role: user.role,
        session: user.session,
    })
    .map_err(AppError::internal)?;
    let set = redis::cmd("SET")
        .arg(key(state, &ticket))
        .arg(holder)
        .arg("NX")
        .arg("EX")
        .arg(TICKET_TTL.as_secs())
        .clone();
    let stored: Option<String> =
        run(&state.redis, async |conn| set.query_async(conn).await).await?;
    if stored.is_none() {
        // 256 random bits never collide; refuse rather than overwrite if they ever do.
        return Err(AppError::internal("websocket ticket collision"));
    }
    Ok(WsTicket {
        ticket,
        expires_in: TICKET_TTL.as_secs(),
    })
}

/// Redeems a ticket once. Unknown, used or expired tickets, and tickets whose login has
/// since been revoked, are 401.
pub async fn redeem(state: &AppState, ticket: &str) -> Result<CurrentUser, AppError> {
    let getdel = redis::cmd("GETDEL").arg(key(state, ticket)).clone();
    let holder: Option<String> =
        run(&state.redis, async |conn| getdel.query_async(conn).await).await?;
    let holder: Holder = holder
        .and_then(|json| serde_json::from_str(&json).ok())
        .ok_or(AppError::Unauthorized(
            "the ticket is invalid, expired or already used",
        ))?;
    if state
        .revocations
        .is_revoked(&state.db, holder.session)
        .await?
    {
        return Err(AppError::TokenRevoked);
    }
    Ok(CurrentUser {
        id: holder.user,
        role: holder.role,
        session: holder.session,
    })
}
