//! `services.listed`: one test per change that can make a listing public or private, and
//! random histories of all of them, each step compared with the rule the flag stands for.

use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, Tokens, listed_mismatches};

/// The stored flag of listing `id`.
async fn listed(app: &TestApp, id: &str) -> bool {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use marketplace::db::schema::services;
    let id: uuid::Uuid = id.parse().expect("uuid");
    let mut conn = app.state.db.get().await.expect("conn");
    services::table
        .filter(services::id.eq(id))
        .select(services::listed)
        .first(&mut conn)
        .await
        .expect("listing")
}

/// The flag, checked against what an anonymous reader sees and against the rule.
async fn public(app: &TestApp, id: &str) -> bool {
    let flag = listed(app, id).await;
    let status = app
        .get(&format!("/api/v1/services/{id}"), None)
        .await
        .status;
    assert_eq!(status == StatusCode::OK, flag, "GET agrees with `listed`");
    let mut conn = app.state.db.get().await.expect("conn");
    assert_eq!(listed_mismatches(&mut conn).await.expect("check"), 0);
    flag
}

async fn action(app: &TestApp, token: &str, path: &str, body: Option<serde_json::Value>) {
    let reply = app.call(Method::POST, path, Some(token), body).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
}

/// An app, an admin, a KYC-approved worker and one of their listings.
async fn listing() -> (TestApp, Tokens, String, Tokens, String) {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("listed-admin@example.com").await;
    let (worker_id, worker) = app.approved_worker("listed@example.com", &admin).await;
    let id = app.listing(&worker.access, json!({})).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    (app, admin, worker_id, worker, id)
}

#[tokio::test]
async fn a_new_listing_is_listed_only_when_its_worker_is_visible() {
    let (app, _, _, _, id) = listing().await;
    assert!(public(&app, &id).await, "approved worker");
    let (_, fresh) = app.user("fresh@example.com", "worker").await;
    let unapproved = app.listing(&fresh.access, json!({})).await;
    assert!(!public(&app, unapproved["id"].as_str().expect("id")).await);
}

#[tokio::test]
async fn kyc_approval_lists_and_a_later_rejection_unlists() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("kyc-listed-admin@example.com").await;
    let (_, worker) = app.user("kyc-listed@example.com", "worker").await;
    let id = app.listing(&worker.access, json!({})).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let first = app.submit_kyc(&worker.access).await;
    assert!(!public(&app, &id).await, "an upload alone lists nothing");
    action(
        &app,
        &admin.access,
        &format!("/api/v1/admin/kyc/{first}/approve"),
        None,
    )
    .await;
    assert!(public(&app, &id).await, "approved");
    let second = app.submit_kyc(&worker.access).await;
    assert!(
        public(&app, &id).await,
        "a new upload keeps the approval while it waits"
    );
    action(
        &app,
        &admin.access,
        &format!("/api/v1/admin/kyc/{second}/reject"),
        Some(json!({"reason": "blurred"})),
    )
    .await;
    assert!(!public(&app, &id).await, "the latest decision rejected");
}

#[tokio::test]
async fn suspension_unlists_and_reinstatement_relists() {
    let (app, admin, worker_id, _, id) = listing().await;
    action(
        &app,
        &admin.access,
        &format!("/api/v1/admin/users/{worker_id}/suspend"),
        Some(json!({"reason": "fraud"})),
    )
    .await;
    assert!(!public(&app, &id).await, "suspended");
    action(
        &app,
        &admin.access,
        &format!("/api/v1/admin/users/{worker_id}/reinstate"),
        None,
    )
    .await;
    assert!(public(&app, &id).await, "reinstated");
}

#[tokio::test]
async fn hiding_unlists_and_unhiding_relists() {
    let (app, admin, _, _, id) = listing().await;
    action(
        &app,
        &admin.access,
        &format!("/api/v1/admin/services/{id}/hide"),
        Some(json!({"reason": "spam"})),
    )
    .await;
    assert!(!public(&app, &id).await, "hidden");
    action(
        &app,
        &admin.access,
        &format!("/api/v1/admin/services/{id}/unhide"),
        None,
    )
    .await;
    assert!(public(&app, &id).await, "unhidden");
}

