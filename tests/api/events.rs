//! The outbox and its dispatcher: events commit (or roll back) with their change, two
//! dispatchers on one database tell each recipient once, a failing event is retried
//! then parked without holding up later ones, `NOTIFY` wakes the dispatcher, done
//! events are pruned.

use std::time::{Duration, Instant};

use diesel::{
    QueryableByName,
    sql_types::{BigInt, Integer, Nullable, Text},
};
use diesel_async::RunQueryDsl;
use marketplace::events::dispatcher::{Dispatcher, dispatch_round};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    common::{METRICS_TOKEN, TestApp},
    jobs::{World, world_with},
    messaging::{Ws, open, recv_type, send_to},
};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut conn = app.state.db.get().await.expect("conn");
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .await
        .expect(sql)
        .n
}

async fn execute(app: &TestApp, sql: &str) {
    let mut conn = app.state.db.get().await.expect("conn");
    diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
}

#[tokio::test]
async fn events_of_a_refused_change_are_rolled_back_with_it() {
    let w = world_with(&[]).await;
    let first = w.booked(10).await;
    let second = w.booked(10).await;
    w.acted(&w.worker, &first, "accept", None).await;
    // The second accept overlaps the first: its UPDATE fails inside the transaction
    // that would have recorded the event.
    let busy = w
        .app
        .post(
            &format!("/api/v1/jobs/{}/accept", second["id"].as_str().expect("id")),
            Some(&w.worker.access),
            json!({}),
        )
        .await;
    busy.assert_problem(409, "worker_busy");
    let transitions = |job: &serde_json::Value| {
        format!(
            "SELECT count(*) AS n FROM events WHERE kind = 'job_transitioned' AND payload->>'job_id' = '{}'",
            job["id"].as_str().expect("id")
        )
    };
    assert_eq!(count(&w.app, &transitions(&first)).await, 1);
    assert_eq!(count(&w.app, &transitions(&second)).await, 0);
    assert_eq!(
        count(
            &w.app,
            "SELECT count(*) AS n FROM events WHERE kind = 'job_booked'"
        )
        .await,
        2
    );
    w.settle().await;
    assert_eq!(
        w.kinds(&w.client).await,
        [("job_transitioned".to_owned(), Some("accept".to_owned()))]
    );
}

#[tokio::test]
async fn events_two_dispatchers_tell_each_recipient_once() {
    let w = world_with(&[]).await;
    w.settle().await;
    let sibling = w.app.spawn_sibling().await;
    let mut socket = open(&w.app, &w.worker).await;
    let job = w.booked(10).await;
    let thread = job["thread_id"].as_str().expect("thread").to_owned();
    let one = Dispatcher::start(w.app.state.clone());
    let two = Dispatcher::start(sibling.state.clone());
    // Messages committed on both instances at once: every commit wakes both
    // dispatchers, which race for the same rows.
    const MESSAGES: usize = 60;
    let sends = (0..MESSAGES).map(|i| {
        let app = if i % 2 == 0 { &w.app } else { &sibling };
        send_to(app, &w.client, &thread, json!({ "body": format!("m{i}") }))
    });
    for reply in futures_util::future::join_all(sends).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let mut pushed = 0;
    while pushed < MESSAGES + 1 {
        recv_type(&mut socket, "notification").await;
        pushed += 1;
    }
    assert_quiet(&mut socket).await;
    one.stop(Duration::from_secs(5)).await;
    two.stop(Duration::from_secs(5)).await;
    assert_eq!(
        count(
            &w.app,
            "SELECT count(*) AS n FROM events WHERE done_at IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &w.app,
            "SELECT count(*) AS n FROM notifications WHERE kind = 'message_sent'"
        )
        .await,
        MESSAGES as i64
    );
    assert_eq!(
        count(
            &w.app,
            "SELECT count(DISTINCT event_id) AS n FROM notifications WHERE kind = 'message_sent'"
        )
        .await,
        MESSAGES as i64
    );
}

/// No further notification frame arrives within a short wait.
async fn assert_quiet(socket: &mut Ws) {
    let extra = tokio::time::timeout(
        Duration::from_millis(500),
        recv_type(socket, "notification"),
    )
    .await;
    assert!(extra.is_err(), "a duplicate push: {extra:?}");
}

#[derive(QueryableByName, Debug)]
struct Outcome {
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    parked: Option<String>,
}

