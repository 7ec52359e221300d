//! Sign-in with an OpenID Connect provider, against a real provider process: each test
//! performs the user's login step at the provider over HTTP, then calls our callback.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    PASSWORD, Reply, TestApp,
    oidc::{self, Provider, REDIRECT_URI, TamperingProxy},
};

async fn app_with(provider: &Provider, extra: &[(&str, &str)]) -> TestApp {
    let settings = provider.settings();
    let mut overrides: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    overrides.extend_from_slice(extra);
    TestApp::spawn_with(&overrides).await
}

/// A subject and email no other test uses.
fn someone(name: &str) -> (String, String) {
    let id = uuid::Uuid::now_v7().simple().to_string();
    (format!("{name}-{id}"), format!("{name}-{id}@example.com"))
}

async fn start(app: &TestApp, provider: &str, body: Value) -> Reply {
    app.post(&format!("/api/v1/auth/oidc/{provider}/start"), None, body)
        .await
}

async fn callback(app: &TestApp, provider: &str, code: &str, state: &str) -> Reply {
    app.post(
        &format!("/api/v1/auth/oidc/{provider}/callback"),
        None,
        json!({ "code": code, "state": state }),
    )
    .await
}

/// Starts a sign-in at `mock`, signs `sub` in at the provider, returns (code, state).
async fn through_provider(
    app: &TestApp,
    provider: &Provider,
    sub: &str,
    body: Value,
) -> (String, String) {
    let started = start(app, "mock", body).await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let url = started.json["authorization_url"].as_str().expect("url");
    let (code, state) = provider.authorize(url, sub).await;
    assert_eq!(state, started.json["state"].as_str().expect("state"));
    (code, state)
}

/// The whole sign-in; returns the callback's reply.
async fn sign_in(app: &TestApp, provider: &Provider, sub: &str) -> Reply {
    let (code, state) =
        through_provider(app, provider, sub, json!({ "redirect_uri": REDIRECT_URI })).await;
    callback(app, "mock", &code, &state).await
}

