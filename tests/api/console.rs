//! The admin console's form handlers: sign-in and its cookie, CSRF, who may sign in,
//! and sessions that end when the login they are bound to does.

use std::collections::HashMap;

use reqwest::{Method, StatusCode, redirect::Policy};
use serde_json::json;

use crate::common::{PASSWORD, Reply, TestApp, tomorrow_at};

/// A browser without JavaScript: keeps the console's cookies, follows no redirect.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
    /// The `Set-Cookie` headers of the last response, verbatim.
    set_cookies: Vec<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
            set_cookies: Vec::new(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Reply {
        let mut request = self.client.request(method, self.app.url(path));
        if !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header("cookie", header.join("; "));
        }
        if let Some(form) = form {
            request = request.form(form);
        }
        let reply = Reply::from(request.send().await.expect("request")).await;
        self.set_cookies = reply
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for cookie in &self.set_cookies {
            let pair = cookie.split(';').next().expect("pair");
            let (name, value) = pair.split_once('=').expect("name=value");
            if cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        reply
    }

    async fn get(&mut self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(Method::POST, path, Some(form)).await
    }

    /// Loads the sign-in form and submits it.
    async fn sign_in(&mut self, email: &str, password: &str) -> Reply {
        let form = self.get("/admin/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = csrf_of(&form.body);
        self.post(
            "/admin/login",
            &[("email", email), ("password", password), ("csrf", &csrf)],
        )
        .await
    }

    /// The CSRF token the dashboard's forms carry.
    async fn csrf(&mut self) -> String {
        let page = self.get("/admin/").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        csrf_of(&page.body)
    }
}

fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    let end = start + html[start..].find('"').expect("end of value");
    html[start..end].to_owned()
}

fn location(reply: &Reply) -> &str {
    reply.header("location").expect("a redirect")
}

