//! Moderation: who may call the admin routes, user search, the audit log, the figures
//! and hiding reviews.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Reply, TestApp, Tokens, tomorrow_at};

/// An admin, a KYC-approved worker with one listing, and a client.
struct World {
    app: TestApp,
    admin: Tokens,
    worker_id: String,
    worker: Tokens,
    client: Tokens,
    service: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("boss@example.com").await;
    let (worker_id, worker) = app.approved_worker("fixer@example.com", &admin).await;
    let (_, client) = app.user("customer@example.com", "client").await;
    let service = app.listing(&worker.access, json!({})).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    World {
        app,
        admin,
        worker_id,
        worker,
        client,
        service,
    }
}

impl World {
    async fn admin_post(&self, path: &str, body: Option<Value>) -> Reply {
        let path = format!("/api/v1/admin{path}");
        self.app
            .call(Method::POST, &path, Some(&self.admin.access), body)
            .await
    }

    async fn admin_get(&self, path: &str) -> Reply {
        let reply = self
            .app
            .get(&format!("/api/v1/admin{path}"), Some(&self.admin.access))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply
    }

    /// Every item of a list, `limit` at a time, asserting no id comes twice.
    async fn all_pages(&self, path: &str, limit: u32) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut page_path = format!("{path}{sep}limit={limit}");
            if let Some(cursor) = &cursor {
                page_path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.admin_get(&page_path).await.json;
            let got = page["items"].as_array().expect("items");
            assert!(got.len() <= limit as usize);
            items.extend(got.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let mut ids: Vec<&str> = items
            .iter()
            .map(|i| i["id"].as_str().expect("id"))
            .collect();
        let count = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), count, "a page repeated an item");
        items
    }

    /// Books the listing for `client` tomorrow at `hour` and returns the job id.
    async fn book(&self, client: &Tokens, hour: u32) -> String {
        let reply = self
            .app
            .post(
                "/api/v1/jobs",
                Some(&client.access),
                json!({"service_id": self.service, "scheduled_at": tomorrow_at(hour), "address": "Rua Augusta 1"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json["id"].as_str().expect("id").to_owned()
    }

    /// The worker takes `job` through `actions`.
    async fn advance(&self, job: &str, actions: &[&str]) {
        for action in actions {
            let reply = self
                .app
                .call(
                    Method::POST,
                    &format!("/api/v1/jobs/{job}/{action}"),
                    Some(&self.worker.access),
                    Some(json!({"reason": "moderation test"})),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{action}: {}", reply.body);
        }
    }

    /// A completed job of a new client, reviewed with `rating`; returns the review id.
    async fn review(&self, n: u32, rating: u8) -> String {
        let (_, client) = self
            .app
            .user(&format!("reviewer{n}@example.com"), "client")
            .await;
        let job = self.book(&client, n).await;
        self.advance(&job, &["accept", "start", "complete"]).await;
        let reply = self
            .app
            .post(
                &format!("/api/v1/jobs/{job}/review"),
                Some(&client.access),
                json!({"rating": rating, "comment": format!("rated {rating}")}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json["id"].as_str().expect("id").to_owned()
    }

    /// `(rating_avg, rating_count)` of the worker's profile and of the listing.
    async fn ratings(&self) -> [(Value, Value); 2] {
        let worker = self
            .app
            .get(&format!("/api/v1/workers/{}", self.worker_id), None)
            .await
            .json;
        let listing = self
            .app
            .get(&format!("/api/v1/services/{}", self.service), None)
            .await
            .json;
        [worker, listing].map(|j| (j["rating_avg"].clone(), j["rating_count"].clone()))
    }
}

/// Registers a user with a chosen full name and returns its id.
async fn register_named(app: &TestApp, email: &str, name: &str, role: &str) -> String {
    let reply = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": email, "password": crate::common::PASSWORD, "full_name": name, "role": role}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.json["id"].as_str().expect("id").to_owned()
}

fn ids(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect()
}

#[tokio::test]
async fn every_admin_route_refuses_other_roles_and_anonymous_callers() {
    let app = TestApp::spawn().await;
    let (_, client) = app.user("client@example.com", "client").await;
    let (_, worker) = app.user("worker@example.com", "worker").await;
    let spec = app.get("/api/v1/openapi.json", None).await.json;
    let paths = spec["paths"].as_object().expect("paths");
    let uuid = "0190a5d2-7e3c-7000-8000-000000000001";
    let mut checked = Vec::new();
    for (path, operations) in paths {
        if !path.starts_with("/api/v1/admin") {
            continue;
        }
        // Every `{param}` becomes a well-formed uuid, so a 404 for a bad path cannot hide a 403.
        let concrete: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { uuid } else { part })
            .collect::<Vec<_>>()
            .join("/");
        for method in operations.as_object().expect("operations").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let body = (method != Method::GET).then(|| json!({"reason": "because"}));
            let anonymous = app
                .call(method.clone(), &concrete, None, body.clone())
                .await;
            anonymous.assert_problem(401, "unauthorized");
            for token in [&client.access, &worker.access] {
                app.call(method.clone(), &concrete, Some(token), body.clone())
                    .await
                    .assert_problem(403, "forbidden");
            }
            checked.push(format!("{method} {path}"));
        }
    }
    for route in [
        "GET /api/v1/admin/users",
        "POST /api/v1/admin/users/{id}/suspend",
        "POST /api/v1/admin/users/{id}/reinstate",
        "GET /api/v1/admin/kyc",
        "POST /api/v1/admin/kyc/{id}/approve",
        "POST /api/v1/admin/kyc/{id}/reject",
        "POST /api/v1/admin/services/{id}/hide",
        "POST /api/v1/admin/services/{id}/unhide",
        "POST /api/v1/admin/reviews/{id}/hide",
        "GET /api/v1/admin/audit-log",
        "GET /api/v1/admin/stats",
    ] {
        assert!(
            checked.iter().any(|c| c == route),
            "{route} not checked: {checked:?}"
        );
    }
}

#[tokio::test]
async fn users_are_searched_by_role_status_and_text_and_paged_newest_first() {
    let w = world().await;
    let app = &w.app;
    let ana = register_named(app, "ana.silva@example.com", "Ana Silva", "client").await;
    let bruno = register_named(app, "bruno@example.com", "Bruno SILVA", "worker").await;
    let percent = register_named(app, "pct@example.com", "Deal 100% Clean", "client").await;
    let underscore = register_named(app, "under@example.com", "Snake_Case Co", "client").await;
    let plain = register_named(app, "plain@example.com", "Deal 100 Clean", "client").await;
    let suspended = w
        .admin_post(
            &format!("/users/{plain}/suspend"),
            Some(json!({"reason": "spam"})),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);

    let world = &w;
    let search = |query: &'static str| async move {
        let items = world.admin_get(&format!("/users?{query}")).await.json["items"].clone();
        let items = items.as_array().expect("items").clone();
        items
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_owned())
            .collect::<Vec<_>>()
    };
    // Email, case-insensitively; name, case-insensitively; newest first.
    assert_eq!(search("q=ANA.SILVA").await, [ana.as_str()]);
    assert_eq!(search("q=silva").await, [bruno.as_str(), ana.as_str()]);
    assert_eq!(search("q=silva&role=worker").await, [bruno.as_str()]);
    // Wildcards match themselves only.
    assert_eq!(search("q=%25").await, [percent.as_str()]);
    assert_eq!(search("q=e_c").await, [underscore.as_str()]);
    assert_eq!(search("q=100%25%20").await, [percent.as_str()]);
    assert_eq!(search("q=deal").await, [plain.as_str(), percent.as_str()]);
    assert_eq!(search("status=suspended").await, [plain.as_str()]);
    assert_eq!(
        search("status=suspended&role=worker").await,
        Vec::<&str>::new()
    );

    let everyone = w.all_pages("/users", 100).await;
    assert_eq!(everyone.len(), 8, "the world's three and five more");
    let mut sorted = ids(&everyone);
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids(&everyone), sorted, "newest first");
    let paged = w.all_pages("/users", 2).await;
    assert_eq!(ids(&paged), ids(&everyone), "pages neither repeat nor skip");
    let user = &everyone.iter().find(|u| u["id"] == ana).expect("ana");
    assert_eq!(
        (
            &user["email"],
            &user["full_name"],
            &user["role"],
            &user["status"]
        ),
        (
            &json!("ana.silva@example.com"),
            &json!("Ana Silva"),
            &json!("client"),
            &json!("active")
        )
    );
    assert!(user.get("password_hash").is_none());
    let workers = w.all_pages("/users?role=worker", 1).await;
    assert_eq!(ids(&workers), [bruno.as_str(), w.worker_id.as_str()]);

    let token = Some(w.admin.access.as_str());
    for (bad, field) in [
        (format!("q={}", "a".repeat(101)), "q"),
        ("q=a%00b".to_owned(), "q"),
        ("role=superuser".to_owned(), "role"),
        ("limit=0".to_owned(), "limit"),
    ] {
        app.get(&format!("/api/v1/admin/users?{bad}"), token)
            .await
            .assert_invalid(&[field]);
    }
    app.get("/api/v1/admin/users?cursor=forged", token)
        .await
        .assert_problem(400, "bad_cursor");
    let long_ok = format!("/users?q={}", "é".repeat(100));
    assert_eq!(w.admin_get(&long_ok).await.json["items"], json!([]));
}

