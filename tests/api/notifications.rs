//! Notifications: who is told about what (and nobody else), reading them, and their
//! WebSocket pushes on every instance.
//!
//! Rule tests dispatch by hand ([`World::settle`]) so each assertion sees every event
//! handled; push tests run the real background dispatcher.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    common::{Tokens, tomorrow_at},
    jobs::{World, world_with},
    messaging::{open, recv_type, send_to},
};

impl World {
    /// Books the listing tomorrow at `hour`:00 UTC; the job's JSON.
    pub async fn booked(&self, hour: u32) -> Value {
        self.book_at(&tomorrow_at(hour)).await
    }

    /// `action` on `job` by `who`, which must succeed.
    pub async fn acted(&self, who: &Tokens, job: &Value, action: &str, body: Option<Value>) {
        let reply = self
            .act(who, job["id"].as_str().expect("id"), action, body)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{action}: {}", reply.body);
    }

    /// Dispatches every due event.
    pub async fn settle(&self) {
        while marketplace::events::dispatcher::dispatch_round(&self.app.state, 100)
            .await
            .expect("dispatch")
            > 0
        {}
    }

    /// The caller's notifications, newest first, with an optional query.
    pub async fn notifications(&self, who: &Tokens, query: &str) -> Vec<Value> {
        let reply = self
            .app
            .get(&format!("/api/v1/notifications{query}"), Some(&who.access))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json["items"].as_array().expect("items").clone()
    }

