//! Rate limits: 429 with Retry-After, trusted proxies, bounded memory.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn login_is_limited_per_email_with_retry_after() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_LOGIN_PER_MIN", "2")]).await;
    let body = json!({"email": "limited@example.com", "password": "whatever pw"});
    for _ in 0..2 {
        app.post("/api/v1/auth/login", None, body.clone())
            .await
            .assert_problem(401, "invalid_credentials");
    }
    let limited = app.post("/api/v1/auth/login", None, body).await;
    limited.assert_problem(429, "rate_limited");
    let retry: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn every_route_is_limited_per_ip_except_probes() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_PER_SEC", "1"), ("RATE_LIMIT_BURST", "3")]).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(app.get("/api/v1/auth/me", None).await.status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    for _ in 0..10 {
        assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
        assert_eq!(app.get("/ready", None).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let untrusted =
        TestApp::spawn_with(&[("RATE_LIMIT_PER_SEC", "1"), ("RATE_LIMIT_BURST", "2")]).await;
    let mut limited = false;
    for i in 0..5 {
        let reply = untrusted
            .client
            .get(untrusted.url("/api/v1/auth/me"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .expect("send");
        limited |= reply.status() == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "a spoofed header must not buy a fresh budget");

    let trusted = TestApp::spawn_with(&[
        ("RATE_LIMIT_PER_SEC", "1"),
        ("RATE_LIMIT_BURST", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    for i in 0..5 {
        let reply = trusted
            .client
            .get(trusted.url("/api/v1/auth/me"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .expect("send");
        assert_eq!(
            reply.status(),
            StatusCode::UNAUTHORIZED,
            "each client has its own budget"
        );
    }
}

#[tokio::test]
async fn idle_keys_are_evicted() {
    let app = TestApp::spawn_with(&[
        ("RATE_LIMIT_PER_SEC", "1000"),
        ("RATE_LIMIT_BURST", "1"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let flood = (0..2000).map(|i| {
        app.client
            .get(app.url("/api/v1/auth/me"))
            .header(
                "x-forwarded-for",
                format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
            )
            .send()
    });
    futures_util::future::join_all(flood).await;
    assert!(app.state.limits.tracked_keys() >= 2000);
    // With a 1 ms refill, every key is back to a full budget almost at once.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    app.state.limits.evict_idle();
    assert!(
        app.state.limits.tracked_keys() < 10,
        "{}",
        app.state.limits.tracked_keys()
    );
}
