//! The admin's view of accounts: searching them and counting them by role.
//!
//! `auth` owns the `users` table, so these queries live here; `admin` calls them.

use std::collections::HashMap;

use diesel::{dsl::count_star, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    auth::{models::UserRow, schemas::User},
    core::{
        ids::UserId,
        pagination::{self, Page},
        validate::substring_pattern,
    },
    db::{
        enums::{UserRole, UserStatus},
        schema::users,
    },
    error::AppError,
    state::AppState,
};

/// What `GET /admin/users` filters on; every field is optional.
#[derive(Debug, Default)]
pub struct UserFilter<'a> {
    pub role: Option<UserRole>,
    pub status: Option<UserStatus>,
    /// A case-insensitive substring of the email or the full name.
    pub q: Option<&'a str>,
}

/// Users matching `filter`, newest first, keyset on the (time-ordered) id.
///
/// Role and status walk `users_role_idx`, `users_status_idx` or `users_role_status_idx`;
/// `q` is served by the trigram indexes on email and full name.
pub async fn search(
    state: &AppState,
    filter: UserFilter<'_>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<User>, AppError> {
    let limit = pagination::limit(limit)?;
    let pattern = filter
        .q
        .map(|q| substring_pattern("q", q))
        .transpose()?
        .flatten();
    let after: Option<UserId> = state.cursors.decode_opt(cursor)?;
    let mut query = users::table
        .order(users::id.desc())
        .limit(limit + 1)
        .select(UserRow::as_select())
        .into_boxed();
    if let Some(role) = filter.role {
        query = query.filter(users::role.eq(role));
    }
    if let Some(status) = filter.status {
        query = query.filter(users::status.eq(status));
    }
    if let Some(pattern) = pattern {
        query = query.filter(
            users::email
                .ilike(pattern.clone())
                .or(users::full_name.ilike(pattern)),
        );
    }
    if let Some(after) = after {
        query = query.filter(users::id.lt(after));
    }
    let rows = query.load(&mut state.conn().await?).await?;
    pagination::paginate(&state.cursors, rows, limit, |r| r.id, User::from)
}

/// How many users hold each role (roles without users are absent).
pub async fn count_by_role(conn: &mut AsyncPgConnection) -> Result<Vec<(UserRole, i64)>, AppError> {
    Ok(users::table
        .group_by(users::role)
        .select((users::role, count_star()))
        .load(conn)
        .await?)
}

/// One user by id, as the API shows users (404 when there is none).
pub async fn find(state: &AppState, id: UserId) -> Result<User, AppError> {
    let mut conn = state.conn().await?;
    let row: UserRow = users::table
        .find(id)
        .select(UserRow::as_select())
        .first(&mut conn)
        .await?;
    Ok(row.into())
}

/// The emails of `ids` (unknown ids are absent), in one query: how lists of rows that
/// point at users (submissions, listings, audit entries) name them for a person.
pub async fn emails(
    state: &AppState,
    ids: impl IntoIterator<Item = UserId>,
) -> Result<HashMap<UserId, String>, AppError> {
    let mut ids: Vec<UserId> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut conn = state.conn().await?;
    let rows: Vec<(UserId, String)> = users::table
        .filter(users::id.eq_any(&ids))
        .select((users::id, users::email))
        .load(&mut conn)
        .await?;
    Ok(rows.into_iter().collect())
}