async fn me(app: &TestApp, reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let access = reply.json["access_token"].as_str().expect("access token");
    let me = app.get("/api/v1/auth/me", Some(access)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    me.json
}

#[tokio::test]
async fn providers_are_listed_from_configuration() {
    let app = app_with(oidc::shared(), &[]).await;
    let listed = app.get("/api/v1/auth/oidc/providers", None).await;
    assert_eq!(
        listed.json,
        json!({"providers": [{"id": "mock", "name": "Mock IdP"}, {"id": "other", "name": "other"}]})
    );
    let none = TestApp::spawn().await;
    let listed = none.get("/api/v1/auth/oidc/providers", None).await;
    assert_eq!(listed.json, json!({"providers": []}));
}

#[tokio::test]
async fn start_gives_the_authorization_url_with_state_nonce_and_pkce() {
    let provider = oidc::shared();
    let app = app_with(provider, &[]).await;
    let started = start(&app, "mock", json!({ "redirect_uri": REDIRECT_URI })).await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    assert_eq!(started.json["expires_in"], 600);
    let url =
        url::Url::parse(started.json["authorization_url"].as_str().expect("url")).expect("url");
    assert_eq!(
        url.as_str().split('?').next(),
        Some(format!("{}/oauth2/authorize", provider.issuer()).as_str())
    );
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    assert_eq!(param("response_type"), "code");
    assert_eq!(param("client_id"), "marketplace");
    assert_eq!(param("redirect_uri"), REDIRECT_URI);
    let scopes: Vec<String> = param("scope").split(' ').map(str::to_owned).collect();
    for scope in ["openid", "email", "profile"] {
        assert!(scopes.iter().any(|s| s == scope), "{scopes:?}");
    }
    assert_eq!(
        param("state"),
        started.json["state"].as_str().expect("state")
    );
    assert!(param("nonce").len() >= 16);
    assert_eq!(param("code_challenge_method"), "S256");
    assert_eq!(param("code_challenge").len(), 43, "a base64url SHA-256");

    start(&app, "nope", json!({ "redirect_uri": REDIRECT_URI }))
        .await
        .assert_problem(404, "not_found");
    callback(&app, "nope", "code", "state")
        .await
        .assert_problem(404, "not_found");
    start(
        &app,
        "mock",
        json!({ "redirect_uri": "https://evil.test/cb" }),
    )
    .await
    .assert_invalid(&["redirect_uri"]);
    start(
        &app,
        "mock",
        json!({ "redirect_uri": format!("{REDIRECT_URI}/") }),
    )
    .await
    .assert_invalid(&["redirect_uri"]);
    start(
        &app,
        "mock",
        json!({ "redirect_uri": REDIRECT_URI, "role": "admin" }),
    )
    .await
    .assert_invalid(&["role"]);
    start(&app, "mock", json!({}))
        .await
        .assert_invalid(&["redirect_uri"]);
    app.post(
        "/api/v1/auth/oidc/mock/callback",
        None,
        json!({ "state": "s" }),
    )
    .await
    .assert_invalid(&["code"]);
}

#[tokio::test]
async fn a_first_sign_in_creates_a_password_less_account_and_later_ones_find_it() {
    let provider = oidc::shared();
    let app = app_with(provider, &[]).await;
    let (sub, email) = someone("nadia");
    provider
        .set_user(
            &sub,
            json!({"email": email.to_uppercase(), "email_verified": true, "name": "Nadia N"}),
        )
        .await;
    let first = me(&app, &sign_in(&app, provider, &sub).await).await;
    assert_eq!(first["email"], email);
    assert_eq!(first["full_name"], "Nadia N");
    assert_eq!(first["role"], "client");
    assert_eq!(first["email_verified"], true);

    // A later change of the provider's email does not change the account.
    provider
        .set_user(
            &sub,
            json!({"email": format!("new-{email}"), "email_verified": true}),
        )
        .await;
    let again = me(&app, &sign_in(&app, provider, &sub).await).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["email"], email);

    // No password yet: a password login fails like a wrong one.
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn a_password_less_account_gets_a_password_through_a_reset() {
    let provider = oidc::shared();
    let smtp = crate::common::mail::server().url();
    let app = app_with(provider, &[("SMTP_URL", &smtp)]).await;
    let _dispatcher = marketplace::events::dispatcher::Dispatcher::start(app.state.clone());
    let (sub, email) = someone("vera");
    provider
        .set_user(&sub, json!({"email": email, "email_verified": true}))
        .await;
    me(&app, &sign_in(&app, provider, &sub).await).await;
    let forgot = app
        .post(
            "/api/v1/auth/password/forgot",
            None,
            json!({ "email": email }),
        )
        .await;
    assert_eq!(forgot.status, StatusCode::ACCEPTED, "{}", forgot.body);
    let mails = crate::common::mail::server().wait_for(&email, 1).await;
    let token = crate::common::mail::link_token(&mails[0].text, "reset-password");
    let reset = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            json!({ "token": token, "new_password": PASSWORD }),
        )
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.body);
    app.login(&email, PASSWORD).await;
}

#[tokio::test]
async fn the_role_comes_from_start_and_the_name_defaults_to_the_local_part() {
    let provider = oidc::shared();
    let app = app_with(provider, &[]).await;
    let (sub, email) = someone("omar");
    provider.set_user(&sub, json!({"email": email})).await;
    let (code, state) = through_provider(
        &app,
        provider,
        &sub,
        json!({ "redirect_uri": REDIRECT_URI, "role": "worker" }),
    )
    .await;
    let user = me(&app, &callback(&app, "mock", &code, &state).await).await;
    assert_eq!(user["role"], "worker");
    assert_eq!(
        user["full_name"],
        email.split('@').next().expect("local part")
    );
    assert_eq!(user["email_verified"], false, "a missing claim is false");
    // An unverified email gets the verification email, like a registration.
    let mut conn = app.state.db.get().await.expect("conn");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let queued: Count = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) AS n FROM events WHERE kind = 'email_verification_requested'",
        ),
        &mut conn,
    )
    .await
    .expect("count");
    assert_eq!(queued.n, 1);
}

