//! The account lifecycle against a real SMTP server: verification and reset links are
//! read from the emails it received, as a user would click them.

use diesel_async::RunQueryDsl;
use marketplace::events::dispatcher::{Dispatcher, dispatch_round};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    METRICS_TOKEN, PASSWORD, TestApp,
    mail::{self, MailServer, link_token},
    pki::{new_ca, pem_file, pki},
    read_logs, wait_for_log,
};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// An app whose emails go to the test SMTP server, with its dispatcher running.
async fn app_with_mail(overrides: &[(&str, &str)]) -> (TestApp, Dispatcher) {
    let url = mail::server().url();
    let mut all = vec![
        ("SMTP_URL", url.as_str()),
        ("PUBLIC_URL", "https://marketplace.test/app/"),
    ];
    all.extend_from_slice(overrides);
    let app = TestApp::spawn_with(&all).await;
    let dispatcher = Dispatcher::start(app.state.clone());
    (app, dispatcher)
}

/// An address no other test (or run) uses, so the mailbox is this test's alone.
fn address(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::now_v7().simple())
}

async fn sql(app: &TestApp, statement: &str) {
    let mut conn = app.state.db.get().await.expect("conn");
    diesel::sql_query(statement)
        .execute(&mut conn)
        .await
        .expect(statement);
}

async fn verify(app: &TestApp, token: &str) -> crate::common::Reply {
    app.post("/api/v1/auth/email/verify", None, json!({ "token": token }))
        .await
}

async fn forgot(app: &TestApp, email: &str) -> crate::common::Reply {
    app.post(
        "/api/v1/auth/password/forgot",
        None,
        json!({ "email": email }),
    )
    .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> crate::common::Reply {
    app.post(
        "/api/v1/auth/password/reset",
        None,
        json!({ "token": token, "new_password": password }),
    )
    .await
}

async fn metrics(app: &TestApp) -> String {
    app.call(reqwest::Method::GET, "/metrics", Some(METRICS_TOKEN), None)
        .await
        .body
}

/// The value of an unlabelled counter in a Prometheus text page (0 when absent).
fn counter(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn registering_sends_a_verification_link_that_works_once() {
    let (app, _dispatcher) = app_with_mail(&[]).await;
    let email = address("ana");
    let (_, tokens) = app.user(&email, "client").await;
    let me = app.get("/api/v1/auth/me", Some(&tokens.access)).await;
    assert_eq!(me.json["email_verified"], false, "{}", me.body);

    let mails = mail::server().wait_for(&email, 1).await;
    let mail = &mails[0];
    assert_eq!(mail.to, email);
    assert_eq!(mail.subject, "Confirm your email address");
    assert!(
        mail.text
            .contains("https://marketplace.test/app/verify-email?token="),
        "{}",
        mail.text
    );
    let token = link_token(&mail.text, "verify-email");
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    assert_eq!(link_token(&mail.html, "verify-email"), token);

    assert_eq!(verify(&app, &token).await.status, StatusCode::NO_CONTENT);
    let me = app.get("/api/v1/auth/me", Some(&tokens.access)).await;
    assert_eq!(me.json["email_verified"], true, "{}", me.body);
    verify(&app, &token)
        .await
        .assert_problem(400, "token_invalid");
    verify(&app, "not-a-token")
        .await
        .assert_problem(400, "token_invalid");
    app.post("/api/v1/auth/email/resend", Some(&tokens.access), json!({}))
        .await
        .assert_problem(409, "email_already_verified");

    assert!(
        !read_logs().contains(&token),
        "a link token reached the log"
    );
    let page = metrics(&app).await;
    assert_eq!(counter(&page, "emails_sent_total"), 1, "{page}");
    // Stored as a digest only.
    assert!(!raw_tokens_stored(&app, &token).await);
}

/// Whether `token` appears verbatim in the outbox (account tokens keep digests only).
async fn raw_tokens_stored(app: &TestApp, token: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    let mut conn = app.state.db.get().await.expect("conn");
    diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM events WHERE strpos(payload::text, $1) > 0) AS found",
    )
    .bind::<diesel::sql_types::Text, _>(token)
    .get_result::<Found>(&mut conn)
    .await
    .expect("search")
    .found
}

