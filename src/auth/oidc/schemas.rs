//! Request and response bodies of the OpenID Connect endpoints.

use poem_openapi::Object;

use crate::db::enums::UserRole;

/// A provider people may sign in with.
#[derive(Debug, Object)]
pub struct OidcProvider {
    /// The `{provider}` of the other OIDC paths.
    pub id: String,
    pub name: String,
}

#[derive(Debug, Object)]
pub struct OidcProviders {
    pub providers: Vec<OidcProvider>,
}

#[derive(Object)]
pub struct OidcStartRequest {
    /// Where the provider sends the user back: one of the provider's configured
    /// redirect URIs, exactly.
    pub redirect_uri: String,
    /// The role of an account created by this sign-in: `client` (default) or `worker`.
    pub role: Option<UserRole>,
}

/// Where to send the user, and the state the callback must present.
#[derive(Object)]
pub struct OidcStart {
    /// The provider's authorization endpoint with `response_type=code`, `scope`, `state`,
    /// `nonce` and a PKCE `code_challenge` (S256).
    pub authorization_url: String,
    pub state: String,
    /// Seconds the state stays usable.
    pub expires_in: u64,
}

#[derive(Object)]
pub struct OidcCallbackRequest {
    /// The `code` the provider added to the redirect URI.
    pub code: String,
    /// The `state` the provider sent back (the one `start` returned).
    pub state: String,
}
