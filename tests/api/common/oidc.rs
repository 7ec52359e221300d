//! A real OpenID Connect provider for the tests (oidc-provider-mock, `oidc_provider.py`),
//! started once per test process on a free port; tests sign users in through it over
//! HTTP as their browser would.

use std::sync::OnceLock;

use serde_json::Value;

use super::python::PythonServer;

/// The redirect URI every test provider is configured with.
pub const REDIRECT_URI: &str = "https://app.test/oidc/callback";

pub struct Provider {
    pub port: u16,
    /// The user's browser: it must see the provider's redirect, not follow it.
    browser: reqwest::Client,
    _server: PythonServer,
}

/// The process's provider, started on first use.
pub fn shared() -> &'static Provider {
    static PROVIDER: OnceLock<Provider> = OnceLock::new();
    PROVIDER.get_or_init(|| Provider::start_on(super::tcp_proxy::free_port()))
}

impl Provider {
    /// A provider of its own on `port` (a new signing key each time it starts).
    pub fn start_on(port: u16) -> Self {
        Self {
            port,
            browser: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            _server: PythonServer::start("oidc_provider.py", &[&port.to_string()]),
        }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Configuration for providers `mock` (named "Mock IdP") and `other`, both this
    /// issuer with different client ids.
    pub fn settings(&self) -> Vec<(String, String)> {
        let issuer = self.issuer();
        [
            ("OIDC_PROVIDERS", "mock,other"),
            ("OIDC_MOCK_NAME", "Mock IdP"),
            ("OIDC_MOCK_ISSUER", &issuer),
            ("OIDC_MOCK_CLIENT_ID", "marketplace"),
            ("OIDC_MOCK_CLIENT_SECRET", "mock-secret"),
            ("OIDC_MOCK_REDIRECT_URIS", REDIRECT_URI),
            ("OIDC_OTHER_ISSUER", &issuer),
            ("OIDC_OTHER_CLIENT_ID", "marketplace-other"),
            ("OIDC_OTHER_CLIENT_SECRET", "other-secret"),
            ("OIDC_OTHER_REDIRECT_URIS", REDIRECT_URI),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Sets the claims the provider gives `sub` (`email`, `email_verified`, `name`…).
    pub async fn set_user(&self, sub: &str, claims: Value) {
        let response = self
            .browser
            .put(format!("{}/users/{sub}", self.issuer()))
            .json(&claims)
            .send()
            .await
            .expect("set user");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// What the user's browser does at `authorization_url`: signs in as `sub` and is
    /// sent back to the redirect URI, whose `code` and `state` are returned.
    pub async fn authorize(&self, authorization_url: &str, sub: &str) -> (String, String) {
        let response = self
            .browser
            .post(authorization_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("sub={sub}"))
            .send()
            .await
            .expect("authorize");
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("redirect")
            .to_owned();
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        let url = url::Url::parse(&location).expect("redirect url");
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| panic!("no {name} in {location}"))
        };
        (param("code"), param("state"))
    }
}
