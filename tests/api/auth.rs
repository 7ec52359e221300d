//! Registration, login, tokens, logout, password change, roles and suspension.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{PASSWORD, TestApp, Tokens};

#[tokio::test]
async fn register_login_me() {
    let app = TestApp::spawn().await;
    let id = app.register("Ana@Example.com", "worker").await;
    let tokens = app.login("ana@example.COM", PASSWORD).await;
    let me = app.get("/api/v1/auth/me", Some(&tokens.access)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json["id"], id);
    assert_eq!(me.json["email"], "ana@example.com");
    assert_eq!(me.json["role"], "worker");
    assert_eq!(me.json["status"], "active");
    assert!(me.json.get("password_hash").is_none());
}

#[tokio::test]
async fn register_creates_the_role_profile() {
    let app = TestApp::spawn().await;
    let worker = app.register("w@example.com", "worker").await;
    let client = app.register("c@example.com", "client").await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use marketplace::db::schema::{clients, workers};
    let mut conn = app.state.db.get().await.expect("conn");
    let w: i64 = workers::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    let c: i64 = clients::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!((w, c), (1, 1));
    let worker_row: uuid::Uuid = workers::table
        .select(workers::user_id)
        .first(&mut conn)
        .await
        .expect("row");
    assert_eq!(worker_row.to_string(), worker);
    let client_row: uuid::Uuid = clients::table
        .select(clients::user_id)
        .first(&mut conn)
        .await
        .expect("row");
    assert_eq!(client_row.to_string(), client);
}

#[tokio::test]
async fn duplicate_email_is_409_case_insensitively() {
    let app = TestApp::spawn().await;
    app.register("dup@example.com", "client").await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "DUP@example.com", "password": PASSWORD, "full_name": "X", "role": "worker"}),
        )
        .await;
    reply.assert_problem(409, "email_taken");
}

#[tokio::test]
async fn admin_self_registration_is_refused() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "evil@example.com", "password": PASSWORD, "full_name": "X", "role": "admin"}),
        )
        .await;
    reply.assert_invalid(&["role"]);
    assert_eq!(reply.json["errors"][0]["field"], "role");
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "evil@example.com", "password": PASSWORD}),
        )
        .await;
    login.assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn mass_assignment_is_ignored() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({
                "email": "mass@example.com", "password": PASSWORD, "full_name": "Mass", "role": "client",
                "status": "suspended", "id": "00000000-0000-0000-0000-000000000001", "is_admin": true,
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.json["status"], "active");
    assert_eq!(reply.json["role"], "client");
    assert_ne!(reply.json["id"], "00000000-0000-0000-0000-000000000001");
}

#[tokio::test]
async fn invalid_registration_names_each_field() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "nope", "password": "short", "full_name": " ", "role": "client"}),
        )
        .await;
    reply.assert_invalid(&["email", "password", "full_name"]);
    let fields: Vec<&str> = reply.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["email", "password", "full_name"]);
    let long = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "l@example.com", "password": "x".repeat(129), "full_name": "L", "role": "client"}),
        )
        .await;
    long.assert_invalid(&["password"]);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    app.register("known@example.com", "client").await;
    let before = app.state.passwords.verifications();
    let wrong = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "known@example.com", "password": "wrong password"}),
        )
        .await;
    let after_wrong = app.state.passwords.verifications();
    let unknown = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": "wrong password"}),
        )
        .await;
    let after_unknown = app.state.passwords.verifications();
    wrong.assert_problem(401, "invalid_credentials");
    assert_eq!(wrong.json, unknown.json);
    // No timing oracle: an unknown email costs the same one argon2id verification.
    assert_eq!((after_wrong - before, after_unknown - after_wrong), (1, 1));
}

#[tokio::test]
async fn missing_or_bad_tokens_are_401_with_www_authenticate() {
    let app = TestApp::spawn().await;
    let none = app.get("/api/v1/auth/me", None).await;
    none.assert_problem(401, "unauthorized");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    for token in ["garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let reply = app.get("/api/v1/auth/me", Some(token)).await;
        reply.assert_problem(401, "unauthorized");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_login() {
    let app = TestApp::spawn().await;
    let (_, first) = app.user("rot@example.com", "client").await;
    let second = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first.refresh}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.json["token_type"], "Bearer");
    assert_eq!(second.json["expires_in"], 900);
    let second = Tokens::from(&second.json);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&second.access))
            .await
            .status,
        StatusCode::OK
    );

    // The used token is dead, and presenting it again revokes the whole login.
    let reuse = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first.refresh}),
        )
        .await;
    reuse.assert_problem(401, "token_revoked");
    app.get("/api/v1/auth/me", Some(&second.access))
        .await
        .assert_problem(401, "token_revoked");
    app.get("/api/v1/auth/me", Some(&first.access))
        .await
        .assert_problem(401, "token_revoked");
    let descendant = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": second.refresh}),
        )
        .await;
    descendant.assert_problem(401, "token_revoked");
}

