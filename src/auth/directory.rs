//! The admin's view of accounts: searching them and counting them by role.
//!
//! `auth` owns the `users` table, so these queries live here; `admin` calls them.

use diesel::{dsl::count_star, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    auth::{models::UserRow, schemas::User},
    core::{
        ids::UserId,
        pagination::{self, Page},
    },
    db::{
        enums::{UserRole, UserStatus},
        schema::users,
    },
    error::{AppError, FieldError},
    state::AppState,
};

/// Longest `q` accepted, in characters.
const MAX_QUERY_CHARS: usize = 100;

/// What `GET /admin/users` filters on; every field is optional.
#[derive(Debug, Default)]
pub struct UserFilter<'a> {
    pub role: Option<UserRole>,
    pub status: Option<UserStatus>,
    /// A case-insensitive substring of the email or the full name.
    pub q: Option<&'a str>,
}

/// A `q` as an `ILIKE` pattern matching it literally anywhere: `%`, `_` and the escape
/// character `\` (PostgreSQL's default) are escaped. Blank is no filter; over 100
/// characters or a NUL is a 422.
fn substring_pattern(q: &str) -> Result<Option<String>, FieldError> {
    let q = q.trim();
    if q.chars().count() > MAX_QUERY_CHARS || q.contains('\0') {
        return Err(FieldError::new(
            "q",
            "must be at most 100 characters, without NUL",
        ));
    }
    if q.is_empty() {
        return Ok(None);
    }
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(Some(pattern))
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
    let pattern = filter.q.map(substring_pattern).transpose()?.flatten();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_literally() {
        assert_eq!(substring_pattern("  ").expect("blank"), None);
        assert_eq!(
            substring_pattern(" Ann ").expect("plain").as_deref(),
            Some("%Ann%")
        );
        assert_eq!(
            substring_pattern(r"50%_a\b").expect("wildcards").as_deref(),
            Some(r"%50\%\_a\\b%")
        );
        assert!(substring_pattern("a\0b").is_err());
        assert!(substring_pattern(&"é".repeat(100)).is_ok());
        assert!(substring_pattern(&"é".repeat(101)).is_err());
    }
}