#[tokio::test]
async fn events_a_failing_handler_is_retried_then_parked_without_blocking_others() {
    let w = world_with(&[("EVENT_MAX_ATTEMPTS", "2")]).await;
    w.settle().await;
    // An event whose payload its handler cannot read: it fails every time.
    execute(
        &w.app,
        "INSERT INTO events (id, kind, payload) VALUES \
         ('00000000-0000-7000-8000-000000000001', 'job_booked', '{\"kind\": \"job_booked\", \"job_id\": 7}')",
    )
    .await;
    let outcome = async || {
        let mut conn = w.app.state.db.get().await.expect("conn");
        diesel::sql_query(
            "SELECT attempts, last_error, parked_at::text AS parked FROM events \
             WHERE id = '00000000-0000-7000-8000-000000000001'",
        )
        .get_result::<Outcome>(&mut conn)
        .await
        .expect("outcome")
    };
    assert_eq!(dispatch_round(&w.app.state, 100).await.expect("round"), 1);
    let first = outcome().await;
    assert_eq!(first.attempts, 1);
    assert!(
        first
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("decode"),
        "{first:?}"
    );
    assert!(first.parked.is_none());

    // Later events go through while it waits out its backoff.
    w.booked(10).await;
    w.settle().await;
    assert_eq!(w.kinds(&w.worker).await.len(), 2, "kyc_decided, job_booked");
    assert_eq!(outcome().await.attempts, 1, "backing off, not retried yet");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.settle().await;
    let last = outcome().await;
    assert_eq!(last.attempts, 2);
    assert!(last.parked.is_some(), "{last:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.settle().await;
    assert_eq!(
        outcome().await.attempts,
        2,
        "a parked event is never retried"
    );
    let metrics = w
        .app
        .call(reqwest::Method::GET, "/metrics", Some(METRICS_TOKEN), None)
        .await;
    assert!(
        metrics.body.contains("events_parked_total"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("events_failed_total"));
}

#[tokio::test]
async fn events_notify_wakes_the_dispatcher_and_old_done_events_are_pruned() {
    // Polling once an hour: only the commit's NOTIFY can explain a prompt notification.
    let w: World = world_with(&[("EVENT_POLL_INTERVAL", "3600")]).await;
    w.settle().await;
    execute(
        &w.app,
        "UPDATE events SET done_at = now() - interval '8 days' WHERE kind = 'kyc_decided'",
    )
    .await;
    let dispatcher = Dispatcher::start(w.app.state.clone());
    let mut socket = open(&w.app, &w.worker).await;
    // Let the listener connect (it runs a round on connecting, too).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    w.booked(10).await;
    let frame = recv_type(&mut socket, "notification").await;
    assert_eq!(frame["notification"]["kind"], "job_booked");
    assert!(started.elapsed() < Duration::from_secs(3));
    dispatcher.stop(Duration::from_secs(5)).await;
    assert_eq!(
        count(
            &w.app,
            "SELECT count(*) AS n FROM events WHERE kind = 'kyc_decided'"
        )
        .await,
        0,
        "done for longer than EVENT_RETENTION"
    );
    assert_eq!(
        count(
            &w.app,
            "SELECT count(*) AS n FROM events WHERE kind = 'job_booked'"
        )
        .await,
        1,
        "done recently: kept"
    );
}

#[tokio::test]
async fn events_moderation_is_recorded_and_notifies_nobody() {
    let w = world_with(&[]).await;
    let job = w.booked(10).await;
    for action in ["accept", "start", "complete"] {
        w.acted(&w.worker, &job, action, None).await;
    }
    let review = w
        .app
        .post(
            &format!("/api/v1/jobs/{}/review", job["id"].as_str().expect("id")),
            Some(&w.client.access),
            json!({"rating": 2}),
        )
        .await;
    assert_eq!(review.status, StatusCode::CREATED, "{}", review.body);
    let review = review.json["id"].as_str().expect("id").to_owned();
    for (path, body) in [
        (
            format!("reviews/{review}/hide"),
            json!({"reason": "abusive"}),
        ),
        (
            format!("services/{}/hide", w.service),
            json!({"reason": "spam"}),
        ),
        (
            format!("users/{}/suspend", w.client_id),
            json!({"reason": "fraud"}),
        ),
        (format!("users/{}/reinstate", w.client_id), json!({})),
    ] {
        let reply = w
            .app
            .post(
                &format!("/api/v1/admin/{path}"),
                Some(&w.admin.access),
                body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    }
    for kind in [
        "review_hidden",
        "service_hidden",
        "user_suspended",
        "user_reinstated",
    ] {
        let sql = format!("SELECT count(*) AS n FROM events WHERE kind = '{kind}'");
        assert_eq!(count(&w.app, &sql).await, 1, "{kind}");
    }
    w.settle().await;
    assert_eq!(
        count(
            &w.app,
            "SELECT count(*) AS n FROM events WHERE done_at IS NULL"
        )
        .await,
        0
    );
    assert!(w.kinds(&w.admin).await.is_empty());
    assert_eq!(
        w.kinds(&w.worker).await.last().map(|k| k.0.as_str()),
        Some("review_posted")
    );
}

/// A measurement, not an assertion: `cargo nextest run --run-ignored only -E
/// 'test(commit_to_socket)' --no-capture`. One instance, its dispatcher, 1,000 messages
/// sent one after another; for each, the time from the send's response (the commit is
/// just before it) to the recipient's socket receiving the notification.
#[tokio::test]
#[ignore = "a measurement; prints p50/p99"]
async fn events_commit_to_socket_latency() {
    let w = world_with(&[]).await;
    w.settle().await;
    let dispatcher = Dispatcher::start(w.app.state.clone());
    let mut socket = open(&w.app, &w.worker).await;
    let job = w.booked(10).await;
    recv_type(&mut socket, "notification").await;
    let thread = job["thread_id"].as_str().expect("thread").to_owned();
    let mut latencies = Vec::with_capacity(1000);
    for i in 0..1000 {
        let reply = send_to(
            &w.app,
            &w.client,
            &thread,
            json!({ "body": format!("m{i}") }),
        )
        .await;
        let committed = Instant::now();
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let frame = recv_type(&mut socket, "notification").await;
        latencies.push(committed.elapsed());
        assert_eq!(
            frame["notification"]["payload"]["message_id"],
            reply.json["id"]
        );
    }
    dispatcher.stop(Duration::from_secs(5)).await;
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "commit-to-socket over {} events: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        at(0.50),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}
