//! Rules of signing in with an OpenID Connect provider (see the module documentation of
//! [`crate::auth::oidc`]).

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use deadpool_redis::redis;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata},
};
use sha2::{Digest, Sha256};

use crate::{
    auth::{
        models::{NewUser, UserRow},
        oidc::{
            identities,
            providers::{self, Provider},
            schemas::{OidcProvider, OidcProviders, OidcStart},
        },
        schemas::TokenPair,
        services::{insert_account, normalize_email},
        sessions,
    },
    core::{ids::UserId, redis::run},
    db::{enums::UserRole, schema::users},
    error::{AppError, FieldError, codes},
    state::AppState,
};

/// How long a started sign-in may take to come back.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// Longest `full_name` taken from a provider (the API's own limit).
const NAME_CHARS: usize = 200;

/// A client of one provider, as built from its discovery document.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What `start` keeps for the callback, in Redis under the state's digest.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    provider: String,
    nonce: String,
    pkce_verifier: String,
    redirect_uri: String,
    role: UserRole,
}

/// Who the provider says signed in, from a verified ID token.
struct Identity {
    subject: String,
    email: String,
    email_verified: bool,
    full_name: String,
}

pub fn providers(state: &AppState) -> OidcProviders {
    OidcProviders {
        providers: state
            .oidc
            .all()
            .map(|p| OidcProvider {
                id: p.id.clone(),
                name: p.name.clone(),
            })
            .collect(),
    }
}

fn client(
    provider: &Provider,
    metadata: &CoreProviderMetadata,
    redirect_uri: &str,
) -> Result<Client, AppError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(AppError::internal)?;
    Ok(CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(provider.settings.client_id.clone()),
        Some(ClientSecret::new(
            provider.settings.client_secret.expose().to_owned(),
        )),
    )
    .set_redirect_uri(redirect))
}

fn state_key(state: &AppState, csrf: &str) -> String {
    format!(
        "{}oidc-state:{}",
        state.settings.redis_prefix,
        URL_SAFE_NO_PAD.encode(Sha256::digest(csrf.as_bytes()))
    )
}