#[tokio::test]
async fn deleting_unlists() {
    let (app, _, _, worker, id) = listing().await;
    let reply = app
        .call(
            Method::DELETE,
            &format!("/api/v1/services/{id}"),
            Some(&worker.access),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(!public(&app, &id).await);
}

#[tokio::test]
async fn unhiding_a_suspended_workers_listing_keeps_it_unlisted() {
    let (app, admin, worker_id, _, id) = listing().await;
    action(
        &app,
        &admin.access,
        &format!("/api/v1/admin/services/{id}/hide"),
        Some(json!({"reason": "spam"})),
    )
    .await;
    action(
        &app,
        &admin.access,
        &format!("/api/v1/admin/users/{worker_id}/suspend"),
        Some(json!({"reason": "fraud"})),
    )
    .await;
    action(
        &app,
        &admin.access,
        &format!("/api/v1/admin/services/{id}/unhide"),
        None,
    )
    .await;
    assert!(!public(&app, &id).await, "still suspended");
}

/// One step of a history, over a few workers and their listings.
#[derive(Debug, Clone)]
enum Step {
    Create(usize),
    Upload(usize),
    Approve(usize),
    Reject(usize),
    Suspend(usize),
    Reinstate(usize),
    Hide(usize),
    Unhide(usize),
    Delete(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let w = 0..2usize;
    let l = 0..4usize;
    prop_oneof![
        w.clone().prop_map(Step::Create),
        w.clone().prop_map(Step::Upload),
        w.clone().prop_map(Step::Approve),
        w.clone().prop_map(Step::Reject),
        w.clone().prop_map(Step::Suspend),
        w.prop_map(Step::Reinstate),
        l.clone().prop_map(Step::Hide),
        l.clone().prop_map(Step::Unhide),
        l.prop_map(Step::Delete),
    ]
}

struct Worker {
    id: String,
    email: String,
    token: String,
    pending: Vec<String>,
}

/// Plays `steps` through the API (whatever each answers: a step may be refused, like
/// deciding with nothing pending), comparing `listed` with the rule after each one.
async fn play(app: &TestApp, admin: &Tokens, case: usize, steps: Vec<Step>) {
    let mut workers = Vec::new();
    for w in 0..2 {
        let email = format!("history{case}-{w}@example.com");
        let (id, tokens) = app.user(&email, "worker").await;
        workers.push(Worker {
            id,
            email,
            token: tokens.access,
            pending: Vec::new(),
        });
    }
    let mut listings: Vec<(String, usize)> = Vec::new();
    for (n, step) in steps.into_iter().enumerate() {
        match step {
            Step::Create(w) => {
                let reply = app
                    .post(
                        "/api/v1/services",
                        Some(&workers[w].token),
                        json!({
                        "title": "Tiling", "description": "Bathrooms", "category": "tiling",
                        "price_cents": 100, "pricing_unit": "fixed", "city": "Lisbon"}),
                    )
                    .await;
                if reply.status == StatusCode::CREATED {
                    listings.push((reply.json["id"].as_str().expect("id").to_owned(), w));
                }
            }
            Step::Upload(w) => {
                let reply = app
                    .upload_document(
                        &workers[w].token,
                        "passport",
                        "p.pdf",
                        "application/pdf",
                        crate::common::PDF.to_vec(),
                    )
                    .await;
                if reply.status == StatusCode::CREATED {
                    workers[w]
                        .pending
                        .push(reply.json["id"].as_str().expect("id").to_owned());
                }
            }
            Step::Approve(w) | Step::Reject(w) => {
                if let Some(kyc) = workers[w].pending.pop() {
                    let (verb, body) = match step {
                        Step::Approve(_) => ("approve", None),
                        _ => ("reject", Some(json!({"reason": "unreadable"}))),
                    };
                    app.call(
                        Method::POST,
                        &format!("/api/v1/admin/kyc/{kyc}/{verb}"),
                        Some(&admin.access),
                        body,
                    )
                    .await;
                }
            }
            Step::Suspend(w) => {
                app.post(
                    &format!("/api/v1/admin/users/{}/suspend", workers[w].id),
                    Some(&admin.access),
                    json!({"reason": "r"}),
                )
                .await;
            }
            Step::Reinstate(w) => {
                let path = format!("/api/v1/admin/users/{}/reinstate", workers[w].id);
                if app
                    .call(Method::POST, &path, Some(&admin.access), None)
                    .await
                    .status
                    == StatusCode::OK
                {
                    // Suspension revoked the worker's logins: sign in again.
                    workers[w].token = app
                        .login(&workers[w].email, crate::common::PASSWORD)
                        .await
                        .access;
                }
            }
            Step::Hide(l) | Step::Unhide(l) | Step::Delete(l) => {
                let Some((id, w)) = listings.get(l % listings.len().max(1)).cloned() else {
                    continue;
                };
                match step {
                    Step::Hide(_) => {
                        app.post(
                            &format!("/api/v1/admin/services/{id}/hide"),
                            Some(&admin.access),
                            json!({"reason": "r"}),
                        )
                        .await;
                    }
                    Step::Unhide(_) => {
                        app.call(
                            Method::POST,
                            &format!("/api/v1/admin/services/{id}/unhide"),
                            Some(&admin.access),
                            None,
                        )
                        .await;
                    }
                    _ => {
                        app.call(
                            Method::DELETE,
                            &format!("/api/v1/services/{id}"),
                            Some(&workers[w].token),
                            None,
                        )
                        .await;
                    }
                }
            }
        }
        let mut conn = app.state.db.get().await.expect("conn");
        assert_eq!(
            listed_mismatches(&mut conn).await.expect("check"),
            0,
            "case {case}, after step {n}"
        );
    }
}

#[test]
fn random_histories_keep_listed_equal_to_the_rule() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (app, admin) = runtime.block_on(async {
        let app = TestApp::spawn().await;
        let (_, admin) = app.admin("history-admin@example.com").await;
        (app, admin)
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(step(), 1..30), |steps| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            runtime.block_on(play(&app, &admin, n, steps));
            Ok(())
        })
        .expect("every history keeps `listed` right");
    runtime.block_on(async move { drop(app) });
}
