//! Bookings: the lifecycle, its races, expiry, booking rules and reviews.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, Tokens, tomorrow_at};

pub(crate) struct World {
    pub app: TestApp,
    pub admin: Tokens,
    pub worker_id: String,
    pub worker: Tokens,
    pub client_id: String,
    pub client: Tokens,
    pub service: String,
}

pub(crate) async fn world_with(overrides: &[(&str, &str)]) -> World {
    let app = TestApp::spawn_with(overrides).await;
    let (_, admin) = app.admin("jobs-admin@example.com").await;
    let (worker_id, worker) = app.approved_worker("fixer@example.com", &admin).await;
    let (client_id, client) = app.user("customer@example.com", "client").await;
    let service = app
        .listing(
            &worker.access,
            json!({"price_cents": 4200, "duration_minutes": 90}),
        )
        .await;
    World {
        app,
        admin,
        worker_id,
        worker,
        client_id,
        client,
        service: service["id"].as_str().expect("id").to_owned(),
    }
}

async fn world() -> World {
    world_with(&[]).await
}

impl World {
    pub(crate) async fn book_at(&self, when: &str) -> Value {
        let reply = self
            .app
            .post(
                "/api/v1/jobs",
                Some(&self.client.access),
                json!({"service_id": self.service, "scheduled_at": when, "address": "Rua Augusta 1, Lisbon", "notes": "Ring twice"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json
    }

    async fn book(&self) -> String {
        self.book_at(&tomorrow_at(10)).await["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub(crate) async fn act(
        &self,
        who: &Tokens,
        job: &str,
        action: &str,
        body: Option<Value>,
    ) -> crate::common::Reply {
        self.app
            .call(
                Method::POST,
                &format!("/api/v1/jobs/{job}/{action}"),
                Some(&who.access),
                body,
            )
            .await
    }
}

#[tokio::test]
async fn the_happy_path_and_its_history() {
    let w = world().await;
    let booked = w.book_at(&tomorrow_at(10)).await;
    assert_eq!(booked["status"], "requested");
    assert_eq!(booked["price_cents"], 4200, "price snapshot");
    assert_eq!(booked["client_id"], w.client_id);
    assert_eq!(booked["worker_id"], w.worker_id);
    let start = chrono::DateTime::parse_from_rfc3339(booked["scheduled_at"].as_str().expect("at"))
        .expect("rfc3339");
    let end = chrono::DateTime::parse_from_rfc3339(booked["ends_at"].as_str().expect("at"))
        .expect("rfc3339");
    assert_eq!(end - start, Duration::minutes(90));
    assert!(booked["thread_id"].is_string());
    let id = booked["id"].as_str().expect("id");

    // Changing the listing later does not change the booking.
    w.app
        .call(
            Method::PATCH,
            &format!("/api/v1/services/{}", w.service),
            Some(&w.worker.access),
            Some(json!({"price_cents": 9999})),
        )
        .await;
    for action in ["accept", "start", "complete"] {
        let reply = w.act(&w.worker, id, action, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{action}: {}", reply.body);
    }
    let job = w
        .app
        .get(&format!("/api/v1/jobs/{id}"), Some(&w.client.access))
        .await;
    assert_eq!(job.json["status"], "completed");
    assert_eq!(job.json["price_cents"], 4200);

    let events = w
        .app
        .get(&format!("/api/v1/jobs/{id}/events"), Some(&w.worker.access))
        .await;
    let steps: Vec<(Value, Value)> = events.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| (e["from_status"].clone(), e["to_status"].clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (Value::Null, json!("requested")),
            (json!("requested"), json!("accepted")),
            (json!("accepted"), json!("in_progress")),
            (json!("in_progress"), json!("completed")),
        ]
    );
    assert_eq!(events.json["items"][0]["actor_id"], w.client_id);
    assert_eq!(events.json["items"][1]["actor_id"], w.worker_id);

    for (who, expected) in [(&w.client, 1), (&w.worker, 1), (&w.admin, 1)] {
        let list = w
            .app
            .get("/api/v1/jobs?status=completed", Some(&who.access))
            .await;
        assert_eq!(
            list.json["items"].as_array().map(Vec::len),
            Some(expected),
            "{}",
            list.body
        );
    }
}

#[tokio::test]
async fn who_may_do_what() {
    let w = world().await;
    let (_, stranger) = w.app.user("stranger@example.com", "client").await;
    let id = w.book().await;

    w.act(&w.client, &id, "accept", None)
        .await
        .assert_problem(403, "forbidden");
    w.act(&w.admin, &id, "accept", None)
        .await
        .assert_problem(403, "forbidden");
    w.act(&stranger, &id, "accept", None)
        .await
        .assert_problem(404, "not_found");
    w.app
        .get(&format!("/api/v1/jobs/{id}"), Some(&stranger.access))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        w.app
            .get(&format!("/api/v1/jobs/{id}"), Some(&w.admin.access))
            .await
            .status,
        StatusCode::OK
    );

    w.act(&w.worker, &id, "start", None)
        .await
        .assert_problem(409, "job_invalid_transition");
    w.act(&w.worker, &id, "complete", None)
        .await
        .assert_problem(409, "job_invalid_transition");
    w.act(&w.client, &id, "cancel", Some(json!({})))
        .await
        .assert_invalid(&["reason"]);
    // 403 beats 422 beats 409: the client may not decline, whatever the body says.
    w.act(&w.client, &id, "decline", Some(json!({"reason": 5})))
        .await
        .assert_problem(403, "forbidden");
    w.act(&stranger, &id, "cancel", Some(json!({"reason": 5})))
        .await
        .assert_problem(404, "not_found");

    let declined = w
        .act(
            &w.worker,
            &id,
            "decline",
            Some(json!({"reason": "fully booked"})),
        )
        .await;
    assert_eq!(declined.json["status"], "declined", "{}", declined.body);
    for action in ["accept", "decline", "start", "complete"] {
        w.act(&w.worker, &id, action, None)
            .await
            .assert_problem(409, "job_invalid_transition");
    }
    w.act(&w.client, &id, "cancel", Some(json!({"reason": "x"})))
        .await
        .assert_problem(409, "job_invalid_transition");
    w.act(&w.client, &id, "accept", None)
        .await
        .assert_problem(403, "forbidden");

    let second = w.book().await;
    let cancelled = w
        .act(
            &w.client,
            &second,
            "cancel",
            Some(json!({"reason": "changed my mind"})),
        )
        .await;
    assert_eq!(cancelled.json["status"], "cancelled", "{}", cancelled.body);
    let events = w
        .app
        .get(
            &format!("/api/v1/jobs/{second}/events"),
            Some(&w.client.access),
        )
        .await;
    assert_eq!(events.json["items"][1]["reason"], "changed my mind");
}

#[tokio::test]
async fn twenty_concurrent_accepts_have_one_winner() {
    let w = world().await;
    let id = w.book().await;
    let calls = (0..20).map(|_| w.act(&w.worker, &id, "accept", None));
    let replies = futures_util::future::join_all(calls).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let conflicts = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .count();
    assert_eq!((ok, conflicts), (1, 19));
    let events = w
        .app
        .get(&format!("/api/v1/jobs/{id}/events"), Some(&w.worker.access))
        .await;
    assert_eq!(
        events.json["items"].as_array().map(Vec::len),
        Some(2),
        "one transition logged"
    );
}

#[tokio::test]
async fn twenty_concurrent_cancels_have_one_winner() {
    let w = world().await;
    let id = w.book().await;
    let calls = (0..20).map(|i| {
        let who = if i % 2 == 0 { &w.client } else { &w.worker };
        w.act(
            who,
            &id,
            "cancel",
            Some(json!({"reason": format!("attempt {i}")})),
        )
    });
    let replies = futures_util::future::join_all(calls).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let conflicts = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .count();
    assert_eq!((ok, conflicts), (1, 19));
}

#[tokio::test]
async fn overlapping_accepts_make_the_worker_busy() {
    let w = world().await;
    let first = w.book_at(&tomorrow_at(10)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let overlapping = w.book_at(&tomorrow_at(11)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let later = w.book_at(&tomorrow_at(14)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        w.act(&w.worker, &first, "accept", None).await.status,
        StatusCode::OK
    );
    w.act(&w.worker, &overlapping, "accept", None)
        .await
        .assert_problem(409, "worker_busy");
    assert_eq!(
        w.act(&w.worker, &later, "accept", None).await.status,
        StatusCode::OK
    );

    // Two overlapping requests accepted at the same moment: the database lets one win.
    let a = w.book_at(&tomorrow_at(18)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let b = w.book_at(&tomorrow_at(19)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (ra, rb) = tokio::join!(
        w.act(&w.worker, &a, "accept", None),
        w.act(&w.worker, &b, "accept", None)
    );
    let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
}

#[tokio::test]
async fn booking_rules() {
    let w = world().await;
    let body = |when: String| json!({"service_id": w.service, "scheduled_at": when, "address": "Somewhere 1"});
    let past = w
        .app
        .post(
            "/api/v1/jobs",
            Some(&w.client.access),
            body((Utc::now() - Duration::hours(1)).to_rfc3339()),
        )
        .await;
    past.assert_invalid(&["scheduled_at"]);
    assert_eq!(past.json["errors"][0]["field"], "scheduled_at");
    w.app
        .post(
            "/api/v1/jobs",
            Some(&w.worker.access),
            body(tomorrow_at(10)),
        )
        .await
        .assert_problem(403, "forbidden");
    let missing = json!({"service_id": uuid::Uuid::now_v7(), "scheduled_at": tomorrow_at(10), "address": "x"});
    w.app
        .post("/api/v1/jobs", Some(&w.client.access), missing)
        .await
        .assert_problem(404, "not_found");
    w.app
        .post(
            &format!("/api/v1/admin/services/{}/hide", w.service),
            Some(&w.admin.access),
            json!({"reason": "spam"}),
        )
        .await;
    w.app
        .post(
            "/api/v1/jobs",
            Some(&w.client.access),
            body(tomorrow_at(10)),
        )
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn bookings_must_fit_the_availability_in_the_workers_timezone() {
    let w = world().await;
    w.app
        .call(
            Method::PATCH,
            "/api/v1/workers/me",
            Some(&w.worker.access),
            Some(json!({"timezone": "Asia/Tokyo"})),
        )
        .await;
    // Every day 09:00-12:00 in Tokyo (UTC+9) is 00:00-03:00 UTC.
    let slots: Vec<Value> = (0..7)
        .map(|d| json!({"weekday": d, "start": "09:00", "end": "12:00"}))
        .collect();
    let put = w
        .app
        .call(
            Method::PUT,
            "/api/v1/workers/me/availability",
            Some(&w.worker.access),
            Some(json!({"slots": slots})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let body = |when: String| json!({"service_id": w.service, "scheduled_at": when, "address": "Somewhere 1"});
    let inside = w
        .app
        .post("/api/v1/jobs", Some(&w.client.access), body(tomorrow_at(0)))
        .await;
    assert_eq!(inside.status, StatusCode::CREATED, "{}", inside.body);
    let too_long = w
        .app
        .post("/api/v1/jobs", Some(&w.client.access), body(tomorrow_at(2)))
        .await;
    too_long.assert_problem(422, "outside_availability");
    let wrong_hour = w
        .app
        .post(
            "/api/v1/jobs",
            Some(&w.client.access),
            body(tomorrow_at(10)),
        )
        .await;
    wrong_hour.assert_problem(422, "outside_availability");
}

#[tokio::test]
async fn idempotent_retries_return_the_first_job() {
    let w = world().await;
    let send = |key: &'static str| {
        w.app
            .client
            .post(w.app.url("/api/v1/jobs"))
            .bearer_auth(&w.client.access)
            .header("idempotency-key", key)
            .json(&json!({"service_id": w.service, "scheduled_at": tomorrow_at(10), "address": "Somewhere 1"}))
            .send()
    };
    let first = crate::common::Reply::from(send("retry-1").await.expect("send")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = crate::common::Reply::from(send("retry-1").await.expect("send")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json["id"], first.json["id"]);
    let concurrent = futures_util::future::join_all((0..5).map(|_| send("retry-2"))).await;
    let mut ids = std::collections::HashSet::new();
    for reply in concurrent {
        let reply = crate::common::Reply::from(reply.expect("send")).await;
        assert!(
            reply.status == StatusCode::CREATED || reply.status == StatusCode::OK,
            "{}",
            reply.body
        );
        ids.insert(reply.json["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids.len(), 1, "one job for one key");
    let list = w.app.get("/api/v1/jobs", Some(&w.client.access)).await;
    assert_eq!(list.json["items"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn requests_expire_on_time_and_on_the_spot() {
    let w = world_with(&[("JOB_REQUEST_TTL", "1")]).await;
    let swept = w.book().await;
    let touched = w.book().await;
    let more = [w.book().await, w.book().await];
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    // A transition after the deadline expires the job there and then.
    w.act(&w.worker, &touched, "accept", None)
        .await
        .assert_problem(409, "job_invalid_transition");
    let job = w
        .app
        .get(&format!("/api/v1/jobs/{touched}"), Some(&w.client.access))
        .await;
    assert_eq!(job.json["status"], "expired");

    // Two sweepers at once, in batches of one: each due job is expired, and logged,
    // exactly once.
    let (a, b) = tokio::join!(
        marketplace::job::services::expire_due(&w.app.state, 1),
        marketplace::job::services::expire_due(&w.app.state, 1)
    );
    assert_eq!(
        a.expect("sweep") + b.expect("sweep"),
        3,
        "swept, and the two below"
    );
    for id in [&swept, &touched, &more[0], &more[1]] {
        let events = w
            .app
            .get(&format!("/api/v1/jobs/{id}/events"), Some(&w.client.access))
            .await;
        let items = events.json["items"].as_array().expect("items");
        assert_eq!(items.len(), 2, "{}", events.body);
        assert_eq!(items[1]["to_status"], "expired");
        assert_eq!(items[1]["actor_id"], Value::Null);
    }
}

#[tokio::test]
async fn reviews_follow_the_rules_and_feed_exact_ratings() {
    let w = world().await;
    let id = w.book().await;
    let review = |who: &Tokens, body: Value| {
        let path = format!("/api/v1/jobs/{id}/review");
        let token = who.access.clone();
        let app = &w.app;
        async move { app.post(&path, Some(&token), body).await }
    };
    review(&w.client, json!({"rating": 5}))
        .await
        .assert_problem(409, "job_invalid_transition");
    for action in ["accept", "start", "complete"] {
        w.act(&w.worker, &id, action, None).await;
    }
    review(&w.worker, json!({"rating": 5}))
        .await
        .assert_problem(403, "forbidden");
    review(&w.worker, json!({}))
        .await
        .assert_problem(403, "forbidden");
    review(&w.client, json!({"rating": 6}))
        .await
        .assert_invalid(&["rating"]);
    review(&w.client, json!({"rating": 0}))
        .await
        .assert_invalid(&["rating"]);
    review(&w.client, json!({"rating": 4, "comment": "x".repeat(2001)}))
        .await
        .assert_invalid(&["comment"]);
    let created = review(&w.client, json!({"rating": 4, "comment": "Great work"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.json["rating"], 4);
    review(&w.client, json!({"rating": 5}))
        .await
        .assert_problem(409, "review_exists");

    let profile = w
        .app
        .get(&format!("/api/v1/workers/{}", w.worker_id), None)
        .await;
    assert_eq!(
        (
            profile.json["rating_avg"].clone(),
            profile.json["rating_count"].clone()
        ),
        (json!(4.0), json!(1))
    );
    let listing = w
        .app
        .get(&format!("/api/v1/services/{}", w.service), None)
        .await;
    assert_eq!(listing.json["rating_count"], 1);
    let public = w
        .app
        .get(&format!("/api/v1/workers/{}/reviews", w.worker_id), None)
        .await;
    assert_eq!(public.json["items"][0]["comment"], "Great work");
}

#[tokio::test]
async fn concurrent_reviews_keep_the_average_exact() {
    let w = world().await;
    let mut jobs = Vec::new();
    let mut clients = Vec::new();
    for i in 0..8 {
        let email = format!("reviewer{i}@example.com");
        w.app.register(&email, "client").await;
        let client = w.app.login(&email, PASSWORD).await;
        let job = w
            .app
            .post(
                "/api/v1/jobs",
                Some(&client.access),
                json!({"service_id": w.service, "scheduled_at": tomorrow_at(i), "address": "Somewhere 1"}),
            )
            .await;
        let id = job.json["id"].as_str().expect("id").to_owned();
        for action in ["accept", "start", "complete"] {
            assert_eq!(
                w.act(&w.worker, &id, action, None).await.status,
                StatusCode::OK
            );
        }
        jobs.push(id);
        clients.push(client);
    }
    let ratings = [5, 4, 3, 5, 1, 2, 5, 4];
    let paths: Vec<String> = jobs
        .iter()
        .map(|id| format!("/api/v1/jobs/{id}/review"))
        .collect();
    let posts = paths
        .iter()
        .zip(&clients)
        .zip(ratings)
        .map(|((path, client), rating)| {
            w.app
                .post(path, Some(&client.access), json!({"rating": rating}))
        });
    for reply in futures_util::future::join_all(posts).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let profile = w
        .app
        .get(&format!("/api/v1/workers/{}", w.worker_id), None)
        .await;
    let expected = f64::from(ratings.iter().sum::<i32>()) / 8.0;
    assert_eq!(profile.json["rating_count"], 8);
    assert_eq!(profile.json["rating_avg"].as_f64(), Some(expected));
    let listing = w
        .app
        .get(&format!("/api/v1/services/{}", w.service), None)
        .await;
    assert_eq!(listing.json["rating_avg"].as_f64(), Some(expected));
}

/// The next spring-forward Sunday in Lisbon at least two weeks away (last Sunday of March).
fn next_lisbon_spring_forward() -> chrono::NaiveDate {
    use chrono::Datelike;
    let soon = (Utc::now() + Duration::days(14)).date_naive();
    (soon.year()..)
        .map(|year| {
            let last = chrono::NaiveDate::from_ymd_opt(year, 3, 31).expect("date");
            last - Duration::days(i64::from(last.weekday().num_days_from_sunday()))
        })
        .find(|day| *day > soon)
        .expect("a future March")
}

#[tokio::test]
async fn a_dst_week_in_lisbon_is_read_on_the_wall_clock() {
    let w = world().await;
    w.app
        .call(
            Method::PATCH,
            "/api/v1/workers/me",
            Some(&w.worker.access),
            Some(json!({"timezone": "Europe/Lisbon"})),
        )
        .await;
    let slots = json!({"slots": [{"weekday": 6, "start": "09:00", "end": "12:00"}]});
    w.app
        .call(
            Method::PUT,
            "/api/v1/workers/me/availability",
            Some(&w.worker.access),
            Some(slots),
        )
        .await;
    let change = next_lisbon_spring_forward();
    let week_before = change - Duration::days(7);
    let at = |day: chrono::NaiveDate, hour: u32| {
        day.and_hms_opt(hour, 0, 0)
            .expect("time")
            .and_utc()
            .to_rfc3339()
    };
    let book = |when: String| {
        w.app.post(
            "/api/v1/jobs",
            Some(&w.client.access),
            json!({"service_id": w.service, "scheduled_at": when, "address": "Rua do Ouro 2"}),
        )
    };
    // Sundays 09:00-12:00 local. Winter time (UTC+0) the week before: 09:00 local is 09:00 UTC.
    assert_eq!(book(at(week_before, 9)).await.status, StatusCode::CREATED);
    book(at(week_before, 8))
        .await
        .assert_problem(422, "outside_availability");
    // Summer time (UTC+1) from the change on: 09:00 local is 08:00 UTC.
    assert_eq!(book(at(change, 8)).await.status, StatusCode::CREATED);
    // 10:00 UTC is 11:00 local: 90 minutes would end at 12:30.
    book(at(change, 10))
        .await
        .assert_problem(422, "outside_availability");
}
