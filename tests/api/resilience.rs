//! PostgreSQL disappearing and coming back, seen through a proxy the test controls.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::common::{TestApp, tcp_proxy::TcpProxy};

#[tokio::test]
async fn database_down_gives_prompt_503_then_recovers() {
    let mut proxy = TcpProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/{{db}}", proxy.port);
    let app = TestApp::spawn_with(&[("DATABASE_URL", &url), ("DB_POOL_TIMEOUT", "1")]).await;
    let (_, tokens) = app.user("pg@example.com", "client").await;
    // A listing read goes through the shared read connections (src/db/shared.rs), not a
    // checkout: they must fail as promptly and come back as surely.
    let (_, admin) = app.admin("pg-admin@example.com").await;
    let (_, worker) = app.approved_worker("pg-worker@example.com", &admin).await;
    let listing = app.listing(&worker.access, serde_json::json!({})).await;
    let listing = format!("/api/v1/services/{}", listing["id"].as_str().expect("id"));
    assert_eq!(app.get(&listing, None).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&tokens.access))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(app.get("/ready", None).await.status, StatusCode::OK);

    proxy.cut();
    let started = Instant::now();
    for _ in 0..3 {
        let reply = app.get("/api/v1/auth/me", Some(&tokens.access)).await;
        reply.assert_problem(503, "dependency_unavailable");
        assert!(!reply.body.contains("5432") && !reply.body.to_lowercase().contains("postgres"));
        app.get(&listing, None)
            .await
            .assert_problem(503, "dependency_unavailable");
    }
    let ready = app.get("/ready", None).await;
    ready.assert_problem(503, "dependency_unavailable");
    assert!(
        ready.json["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("database")
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no hanging: {:?}",
        started.elapsed()
    );

    proxy.restore().await;
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..30 {
        status = app
            .get("/api/v1/auth/me", Some(&tokens.access))
            .await
            .status;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK, "the pool recovers by itself");
    assert_eq!(
        app.get(&listing, None).await.status,
        StatusCode::OK,
        "the shared read connection is replaced"
    );
}
