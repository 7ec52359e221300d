//! Regression tests for what probing a running server found (issue "Security").

use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn search_queries_are_bounded() {
    let app = TestApp::spawn().await;
    let thousand_words = ["plumbing"; 1000].join(" OR ");
    for q in [
        thousand_words.as_str(),
        &"x".repeat(201),
        "one two three four five six seven eight nine ten eleven twelve thirteen",
        "pipe\u{0}s",
    ] {
        let reply = app
            .client
            .get(app.url("/api/v1/services"))
            .query(&[("q", q)])
            .send()
            .await
            .expect("search");
        let reply = crate::common::Reply::from(reply).await;
        reply.assert_invalid(&["q"]);
        assert_eq!(reply.json["errors"][0]["field"], "q", "{}", reply.body);
    }
    let reply = app.get("/api/v1/services?city=Lis%00bon", None).await;
    reply.assert_invalid(&["city"]);
    assert_eq!(reply.json["errors"][0]["field"], "city");
    assert_eq!(
        app.get("/api/v1/services?q=garden%20OR%20plumbing", None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn searches_cannot_take_the_connections_the_rest_of_the_api_needs() {
    let app = TestApp::spawn_with(&[("SEARCH_POOL_SIZE", "2")]).await;
    let (_, tokens) = app.user("busy@example.com", "client").await;

    // Search's connections carry their own short statement timeout.
    let mut conn = app.state.search_db.get().await.expect("search conn");
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement_timeout: String,
    }
    let shown: Setting = diesel::sql_query("SHOW statement_timeout")
        .get_result(&mut conn)
        .await
        .expect("show");
    assert_eq!(shown.statement_timeout, "2s");

    // Every search connection busy (as with a flood of expensive searches): searches
    // wait and give up with 503, everything else keeps working.
    let other = app.state.search_db.get().await.expect("search conn");
    let started = std::time::Instant::now();
    app.get("/api/v1/services?q=garden", None)
        .await
        .assert_problem(503, "dependency_unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    for path in ["/api/v1/auth/me", "/ready"] {
        assert_eq!(
            app.get(path, Some(&tokens.access)).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    drop((conn, other));
    assert_eq!(
        app.get("/api/v1/services?q=garden", None).await.status,
        StatusCode::OK
    );

    // One address may run two searches at once (SEARCH_MAX_PER_IP), not the whole pool.
    let me = marketplace::core::limiter::ClientIp("127.0.0.1".parse().expect("ip"));
    let running = [
        app.state.limits.searches.enter(me),
        app.state.limits.searches.enter(me),
    ];
    assert!(running.iter().all(Option::is_some));
    let reply = app.get("/api/v1/services?q=garden", None).await;
    reply.assert_problem(429, "rate_limited");
    assert_eq!(reply.header("retry-after"), Some("1"));
    drop(running);
    assert_eq!(
        app.get("/api/v1/services?q=garden", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn nul_characters_are_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (
            json!({"email": "nul\u{0}@example.com", "password": "a fine password", "full_name": "N", "role": "client"}),
            "email",
        ),
        (
            json!({"email": "nul@example.com", "password": "a fine password", "full_name": "N\u{0}", "role": "client"}),
            "full_name",
        ),
    ] {
        let reply = app.post("/api/v1/auth/register", None, body).await;
        reply.assert_invalid(&[field]);
    }
    let reply = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "a@b.co", "password": "x\u{0}y"}),
        )
        .await;
    reply.assert_invalid(&["password"]);

    let (_, worker) = app.user("nul-worker@example.com", "worker").await;
    let reply = app
        .post(
            "/api/v1/services",
            Some(&worker.access),
            json!({"title": "Gar\u{0}den", "description": "d", "category": "gardening",
                   "price_cents": 100, "pricing_unit": "fixed", "city": "Lisbon"}),
        )
        .await;
    reply.assert_invalid(&["title"]);
    assert_eq!(reply.json["errors"][0]["field"], "title");
}

/// Logs in through a trusted proxy as if from `ip`.
async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> crate::common::Reply {
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login");
    crate::common::Reply::from(response).await
}

#[tokio::test]
async fn wrong_logins_from_one_address_do_not_lock_the_owner_out() {
    let app = TestApp::spawn_with(&[
        ("RATE_LIMIT_LOGIN_PER_MIN", "3"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let email = "victim@example.com";
    app.register(email, "client").await; // from 127.0.0.1, the proxy itself
    for _ in 0..3 {
        login_from(&app, "203.0.113.66", email, "not the password")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    login_from(&app, "203.0.113.66", email, "not the password")
        .await
        .assert_problem(429, "rate_limited");
    // The pair is what ran out: the same address may still sign in to another account.
    app.register("bystander@example.com", "client").await;
    let other = login_from(
        &app,
        "203.0.113.66",
        "bystander@example.com",
        crate::common::PASSWORD,
    )
    .await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
    // The owner, from their own address, is not affected.
    let owner = login_from(&app, "198.51.100.7", email, crate::common::PASSWORD).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);

    // Guesses spread over many addresses still meet the softer per-account budget
    // (5 × 3 per minute: registering, three guesses and the owner's login spent 5 of it).
    let mut statuses = Vec::new();
    for n in 1..=4 {
        for _ in 0..3 {
            statuses.push(
                login_from(&app, &format!("192.0.2.{n}"), email, "guess")
                    .await
                    .status,
            );
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn common_passwords_are_refused_at_registration_and_change() {
    let app = TestApp::spawn().await;
    for weak in ["password", "12345678"] {
        let reply = app
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": "weak@example.com", "password": weak, "full_name": "W", "role": "client"}),
            )
            .await;
        reply.assert_invalid(&["password"]);
        assert_eq!(reply.json["errors"][0]["field"], "password");
    }
    let (_, tokens) = app.user("weak@example.com", "client").await;
    let reply = app
        .post(
            "/api/v1/auth/password",
            Some(&tokens.access),
            json!({"current_password": crate::common::PASSWORD, "new_password": "qwertyuiop"}),
        )
        .await;
    reply.assert_invalid(&["new_password"]);
    assert_eq!(reply.json["errors"][0]["field"], "new_password");
}

/// The run's log lines that carry `request_id`.
fn log_lines_of(request_id: &str) -> Vec<serde_json::Value> {
    crate::common::read_logs()
        .lines()
        .filter(|line| line.contains(request_id))
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test]
async fn log_lines_say_who_and_security_events_are_marked() {
    let app = TestApp::spawn().await;
    let (user_id, tokens) = app.user("logged@example.com", "client").await;
    let failed = format!("failed-login-{}", uuid::Uuid::now_v7());
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-request-id", &failed)
        .json(&json!({"email": "logged@example.com", "password": "wrong password"}))
        .send()
        .await
        .expect("login");
    let authed = format!("authed-{}", uuid::Uuid::now_v7());
    app.client
        .get(app.url("/api/v1/admin/kyc"))
        .header("x-request-id", &authed)
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("admin");

    // The file writer is non-blocking: give it a moment.
    let mut lines = (Vec::new(), Vec::new());
    for _ in 0..50 {
        lines = (log_lines_of(&failed), log_lines_of(&authed));
        if lines.0.len() >= 2 && lines.1.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let event = |lines: &[serde_json::Value], name: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["security_event"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} event in {lines:?}"))
    };
    let login = event(&lines.0, "authentication_failed");
    assert_eq!(login["span"]["client_ip"], "127.0.0.1", "{login}");
    assert_eq!(login["span"]["path"], "/api/v1/auth/login");
    let denied = event(&lines.1, "access_denied");
    assert_eq!(denied["span"]["user_id"], user_id.as_str(), "{denied}");
    assert!(
        !crate::common::read_logs().contains("wrong password"),
        "passwords are never logged"
    );
}

#[tokio::test]
async fn responses_are_not_cacheable_unless_they_say_so() {
    let app = TestApp::spawn().await;
    app.register("cache@example.com", "client").await;
    let reply = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "cache@example.com", "password": crate::common::PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": reply.json["refresh_token"]}),
        )
        .await;
    assert_eq!(refreshed.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn metrics_need_the_token() {
    let app = TestApp::spawn().await;
    app.get("/metrics", None)
        .await
        .assert_problem(401, "unauthorized");
    app.get("/metrics", Some("not-the-token-at-all"))
        .await
        .assert_problem(401, "unauthorized");
    assert_eq!(
        app.get("/metrics", Some(crate::common::METRICS_TOKEN))
            .await
            .status,
        StatusCode::OK
    );
    let unset = TestApp::spawn_with(&[("METRICS_TOKEN", "")]).await;
    unset
        .get("/metrics", Some(crate::common::METRICS_TOKEN))
        .await
        .assert_problem(404, "not_found");
}

mod slow_clients {
    use std::time::Duration;

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
        time::{Instant, sleep, timeout},
    };

    use crate::common::TestApp;

    async fn app() -> TestApp {
        TestApp::spawn_with(&[
            ("HTTP_HEADER_TIMEOUT", "1"),
            ("HTTP_IDLE_TIMEOUT", "2"),
            ("HTTP_MIN_BODY_RATE", "1024"),
            ("HTTP_MAX_CONNECTIONS_PER_IP", "3"),
        ])
        .await
    }

    /// Whether the server closes `stream` within `limit` (reads until EOF or error).
    async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 4096];
        timeout(limit, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    /// Writes `piece` every 300 ms until the server hangs up; how long that took.
    async fn trickle(stream: &mut TcpStream, piece: &[u8]) -> Duration {
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        while started.elapsed() < Duration::from_secs(8) {
            if stream.write_all(piece).await.is_err() {
                break;
            }
            let read = timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
            if let Ok(Ok(0) | Err(_)) = read {
                break;
            }
        }
        started.elapsed()
    }

    #[tokio::test]
    async fn a_request_head_must_arrive_in_time_however_it_trickles() {
        let app = app().await;
        let mut silent = TcpStream::connect(app.addr).await.expect("connect");
        silent
            .write_all(b"GET /health HTTP/1.1\r\n")
            .await
            .expect("write");
        assert!(closed_within(&mut silent, Duration::from_secs(5)).await);

        let mut loris = TcpStream::connect(app.addr).await.expect("connect");
        loris
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let lasted = trickle(&mut loris, b"X-Slow: yes\r\n").await;
        assert!(
            lasted < Duration::from_secs(5),
            "a header line a while bought {lasted:?}"
        );
    }

    #[tokio::test]
    async fn a_body_must_keep_a_minimum_rate() {
        let app = app().await;
        let mut slow = TcpStream::connect(app.addr).await.expect("connect");
        slow.write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .expect("write");
        let lasted = trickle(&mut slow, b" ").await;
        assert!(
            lasted < Duration::from_secs(5),
            "a byte a while bought {lasted:?}"
        );

        // The same, read to the end: the answer is a 408 that closes the connection.
        let mut slow = TcpStream::connect(app.addr).await.expect("connect");
        slow.write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .expect("write");
        let mut response = Vec::new();
        timeout(Duration::from_secs(5), slow.read_to_end(&mut response))
            .await
            .expect("closed in time")
            .expect("read");
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("request_timeout"), "{text}");
    }

    #[tokio::test]
    async fn an_expect_continue_upload_is_answered_normally() {
        let app = app().await;
        let body = br#"{"email":"continue@example.com","password":"correct horse battery","full_name":"C","role":"client"}"#;
        let mut conn = TcpStream::connect(app.addr).await.expect("connect");
        conn.write_all(
            format!(
                "POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .expect("head");
        let mut buf = [0u8; 256];
        let n = conn.read(&mut buf).await.expect("read");
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 100"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        conn.write_all(body).await.expect("body");
        let mut response = Vec::new();
        conn.read_to_end(&mut response).await.expect("read");
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    }

    #[tokio::test]
    async fn cleartext_http2_is_refused() {
        let app = app().await;
        let mut conn = TcpStream::connect(app.addr).await.expect("connect");
        conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("preface");
        assert!(closed_within(&mut conn, Duration::from_millis(1500)).await);
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_at_the_head_deadline() {
        let app = app().await;
        let mut conn = TcpStream::connect(app.addr).await.expect("connect");
        assert!(closed_within(&mut conn, Duration::from_secs(4)).await);
    }

    #[tokio::test]
    async fn idle_connections_are_closed_and_busy_ones_kept() {
        let app = app().await;
        let mut conn = TcpStream::connect(app.addr).await.expect("connect");
        let mut buf = [0u8; 4096];
        for _ in 0..3 {
            conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            let n = conn.read(&mut buf).await.expect("read");
            assert!(
                buf[..n].starts_with(b"HTTP/1.1 200"),
                "{:?}",
                String::from_utf8_lossy(&buf[..n])
            );
            // Well within the idle timeout: the connection is reused.
            sleep(Duration::from_millis(700)).await;
        }
        assert!(closed_within(&mut conn, Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn one_address_cannot_hold_every_connection() {
        let app = app().await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(app.addr).await.expect("connect"));
        }
        sleep(Duration::from_millis(100)).await;
        let mut extra = TcpStream::connect(app.addr).await.expect("connect");
        assert!(
            closed_within(&mut extra, Duration::from_millis(1500)).await,
            "the fourth connection is dropped at once"
        );
        drop(held.pop());
        sleep(Duration::from_millis(100)).await;
        let mut again = TcpStream::connect(app.addr).await.expect("connect");
        again
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut response = Vec::new();
        again.read_to_end(&mut response).await.expect("read");
        assert!(
            response.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&response)
        );
    }
}