    /// `(kind, action)` of the caller's notifications, oldest first.
    pub async fn kinds(&self, who: &Tokens) -> Vec<(String, Option<String>)> {
        let mut items = self.notifications(who, "?limit=100").await;
        items.reverse();
        items
            .iter()
            .map(|n| {
                (
                    n["kind"].as_str().expect("kind").to_owned(),
                    n["payload"]["action"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }
}

fn k(kind: &str) -> (String, Option<String>) {
    (kind.to_owned(), None)
}

fn moved(action: &str) -> (String, Option<String>) {
    ("job_transitioned".to_owned(), Some(action.to_owned()))
}

#[tokio::test]
async fn notifications_go_to_the_right_party_and_nobody_else() {
    let w = world_with(&[]).await;
    w.settle().await;
    assert_eq!(w.kinds(&w.worker).await, [k("kyc_decided")]);

    let job = w.booked(10).await;
    w.settle().await;
    assert_eq!(
        w.kinds(&w.worker).await,
        [k("kyc_decided"), k("job_booked")]
    );
    assert_eq!(w.kinds(&w.client).await, []);

    for action in ["accept", "start", "complete"] {
        w.acted(&w.worker, &job, action, None).await;
    }
    let thread = job["thread_id"].as_str().expect("thread");
    let sent = send_to(&w.app, &w.client, thread, json!({"body": "Thanks!"})).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    let review = w
        .app
        .post(
            &format!("/api/v1/jobs/{}/review", job["id"].as_str().expect("id")),
            Some(&w.client.access),
            json!({"rating": 5}),
        )
        .await;
    assert_eq!(review.status, StatusCode::CREATED, "{}", review.body);
    let other = w.booked(12).await;
    w.acted(
        &w.client,
        &other,
        "cancel",
        Some(json!({"reason": "plans changed"})),
    )
    .await;
    let declined = w.booked(14).await;
    w.acted(&w.worker, &declined, "decline", None).await;
    let reply = send_to(&w.app, &w.worker, thread, json!({"body": "You're welcome"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    w.settle().await;

    assert_eq!(
        w.kinds(&w.worker).await,
        [
            k("kyc_decided"),
            k("job_booked"),
            k("message_sent"),
            k("review_posted"),
            k("job_booked"),
            moved("cancel"),
            k("job_booked"),
        ]
    );
    assert_eq!(
        w.kinds(&w.client).await,
        [
            moved("accept"),
            moved("start"),
            moved("complete"),
            moved("decline"),
            k("message_sent"),
        ]
    );
    assert_eq!(w.kinds(&w.admin).await, [], "moderation notifies nobody");

    // The payload says what happened, without the recipients list.
    let newest = &w.notifications(&w.client, "?limit=1").await[0];
    assert_eq!(newest["payload"]["sender_id"], w.worker_id);
    assert_eq!(newest["payload"]["thread_id"], thread);
    assert!(newest["payload"].get("recipients").is_none(), "{newest}");
    assert_eq!(newest["read_at"], Value::Null);
    let accept = &w.notifications(&w.client, "").await[4];
    assert_eq!(accept["payload"]["from"], "requested");
    assert_eq!(accept["payload"]["to"], "accepted");
    assert_eq!(accept["payload"]["actor_id"], w.worker_id);
    assert_eq!(accept["payload"]["client_id"], w.client_id);
}

#[tokio::test]
async fn notifications_of_an_expiry_go_to_the_client() {
    let w = world_with(&[("JOB_REQUEST_TTL", "1")]).await;
    let swept = w.booked(10).await;
    let touched = w.booked(12).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Expired on the spot by a late accept, and by the sweep.
    let reply = w
        .app
        .post(
            &format!(
                "/api/v1/jobs/{}/accept",
                touched["id"].as_str().expect("id")
            ),
            Some(&w.worker.access),
            json!({}),
        )
        .await;
    reply.assert_problem(409, "job_invalid_transition");
    assert_eq!(
        marketplace::job::services::expire_due(&w.app.state, 10)
            .await
            .expect("sweep"),
        1
    );
    w.settle().await;
    let expired: Vec<Value> = w
        .notifications(&w.client, "")
        .await
        .iter()
        .map(|n| n["payload"]["job_id"].clone())
        .collect();
    assert_eq!(expired.len(), 2);
    assert!(expired.contains(&swept["id"]) && expired.contains(&touched["id"]));
    assert_eq!(
        w.kinds(&w.client).await,
        [k("job_expired"), k("job_expired")]
    );
    assert_eq!(
        w.kinds(&w.worker).await,
        [k("kyc_decided"), k("job_booked"), k("job_booked")]
    );
}

#[tokio::test]
async fn notifications_unread_filter_read_one_and_read_all() {
    let w = world_with(&[]).await;
    for hour in [9, 11, 13] {
        w.booked(hour).await;
    }
    w.settle().await;
    let all = w.notifications(&w.worker, "").await;
    assert_eq!(all.len(), 4, "kyc_decided and three bookings");
    let newest = all[0]["id"].as_str().expect("id");

    // A stranger's (or an unknown) notification is 404 and stays unread.
    for id in [newest.to_owned(), uuid::Uuid::now_v7().to_string()] {
        w.app
            .post(
                &format!("/api/v1/notifications/{id}/read"),
                Some(&w.client.access),
                json!({}),
            )
            .await
            .assert_problem(404, "not_found");
    }
    for _ in 0..2 {
        let reply = w
            .app
            .post(
                &format!("/api/v1/notifications/{newest}/read"),
                Some(&w.worker.access),
                json!({}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    }
    let unread = w.notifications(&w.worker, "?unread=true").await;
    assert_eq!(unread.len(), 3);
    assert!(unread.iter().all(|n| n["id"] != newest));
    assert!(w.notifications(&w.worker, "").await[0]["read_at"].is_string());

    // Keyset pages, newest first.
    let first = w
        .app
        .get("/api/v1/notifications?limit=2", Some(&w.worker.access))
        .await;
    let cursor = first.json["next_cursor"].as_str().expect("cursor");
    let second = w
        .notifications(&w.worker, &format!("?limit=2&cursor={cursor}"))
        .await;
    let ids: Vec<&Value> = first.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .chain(&second)
        .map(|n| &n["id"])
        .collect();
    assert_eq!(ids, all.iter().map(|n| &n["id"]).collect::<Vec<_>>());

    let reply = w
        .app
        .post(
            "/api/v1/notifications/read-all",
            Some(&w.worker.access),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert!(w.notifications(&w.worker, "?unread=true").await.is_empty());
    w.app
        .get("/api/v1/notifications", None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn notifications_are_pushed_to_every_socket_on_every_instance() {
    let w = world_with(&[]).await;
    w.settle().await;
    let sibling = w.app.spawn_sibling().await;
    let dispatcher = marketplace::events::dispatcher::Dispatcher::start(w.app.state.clone());
    let mut here = open(&w.app, &w.worker).await;
    let mut there = open(&sibling, &w.worker).await;
    let mut client = open(&sibling, &w.client).await;

    let job = w.booked(10).await;
    let mut pushed = Vec::new();
    for ws in [&mut here, &mut there] {
        pushed.push(recv_type(ws, "notification").await["notification"].clone());
    }
    assert_eq!(pushed[0], pushed[1]);
    assert_eq!(pushed[0]["kind"], "job_booked");
    assert_eq!(pushed[0]["payload"]["job_id"], job["id"]);
    // What was pushed is what is stored.
    assert_eq!(w.notifications(&w.worker, "?limit=1").await[0], pushed[0]);

    // The client hears of the accept, not of their own booking.
    w.acted(&w.worker, &job, "accept", None).await;
    let frame = recv_type(&mut client, "notification").await;
    assert_eq!(frame["notification"]["kind"], "job_transitioned");
    assert_eq!(frame["notification"]["payload"]["action"], "accept");
    dispatcher.stop(Duration::from_secs(5)).await;
}
