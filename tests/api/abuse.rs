//! Hostile request bodies (issue "Production hardening"): each must be refused cheaply,
//! without reaching a parser that could be made to spin or recurse.

use std::time::{Duration, Instant};

use crate::common::TestApp;

#[tokio::test]
async fn deeply_nested_json_is_refused_without_a_stack_overflow() {
    let app = TestApp::spawn().await;
    // 60 KB, far under the body limit: 30,000 arrays deep.
    let body = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    for path in ["/api/v1/auth/login", "/api/v1/auth/register"] {
        let reply = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("send");
        // Past the parser's depth limit: not JSON this server reads (400), not a 422.
        crate::common::Reply::from(reply)
            .await
            .assert_problem(400, "malformed_body");
    }
    assert_eq!(app.get("/health", None).await.status, 200);
}

#[tokio::test]
async fn xml_bodies_are_refused_unread() {
    let app = TestApp::spawn().await;
    // The shape of RUSTSEC-2026-0194/0195: one start tag with a hundred thousand
    // attributes and namespace declarations; quick-xml < 0.41 would spend seconds on it.
    let attributes: String = (0..100_000)
        .map(|n| format!(" xmlns:n{n}=\"u\" a{n}=\"v\""))
        .collect();
    let started = Instant::now();
    let reply = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/xml")
        .body(format!("<login{attributes}/>"))
        .send()
        .await
        .expect("send");
    assert!(
        matches!(reply.status().as_u16(), 400 | 413 | 415),
        "{}",
        reply.status()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
