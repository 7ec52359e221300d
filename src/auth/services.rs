//! Account rules: who may register, log in, refresh, log out and change a password.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{
    auth::{
        models::{NewUser, UserRow},
        schemas::{LoginRequest, PasswordChangeRequest, RegisterRequest, TokenPair, User},
        sessions::{self, RevokeReason, Scope},
    },
    config::Secret,
    core::validate::{all_valid, trimmed},
    core::{auth::CurrentUser, ids::UserId, limiter::ClientIp},
    db::{
        enums::UserRole,
        schema::{clients, users, workers},
    },
    error::{AppError, FieldError},
    state::AppState,
};

const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
const NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=200;
/// How much of a new password its strength is judged on.
const JUDGED_CHARS: usize = 64;

/// An email address, trimmed and lower-cased: the form it is stored and looked up in.
pub fn normalize_email(raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    if email.len() <= 254 && email_address::EmailAddress::is_valid(&email) {
        Ok(email)
    } else {
        Err(FieldError::new("email", "must be a valid email address"))
    }
}

/// A new password: 8 to 128 characters (not bytes), and not one an attacker guesses
/// early (ASVS 6.2.4).
///
/// "Early" is zxcvbn's estimate below 10^6 guesses: the passwords of its 30,000-entry
/// breach list (`password`, `12345678`), keyboard walks, repeats, sequences, and the
/// account's own `context` (its email, its name). An online attacker held to a few
/// guesses a minute per address gets through none of the rest.
pub fn check_password(field: &str, password: &str, context: &[&str]) -> Result<(), FieldError> {
    if !PASSWORD_CHARS.contains(&password.chars().count()) {
        return Err(FieldError::new(field, "must be 8 to 128 characters"));
    }
    // zxcvbn's cost grows steeply with length on crafted input; a password whose first
    // 64 characters are hard to guess is not a weak one.
    let judged: String = password.chars().take(JUDGED_CHARS).collect();
    if zxcvbn::zxcvbn(&judged, context).score() < zxcvbn::Score::Two {
        return Err(FieldError::new(
            field,
            "is too common or too easy to guess; a few unrelated words make a strong one",
        ));
    }
    Ok(())
}

fn normalize_name(raw: &str) -> Result<String, FieldError> {
    trimmed("full_name", raw, NAME_CHARS)
}

/// Creates a user and its role profile in one transaction.
pub async fn create_user(
    state: &AppState,
    email: &str,
    password: Secret,
    full_name: &str,
    role: UserRole,
) -> Result<UserRow, AppError> {
    let password_hash = state.passwords.hash(password).await?;
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let user = NewUser {
            id: UserId::new(),
            email,
            password_hash: Some(&password_hash),
            full_name,
            role,
            email_verified: false,
        };
        insert_account(conn, user).await
    })
    .await
}

/// Within the caller's transaction: inserts `user` and its role profile, and, unless
/// the address is already verified or the user is an admin (made at the command line
/// by an operator), queues the email that verifies it. An email already in use → 409.
pub async fn insert_account(
    conn: &mut AsyncPgConnection,
    user: NewUser<'_>,
) -> Result<UserRow, AppError> {
    let user: UserRow = diesel::insert_into(users::table)
        .values(user)
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await
        .map_err(|err| match err {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => AppError::conflict(
                crate::error::codes::EMAIL_TAKEN,
                "an account with this email already exists",
            ),
            other => other.into(),
        })?;
    match user.role {
        UserRole::Worker => {
            diesel::insert_into(workers::table)
                .values(workers::user_id.eq(user.id))
                .execute(conn)
                .await?;
        }
        UserRole::Client => {
            diesel::insert_into(clients::table)
                .values(clients::user_id.eq(user.id))
                .execute(conn)
                .await?;
        }
        UserRole::Admin => {}
    }
    if user.role != UserRole::Admin && !user.email_verified {
        crate::events::record(
            conn,
            &crate::events::Event::EmailVerificationRequested { user_id: user.id },
        )
        .await?;
    }
    Ok(user)
}

/// Self-service sign-up, for clients and workers only.
pub async fn register(
    state: &AppState,
    ip: ClientIp,
    body: RegisterRequest,
) -> Result<User, AppError> {
    let email = normalize_email(&body.email);
    // Before any work on the password: judging its strength costs milliseconds.
    state
        .limits
        .check_login(ip, email.as_deref().unwrap_or(body.email.trim()))?;
    let name = normalize_name(&body.full_name);
    all_valid([
        email.as_ref().err().cloned(),
        check_password(
            "password",
            &body.password,
            &[body.email.as_str(), &body.full_name],
        )
        .err(),
        name.as_ref().err().cloned(),
        (body.role == UserRole::Admin).then(|| FieldError::new("role", "must be client or worker")),
    ])?;
    let (email, name) = (email?, name?);
    create_user(state, &email, Secret::new(body.password), &name, body.role)
        .await
        .map(User::from)
}

/// Checks the password (always spending one hash), then opens a session. A wrong
/// email and a wrong password get the same answer; suspension is revealed only to
/// someone who knows the password.
pub async fn login(
    state: &AppState,
    ip: ClientIp,
    body: LoginRequest,
) -> Result<TokenPair, AppError> {
    let user = authenticate(state, ip, body).await?;
    sessions::open(state, &user).await
}

