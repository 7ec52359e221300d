//! Revocation across Redis outages and restarts, and the cost of the per-request check.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{PASSWORD, TestApp, private_redis::PrivateRedis};

#[tokio::test]
async fn a_logged_out_token_stays_dead_after_redis_restarts_empty() {
    let redis = PrivateRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(&[("REDIS_URL", &url)]).await;
    let mut redis = redis;
    let (_, gone) = app.user("restart@example.com", "client").await;
    let alive = app.login("restart@example.com", PASSWORD).await;
    let reply = app
        .post("/api/v1/auth/logout", Some(&gone.access), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);

    redis.restart(); // no persistence: every key is gone
    assert_eq!(redis.cli(&["DBSIZE"]), "0");

    // Connections to the old server fail once each, then the pool reconnects.
    let mut revoked = app.get("/api/v1/auth/me", Some(&gone.access)).await;
    for _ in 0..100 {
        if revoked.status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        revoked = app.get("/api/v1/auth/me", Some(&gone.access)).await;
    }
    revoked.assert_problem(401, "token_revoked");
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&alive.access)).await.status,
        StatusCode::OK
    );

    // The answers were read from PostgreSQL and cached again.
    let cached = redis.cli(&["KEYS", "*session:*"]);
    assert_eq!(cached.lines().count(), 2, "{cached}");
    app.get("/api/v1/auth/me", Some(&gone.access))
        .await
        .assert_problem(401, "token_revoked");
}

#[tokio::test]
async fn losing_one_revocation_key_does_not_bring_a_logged_out_token_back() {
    let redis = PrivateRedis::start();
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis.url())]).await;
    let (_, gone) = app.user("partial@example.com", "client").await;
    let alive = app.login("partial@example.com", PASSWORD).await;
    // Both sessions have been checked, so Redis holds an answer for each.
    for tokens in [&gone, &alive] {
        assert_eq!(
            app.get("/api/v1/auth/me", Some(&tokens.access))
                .await
                .status,
            StatusCode::OK
        );
    }
    let reply = app
        .post("/api/v1/auth/logout", Some(&gone.access), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);

    // What eviction or a restore from an older snapshot does: one key goes, the rest stay.
    let claims = app.state.tokens.verify(&gone.access).expect("claims");
    let key = format!("{}session:{}", app.settings.redis_prefix, claims.sid);
    assert_eq!(redis.cli(&["DEL", &key]), "1");
    assert_eq!(
        redis.cli(&["KEYS", "*session:*"]).lines().count(),
        1,
        "the live session's key stays"
    );

    app.get("/api/v1/auth/me", Some(&gone.access))
        .await
        .assert_problem(401, "token_revoked");
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&alive.access)).await.status,
        StatusCode::OK
    );
    // Deleting it again after the answer was cached changes nothing either.
    redis.cli(&["DEL", &key]);
    app.get("/api/v1/auth/me", Some(&gone.access))
        .await
        .assert_problem(401, "token_revoked");
}

#[tokio::test]
async fn a_correctly_signed_token_for_a_session_never_issued_is_refused() {
    let app = TestApp::spawn().await;
    let (_admin_id, _) = app.admin("boss@example.com").await;
    // Signed with the deployment's real key, claiming admin, with a made-up session.
    let forged = app
        .state
        .tokens
        .issue(
            marketplace::core::ids::UserId::new(),
            marketplace::db::enums::UserRole::Admin,
            marketplace::core::ids::SessionId::new(),
        )
        .expect("sign");
    app.get("/api/v1/admin/kyc", Some(&forged))
        .await
        .assert_problem(401, "token_revoked");
    // Still refused once the answer is cached.
    app.get("/api/v1/admin/kyc", Some(&forged))
        .await
        .assert_problem(401, "token_revoked");
}

#[tokio::test]
async fn redis_down_fails_closed_then_recovers() {
    let redis = PrivateRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(&[("REDIS_URL", &url), ("DB_POOL_TIMEOUT", "1")]).await;
    let mut redis = redis;
    let (_, tokens) = app.user("down@example.com", "client").await;
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&tokens.access))
            .await
            .status,
        StatusCode::OK
    );

    redis.stop();
    let started = std::time::Instant::now();
    app.get("/api/v1/auth/me", Some(&tokens.access))
        .await
        .assert_problem(503, "dependency_unavailable");
    app.get("/api/v1/auth/me", Some(&tokens.access))
        .await
        .assert_problem(503, "dependency_unavailable");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "503 comes promptly"
    );

    redis.restart();
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        status = app
            .get("/api/v1/auth/me", Some(&tokens.access))
            .await
            .status;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        status,
        StatusCode::OK,
        "recovers by itself once Redis is back"
    );
}

#[tokio::test]
async fn an_authenticated_request_costs_one_redis_command() {
    let redis = PrivateRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(&[("REDIS_URL", &url)]).await;
    let (_, tokens) = app.user("count@example.com", "client").await;
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&tokens.access))
            .await
            .status,
        StatusCode::OK
    );

    redis.cli(&["CONFIG", "RESETSTAT"]);
    for _ in 0..5 {
        assert_eq!(
            app.get("/api/v1/auth/me", Some(&tokens.access))
                .await
                .status,
            StatusCode::OK
        );
    }
    let stats = redis.cli(&["INFO", "commandstats"]);
    let calls: Vec<&str> = stats
        .lines()
        .filter(|l| {
            l.starts_with("cmdstat_")
                && !l.starts_with("cmdstat_config")
                && !l.starts_with("cmdstat_info")
        })
        .collect();
    assert_eq!(calls.len(), 1, "only GET: {stats}");
    assert!(calls[0].starts_with("cmdstat_get:calls=5,"), "{stats}");
}

#[tokio::test]
async fn a_redis_that_refuses_writes_still_answers_checks() {
    let redis = PrivateRedis::start();
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis.url())]).await;
    let (_, tokens) = app.user("oom@example.com", "client").await;
    // Out of memory with no eviction: reads work, every write is refused.
    redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    redis.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&tokens.access))
            .await
            .status,
        StatusCode::OK,
        "the answer from PostgreSQL stands even when it cannot be cached"
    );
    redis.cli(&["CONFIG", "SET", "maxmemory", "0"]);
}