#[tokio::test]
async fn an_existing_account_is_linked_only_when_the_provider_verified_the_email() {
    let provider = oidc::shared();
    let app = app_with(provider, &[]).await;
    let (sub, email) = someone("paula");
    let id = app.register(&email, "worker").await;

    provider
        .set_user(&sub, json!({"email": email, "email_verified": false}))
        .await;
    sign_in(&app, provider, &sub)
        .await
        .assert_problem(409, "email_taken");

    provider
        .set_user(&sub, json!({"email": email, "email_verified": true}))
        .await;
    let linked = me(&app, &sign_in(&app, provider, &sub).await).await;
    assert_eq!(linked["id"], id.as_str());
    assert_eq!(linked["role"], "worker");
    // The password still works too.
    app.login(&email, PASSWORD).await;

    // Admins are never linked (nor made) this way.
    let (admin_sub, admin_email) = someone("root");
    app.admin(&admin_email).await;
    provider
        .set_user(
            &admin_sub,
            json!({"email": admin_email, "email_verified": true}),
        )
        .await;
    sign_in(&app, provider, &admin_sub)
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn a_suspended_account_is_refused() {
    let provider = oidc::shared();
    let app = app_with(provider, &[]).await;
    let (sub, email) = someone("quinn");
    provider
        .set_user(&sub, json!({"email": email, "email_verified": true}))
        .await;
    let user = me(&app, &sign_in(&app, provider, &sub).await).await;
    let (_, admin) = app.admin(&someone("admin").1).await;
    let suspended = app
        .post(
            &format!(
                "/api/v1/admin/users/{}/suspend",
                user["id"].as_str().expect("id")
            ),
            Some(&admin.access),
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    sign_in(&app, provider, &sub)
        .await
        .assert_problem(403, "account_suspended");
}

#[tokio::test]
async fn a_state_is_single_use_and_belongs_to_its_provider() {
    let provider = oidc::shared();
    let app = app_with(provider, &[]).await;
    let (sub, email) = someone("rui");
    provider
        .set_user(&sub, json!({"email": email, "email_verified": true}))
        .await;

    // Used with another provider: refused, and consumed.
    let body = json!({ "redirect_uri": REDIRECT_URI });
    let (code, state) = through_provider(&app, provider, &sub, body.clone()).await;
    callback(&app, "other", &code, &state)
        .await
        .assert_problem(400, "oidc_state_invalid");
    callback(&app, "mock", &code, &state)
        .await
        .assert_problem(400, "oidc_state_invalid");

    // Replayed after a success.
    let (code, state) = through_provider(&app, provider, &sub, body.clone()).await;
    me(&app, &callback(&app, "mock", &code, &state).await).await;
    callback(&app, "mock", &code, &state)
        .await
        .assert_problem(400, "oidc_state_invalid");
    callback(&app, "mock", &code, "never-issued")
        .await
        .assert_problem(400, "oidc_state_invalid");

    // A tampered code fails at the provider; the state is spent all the same.
    let (code, state) = through_provider(&app, provider, &sub, body).await;
    callback(&app, "mock", &format!("{code}x"), &state)
        .await
        .assert_problem(401, "oidc_failed");
    callback(&app, "mock", &code, &state)
        .await
        .assert_problem(400, "oidc_state_invalid");
}

/// The provider enforces PKCE (tests/api/common/oidc_provider.py): a code redeemed with
/// the verifier of another sign-in is refused at its token endpoint, before any ID
/// token (whose nonce would not match either) exists.
#[tokio::test]
async fn a_code_redeemed_with_another_sign_ins_verifier_is_refused_by_the_provider() {
    let provider = oidc::shared();
    let app = app_with(provider, &[]).await;
    let (sub, email) = someone("paulo");
    provider
        .set_user(&sub, json!({"email": email, "email_verified": true}))
        .await;
    let body = json!({ "redirect_uri": REDIRECT_URI });
    let (code, _) = through_provider(&app, provider, &sub, body.clone()).await;
    let (_, other_state) = through_provider(&app, provider, &sub, body).await;
    callback(&app, "mock", &code, &other_state)
        .await
        .assert_problem(401, "oidc_failed");
    let logs = crate::common::wait_for_log("Code challenge failed").await;
    assert!(
        logs.contains("Code challenge failed"),
        "the provider's token endpoint refused the verifier"
    );
}

#[tokio::test]
async fn a_sign_in_started_on_one_instance_finishes_on_another() {
    let provider = oidc::shared();
    let app = app_with(provider, &[]).await;
    let sibling = app.spawn_sibling().await;
    let (sub, email) = someone("sara");
    provider
        .set_user(&sub, json!({"email": email, "email_verified": true}))
        .await;
    let (code, state) = through_provider(
        &app,
        provider,
        &sub,
        json!({ "redirect_uri": REDIRECT_URI }),
    )
    .await;
    let user = me(&sibling, &callback(&sibling, "mock", &code, &state).await).await;
    assert_eq!(user["email"], email);
}

#[tokio::test]
async fn an_id_token_without_an_email_is_refused() {
    let provider = oidc::shared();
    let app = app_with(provider, &[]).await;
    let (sub, _) = someone("tiago");
    provider.set_user(&sub, json!({"name": "No Email"})).await;
    sign_in(&app, provider, &sub)
        .await
        .assert_problem(401, "oidc_failed");
}

#[tokio::test]
async fn the_provider_keys_are_fetched_again_when_a_token_is_signed_with_a_new_one() {
    let port = crate::common::tcp_proxy::free_port();
    let provider = Provider::start_on(port);
    let app = app_with(&provider, &[]).await;
    let (sub, email) = someone("ursula");
    let claims = json!({"email": email, "email_verified": true});
    provider.set_user(&sub, claims.clone()).await;
    let first = me(&app, &sign_in(&app, &provider, &sub).await).await;

    // The provider restarts with a new signing key; our cached key set lacks it.
    drop(provider);
    let provider = Provider::start_on(port);
    provider.set_user(&sub, claims).await;
    let again = me(&app, &sign_in(&app, &provider, &sub).await).await;
    assert_eq!(again["id"], first["id"]);
    assert!(
        crate::common::wait_for_log("provider keys refreshed")
            .await
            .contains("provider keys refreshed")
    );
}

#[tokio::test]
async fn a_tampered_id_token_is_refused() {
    let provider = oidc::shared();
    let proxy = TamperingProxy::start(provider).await;
    let issuer = proxy.issuer();
    let app = app_with(provider, &[("OIDC_MOCK_ISSUER", &issuer)]).await;
    let (sub, email) = someone("victor");
    provider
        .set_user(&sub, json!({"email": email, "email_verified": true}))
        .await;
    let started = start(&app, "mock", json!({ "redirect_uri": REDIRECT_URI })).await;
    let url = started.json["authorization_url"].as_str().expect("url");
    assert!(url.starts_with(&issuer), "{url}");
    let (code, state) = provider.authorize(url, &sub).await;
    callback(&app, "mock", &code, &state)
        .await
        .assert_problem(401, "oidc_failed");
    assert!(
        crate::common::wait_for_log("Signature verification failed")
            .await
            .contains("Signature verification failed")
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_a_503() {
    let port = crate::common::tcp_proxy::free_port();
    let provider_settings = [
        ("OIDC_PROVIDERS", "down".to_owned()),
        ("OIDC_DOWN_ISSUER", format!("http://127.0.0.1:{port}")),
        ("OIDC_DOWN_CLIENT_ID", "c".to_owned()),
        ("OIDC_DOWN_CLIENT_SECRET", "s".to_owned()),
        ("OIDC_DOWN_REDIRECT_URIS", REDIRECT_URI.to_owned()),
    ];
    let overrides: Vec<(&str, &str)> = provider_settings
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let app = TestApp::spawn_with(&overrides).await;
    start(&app, "down", json!({ "redirect_uri": REDIRECT_URI }))
        .await
        .assert_problem(503, "dependency_unavailable");
}
