//! `oidc_identities`: which user a provider account `(provider, sub)` signs in as.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{core::ids::UserId, db::schema::oidc_identities};

/// The user linked to `subject` at `provider`, if any.
pub async fn linked_user(
    conn: &mut AsyncPgConnection,
    provider: &str,
    subject: &str,
) -> Result<Option<UserId>, diesel::result::Error> {
    oidc_identities::table
        .find((provider, subject))
        .select(oidc_identities::user_id)
        .first(conn)
        .await
        .optional()
}

/// Links `subject` at `provider` to `user`.
pub async fn link(
    conn: &mut AsyncPgConnection,
    provider: &str,
    subject: &str,
    user: UserId,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(oidc_identities::table)
        .values((
            oidc_identities::provider.eq(provider),
            oidc_identities::subject.eq(subject),
            oidc_identities::user_id.eq(user),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
