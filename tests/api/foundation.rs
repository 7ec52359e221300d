//! The skeleton: errors as problem+json, request ids, probes, OpenAPI, docs, migrations.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, settings_for};

#[tokio::test]
async fn health_is_ok() {
    let app = TestApp::spawn().await;
    let reply = app.get("/health", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json, json!({"status": "ok"}));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert!(reply.header("server").is_none(), "no server banner");
}

#[tokio::test]
async fn ready_when_dependencies_answer() {
    let app = TestApp::spawn().await;
    let reply = app.get("/ready", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn ready_names_redis_when_it_is_down() {
    let port = crate::common::tcp_proxy::free_port().to_string();
    let redis_url = format!("redis://127.0.0.1:{port}/0");
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis_url), ("DB_POOL_TIMEOUT", "1")]).await;
    let reply = app.get("/ready", None).await;
    reply.assert_problem(503, "dependency_unavailable");
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("redis"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn unknown_route_is_problem_json() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/nothing-here", None)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn wrong_method_is_problem_json() {
    let app = TestApp::spawn().await;
    app.call(Method::DELETE, "/health", None, None)
        .await
        .assert_problem(405, "method_not_allowed");
    app.call(Method::GET, "/api/v1/auth/login", None, None)
        .await
        .assert_problem(405, "method_not_allowed");
}

#[tokio::test]
async fn malformed_json_is_400_and_wrong_shape_is_422() {
    let app = TestApp::spawn().await;
    let reply = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("send");
    crate::common::Reply::from(reply)
        .await
        .assert_problem(400, "malformed_body");

    let reply = app
        .post("/api/v1/auth/login", None, json!({"email": 42}))
        .await;
    reply.assert_invalid(&["email", "password"]);

    let reply = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("send");
    crate::common::Reply::from(reply)
        .await
        .assert_problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn oversized_json_is_413() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(70 * 1024);
    let reply = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": huge, "password": "x"}),
        )
        .await;
    reply.assert_problem(413, "payload_too_large");
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let echoed = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "abc.DEF_123-x")
        .send()
        .await
        .expect("send");
    assert_eq!(echoed.headers()["x-request-id"], "abc.DEF_123-x");

    for bad in ["has space", &"x".repeat(129), "semi;colon"] {
        let reply = app
            .client
            .get(app.url("/health"))
            .header("x-request-id", bad)
            .send()
            .await
            .expect("send");
        let id = reply.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert_ne!(id, bad);
        assert!(!id.is_empty() && id.len() <= 128);
    }

    let generated = app.get("/health", None).await;
    let other = app.get("/nope", None).await;
    let (a, b) = (
        generated.header("x-request-id"),
        other.header("x-request-id"),
    );
    assert!(
        a.is_some() && b.is_some() && a != b,
        "every response, errors included, gets its own id"
    );
}

#[tokio::test]
async fn openapi_document_lists_the_routes_and_security() {
    let app = TestApp::spawn().await;
    let reply = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let paths = reply.json["paths"].as_object().expect("paths");
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/auth/password",
        "/api/v1/admin/users/{id}/suspend",
        "/api/v1/admin/users/{id}/reinstate",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the spec");
    }
    let security = |path: &str, method: &str| {
        paths[path][method]
            .get("security")
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        security("/api/v1/auth/login", "post"),
        Value::Null,
        "public routes declare no security"
    );
    assert_eq!(security("/api/v1/auth/me", "get"), json!([{"bearer": []}]));
    assert_eq!(
        security("/api/v1/admin/users/{id}/suspend", "post"),
        json!([{"bearer": []}])
    );
}

#[tokio::test]
async fn openapi_snapshot() {
    let app = TestApp::spawn().await;
    let spec = app.get("/api/v1/openapi.json", None).await.json;
    insta::assert_json_snapshot!("openapi", spec);
}