#[tokio::test]
async fn a_resend_kills_the_earlier_links_and_needs_a_login() {
    let (app, _dispatcher) = app_with_mail(&[]).await;
    let email = address("bruno");
    let (_, tokens) = app.user(&email, "worker").await;
    let first = link_token(
        &mail::server().wait_for(&email, 1).await[0].text,
        "verify-email",
    );

    app.post("/api/v1/auth/email/resend", None, json!({}))
        .await
        .assert_problem(401, "unauthorized");
    let resent = app
        .post("/api/v1/auth/email/resend", Some(&tokens.access), json!({}))
        .await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.body);
    let mails = mail::server().wait_for(&email, 2).await;
    let second = link_token(&mails[1].text, "verify-email");
    assert_ne!(first, second);

    verify(&app, &first)
        .await
        .assert_problem(400, "token_invalid");
    assert_eq!(verify(&app, &second).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_expired_verification_link_is_refused() {
    let (app, _dispatcher) = app_with_mail(&[]).await;
    let email = address("carla");
    app.register(&email, "client").await;
    let token = link_token(
        &mail::server().wait_for(&email, 1).await[0].text,
        "verify-email",
    );
    sql(
        &app,
        "UPDATE account_tokens SET expires_at = now() - interval '1 second'",
    )
    .await;
    verify(&app, &token)
        .await
        .assert_problem(400, "token_invalid");
}

#[tokio::test]
async fn forgot_answers_the_same_whether_or_not_the_account_exists() {
    let (app, _dispatcher) = app_with_mail(&[]).await;
    let email = address("dora");
    app.register(&email, "client").await;

    let known = forgot(&app, &email.to_uppercase()).await;
    let nobody = address("nobody");
    let unknown = forgot(&app, &nobody).await;
    assert_eq!(known.status, StatusCode::ACCEPTED, "{}", known.body);
    assert_eq!(unknown.status, StatusCode::ACCEPTED, "{}", unknown.body);
    assert_eq!(known.body, unknown.body);
    forgot(&app, "not an email")
        .await
        .assert_invalid(&["email"]);

    // Verification, then the reset link.
    let mails = mail::server().wait_for(&email, 2).await;
    let reset_mail = mails
        .iter()
        .find(|m| m.subject == "Reset your password")
        .expect("reset email");
    link_token(&reset_mail.text, "reset-password");
    let mut conn = app.state.db.get().await.expect("conn");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    // Both requests did the same work (no timing difference to read); the unknown
    // address's event names no account, so it sends nothing.
    let requested = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE payload->>'user_id' IS NULL) AS n \
         FROM events WHERE kind = 'password_reset_requested' HAVING count(*) = 2",
    )
    .get_result::<Count>(&mut conn)
    .await
    .expect("two events");
    assert_eq!(requested.n, 1, "one event names no account");
    let pending = || async {
        diesel::sql_query("SELECT count(*) AS n FROM events WHERE done_at IS NULL")
            .get_result::<Count>(&mut app.state.db.get().await.expect("conn"))
            .await
            .expect("count")
            .n
    };
    for _ in 0..100 {
        if pending().await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pending().await, 0, "the dispatcher handled every event");
    assert!(mail::server().received(&nobody).is_empty());
}

