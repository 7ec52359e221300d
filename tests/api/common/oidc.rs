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

/// An HTTP proxy in front of a provider that rewrites the ID token of every token
/// response (its `email` claim, keeping the provider's signature): a man in the middle.
/// The provider derives its issuer from the Host header, so through the proxy the
/// issuer is the proxy's address.
pub struct TamperingProxy {
    pub port: u16,
    server: tokio::task::JoinHandle<()>,
}

impl TamperingProxy {
    pub async fn start(upstream: &Provider) -> Self {
        use poem::{
            EndpointExt, IntoResponse, Response, Route, Server, handler, http::StatusCode,
            listener::TcpListener, web::Data,
        };

        #[handler]
        async fn forward(
            request: &poem::Request,
            body: poem::Body,
            upstream: Data<&(reqwest::Client, String)>,
        ) -> Response {
            let (client, base) = *upstream;
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let mut outgoing = client.request(request.method().clone(), format!("{base}{path}"));
            for (name, value) in request.headers() {
                outgoing = outgoing.header(name, value);
            }
            let bytes = body.into_vec().await.unwrap_or_default();
            let reply = outgoing.body(bytes).send().await.expect("upstream");
            let status = StatusCode::from_u16(reply.status().as_u16()).expect("status");
            let content_type = reply
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("text/plain")
                .to_owned();
            let location = reply.headers().get("location").cloned();
            let mut text = reply.text().await.expect("upstream body");
            if path.starts_with("/oauth2/token") {
                text = tamper(&text);
            }
            let mut response = text.with_status(status).into_response();
            response
                .headers_mut()
                .insert("content-type", content_type.parse().expect("content type"));
            if let Some(location) = location {
                let location = location
                    .to_str()
                    .expect("location")
                    .parse()
                    .expect("location");
                response.headers_mut().insert("location", location);
            }
            response
        }

        let port = super::tcp_proxy::free_port();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let app = Route::new()
            .at("/*path", forward)
            .data((client, upstream.issuer()));
        let server = tokio::spawn(async move {
            let _ = Server::new(TcpListener::bind(format!("127.0.0.1:{port}")))
                .run(app)
                .await;
        });
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Self { port, server }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for TamperingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The token response with its ID token's `email` claim changed, signature untouched.
fn tamper(token_response: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut json: Value = serde_json::from_str(token_response).expect("token response");
    let id_token = json["id_token"].as_str().expect("id_token").to_owned();
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("payload"))
            .expect("claims");
    claims["email"] = Value::String("mallory@example.com".to_owned());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    json["id_token"] = Value::String(format!("{}.{payload}.{}", parts[0], parts[2]));
    json.to_string()
}
