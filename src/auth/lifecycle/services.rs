//! Rules of the account lifecycle: verifying an email, asking for another link,
//! forgetting and resetting a password, and sending the emails these need.
//!
//! Requests only record an event (in their own transaction); the event dispatcher sends
//! the email after commit, retrying until the mail server accepts it. The link's token
//! is made at that moment and only its digest stored, so no usable token ever sits in
//! the database, and a request costs the same whether or not an email follows.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{
    auth::{
        lifecycle::tokens,
        services::{check_password, normalize_email},
        sessions::{self, RevokeReason, Scope},
    },
    config::Secret,
    core::{auth::CurrentUser, ids::UserId, limiter::ClientIp},
    db::{enums::AccountTokenPurpose, schema::users},
    error::{AppError, codes},
    events::{self, Event},
    mail::templates,
    state::AppState,
};

/// Marks the email of the token's user verified; the token is used up.
pub async fn verify_email(state: &AppState, token: &str) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let user = tokens::consume(conn, AccountTokenPurpose::VerifyEmail, token)
            .await?
            .ok_or(AppError::TokenInvalid)?;
        diesel::update(users::table.find(user))
            .set(users::email_verified.eq(true))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// Queues a new verification email for the caller (its link replaces earlier ones).
/// Each costs an email, so it spends the caller's password-attempt budget.
pub async fn resend_verification(
    state: &AppState,
    caller: CurrentUser,
    ip: ClientIp,
) -> Result<(), AppError> {
    state.limits.check_login(ip, &caller.id.to_string())?;
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let verified: bool = users::table
            .find(caller.id)
            .select(users::email_verified)
            .first(conn)
            .await?;
        if verified {
            return Err(AppError::conflict(
                codes::EMAIL_ALREADY_VERIFIED,
                "the email address is already verified",
            ));
        }
        events::record(
            conn,
            &Event::EmailVerificationRequested { user_id: caller.id },
        )
        .await?;
        Ok(())
    })
    .await
}

/// Queues a reset email when an account uses `email`; the answer and its cost are the
/// same either way (one indexed read, no email sent in the request), so it reveals
/// nothing. Rate limited like a login to that address.
pub async fn forgot_password(state: &AppState, ip: ClientIp, raw: &str) -> Result<(), AppError> {
    let email = normalize_email(raw);
    // Keyed like a login: a malformed address spends its own budget, not a shared one.
    let key = email.clone().unwrap_or_else(|_| raw.trim().to_lowercase());
    state.limits.check_login(ip, &key)?;
    let email = email?;
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let user = users::table
            .filter(users::email.eq(&email))
            .select(users::id)
            .first(conn)
            .await
            .optional()?;
        // Recorded for an unknown email too: skipping the write made those answers
        // 1.7 ms faster at the median (scripts/time-forgot.sh), which told who has an
        // account.
        events::record(conn, &Event::PasswordResetRequested { user_id: user }).await?;
        Ok(())
    })
    .await
}

/// Sets a new password from a reset link and revokes every session of the account
/// (through the durable revocation path, like a password change). The token is checked
/// before the costly hash and used up in the transaction that stores it.
pub async fn reset_password(
    state: &AppState,
    token: &str,
    new_password: Secret,
) -> Result<(), AppError> {
    let purpose = AccountTokenPurpose::ResetPassword;
    let mut conn = state.conn().await?;
    let user = tokens::holder(&mut conn, purpose, token)
        .await?
        .ok_or(AppError::TokenInvalid)?;
    let (email, name): (String, String) = users::table
        .find(user)
        .select((users::email, users::full_name))
        .first(&mut conn)
        .await?;
    drop(conn);
    check_password("new_password", new_password.expose(), &[&email, &name])?;
    let hash = state.passwords.hash(new_password).await?;
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        // Used or replaced since the check above: refused, nothing changes.
        if tokens::consume(conn, purpose, token).await? != Some(user) {
            return Err(AppError::TokenInvalid);
        }
        diesel::update(users::table.find(user))
            .set((
                users::password_hash.eq(&hash),
                // The link reached the inbox: that proves the address too.
                users::email_verified.eq(true),
                users::updated_at.eq(chrono::Utc::now()),
            ))
            .execute(conn)
            .await?;
        let scope = Scope::User { user, except: None };
        sessions::revoke_in(state, conn, scope, RevokeReason::PasswordReset).await
    })
    .await
}

/// The email `event` asks for, sent by the dispatcher; other events need none. An error
/// means the mail server did not take it: the dispatcher retries with backoff.
pub async fn send_email_for(state: &AppState, event: &Event) -> anyhow::Result<()> {
    match event {
        Event::EmailVerificationRequested { user_id } => {
            send_link(state, *user_id, AccountTokenPurpose::VerifyEmail).await
        }
        Event::PasswordResetRequested {
            user_id: Some(user_id),
        } => send_link(state, *user_id, AccountTokenPurpose::ResetPassword).await,
        _ => Ok(()),
    }
}

/// Issues `user`'s new link for `purpose` (killing the previous one) and emails it.
/// The token is committed before the email leaves, so the link works on arrival.
async fn send_link(
    state: &AppState,
    user: UserId,
    purpose: AccountTokenPurpose,
) -> anyhow::Result<()> {
    let mut conn = state.conn().await?;
    let found: Option<(String, String, bool)> = users::table
        .find(user)
        .select((users::email, users::full_name, users::email_verified))
        .first(&mut conn)
        .await
        .optional()?;
    let Some((email, name, verified)) = found else {
        // The account is gone: nobody to write to.
        return Ok(());
    };
    if purpose == AccountTokenPurpose::VerifyEmail && verified {
        return Ok(());
    }
    let token = tokens::issue(&mut conn, user, purpose).await?;
    drop(conn);
    let (path, template) = match purpose {
        AccountTokenPurpose::VerifyEmail => ("verify-email", &templates::VERIFY_EMAIL),
        AccountTokenPurpose::ResetPassword => ("reset-password", &templates::RESET_PASSWORD),
    };
    let link = format!(
        "{}/{path}?token={token}",
        state.settings.public_url.as_str().trim_end_matches('/')
    );
    let to = lettre::message::Mailbox::new(Some(name.clone()), email.parse()?);
    state.mailer.send(template.render(to, &name, &link)).await?;
    metrics::counter!("emails_sent_total").increment(1);
    tracing::info!(%user, purpose = purpose.as_str(), "account email sent");
    Ok(())
}