/// The password check of a login, under the login rate limit, opening nothing: the
/// admin console looks at the role before it opens a session of its own.
pub async fn authenticate(
    state: &AppState,
    ip: ClientIp,
    body: LoginRequest,
) -> Result<UserRow, AppError> {
    // A malformed email cannot match an account; it still costs a hash below.
    let email = normalize_email(&body.email).unwrap_or_else(|_| body.email.trim().to_lowercase());
    state.limits.check_login(ip, &email)?;
    let mut conn = state.conn().await?;
    let user: Option<UserRow> = users::table
        .filter(users::email.eq(&email))
        .select(UserRow::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    drop(conn);
    // No account, or one without a password (made by an OpenID sign-in): a dummy hash
    // is spent and the answer is the same 401.
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    if !state
        .passwords
        .verify(Secret::new(body.password), hash)
        .await?
    {
        return Err(AppError::InvalidCredentials);
    }
    user.ok_or(AppError::InvalidCredentials)
}

/// Revokes the caller's login, and the login of `refresh_token` when it is the caller's.
pub async fn logout(
    state: &AppState,
    caller: CurrentUser,
    refresh_token: Option<&str>,
) -> Result<(), AppError> {
    let other = match refresh_token {
        Some(token) => sessions::session_of(state, caller.id, token).await?,
        None => None,
    };
    let mut covered = vec![caller.session];
    covered.extend(other.filter(|s| *s != caller.session));
    sessions::revoke(state, Scope::Sessions(&covered), RevokeReason::Logout).await
}

pub async fn me(state: &AppState, caller: CurrentUser) -> Result<User, AppError> {
    let mut conn = state.conn().await?;
    let user: UserRow = users::table
        .find(caller.id)
        .select(UserRow::as_select())
        .first(&mut conn)
        .await?;
    Ok(user.into())
}

/// Changes the password and revokes every other login of the user. Guesses at the
/// current password are rate limited like logins, keyed by the account.
pub async fn change_password(
    state: &AppState,
    caller: CurrentUser,
    ip: ClientIp,
    body: PasswordChangeRequest,
) -> Result<(), AppError> {
    state.limits.check_login(ip, &caller.id.to_string())?;
    let mut conn = state.conn().await?;
    let verified_hash: Option<String> = users::table
        .find(caller.id)
        .select(users::password_hash)
        .first(&mut conn)
        .await?;
    drop(conn);
    let current = Secret::new(body.current_password);
    if !state
        .passwords
        .verify(current, verified_hash.clone())
        .await?
    {
        return Err(AppError::WrongPassword);
    }
    check_password("new_password", &body.new_password, &[])?;
    let new_hash = state.passwords.hash(Secret::new(body.new_password)).await?;
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        // Two changes racing: the second finds the hash it verified gone and fails.
        let stored: Option<String> = users::table
            .find(caller.id)
            .select(users::password_hash)
            .for_update()
            .first(conn)
            .await?;
        if stored != verified_hash {
            return Err(AppError::WrongPassword);
        }
        diesel::update(users::table.find(caller.id))
            .set((
                users::password_hash.eq(Some(&new_hash)),
                users::updated_at.eq(chrono::Utc::now()),
            ))
            .execute(conn)
            .await?;
        let scope = Scope::User {
            user: caller.id,
            except: Some(caller.session),
        };
        sessions::revoke_in(state, conn, scope, RevokeReason::PasswordChanged).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            normalize_email("  Ana@Example.COM ").as_deref(),
            Ok("ana@example.com")
        );
        assert!(normalize_email("not-an-email").is_err());
        assert!(normalize_email("").is_err());
    }

    #[test]
    fn password_length_counts_characters() {
        assert!(check_password("password", "éàüöçñß", &[]).is_err());
        assert!(check_password("password", "éàüöçñßøå", &[]).is_ok());
        assert!(check_password("password", &"xkcd horse ".repeat(12), &[]).is_err());
    }

    #[test]
    fn common_and_guessable_passwords_are_refused() {
        for weak in [
            "password",
            "12345678",
            "Password1",
            "qwertyuiop",
            "aaaaaaaaaa",
            "abcdefgh",
            "iloveyou",
        ] {
            assert!(check_password("password", weak, &[]).is_err(), "{weak}");
        }
        assert!(
            check_password(
                "password",
                "ana.lisbon@example.com",
                &["ana.lisbon@example.com"]
            )
            .is_err(),
            "the account's own email"
        );
        for strong in [
            "correct horse battery",
            "a fine password",
            "marketplace-demo",
        ] {
            assert!(check_password("password", strong, &[]).is_ok(), "{strong}");
        }
    }

    proptest! {
        #[test]
        fn normalised_emails_are_fixed_points(raw in "[A-Za-z0-9]{1,10}(\\.[A-Za-z0-9_+-]{1,10})?@[A-Za-z0-9]{1,20}\\.[A-Za-z]{2,6}") {
            let once = normalize_email(&raw).expect("valid");
            prop_assert_eq!(normalize_email(&once).expect("valid"), once);
        }
    }
}
