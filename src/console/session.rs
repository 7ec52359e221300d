//! The console's sign-in state: a sealed session cookie bound to a row of
//! `login_sessions`, CSRF tokens derived from it, and one-shot notices.
//!
//! The cookie holds no credential of its own: it names a login session (the same row a
//! bearer token names) and is sealed with an HMAC, so it cannot be forged or altered.
//! Every request checks that session with the bearer tokens' own liveness check
//! ([`crate::core::revocation`]), so logout, a password change or a suspension ends a
//! console session at once, on every instance.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use poem::{
    Body, FromRequest, Request, RequestBody,
    http::{HeaderValue, header},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::Sha256;

use crate::{
    config::{AppEnv, Secret},
    core::{
        auth::CurrentUser,
        ids::{SessionId, UserId},
    },
    db::enums::UserRole,
    error::AppError,
    state::AppState,
};

/// The signed-in admin's session.
pub const SESSION_COOKIE: &str = "console_session";
/// A random value set with the sign-in form, so the form's CSRF token has something
/// to be bound to before there is a session.
pub const LOGIN_COOKIE: &str = "console_login";
/// What the last action did, shown once by the page it redirected to.
pub const NOTICE_COOKIE: &str = "console_notice";

/// How long a console sign-in lasts, whatever happens to its login session: a working
/// day. Signing out, a password change or a suspension end it sooner.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// How long a sign-in form may sit open before it must be reloaded.
const LOGIN_FORM_TTL: Duration = Duration::from_secs(3600);
/// A notice is read by the redirect that follows its action.
const NOTICE_TTL: Duration = Duration::from_secs(60);
/// Bytes of HMAC kept in a sealed value: forging one means guessing 128 bits.
const MAC_BYTES: usize = 16;

/// Seals and opens the console's cookies and derives its CSRF tokens, under a key
/// derived from the server secret (domain-separated from tokens and cursors).
pub struct ConsoleKeys {
    key: Vec<u8>,
}

impl ConsoleKeys {
    pub fn new(secret: &Secret) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"marketplace console key v1");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// HMAC over a purpose label and a value, so a value sealed for one purpose (a
    /// notice) never opens as another (a session).
    fn mac(&self, purpose: &str, value: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac
    }

    fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> Result<String, AppError> {
        let mut bytes = serde_json::to_vec(value).map_err(AppError::internal)?;
        let tag = self.mac(purpose, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_BYTES]);
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn open<T: DeserializeOwned>(&self, purpose: &str, sealed: &str) -> Option<T> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let split = bytes.len().checked_sub(MAC_BYTES)?;
        let (payload, tag) = bytes.split_at(split);
        self.mac(purpose, payload).verify_truncated_left(tag).ok()?;
        serde_json::from_slice(payload).ok()
    }

    /// The CSRF token of every form of a session: the same for the session's lifetime,
    /// unguessable without the key, and useless with any other session.
    pub fn csrf_token(&self, session: SessionId) -> String {
        let tag = self
            .mac("csrf", session.0.as_bytes())
            .finalize()
            .into_bytes();
        URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES])
    }

    /// The CSRF token of the sign-in form, bound to its [`LOGIN_COOKIE`] nonce.
    pub fn login_token(&self, nonce: &str) -> String {
        let tag = self.mac("login", nonce.as_bytes()).finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES])
    }

    /// Whether `presented` is `expected`, in time independent of where they differ.
    fn tokens_match(expected: &str, presented: &str) -> bool {
        let (a, b) = (expected.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// What the session cookie says: whose session, and until when the cookie is good.
#[derive(Debug, Serialize, Deserialize)]
struct SessionClaim {
    sid: SessionId,
    uid: UserId,
    /// Unix seconds.
    exp: i64,
}

/// How an action went, shown once at the top of the next page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Notice {
    pub ok: bool,
    pub text: String,
}

impl Notice {
    pub fn done(text: impl Into<String>) -> Self {
        Self {
            ok: true,
            text: text.into(),
        }
    }

    pub fn failed(text: impl Into<String>) -> Self {
        Self {
            ok: false,
            text: text.into(),
        }
    }
}

/// A `Set-Cookie` value scoped to the console: HttpOnly, SameSite=Strict, `Path=/admin`,
/// and `Secure` everywhere but development (plain-HTTP `localhost`).
pub fn cookie(state: &AppState, name: &str, value: &str, max_age: Duration) -> HeaderValue {
    let secure = if state.settings.app_env == AppEnv::Development {
        ""
    } else {
        "; Secure"
    };
    let value = format!(
        "{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| unreachable!("cookie values are base64url"))
}

/// A `Set-Cookie` value that deletes a console cookie.
pub fn expired(state: &AppState, name: &str) -> HeaderValue {
    cookie(state, name, "", Duration::ZERO)
}

/// The value of cookie `name` in the request, if any.
pub fn read_cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The session cookie for a freshly opened login session of an admin.
pub fn session_cookie(
    state: &AppState,
    session: SessionId,
    user: UserId,
) -> Result<HeaderValue, AppError> {
    let claim = SessionClaim {
        sid: session,
        uid: user,
        exp: now() + SESSION_TTL.as_secs() as i64,
    };
    let sealed = state.console_keys.seal("session", &claim)?;
    Ok(cookie(state, SESSION_COOKIE, &sealed, SESSION_TTL))
}

/// A new sign-in nonce and its cookie; the form carries [`ConsoleKeys::login_token`].
pub fn login_nonce(state: &AppState) -> (String, HeaderValue) {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let nonce = URL_SAFE_NO_PAD.encode(bytes);
    let header = cookie(state, LOGIN_COOKIE, &nonce, LOGIN_FORM_TTL);
    (nonce, header)
}

/// Whether the sign-in form's token matches the nonce cookie it was served with.
pub fn check_login_token(state: &AppState, req: &Request, presented: &str) -> bool {
    read_cookie(req, LOGIN_COOKIE).is_some_and(|nonce| {
        ConsoleKeys::tokens_match(&state.console_keys.login_token(nonce), presented)
    })
}

/// A notice cookie for the page the action redirects to.
pub fn notice_cookie(state: &AppState, notice: &Notice) -> Result<HeaderValue, AppError> {
    let sealed = state.console_keys.seal("notice", notice)?;
    Ok(cookie(state, NOTICE_COOKIE, &sealed, NOTICE_TTL))
}

/// The notice the request carries, if one was sealed by this service.
pub fn read_notice(state: &AppState, req: &Request) -> Option<Notice> {
    read_cookie(req, NOTICE_COOKIE).and_then(|v| state.console_keys.open("notice", v))
}

fn state_of(req: &Request) -> Result<&AppState, AppError> {
    req.data::<AppState>()
        .ok_or_else(|| AppError::internal("application state missing"))
}

/// A signed-in admin, from a sealed, unexpired session cookie whose login session is
/// still live. Anything less is a 401, which the console answers with the sign-in page.
#[derive(Debug, Clone)]
pub struct ConsoleAdmin {
    pub user: CurrentUser,
    /// For the forms the page renders.
    pub csrf: String,
    /// What the action that led here did, to show once.
    pub notice: Option<Notice>,
}

impl ConsoleAdmin {
    async fn authenticate(req: &Request) -> Result<Self, AppError> {
        let state = state_of(req)?;
        let claim: SessionClaim = read_cookie(req, SESSION_COOKIE)
            .and_then(|v| state.console_keys.open("session", v))
            .filter(|c: &SessionClaim| c.exp > now())
            .ok_or(AppError::Unauthorized("sign in to use the console"))?;
        tracing::Span::current().record("user_id", tracing::field::display(claim.uid));
        if Box::pin(state.revocations.is_revoked(&state.db, claim.sid)).await? {
            return Err(AppError::TokenRevoked);
        }
        Ok(Self {
            user: CurrentUser {
                id: claim.uid,
                // Only admins are ever given a console cookie (see `routes::login`),
                // and a user's role never changes.
                role: UserRole::Admin,
                session: claim.sid,
            },
            csrf: state.console_keys.csrf_token(claim.sid),
            notice: read_notice(state, req),
        })
    }
}

impl<'a> FromRequest<'a> for ConsoleAdmin {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self::authenticate(req).await?)
    }
}