#[tokio::test]
async fn forgot_is_rate_limited_per_address_with_the_login_budget() {
    let (app, _dispatcher) = app_with_mail(&[("RATE_LIMIT_LOGIN_PER_MIN", "2")]).await;
    let email = address("eve");
    for _ in 0..2 {
        assert_eq!(forgot(&app, &email).await.status, StatusCode::ACCEPTED);
    }
    let limited = forgot(&app, &email).await;
    limited.assert_problem(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
}

#[tokio::test]
async fn a_reset_sets_the_password_once_and_revokes_every_session() {
    let (app, _dispatcher) = app_with_mail(&[]).await;
    let email = address("fabio");
    let (_, phone) = app.user(&email, "client").await;
    let laptop = app.login(&email, PASSWORD).await;

    assert_eq!(forgot(&app, &email).await.status, StatusCode::ACCEPTED);
    let mails = mail::server().wait_for(&email, 2).await;
    let mail = mails
        .iter()
        .find(|m| m.subject == "Reset your password")
        .expect("reset email");
    assert!(
        mail.text
            .contains("https://marketplace.test/app/reset-password?token=")
    );
    let token = link_token(&mail.text, "reset-password");

    // A weak password is refused and leaves the link usable.
    reset(&app, &token, "password")
        .await
        .assert_invalid(&["new_password"]);
    assert_eq!(
        reset(&app, &token, NEW_PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );

    for tokens in [&phone, &laptop] {
        let me = app.get("/api/v1/auth/me", Some(&tokens.access)).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
        let refreshed = app
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({ "refresh_token": tokens.refresh }),
            )
            .await;
        assert_eq!(
            refreshed.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            refreshed.body
        );
    }
    let old = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    old.assert_problem(401, "invalid_credentials");
    let fresh = app.login(&email, NEW_PASSWORD).await;
    let me = app.get("/api/v1/auth/me", Some(&fresh.access)).await;
    assert_eq!(
        me.json["email_verified"], true,
        "the reset link proved the address"
    );

    reset(&app, &token, "yet another passphrase")
        .await
        .assert_problem(400, "token_invalid");
    assert!(
        !read_logs().contains(&token),
        "a reset token reached the log"
    );
}

#[tokio::test]
async fn only_the_newest_reset_link_works_and_only_for_thirty_minutes() {
    let (app, _dispatcher) = app_with_mail(&[]).await;
    let email = address("gina");
    app.register(&email, "worker").await;
    mail::server().wait_for(&email, 1).await;

    forgot(&app, &email).await;
    let first = link_token(
        &mail::server().wait_for(&email, 2).await[1].text,
        "reset-password",
    );
    forgot(&app, &email).await;
    let second = link_token(
        &mail::server().wait_for(&email, 3).await[2].text,
        "reset-password",
    );
    reset(&app, &first, NEW_PASSWORD)
        .await
        .assert_problem(400, "token_invalid");

    sql(
        &app,
        "UPDATE account_tokens SET expires_at = created_at + interval '30 minutes' - interval '31 minutes' \
         WHERE purpose = 'reset_password'",
    )
    .await;
    reset(&app, &second, NEW_PASSWORD)
        .await
        .assert_problem(400, "token_invalid");
    // A verification token is no reset token.
    let verification = link_token(&mail::server().received(&email)[0].text, "verify-email");
    reset(&app, &verification, NEW_PASSWORD)
        .await
        .assert_problem(400, "token_invalid");
}

#[tokio::test]
async fn an_email_the_server_refuses_is_retried_until_accepted() {
    let (app, _dispatcher) = app_with_mail(&[]).await;
    // The SMTP sink refuses a "flaky…" recipient once with a temporary error.
    let email = address("flaky");
    app.register(&email, "client").await;
    let mails = mail::server().wait_for(&email, 1).await;
    assert_eq!(mails.len(), 1);
    let page = metrics(&app).await;
    assert_eq!(counter(&page, "emails_retried_total"), 1, "{page}");
    assert_eq!(counter(&page, "emails_sent_total"), 1, "{page}");
    assert_eq!(counter(&page, "emails_failed_total"), 0, "{page}");
}

#[tokio::test]
async fn an_email_never_accepted_is_parked_and_counted_failed() {
    // Nothing listens on this port: every attempt fails; the second is the last.
    let port = crate::common::tcp_proxy::free_port().to_string();
    let url = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[("SMTP_URL", &url), ("EVENT_MAX_ATTEMPTS", "2")]).await;
    app.register(&address("hugo"), "client").await;
    dispatch_round(&app.state, 100).await.expect("round");
    sql(&app, "UPDATE events SET next_attempt_at = now()").await;
    dispatch_round(&app.state, 100).await.expect("round");
    let page = metrics(&app).await;
    assert_eq!(counter(&page, "emails_retried_total"), 1, "{page}");
    assert_eq!(counter(&page, "emails_failed_total"), 1, "{page}");
    assert_eq!(counter(&page, "emails_sent_total"), 0, "{page}");
}

#[tokio::test]
async fn a_registration_that_rolls_back_sends_nothing() {
    let (app, _dispatcher) = app_with_mail(&[]).await;
    let email = address("ines");
    app.register(&email, "client").await;
    let again = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": email, "password": PASSWORD, "full_name": "Twin", "role": "worker"}),
        )
        .await;
    again.assert_problem(409, "email_taken");
    mail::server().wait_for(&email, 1).await;
    // Give a wrongly queued second email time to arrive.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(mail::server().received(&email).len(), 1);
}