/// Begins a sign-in with `provider_id`: the authorization URL (with a fresh state, nonce
/// and PKCE challenge) and the state, kept for [`STATE_TTL`].
pub async fn start(
    state: &AppState,
    provider_id: &str,
    redirect_uri: &str,
    role: Option<UserRole>,
) -> Result<OidcStart, AppError> {
    let provider = state.oidc.get(provider_id)?;
    let role = role.unwrap_or(UserRole::Client);
    crate::core::validate::all_valid([
        (!provider
            .settings
            .redirect_uris
            .iter()
            .any(|u| u == redirect_uri))
        .then(|| {
            FieldError::new(
                "redirect_uri",
                "must be one of the provider's configured redirect URIs",
            )
        }),
        (role == UserRole::Admin).then(|| FieldError::new("role", "must be client or worker")),
    ])?;
    let metadata = provider.metadata(state.oidc.http()).await?;
    let client = client(provider, &metadata, redirect_uri)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = serde_json::to_string(&Pending {
        provider: provider_id.to_owned(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        redirect_uri: redirect_uri.to_owned(),
        role,
    })
    .map_err(AppError::internal)?;
    let set = redis::cmd("SET")
        .arg(state_key(state, csrf.secret()))
        .arg(pending)
        .arg("EX")
        .arg(STATE_TTL.as_secs())
        .clone();
    run(&state.redis, async |conn| set.query_async::<()>(conn).await).await?;
    Ok(OidcStart {
        authorization_url: url.to_string(),
        state: csrf.secret().clone(),
        expires_in: STATE_TTL.as_secs(),
    })
}

/// Finishes a sign-in: takes the state out (single use, whatever follows), exchanges
/// the code, verifies the ID token, finds or makes the account and opens a session.
pub async fn callback(
    state: &AppState,
    provider_id: &str,
    code: &str,
    csrf: &str,
) -> Result<TokenPair, AppError> {
    let provider = state.oidc.get(provider_id)?;
    let getdel = redis::cmd("GETDEL").arg(state_key(state, csrf)).clone();
    let pending: Option<String> =
        run(&state.redis, async |conn| getdel.query_async(conn).await).await?;
    let pending: Pending = pending
        .and_then(|json| serde_json::from_str::<Pending>(&json).ok())
        .filter(|p| p.provider == provider_id)
        .ok_or(AppError::OidcStateInvalid)?;
    let identity = verified_identity(
        state,
        provider,
        code,
        pending.pkce_verifier,
        &pending.redirect_uri,
        &pending.nonce,
    )
    .await?;
    let user = account_for(state, provider_id, pending.role, identity).await?;
    sessions::open(state, &user).await
}

/// Exchanges `code` (with the PKCE verifier) and verifies the ID token it brings:
/// signature against the provider's keys (fetched again once when they lack the
/// token's key), issuer, audience, expiry and nonce.
async fn verified_identity(
    state: &AppState,
    provider: &Provider,
    code: &str,
    pkce_verifier: String,
    redirect_uri: &str,
    nonce: &str,
) -> Result<Identity, AppError> {
    let http = state.oidc.http();
    let id = &provider.settings.id;
    let failed = |what: &str, error: String| {
        tracing::warn!(provider = %id, error, "OpenID sign-in refused: {what}");
        AppError::OidcFailed
    };
    let metadata = provider.metadata(http).await?;
    let response = client(provider, &metadata, redirect_uri)?
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(AppError::internal)?
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
        .request_async(http)
        .await
        .map_err(|err| match err {
            RequestTokenError::Request(err) => {
                tracing::warn!(provider = %id, error = %err, "token endpoint unreachable");
                AppError::Unavailable(providers::DEPENDENCY)
            }
            other => failed("code exchange", with_causes(&other)),
        })?;
    let id_token = response
        .id_token()
        .ok_or_else(|| failed("token response", "no ID token".to_owned()))?;
    let nonce = Nonce::new(nonce.to_owned());
    let verify = |client: &Client| -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
        id_token
            .claims(&client.id_token_verifier(), &nonce)
            .cloned()
    };
    let claims = match verify(&client(provider, &metadata, redirect_uri)?) {
        // A key we do not have: named by an unknown `kid`, or, in a token that names
        // none (allowed while the provider publishes one key), a signature our key does
        // not verify. Either way the provider may have rotated its keys.
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey | SignatureVerificationError::CryptoError(_),
        )) => {
            let metadata = provider.refresh_keys(http, &metadata).await?;
            verify(&client(provider, &metadata, redirect_uri)?)
        }
        other => other,
    }
    .map_err(|err| failed("ID token", with_causes(&err)))?;
    let email = claims
        .email()
        .and_then(|email| normalize_email(email).ok())
        .ok_or_else(|| failed("ID token", "no valid email claim".to_owned()))?;
    let full_name = claims
        .name()
        .and_then(|name| name.get(None))
        .map(|name| name.trim().chars().take(NAME_CHARS).collect::<String>())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
    Ok(Identity {
        subject: claims.subject().to_string(),
        email_verified: claims.email_verified() == Some(true),
        email,
        full_name,
    })
}

/// An error and its causes, for the log (the library's errors keep details in sources).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// The account `identity` signs in as: the one linked to it; else the account with its
/// email, linked now, only when the provider verified that email; else a new account
/// without a password. Administrators are never made or linked this way.
async fn account_for(
    state: &AppState,
    provider: &str,
    role: UserRole,
    identity: Identity,
) -> Result<UserRow, AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        if let Some(user) = identities::linked_user(conn, provider, &identity.subject).await? {
            return Ok(users::table
                .find(user)
                .select(UserRow::as_select())
                .first(conn)
                .await?);
        }
        let existing: Option<UserRow> = users::table
            .filter(users::email.eq(&identity.email))
            .select(UserRow::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let user = match existing {
            Some(_) if !identity.email_verified => {
                return Err(AppError::conflict(
                    codes::EMAIL_TAKEN,
                    "an account with this email already exists and the provider has not verified the email",
                ));
            }
            Some(user) if user.role == UserRole::Admin => {
                return Err(AppError::Forbidden(
                    "administrators sign in with their password",
                ));
            }
            Some(user) => user,
            None => {
                insert_account(
                    conn,
                    NewUser {
                        id: UserId::new(),
                        email: &identity.email,
                        password_hash: None,
                        full_name: &identity.full_name,
                        role,
                        email_verified: identity.email_verified,
                    },
                )
                .await?
            }
        };
        identities::link(conn, provider, &identity.subject, user.id).await?;
        Ok(user)
    })
    .await
}