async fn user_status(app: &TestApp, admin: &str, id: &str) -> String {
    let all = app.get("/api/v1/admin/users?limit=100", Some(admin)).await;
    assert_eq!(all.status, StatusCode::OK);
    all.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|u| u["id"] == id)
        .expect("the user")["status"]
        .as_str()
        .expect("status")
        .to_owned()
}

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_pages_carry_the_console_policy() {
    let app = TestApp::spawn().await;
    app.admin("root@example.com").await;
    let mut browser = Browser::new(&app);

    let anonymous = browser.get("/admin/users").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/admin/login");

    let signed_in = browser.sign_in("root@example.com", PASSWORD).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(location(&signed_in), "/admin/");
    let cookie = browser
        .set_cookies
        .iter()
        .find(|c| c.starts_with("console_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Secure"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }

    let dashboard = browser.get("/admin/").await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.body);
    for text in [
        "Dashboard",
        "KYC",
        "Users",
        "Listings",
        "Reviews",
        "Audit log",
        "Sign out",
    ] {
        assert!(dashboard.body.contains(text), "{text} missing");
    }
    let policy = dashboard.header("content-security-policy").expect("CSP");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(policy.contains("script-src 'none'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(dashboard.header("cache-control"), Some("no-store"));
    assert_eq!(dashboard.header("x-frame-options"), Some("DENY"));
    assert!(!dashboard.body.contains("<script"));

    let css = browser.get("/admin/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.header("content-type")
            .expect("type")
            .starts_with("text/css")
    );

    // Development serves plain-HTTP localhost: the cookie cannot require HTTPS there.
    let dev = TestApp::spawn_with(&[("APP_ENV", "development")]).await;
    dev.admin("root@example.com").await;
    let mut browser = Browser::new(&dev);
    browser.sign_in("root@example.com", PASSWORD).await;
    let cookie = browser
        .set_cookies
        .iter()
        .find(|c| c.starts_with("console_session="))
        .expect("a session cookie");
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("root@example.com").await;
    let (worker, _) = app.user("wanda@example.com", "worker").await;
    let suspend = format!("/admin/users/{worker}/suspend");

    let mut other = Browser::new(&app);
    other.sign_in("root@example.com", PASSWORD).await;
    let others_token = other.csrf().await;

    let mut browser = Browser::new(&app);
    browser.sign_in("root@example.com", PASSWORD).await;
    let token = browser.csrf().await;
    assert_ne!(token, others_token, "tokens are per session");

    let missing = browser.post(&suspend, &[("reason", "spam")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.body);
    assert!(missing.body.contains("security token"), "{}", missing.body);
    let wrong = browser
        .post(&suspend, &[("reason", "spam"), ("csrf", &others_token)])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(user_status(&app, &admin.access, &worker).await, "active");
    assert!(app.audit_rows().await.is_empty());

    let done = browser
        .post(&suspend, &[("reason", "spam"), ("csrf", &token)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(location(&done), "/admin/users");
    assert_eq!(user_status(&app, &admin.access, &worker).await, "suspended");
    let page = browser.get("/admin/users").await;
    assert!(
        page.body.contains("Suspended wanda@example.com"),
        "{}",
        page.body
    );
    let rows = app.audit_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2.as_deref(), Some("spam"));

    // The sign-in form has a token too, bound to the nonce cookie served with it.
    let mut fresh = Browser::new(&app);
    let forged = fresh
        .post(
            "/admin/login",
            &[
                ("email", "root@example.com"),
                ("password", PASSWORD),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!fresh.cookies.contains_key("console_session"));
}

#[tokio::test]
async fn only_admins_may_sign_in_and_others_are_told_why() {
    let app = TestApp::spawn().await;
    let (_, worker) = app.user("wanda@example.com", "worker").await;
    app.user("carl@example.com", "client").await;
    let mut browser = Browser::new(&app);

    let refused = browser.sign_in("wanda@example.com", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("This is a worker account"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("admins only"));
    assert!(!browser.cookies.contains_key("console_session"));
    let refused = browser.sign_in("carl@example.com", PASSWORD).await;
    assert!(
        refused.body.contains("This is a client account"),
        "{}",
        refused.body
    );

    let wrong = browser
        .sign_in("wanda@example.com", "not the password")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong email or password"));
    assert!(
        !wrong.body.contains("worker account"),
        "no role for a wrong password"
    );

    // The worker's own API login is untouched by the refusal, and the refusals opened
    // no session: the worker's only login is the API one.
    let me = app.get("/api/v1/auth/me", Some(&worker.access)).await;
    assert_eq!(me.status, StatusCode::OK);
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use marketplace::db::schema::login_sessions;
        let mut conn = app.state.db.get().await.expect("conn");
        let sessions: i64 = login_sessions::table
            .count()
            .get_result(&mut conn)
            .await
            .expect("count");
        assert_eq!(
            sessions, 2,
            "one API login each for the worker and the client"
        );
    }
    // And an API token is no console credential.
    let with_bearer = app.get("/admin/", Some(&worker.access)).await;
    assert!(with_bearer.body.contains("Sign in"), "{}", with_bearer.body);
}

#[tokio::test]
async fn console_sign_in_shares_the_apis_login_rate_limit() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_LOGIN_PER_MIN", "2")]).await;
    app.admin("root@example.com").await;
    let mut browser = Browser::new(&app);
    let mut last = None;
    for _ in 0..3 {
        last = Some(browser.sign_in("root@example.com", "wrong password").await);
    }
    let limited = last.expect("a reply");
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert!(limited.body.contains("Cannot sign in"), "{}", limited.body);
}

#[tokio::test]
async fn suspension_logout_and_password_change_end_console_sessions() {
    let app = TestApp::spawn().await;
    let (ops_id, _) = app.admin("ops@example.com").await;
    let (_, root) = app.admin("root@example.com").await;

    // Suspension through the API ends the suspended admin's console session.
    let mut ops = Browser::new(&app);
    ops.sign_in("ops@example.com", PASSWORD).await;
    assert_eq!(ops.get("/admin/").await.status, StatusCode::OK);
    let reply = app
        .post(
            &format!("/api/v1/admin/users/{ops_id}/suspend"),
            Some(&root.access),
            json!({"reason": "left the company"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let after = ops.get("/admin/").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&after), "/admin/login");

    // Signing out revokes the login session: a copy of the cookie is dead too.
    let mut browser = Browser::new(&app);
    browser.sign_in("root@example.com", PASSWORD).await;
    let copy = browser.cookies.clone();
    let token = browser.csrf().await;
    let out = browser.post("/admin/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/admin/login");
    assert!(!browser.cookies.contains_key("console_session"));
    let mut replay = Browser::new(&app);
    replay.cookies = copy;
    assert_eq!(replay.get("/admin/").await.status, StatusCode::SEE_OTHER);

    // A password change through the API ends every other login, the console's included.
    let mut browser = Browser::new(&app);
    browser.sign_in("root@example.com", PASSWORD).await;
    assert_eq!(browser.get("/admin/").await.status, StatusCode::OK);
    let changed = app
        .post(
            "/api/v1/auth/password",
            Some(&root.access),
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    assert_eq!(browser.get("/admin/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn kyc_review_shows_the_document_sandboxed_and_decides_through_the_api_rules() {
    let app = TestApp::spawn().await;
    app.admin("root@example.com").await;
    let (_, worker) = app.user("wanda@example.com", "worker").await;
    let first = app.submit_kyc(&worker.access).await;
    let mut browser = Browser::new(&app);
    browser.sign_in("root@example.com", PASSWORD).await;

    let queue = browser.get("/admin/kyc").await;
    assert!(
        queue.body.contains(&format!("/admin/kyc/{first}")),
        "{}",
        queue.body
    );
    assert!(queue.body.contains("Review") && queue.body.contains("wanda@example.com"));
    let review = browser.get(&format!("/admin/kyc/{first}")).await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.body);
    assert!(review.body.contains("<iframe"), "a PDF is framed");
    assert!(review.body.contains("Approve") && review.body.contains("Reject"));
    assert!(!review.body.contains("takes the approval away"));

    let document = browser.get(&format!("/admin/kyc/{first}/document")).await;
    assert_eq!(document.status, StatusCode::OK);
    assert_eq!(document.header("content-type"), Some("application/pdf"));
    let policy = document.header("content-security-policy").expect("CSP");
    assert!(policy.starts_with("sandbox"), "{policy}");
    assert!(policy.contains("frame-ancestors 'self'"), "{policy}");
    assert_eq!(document.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(document.header("x-frame-options"), Some("SAMEORIGIN"));
    assert!(
        document
            .header("content-disposition")
            .expect("disposition")
            .starts_with("inline")
    );

    // A rejection without a reason goes back to the review page, which says why.
    let token = csrf_of(&review.body);
    let reject = format!("/admin/kyc/{first}/reject");
    let refused = browser
        .post(&reject, &[("reason", " "), ("csrf", &token)])
        .await;
    assert_eq!(location(&refused), format!("/admin/kyc/{first}"));
    let shown = browser.get(location(&refused)).await;
    assert!(
        shown.body.contains("reason: must be 1 to 1000 characters"),
        "{}",
        shown.body
    );
    let again = browser.get(&format!("/admin/kyc/{first}")).await;
    assert!(
        !again.body.contains("must be 1 to 1000"),
        "a notice shows once"
    );

    let approved = browser
        .post(&format!("/admin/kyc/{first}/approve"), &[("csrf", &token)])
        .await;
    assert_eq!(location(&approved), "/admin/kyc");
    let queue = browser.get("/admin/kyc").await;
    assert!(
        queue
            .body
            .contains(&format!("Approved the passport of submission {first}"))
    );
    let profile = app.get("/api/v1/workers/me", Some(&worker.access)).await;
    assert_eq!(profile.json["kyc_status"], "approved");

    // Deciding twice is the API's 409, shown on the page.
    let twice = browser
        .post(&format!("/admin/kyc/{first}/approve"), &[("csrf", &token)])
        .await;
    let shown = browser.get(location(&twice)).await;
    assert!(
        shown.body.contains("already been reviewed"),
        "{}",
        shown.body
    );

    // A new submission of an approved worker: rejecting it would take the approval away.
    let second = app.submit_kyc(&worker.access).await;
    let review = browser.get(&format!("/admin/kyc/{second}")).await;
    assert!(
        review.body.contains("takes the approval away"),
        "{}",
        review.body
    );
    let rejected = browser
        .post(
            &format!("/admin/kyc/{second}/reject"),
            &[("reason", "blurry scan"), ("csrf", &token)],
        )
        .await;
    assert_eq!(location(&rejected), "/admin/kyc");
    let profile = app.get("/api/v1/workers/me", Some(&worker.access)).await;
    assert_eq!(profile.json["kyc_status"], "rejected");
    let audit = browser.get("/admin/audit").await;
    assert!(audit.body.contains("kyc_approved") && audit.body.contains("kyc_rejected"));
    assert!(audit.body.contains("blurry scan"));
}

#[tokio::test]
async fn listings_are_found_and_hidden_and_filters_are_checked() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("root@example.com").await;
    let (_, worker) = app.approved_worker("wanda@example.com", &admin).await;
    let listing = app
        .listing(&worker.access, json!({"title": "Hedge trimming"}))
        .await;
    let id = listing["id"].as_str().expect("id");
    let mut browser = Browser::new(&app);
    browser.sign_in("root@example.com", PASSWORD).await;

    let found = browser.get("/admin/listings?q=hedge").await;
    assert!(found.body.contains("Hedge trimming"), "{}", found.body);
    let none = browser.get("/admin/listings?q=plumbing").await;
    assert!(none.body.contains("No listing matches"));
    let token = csrf_of(&found.body);
    let hidden = browser
        .post(
            &format!("/admin/listings/{id}/hide"),
            &[("reason", "misleading photos"), ("csrf", &token)],
        )
        .await;
    assert_eq!(location(&hidden), "/admin/listings");
    let page = browser.get("/admin/listings?status=hidden").await;
    assert!(
        page.body.contains("Hid the listing “Hedge trimming”"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Unhide"));
    let public = app.get(&format!("/api/v1/services/{id}"), None).await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);

    let bad_filter = browser.get("/admin/users?role=superuser").await;
    assert_eq!(bad_filter.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad_filter
            .body
            .contains("role: is not one of the listed values")
    );
}

#[tokio::test]
async fn reviews_are_shown_escaped_and_hidden_from_their_page() {
    let w = crate::jobs::world_with(&[]).await;
    let job = w.book_at(&tomorrow_at(10)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for action in ["accept", "start", "complete"] {
        let reply = w.act(&w.worker, &job, action, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let posted = w
        .app
        .post(
            &format!("/api/v1/jobs/{job}/review"),
            Some(&w.client.access),
            json!({"rating": 1, "comment": "<b>rude</b> and late"}),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    let review = posted.json["id"].as_str().expect("id");
    let mut browser = Browser::new(&w.app);
    browser.sign_in("jobs-admin@example.com", PASSWORD).await;

    let page = browser.get("/admin/reviews").await;
    assert!(
        page.body.contains("&lt;b&gt;rude&lt;/b&gt; and late"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>rude</b>"), "user text is escaped");
    let token = csrf_of(&page.body);
    let hidden = browser
        .post(
            &format!("/admin/reviews/{review}/hide"),
            &[("reason", "abusive"), ("csrf", &token)],
        )
        .await;
    assert_eq!(location(&hidden), "/admin/reviews");
    let page = browser.get("/admin/reviews").await;
    assert!(page.body.contains("Hid a 1-star review"), "{}", page.body);
    assert!(!page.body.contains(&format!("/admin/reviews/{review}/hide")));
    let public = w
        .app
        .get(&format!("/api/v1/workers/{}/reviews", w.worker_id), None)
        .await;
    assert_eq!(public.json["items"], json!([]));
}
