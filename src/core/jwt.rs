//! Access tokens: HS256 JWTs whose every claim is checked on the way in.
//!
//! Decoding pins the algorithm (no `alg: none`, no RSA/HMAC confusion), requires
//! iss/aud/exp/nbf/sub/jti/sid, validates `nbf` (jsonwebtoken skips it by default)
//! and allows only a few seconds of clock leeway instead of the library's 60.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{
    config::Secret,
    core::ids::{SessionId, UserId},
    db::enums::UserRole,
    error::AppError,
};

pub const ISSUER: &str = "marketplace";
pub const AUDIENCE: &str = "marketplace-api";
/// Clock skew tolerated between instances, in seconds.
const LEEWAY_SECS: u64 = 5;

/// What an access token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: UserId,
    pub role: UserRole,
    /// The login session: revoking it kills this token.
    pub sid: SessionId,
    pub jti: uuid::Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Signs and verifies access tokens with the configured key.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &Secret, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            ttl,
        }
    }

    /// The access-token lifetime, as `expires_in` tells clients.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A fresh access token for one login session.
    pub fn issue(
        &self,
        user: UserId,
        role: UserRole,
        session: SessionId,
    ) -> Result<String, AppError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user,
            role,
            sid: session,
            jti: uuid::Uuid::now_v7(),
            iat: now,
            nbf: now,
            exp: now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)
    }

    /// The claims of a token this service signed and that is valid now.
    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                // Same code, but a client knows to refresh rather than log in again.
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    AppError::Unauthorized("the access token has expired — refresh it")
                }
                _ => AppError::Unauthorized("the access token is invalid"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use serde_json::json;

    fn keys() -> TokenKeys {
        TokenKeys::new(&Secret::new("k".repeat(32)), Duration::from_secs(900))
    }

    fn sign(claims: &serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("sign")
    }

    fn claims(overrides: serde_json::Value) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        let mut base = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": uuid::Uuid::now_v7(), "role": "client",
            "sid": uuid::Uuid::now_v7(), "jti": uuid::Uuid::now_v7(),
            "iat": now, "nbf": now, "exp": now + 600,
        });
        for (key, value) in overrides.as_object().expect("object") {
            if value.is_null() {
                base.as_object_mut().expect("object").remove(key);
            } else {
                base[key] = value.clone();
            }
        }
        base
    }

    #[test]
    fn issued_tokens_verify() {
        let keys = keys();
        let (user, session) = (UserId::new(), SessionId::new());
        let token = keys.issue(user, UserRole::Worker, session).expect("issue");
        let claims = keys.verify(&token).expect("verify");
        assert_eq!(
            (claims.sub, claims.role, claims.sid),
            (user, UserRole::Worker, session)
        );
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn well_formed_tokens_with_good_claims_pass() {
        assert!(
            keys()
                .verify(&sign(&claims(json!({})), &"k".repeat(32)))
                .is_ok()
        );
    }

    /// An expired token keeps the `unauthorized` code but says to refresh; a forged one
    /// does not say "expired".
    #[test]
    fn an_expired_token_says_refresh_it() {
        let now = chrono::Utc::now().timestamp();
        let secret = "k".repeat(32);
        let detail = |token: String| keys().verify(&token).err().map(|e| e.public_detail());
        assert_eq!(
            detail(sign(&claims(json!({"exp": now - 60})), &secret)).as_deref(),
            Some("the access token has expired — refresh it")
        );
        assert_eq!(
            detail(sign(&claims(json!({"exp": now - 60})), &"x".repeat(32))).as_deref(),
            Some("the access token is invalid")
        );
    }

    #[test]
    fn every_tampering_is_rejected() {
        let keys = keys();
        let secret = "k".repeat(32);
        let now = chrono::Utc::now().timestamp();
        let cases = [
            ("other key", sign(&claims(json!({})), &"x".repeat(32))),
            ("expired", sign(&claims(json!({"exp": now - 60})), &secret)),
            (
                "not yet valid",
                sign(&claims(json!({"nbf": now + 120})), &secret),
            ),
            (
                "wrong issuer",
                sign(&claims(json!({"iss": "evil"})), &secret),
            ),
            (
                "wrong audience",
                sign(&claims(json!({"aud": "other"})), &secret),
            ),
            ("no jti", sign(&claims(json!({"jti": null})), &secret)),
            ("no sid", sign(&claims(json!({"sid": null})), &secret)),
            ("no sub", sign(&claims(json!({"sub": null})), &secret)),
            ("no exp", sign(&claims(json!({"exp": null})), &secret)),
            ("no nbf", sign(&claims(json!({"nbf": null})), &secret)),
            (
                "unknown role",
                sign(&claims(json!({"role": "root"})), &secret),
            ),
            ("garbage", "not.a.jwt".to_owned()),
            ("empty", String::new()),
        ];
        for (case, token) in cases {
            assert!(keys.verify(&token).is_err(), "{case} was accepted");
        }
    }

    #[test]
    fn alg_none_and_other_algorithms_are_rejected() {
        let keys = keys();
        let body = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
        for header in [
            json!({"alg": "none", "typ": "JWT"}),
            json!({"alg": "HS512", "typ": "JWT"}),
            // RSA never runs: deny.toml's RUSTSEC-2023-0071 exception relies on it.
            json!({"alg": "RS256", "typ": "JWT"}),
            json!({"alg": "PS256", "typ": "JWT"}),
        ] {
            let head = URL_SAFE_NO_PAD.encode(header.to_string());
            assert!(keys.verify(&format!("{head}.{body}.")).is_err());
        }
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(json!({})),
            &EncodingKey::from_secret("k".repeat(32).as_bytes()),
        )
        .expect("sign");
        assert!(keys.verify(&hs512).is_err());
    }
}