#[tokio::test]
async fn without_smtp_emails_are_written_under_the_log_dir() {
    let log_dir = format!("{}/mail-log-{{db}}", env!("CARGO_TARGET_TMPDIR"));
    let app = TestApp::spawn_with(&[("LOG_DIR", &log_dir)]).await;
    let email = address("jo");
    app.register(&email, "client").await;
    dispatch_round(&app.state, 100).await.expect("round");
    let dir = std::path::Path::new(&app.settings.log_dir).join("mail");
    let files: Vec<Value> = std::fs::read_dir(&dir)
        .expect("mail dir")
        .flatten()
        .map(|e| Value::String(std::fs::read_to_string(e.path()).expect("eml")))
        .collect();
    let _ = std::fs::remove_dir_all(&app.settings.log_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let eml = files[0].as_str().expect("text");
    assert!(
        eml.contains(&email) && eml.contains("Subject: Confirm your email address"),
        "{eml}"
    );
}

/// The password of the STARTTLS + AUTH test server's user `mailer`.
const SMTP_PASSWORD: &str = "right-pass-1";

/// Registers one address with an app that sends as `mailer:{password}` to a STARTTLS +
/// AUTH server of its own, trusting the CA that signed the server's certificate
/// (`right_ca`) or an unrelated one, and dispatches its email twice (EVENT_MAX_ATTEMPTS
/// is 2: a second failure is the last). Returns the server, the app and the address.
async fn send_to_secure_server(password: &str, right_ca: bool) -> (MailServer, TestApp, String) {
    let pki = pki();
    let cert = pem_file("smtp.crt", &pki.server_cert_pem);
    let key = pem_file("smtp.key", &pki.server_key_pem);
    let ca = pem_file(
        "smtp-ca.pem",
        &if right_ca { pki.ca_pem } else { new_ca().2 },
    );
    let server = MailServer::start_secure(&cert, &key, "mailer", SMTP_PASSWORD);
    let url = format!("smtp://mailer:{password}@127.0.0.1:{}", server.port);
    let app = TestApp::spawn_with(&[
        ("SMTP_URL", &url),
        ("SMTP_CA_CERT", &ca.to_string_lossy()),
        ("EVENT_MAX_ATTEMPTS", "2"),
    ])
    .await;
    // The server and the app have read their files.
    for path in [cert, key, ca] {
        let _ = std::fs::remove_file(path);
    }
    let email = address("secure");
    app.register(&email, "client").await;
    dispatch_round(&app.state, 100).await.expect("round");
    sql(&app, "UPDATE events SET next_attempt_at = now()").await;
    dispatch_round(&app.state, 100).await.expect("round");
    (server, app, email)
}

/// The last error of the (only) email event, once it is parked; `None` while it is not.
async fn parked_error(app: &TestApp) -> Option<String> {
    #[derive(diesel::QueryableByName)]
    struct Parked {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        last_error: Option<String>,
    }
    let mut conn = app.state.db.get().await.expect("conn");
    diesel::sql_query("SELECT last_error FROM events WHERE parked_at IS NOT NULL")
        .get_result::<Parked>(&mut conn)
        .await
        .ok()
        .and_then(|p| p.last_error)
}

#[tokio::test]
async fn smtp_with_credentials_delivers_over_starttls_to_a_verified_server() {
    // The server takes mail only after STARTTLS and AUTH.
    let (server, app, email) = send_to_secure_server(SMTP_PASSWORD, true).await;
    let mails = server.wait_for(&email, 1).await;
    assert_eq!(mails[0].subject, "Confirm your email address");
    let page = metrics(&app).await;
    assert_eq!(counter(&page, "emails_sent_total"), 1, "{page}");
    assert_eq!(counter(&page, "emails_retried_total"), 0, "{page}");
    assert_eq!(counter(&page, "emails_failed_total"), 0, "{page}");
}

#[tokio::test]
async fn a_wrong_smtp_password_is_retried_then_counted_as_failed_and_never_logged() {
    let (server, app, email) = send_to_secure_server("wrong-pass-2", true).await;
    let error = parked_error(&app)
        .await
        .expect("the email's event is parked");
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("wrong-pass-2"), "{error}");
    let page = metrics(&app).await;
    assert_eq!(counter(&page, "emails_retried_total"), 1, "{page}");
    assert_eq!(counter(&page, "emails_failed_total"), 1, "{page}");
    assert_eq!(counter(&page, "emails_sent_total"), 0, "{page}");
    assert!(server.received(&email).is_empty());
    let logs = wait_for_log("event parked after its last attempt").await;
    assert!(
        !logs.contains("wrong-pass-2") && !logs.contains(SMTP_PASSWORD),
        "an SMTP password reached the log"
    );
}

#[tokio::test]
async fn an_smtp_server_certificate_from_another_ca_is_refused() {
    let (server, app, email) = send_to_secure_server(SMTP_PASSWORD, false).await;
    let error = parked_error(&app)
        .await
        .expect("the email's event is parked");
    assert!(error.contains("certificate"), "{error}");
    let page = metrics(&app).await;
    assert_eq!(counter(&page, "emails_failed_total"), 1, "{page}");
    assert_eq!(counter(&page, "emails_sent_total"), 0, "{page}");
    assert!(server.received(&email).is_empty());
}

#[tokio::test]
async fn an_smtp_server_that_stops_answering_fails_the_attempt_instead_of_stalling() {
    // Connections complete (the kernel's backlog) but nothing is ever said on them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "smtp://127.0.0.1:{}",
        silent.local_addr().expect("addr").port()
    );
    let app = TestApp::spawn_with(&[("SMTP_URL", &url), ("EVENT_MAX_ATTEMPTS", "1")]).await;
    app.register(&address("silent"), "client").await;
    dispatch_round(&app.state, 100).await.expect("round");
    let error = parked_error(&app)
        .await
        .expect("the email's event is parked");
    assert!(error.contains("did not answer"), "{error}");
}