#[tokio::test]
async fn a_refresh_token_is_single_use_under_concurrency() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.user("race@example.com", "client").await;
    let attempts = (0..8).map(|_| {
        app.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens.refresh}),
        )
    });
    let replies = futures_util::future::join_all(attempts).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 401, 401, 401, 401, 401, 401, 401],
        "exactly one refresh wins"
    );
}

#[tokio::test]
async fn unknown_refresh_token_is_401() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": "made-up"}),
        )
        .await;
    reply.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn logout_revokes_access_and_refresh() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.user("out@example.com", "client").await;
    let other = app.login("out@example.com", PASSWORD).await;
    let reply = app
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            Some(&tokens.access),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    app.get("/api/v1/auth/me", Some(&tokens.access))
        .await
        .assert_problem(401, "token_revoked");
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens.refresh}),
        )
        .await;
    refresh.assert_problem(401, "token_revoked");
    // Another login of the same user is untouched.
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&other.access)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_accepts_empty_json_or_a_refresh_token() {
    let app = TestApp::spawn().await;
    let (_, a) = app.user("empty@example.com", "client").await;
    let reply = app
        .post("/api/v1/auth/logout", Some(&a.access), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let b = app.login("empty@example.com", PASSWORD).await;
    let reply = app
        .post(
            "/api/v1/auth/logout",
            Some(&b.access),
            json!({"refresh_token": b.refresh}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": b.refresh}),
        )
        .await;
    refresh.assert_problem(401, "token_revoked");
}

#[tokio::test]
async fn password_change_revokes_other_logins_only() {
    let app = TestApp::spawn().await;
    let (_, mine) = app.user("pw@example.com", "worker").await;
    let other = app.login("pw@example.com", PASSWORD).await;
    let wrong = app
        .post(
            "/api/v1/auth/password",
            Some(&mine.access),
            json!({"current_password": "not it at all", "new_password": "a new password"}),
        )
        .await;
    wrong.assert_problem(403, "wrong_password");
    let short = app
        .post(
            "/api/v1/auth/password",
            Some(&mine.access),
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    short.assert_invalid(&["new_password"]);

    let ok = app
        .post(
            "/api/v1/auth/password",
            Some(&mine.access),
            json!({"current_password": PASSWORD, "new_password": "a new password"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.body);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&mine.access)).await.status,
        StatusCode::OK
    );
    app.get("/api/v1/auth/me", Some(&other.access))
        .await
        .assert_problem(401, "token_revoked");
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": other.refresh}),
        )
        .await;
    refresh.assert_problem(401, "token_revoked");
    let old = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "pw@example.com", "password": PASSWORD}),
        )
        .await;
    old.assert_problem(401, "invalid_credentials");
    app.login("pw@example.com", "a new password").await;
}

#[tokio::test]
async fn admin_routes_refuse_other_roles() {
    let app = TestApp::spawn().await;
    let (client_id, client) = app.user("cl@example.com", "client").await;
    let reply = app
        .post(
            &format!("/api/v1/admin/users/{client_id}/suspend"),
            Some(&client.access),
            json!({"reason": "x"}),
        )
        .await;
    reply.assert_problem(403, "forbidden");
    let anonymous = app
        .post(
            &format!("/api/v1/admin/users/{client_id}/suspend"),
            None,
            json!({"reason": "x"}),
        )
        .await;
    anonymous.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn suspension_revokes_everything_and_survives_reinstatement() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("admin@example.com").await;
    let (user_id, user) = app.user("bad@example.com", "worker").await;

    let missing_reason = app
        .post(
            &format!("/api/v1/admin/users/{user_id}/suspend"),
            Some(&admin.access),
            json!({}),
        )
        .await;
    missing_reason.assert_invalid(&["reason"]);
    let unknown = app
        .post(
            &format!("/api/v1/admin/users/{}/suspend", uuid::Uuid::now_v7()),
            Some(&admin.access),
            json!({"reason": "spam"}),
        )
        .await;
    unknown.assert_problem(404, "not_found");

    let suspended = app
        .post(
            &format!("/api/v1/admin/users/{user_id}/suspend"),
            Some(&admin.access),
            json!({"reason": "spam"}),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    assert_eq!(suspended.json["status"], "suspended");
    app.get("/api/v1/auth/me", Some(&user.access))
        .await
        .assert_problem(401, "token_revoked");
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": user.refresh}),
        )
        .await;
    refresh.assert_problem(401, "token_revoked");

    let right = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "bad@example.com", "password": PASSWORD}),
        )
        .await;
    right.assert_problem(403, "account_suspended");
    let wrong = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "bad@example.com", "password": "wrong password"}),
        )
        .await;
    wrong.assert_problem(401, "invalid_credentials");

    let reinstated = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/admin/users/{user_id}/reinstate"),
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(reinstated.status, StatusCode::OK, "{}", reinstated.body);
    assert_eq!(reinstated.json["status"], "active");
    app.get("/api/v1/auth/me", Some(&user.access))
        .await
        .assert_problem(401, "token_revoked");
    let fresh = app.login("bad@example.com", PASSWORD).await;
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&fresh.access)).await.status,
        StatusCode::OK
    );

    use marketplace::db::enums::AuditAction;
    let rows = app.audit_rows().await;
    assert_eq!(
        rows,
        [
            (
                AuditAction::UserSuspended,
                "user".to_owned(),
                Some("spam".to_owned())
            ),
            (AuditAction::UserReinstated, "user".to_owned(), None),
        ]
    );
}

