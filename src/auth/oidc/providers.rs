//! The configured OpenID Connect providers and what we learned from them: each one's
//! discovery document and JSON Web Key Set, fetched on first use and kept for the life
//! of the process, the key set fetched again when a token names a key we do not have
//! (the provider rotated its keys).

use std::{sync::Arc, time::Duration};

use openidconnect::{IssuerUrl, JsonWebKeySet, core::CoreProviderMetadata};
use tokio::sync::Mutex;

use crate::{config::OidcProviderSettings, error::AppError};

/// How long one request to a provider may take before it counts as unreachable.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// What an unreachable or misbehaving provider is reported as (503).
pub(crate) const DEPENDENCY: &str = "the identity provider";

pub struct Providers {
    /// Follows no redirects (the library's advice against SSRF through a provider).
    http: reqwest::Client,
    all: Vec<Provider>,
}

pub struct Provider {
    pub settings: OidcProviderSettings,
    /// `None` until the first sign-in with this provider.
    metadata: Mutex<Option<Arc<CoreProviderMetadata>>>,
}

impl Providers {
    pub fn new(settings: &[OidcProviderSettings]) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            all: settings
                .iter()
                .map(|settings| Provider {
                    settings: settings.clone(),
                    metadata: Mutex::new(None),
                })
                .collect(),
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Every configured provider, in configuration order.
    pub fn all(&self) -> impl Iterator<Item = &OidcProviderSettings> {
        self.all.iter().map(|p| &p.settings)
    }

    /// The provider `id`; an unknown one is 404 on every OIDC path.
    pub fn get(&self, id: &str) -> Result<&Provider, AppError> {
        self.all
            .iter()
            .find(|p| p.settings.id == id)
            .ok_or(AppError::NotFound)
    }
}

impl Provider {
    /// The discovery document with its key set, fetched once and then served from memory.
    pub async fn metadata(
        &self,
        http: &reqwest::Client,
    ) -> Result<Arc<CoreProviderMetadata>, AppError> {
        let mut cached = self.metadata.lock().await;
        if let Some(metadata) = cached.as_ref() {
            return Ok(Arc::clone(metadata));
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(AppError::internal)?;
        let metadata = CoreProviderMetadata::discover_async(issuer, http)
            .await
            .map_err(|err| {
                tracing::warn!(provider = %self.settings.id, error = %err, "OpenID discovery failed");
                AppError::Unavailable(DEPENDENCY)
            })?;
        let metadata = Arc::new(metadata);
        *cached = Some(Arc::clone(&metadata));
        Ok(metadata)
    }

    /// Fetches the key set again, after `seen` lacked a token's key. Callers that raced
    /// here get the set the first of them fetched.
    pub async fn refresh_keys(
        &self,
        http: &reqwest::Client,
        seen: &Arc<CoreProviderMetadata>,
    ) -> Result<Arc<CoreProviderMetadata>, AppError> {
        let mut cached = self.metadata.lock().await;
        if let Some(current) = cached.as_ref().filter(|m| !Arc::ptr_eq(m, seen)) {
            return Ok(Arc::clone(current));
        }
        let keys = JsonWebKeySet::fetch_async(seen.jwks_uri(), http)
            .await
            .map_err(|err| {
                tracing::warn!(provider = %self.settings.id, error = %err, "fetching the JWKS failed");
                AppError::Unavailable(DEPENDENCY)
            })?;
        tracing::info!(provider = %self.settings.id, "provider keys refreshed");
        let metadata = Arc::new(seen.as_ref().clone().set_jwks(keys));
        *cached = Some(Arc::clone(&metadata));
        Ok(metadata)
    }
}