#[tokio::test]
async fn docs_page_is_served_by_the_binary() {
    let app = TestApp::spawn().await;
    let reply = app.get("/docs", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(
        reply.body.contains("SwaggerUIBundle"),
        "swagger UI is embedded"
    );
    assert!(
        !reply.body.contains("cdn.") && !reply.body.contains("unpkg"),
        "no CDN"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = TestApp::spawn().await;
    app.get("/health", None).await;
    let reply = app
        .get("/metrics", Some(crate::common::METRICS_TOKEN))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .body
            .contains("http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}")
    );
    assert!(reply.body.contains("http_request_duration_seconds_bucket"));
    assert!(reply.body.contains("db_pool_connections"));
}

/// A client can send any token as a method; those must not mint new series.
#[tokio::test]
async fn made_up_methods_share_one_metrics_label() {
    let app = TestApp::spawn().await;
    for method in ["BREW", "WHEN"] {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let reply = app
            .client
            .request(method, app.url("/nowhere-at-all"))
            .send()
            .await
            .expect("send");
        assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    }
    let reply = app
        .get("/metrics", Some(crate::common::METRICS_TOKEN))
        .await;
    assert!(!reply.body.contains("BREW") && !reply.body.contains("WHEN"));
    assert!(
        reply
            .body
            .contains("http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"}")
    );
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let app = TestApp::spawn().await;
    let applied =
        marketplace::db::run_migrations(&app.settings.database_url, &app.settings.database_tls)
            .await
            .expect("migrate");
    assert!(
        applied.is_empty(),
        "already migrated from the template: {applied:?}"
    );
    let again = marketplace::server::migrate(&app.settings)
        .await
        .expect("migrate");
    assert!(again.is_empty());
}

#[tokio::test]
async fn migrate_creates_a_missing_database() {
    let name = format!("mpt_{}_fresh", std::process::id());
    let settings = settings_for(&name, "unused:", &[]);
    let applied = marketplace::server::migrate(&settings)
        .await
        .expect("migrate");
    assert!(!applied.is_empty());
    let again = marketplace::server::migrate(&settings)
        .await
        .expect("migrate");
    assert!(again.is_empty());
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    let mut conn = diesel_async::AsyncPgConnection::establish(crate::common::PG_ADMIN_URL)
        .await
        .expect("pg");
    conn.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop");
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let app = TestApp::spawn().await;
    let password = "Sup3r-secret-pa55word";
    let email = "logcheck@example.com";
    app.post(
        "/api/v1/auth/register",
        None,
        json!({"email": email, "password": password, "full_name": "Log Check", "role": "client"}),
    )
    .await;
    let tokens = app.login(email, password).await;
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens.refresh}),
        )
        .await;
    let refreshed = crate::common::Tokens::from(&refreshed.json);
    let logout = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&refreshed.access)
        .header("x-request-id", "logout-secret-check")
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    let logs = crate::common::wait_for_log("logout-secret-check").await;
    assert!(
        logs.contains("logout-secret-check"),
        "request lines are logged"
    );
    for secret in [
        password,
        &tokens.access,
        &tokens.refresh,
        &refreshed.access,
        &refreshed.refresh,
    ] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    assert!(
        !logs.to_lowercase().contains("bearer ey"),
        "no Authorization header in the log"
    );
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = TestApp::spawn_with(&[("CORS_ORIGINS", "https://app.example.com")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.expect("send");
    assert!(
        allowed.headers().contains_key("x-request-id"),
        "preflights are observed too"
    );
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"https://app.example.com"[..])
    );
    let denied = preflight("https://evil.example.com").await.expect("send");
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// Every error (poem's 404, a guard's 401, the limiter's 429) is problem+json with CORS
/// headers, so a browser can read it; a foreign origin is refused as problem+json.
#[tokio::test]
async fn cors_headers_reach_errors_and_refusals_are_problems() {
    let app = TestApp::spawn_with(&[
        ("CORS_ORIGINS", "https://app.example.com"),
        ("RATE_LIMIT_PER_SEC", "1"),
        ("RATE_LIMIT_BURST", "2"),
    ])
    .await;
    let get_path = |path: &'static str, origin: &'static str| {
        app.client
            .get(app.url(path))
            .header("origin", origin)
            .send()
    };
    let get = |origin: &'static str| get_path("/api/v1/auth/me", origin);
    let allow_origin = |reply: &reqwest::Response| {
        reply
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes().to_vec())
    };
    let missing = get_path("/api/v1/nothing-here", "https://app.example.com")
        .await
        .expect("send");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    assert!(allow_origin(&missing).is_some());
    let unauthorized = get("https://app.example.com").await.expect("send");
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        allow_origin(&unauthorized).as_deref(),
        Some(&b"https://app.example.com"[..])
    );
    assert!(unauthorized.headers().contains_key("x-request-id"));
    let limited = get("https://app.example.com").await.expect("send");
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        allow_origin(&limited).as_deref(),
        Some(&b"https://app.example.com"[..])
    );
    let mut exposed: Vec<String> = limited.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .split(',')
        .map(|h| h.trim().to_lowercase())
        .collect();
    exposed.sort();
    assert_eq!(exposed, ["retry-after", "x-request-id"]);
    let refused = get("https://evil.example.com").await.expect("send");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(allow_origin(&refused).is_none());
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json",
        "{refused:?}"
    );
    assert_eq!(refused.headers()["x-content-type-options"], "nosniff");
    assert!(refused.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/nope", "/api/v1/auth/me"] {
        let reply = app.get(path, None).await;
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            reply.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert!(reply.header("x-request-id").is_some(), "{path}");
    }
}

#[tokio::test]
async fn pooled_connections_carry_a_statement_timeout() {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement_timeout: String,
    }
    let app = TestApp::spawn_with(&[("DB_STATEMENT_TIMEOUT", "7")]).await;
    let mut conn = app.state.db.get().await.expect("conn");
    let setting: Setting = diesel::sql_query("SHOW statement_timeout")
        .get_result(&mut conn)
        .await
        .expect("show");
    assert_eq!(setting.statement_timeout, "7s");
}

#[tokio::test]
async fn a_malformed_id_in_a_path_is_404() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("paths@example.com").await;
    let reply = app
        .post(
            "/api/v1/admin/users/not-a-uuid/reinstate",
            Some(&admin.access),
            json!({}),
        )
        .await;
    reply.assert_problem(404, "not_found");
    assert!(
        !reply.body.contains("param0"),
        "no parser internals: {}",
        reply.body
    );
}