#[tokio::test]
async fn admins_cannot_suspend_themselves() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.admin("self@example.com").await;
    for body in [json!({"reason": "oops"}), json!({})] {
        let reply = app
            .post(
                &format!("/api/v1/admin/users/{admin_id}/suspend"),
                Some(&admin.access),
                body,
            )
            .await;
        reply.assert_problem(403, "forbidden");
    }
}

#[tokio::test]
async fn suspend_checks_the_target_before_the_body() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("order@example.com").await;
    let unknown = uuid::Uuid::now_v7();
    let reply = app
        .post(
            &format!("/api/v1/admin/users/{unknown}/suspend"),
            Some(&admin.access),
            json!({}),
        )
        .await;
    reply.assert_problem(404, "not_found");
}

#[tokio::test]
async fn password_change_is_rate_limited_per_account() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_LOGIN_PER_MIN", "3")]).await;
    let (_, tokens) = app.user("guess@example.com", "client").await;
    let mut last = None;
    // Three guesses, then the fourth is refused.
    for _ in 0..4 {
        last = Some(
            app.post(
                "/api/v1/auth/password",
                Some(&tokens.access),
                json!({"current_password": "guess guess", "new_password": "whatever new"}),
            )
            .await,
        );
    }
    last.expect("reply").assert_problem(429, "rate_limited");
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    let app = TestApp::spawn().await;
    let (id, _) = app.user("forge@example.com", "client").await;
    let other = marketplace::core::jwt::TokenKeys::new(
        &marketplace::config::Secret::new("another key that is long enough!!"),
        std::time::Duration::from_secs(900),
    );
    let forged = other
        .issue(
            marketplace::core::ids::UserId(id.parse().expect("uuid")),
            marketplace::db::enums::UserRole::Admin,
            marketplace::core::ids::SessionId::new(),
        )
        .expect("sign");
    app.get("/api/v1/auth/me", Some(&forged))
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn without_jwt_secret_one_generated_key_serves_the_deployment_and_the_published_key_is_useless()
 {
    use marketplace::{config::Secret, core::jwt::TokenKeys, db::enums::UserRole, state::AppState};
    let app = TestApp::spawn().await; // no JWT_SECRET, as a fresh clone starts
    let (admin_id, admin) = app.admin("keys@example.com").await;
    let claims = app.state.tokens.verify(&admin.access).expect("claims");

    // The key that used to be written in the source, on an otherwise perfect admin token.
    let published = TokenKeys::new(
        &Secret::new("dev-only-secret-change-me-0123456789abcdef"),
        std::time::Duration::from_secs(900),
    );
    let forged = published
        .issue(claims.sub, UserRole::Admin, claims.sid)
        .expect("sign");
    app.get("/api/v1/admin/kyc", Some(&forged))
        .await
        .assert_problem(401, "unauthorized");
    assert_eq!(admin_id, claims.sub.to_string());

    // Another instance (or a restart) on the same database reads the same key.
    let sibling = AppState::new(app.settings.clone()).await.expect("state");
    assert_eq!(
        sibling.tokens.verify(&admin.access).expect("verify"),
        claims
    );
    drop(sibling);
    assert_eq!(
        app.get("/api/v1/admin/kyc", Some(&admin.access))
            .await
            .status,
        StatusCode::OK
    );
}
