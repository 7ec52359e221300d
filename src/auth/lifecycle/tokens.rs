//! Single-use account links (`account_tokens`): at most one live token per user and
//! purpose, so issuing one kills the previous link; only digests are stored, and using
//! a token deletes it.

use std::time::Duration;

use chrono::Utc;
use diesel::{prelude::*, upsert::excluded};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    auth::sessions::{digest, new_token},
    core::ids::UserId,
    db::{enums::AccountTokenPurpose, schema::account_tokens},
};

/// How long a link of `purpose` works.
pub fn lifetime(purpose: AccountTokenPurpose) -> Duration {
    match purpose {
        AccountTokenPurpose::VerifyEmail => Duration::from_secs(24 * 3600),
        AccountTokenPurpose::ResetPassword => Duration::from_secs(30 * 60),
    }
}

/// Makes `user`'s new token for `purpose`, replacing (so killing) any earlier one, and
/// returns it: the only copy, for the email.
pub async fn issue(
    conn: &mut AsyncPgConnection,
    user: UserId,
    purpose: AccountTokenPurpose,
) -> Result<String, diesel::result::Error> {
    let (token, hash) = new_token();
    let expires_at = Utc::now()
        + chrono::Duration::from_std(lifetime(purpose)).unwrap_or(chrono::Duration::zero());
    diesel::insert_into(account_tokens::table)
        .values((
            account_tokens::user_id.eq(user),
            account_tokens::purpose.eq(purpose),
            account_tokens::token_hash.eq(&hash),
            account_tokens::expires_at.eq(expires_at),
        ))
        .on_conflict((account_tokens::user_id, account_tokens::purpose))
        .do_update()
        .set((
            account_tokens::token_hash.eq(excluded(account_tokens::token_hash)),
            account_tokens::expires_at.eq(excluded(account_tokens::expires_at)),
            account_tokens::created_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// The user a live token of `purpose` belongs to, leaving the token usable.
pub async fn holder(
    conn: &mut AsyncPgConnection,
    purpose: AccountTokenPurpose,
    token: &str,
) -> Result<Option<UserId>, diesel::result::Error> {
    account_tokens::table
        .filter(account_tokens::token_hash.eq(digest(token)))
        .filter(account_tokens::purpose.eq(purpose))
        .filter(account_tokens::expires_at.gt(Utc::now()))
        .select(account_tokens::user_id)
        .first(conn)
        .await
        .optional()
}

/// Uses up a live token of `purpose` and returns its user; `None` when the token is
/// unknown, used, superseded or expired. Two requests racing on one token: one wins.
pub async fn consume(
    conn: &mut AsyncPgConnection,
    purpose: AccountTokenPurpose,
    token: &str,
) -> Result<Option<UserId>, diesel::result::Error> {
    diesel::delete(account_tokens::table)
        .filter(account_tokens::token_hash.eq(digest(token)))
        .filter(account_tokens::purpose.eq(purpose))
        .filter(account_tokens::expires_at.gt(Utc::now()))
        .returning(account_tokens::user_id)
        .get_result(conn)
        .await
        .optional()
}