#[tokio::test]
async fn every_admin_action_is_in_the_audit_log_newest_first() {
    let w = world().await;
    let (victim, _) = w.app.user("victim@example.com", "client").await;
    let (_, rejected) = w.app.user("rejected@example.com", "worker").await;
    let submission = w.app.submit_kyc(&rejected.access).await;
    let review = w.review(9, 3).await;
    let service = &w.service;
    for (path, reason) in [
        (format!("/users/{victim}/suspend"), Some("spam")),
        (format!("/users/{victim}/reinstate"), None),
        (format!("/kyc/{submission}/reject"), Some("blurry")),
        (format!("/services/{service}/hide"), Some("misleading")),
        (format!("/services/{service}/unhide"), None),
        (format!("/reviews/{review}/hide"), Some("abusive")),
    ] {
        let body = reason.map(|reason| json!({ "reason": reason }));
        let reply = w.admin_post(&path, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    }

    w.app
        .get(
            "/api/v1/admin/audit-log?cursor=forged",
            Some(&w.admin.access),
        )
        .await
        .assert_problem(400, "bad_cursor");
    let log = w.all_pages("/audit-log", 2).await;
    let seen: Vec<(&str, &str, &Value)> = log
        .iter()
        .map(|e| {
            let action = e["action"].as_str().expect("action");
            let target = e["target_type"].as_str().expect("target_type");
            (action, target, &e["reason"])
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("review_hidden", "review", &json!("abusive")),
            ("service_unhidden", "service", &Value::Null),
            ("service_hidden", "service", &json!("misleading")),
            ("kyc_rejected", "kyc_submission", &json!("blurry")),
            ("user_reinstated", "user", &Value::Null),
            ("user_suspended", "user", &json!("spam")),
            // The world's worker was approved first of all.
            ("kyc_approved", "kyc_submission", &Value::Null),
        ]
    );
    assert_eq!(log[0]["target_id"], json!(review));
    assert_eq!(log[5]["target_id"], json!(victim));
    let me = w
        .app
        .get("/api/v1/auth/me", Some(&w.admin.access))
        .await
        .json;
    assert!(
        log.iter()
            .all(|e| e["actor_id"] == me["id"] && e["at"].is_string())
    );
    assert_eq!(
        w.admin_get("/audit-log").await.json["items"]
            .as_array()
            .map(Vec::len),
        Some(7)
    );
}

#[tokio::test]
async fn stats_match_what_was_created() {
    let w = world().await;
    let (_, other_client) = w.app.user("second@example.com", "client").await;
    w.app.user("third@example.com", "client").await;
    let (_, pending) = w.app.user("pending@example.com", "worker").await;
    w.app.submit_kyc(&pending.access).await;
    w.app.admin("deputy@example.com").await;

    let requested = w.book(&w.client, 1).await;
    let accepted = w.book(&w.client, 2).await;
    w.advance(&accepted, &["accept"]).await;
    let started = w.book(&other_client, 3).await;
    w.advance(&started, &["accept", "start"]).await;
    let declined = w.book(&other_client, 4).await;
    w.advance(&declined, &["decline"]).await;
    w.review(5, 5).await; // a completed job, by a fourth client
    assert!(!requested.is_empty());

    let hidden = w
        .app
        .listing(&w.worker.access, json!({"title": "Hidden"}))
        .await;
    let hidden = hidden["id"].as_str().expect("id");
    w.app
        .listing(&w.worker.access, json!({"title": "Another"}))
        .await;
    let reply = w
        .admin_post(
            &format!("/services/{hidden}/hide"),
            Some(json!({"reason": "dup"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    assert_eq!(
        w.admin_get("/stats").await.json,
        json!({
            "users_by_role": {"client": 4, "worker": 2, "admin": 2},
            "jobs_by_status": {
                "requested": 1, "accepted": 1, "declined": 1, "in_progress": 1,
                "completed": 1, "cancelled": 0, "expired": 0
            },
            "pending_kyc": 1,
            "services_active": 2,
        })
    );
}

#[tokio::test]
async fn a_hidden_review_leaves_public_lists_and_exact_ratings() {
    let w = world().await;
    let five = w.review(1, 5).await;
    let four = w.review(2, 4).await;
    let one = w.review(3, 1).await;
    let before = (json!(10.0 / 3.0), json!(3));
    assert_eq!(w.ratings().await, [before.clone(), before]);

    let path = format!("/reviews/{one}/hide");
    w.admin_post(&path, None)
        .await
        .assert_problem(400, "malformed_body");
    w.admin_post(&path, Some(json!({})))
        .await
        .assert_invalid(&["reason"]);
    w.admin_post(&path, Some(json!({"reason": " "})))
        .await
        .assert_invalid(&["reason"]);
    w.admin_post(
        "/reviews/0190a5d2-7e3c-7000-8000-000000000001/hide",
        Some(json!({"reason": "abusive"})),
    )
    .await
    .assert_problem(404, "not_found");
    let hidden = w
        .admin_post(&path, Some(json!({"reason": "abusive"})))
        .await;
    assert_eq!(hidden.status, StatusCode::OK, "{}", hidden.body);
    assert_eq!(
        (&hidden.json["id"], &hidden.json["rating"]),
        (&json!(one), &json!(1))
    );

    let after = (json!(4.5), json!(2));
    assert_eq!(w.ratings().await, [after.clone(), after]);
    let public = w
        .app
        .get(&format!("/api/v1/workers/{}/reviews", w.worker_id), None)
        .await;
    assert_eq!(
        ids(public.json["items"].as_array().expect("items")),
        [four.as_str(), five.as_str()]
    );

    w.admin_post(&path, Some(json!({"reason": "again"})))
        .await
        .assert_problem(409, "review_already_hidden");
    let audit = w.app.audit_rows().await;
    let hides: Vec<_> = audit
        .iter()
        .filter(|(action, ..)| *action == marketplace::db::enums::AuditAction::ReviewHidden)
        .collect();
    assert_eq!(hides.len(), 1, "the refused second hide is not audited");
    assert_eq!(
        (hides[0].1.as_str(), hides[0].2.as_deref()),
        ("review", Some("abusive"))
    );
}

/// Every moderation that needs a reason documents `reason` as required, and the server
/// enforces exactly that, after finding the target: an unknown target is 404 whatever
/// the body; a known one is 422 naming `reason` for `{}`, also where the action itself
/// would change nothing (hiding a listing already hidden).
#[tokio::test]
async fn moderation_reasons_are_required_as_documented() {
    let w = world().await;
    let (victim, _) = w.app.user("reasonless@example.com", "client").await;
    let (_, rejected) = w.app.user("reasonless-kyc@example.com", "worker").await;
    let submission = w.app.submit_kyc(&rejected.access).await;
    let review = w.review(9, 3).await;
    let service = &w.service;
    let spec = w.app.get("/api/v1/openapi.json", None).await.json;
    let unknown = "0190a5d2-7e3c-7000-8000-000000000001";
    for (template, target) in [
        ("/users/{id}/suspend", victim.as_str()),
        ("/kyc/{id}/reject", submission.as_str()),
        ("/services/{id}/hide", service.as_str()),
        ("/reviews/{id}/hide", review.as_str()),
    ] {
        let operation = &spec["paths"][format!("/api/v1/admin{template}")]["post"];
        let schema = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .expect("a body schema");
        let required = &spec["components"]["schemas"][schema]["required"];
        assert_eq!(required, &json!(["reason"]), "{template}");
        let path = |id: &str| template.replace("{id}", id);
        w.admin_post(&path(unknown), Some(json!({})))
            .await
            .assert_problem(404, "not_found");
        w.admin_post(&path(target), Some(json!({})))
            .await
            .assert_invalid(&["reason"]);
    }
    let hidden = w
        .admin_post(
            &format!("/services/{service}/hide"),
            Some(json!({"reason": "spam"})),
        )
        .await;
    assert_eq!(hidden.status, StatusCode::OK, "{}", hidden.body);
    w.admin_post(&format!("/services/{service}/hide"), Some(json!({})))
        .await
        .assert_invalid(&["reason"]);
}
