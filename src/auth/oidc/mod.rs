//! Sign-in with an OpenID Connect provider: the authorization code flow with `state`,
//! `nonce` and PKCE (S256), providers from configuration, accounts linked by
//! `(provider, sub)`.
//!
//! `start` makes the provider's authorization URL and keeps what the callback needs
//! (nonce, PKCE verifier, redirect URI, role) in Redis under the state's digest, for
//! ten minutes, so any instance can take the callback; the callback takes it out with
//! one `GETDEL` (single use, success or not), exchanges the code with the verifier,
//! verifies the ID token (signature against the provider's JWKS, issuer, audience,
//! expiry, nonce) and opens the same session a password login does.

pub mod identities;
pub mod providers;
pub mod routes;
pub mod schemas;
pub mod services;