/// Largest form body the console reads: its forms carry a reason of at most 1000
/// characters (4 bytes each, percent-encoded) and a token.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// A form posted by a signed-in admin, its CSRF token checked. Every console `POST`
/// but sign-in takes one, so no action can skip the check.
pub struct Posted<T> {
    pub admin: CurrentUser,
    pub form: T,
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

/// Reads an `application/x-www-form-urlencoded` body of at most `MAX_FORM_BYTES`.
pub async fn read_form<T: DeserializeOwned>(body: Body) -> Result<T, AppError> {
    let bytes = body
        .into_bytes_limit(MAX_FORM_BYTES)
        .await
        .map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => {
                AppError::PayloadTooLarge("forms are limited to 16 KiB".into())
            }
            other => AppError::MalformedBody(other.to_string()),
        })?;
    serde_urlencoded::from_bytes(&bytes)
        .map_err(|err| AppError::MalformedBody(format!("invalid form: {err}")))
}

impl<'a, T: DeserializeOwned + Send> FromRequest<'a> for Posted<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let admin = ConsoleAdmin::authenticate(req).await?;
        let envelope: Envelope<T> = read_form(body.take()?).await?;
        if !ConsoleKeys::tokens_match(&admin.csrf, &envelope.csrf) {
            return Err(AppError::Forbidden(
                "the form's security token is missing or wrong; reload the page and try again",
            )
            .into());
        }
        Ok(Self {
            admin: admin.user,
            form: envelope.form,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ConsoleKeys {
        ConsoleKeys::new(&Secret::new("k".repeat(32)))
    }

    #[test]
    fn sealed_values_open_only_for_their_purpose_and_key() {
        let notice = Notice::done("Approved");
        let sealed = keys().seal("notice", &notice).expect("seal");
        assert_eq!(keys().open::<Notice>("notice", &sealed), Some(notice));
        assert_eq!(keys().open::<Notice>("session", &sealed), None);
        let other = ConsoleKeys::new(&Secret::new("x".repeat(32)));
        assert_eq!(other.open::<Notice>("notice", &sealed), None);
        let mut tampered = sealed.into_bytes();
        tampered[2] ^= 1;
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert_eq!(keys().open::<Notice>("notice", &tampered), None);
    }

    #[test]
    fn csrf_tokens_are_per_session() {
        let (a, b) = (SessionId::new(), SessionId::new());
        assert_eq!(keys().csrf_token(a), keys().csrf_token(a));
        assert_ne!(keys().csrf_token(a), keys().csrf_token(b));
        assert_ne!(keys().csrf_token(a), keys().login_token(&a.to_string()));
        assert!(ConsoleKeys::tokens_match("abc", "abc"));
        assert!(!ConsoleKeys::tokens_match("abc", "abd"));
        assert!(!ConsoleKeys::tokens_match("abc", ""));
    }
}
