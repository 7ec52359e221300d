//! Worker profiles, listings, visibility, search and pagination, client favorites.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, Tokens, tcp_proxy::TcpProxy};

async fn set_ratings(app: &TestApp, ratings: &[(&str, Option<f64>)]) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use marketplace::db::schema::services;
    let mut conn = app.state.db.get().await.expect("conn");
    for (id, rating) in ratings {
        let id: uuid::Uuid = id.parse().expect("uuid");
        diesel::update(services::table.filter(services::id.eq(id)))
            .set(services::rating_avg.eq(rating))
            .execute(&mut conn)
            .await
            .expect("rating");
    }
}

/// Follows `next_cursor` from `path` to the end and returns every id, in order.
pub(crate) async fn walk(app: &TestApp, path: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}cursor={c}"),
            None => path.to_owned(),
        };
        let page = app.get(&url, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        ids.extend(
            page.json["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["id"].as_str().expect("id").to_owned()),
        );
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
    panic!("pagination did not end");
}

pub(crate) fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn setup() -> (TestApp, Tokens, String, Tokens) {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("cat-admin@example.com").await;
    let (worker_id, worker) = app.approved_worker("pro@example.com", &admin).await;
    (app, admin, worker_id, worker)
}

#[tokio::test]
async fn listings_are_public_only_while_everything_allows_it() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("vis-admin@example.com").await;
    let (worker_id, worker) = app.user("new@example.com", "worker").await;
    let listing = app.listing(&worker.access, json!({})).await;
    let id = listing["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/services/{id}");
    let public = || async { app.get(&path, None).await.status };
    let in_search = || async { ids(&app.get("/api/v1/services", None).await.json).contains(&id) };

    assert_eq!(listing["status"], "active");
    assert_eq!(listing["duration_minutes"], 60);
    assert_eq!(
        public().await,
        StatusCode::NOT_FOUND,
        "KYC not approved yet"
    );
    assert!(!in_search().await);
    assert_eq!(
        app.get(&path, Some(&worker.access)).await.status,
        StatusCode::OK,
        "the owner sees it"
    );
    assert_eq!(
        app.get(&path, Some(&admin.access)).await.status,
        StatusCode::OK,
        "admins see it"
    );

    let submission = app.submit_kyc(&worker.access).await;
    app.call(
        Method::POST,
        &format!("/api/v1/admin/kyc/{submission}/approve"),
        Some(&admin.access),
        None,
    )
    .await;
    assert_eq!(public().await, StatusCode::OK);
    assert!(in_search().await);

    let suspend = format!("/api/v1/admin/users/{worker_id}/suspend");
    app.post(&suspend, Some(&admin.access), json!({"reason": "fraud"}))
        .await;
    assert_eq!(public().await, StatusCode::NOT_FOUND, "suspended worker");
    assert!(!in_search().await);
    app.call(
        Method::POST,
        &format!("/api/v1/admin/users/{worker_id}/reinstate"),
        Some(&admin.access),
        None,
    )
    .await;
    assert_eq!(public().await, StatusCode::OK);

    let hidden = app
        .post(
            &format!("/api/v1/admin/services/{id}/hide"),
            Some(&admin.access),
            json!({"reason": "spam"}),
        )
        .await;
    assert_eq!(hidden.json["status"], "hidden", "{}", hidden.body);
    assert_eq!(public().await, StatusCode::NOT_FOUND, "hidden");
    assert!(!in_search().await);
    let unhidden = app
        .call(
            Method::POST,
            &format!("/api/v1/admin/services/{id}/unhide"),
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(unhidden.json["status"], "active");
    assert_eq!(public().await, StatusCode::OK);

    let worker = app.login("new@example.com", crate::common::PASSWORD).await;
    let second = app.submit_kyc(&worker.access).await;
    app.post(
        &format!("/api/v1/admin/kyc/{second}/reject"),
        Some(&admin.access),
        json!({"reason": "fake"}),
    )
    .await;
    assert_eq!(
        public().await,
        StatusCode::NOT_FOUND,
        "the latest decision rejected"
    );
}

#[tokio::test]
async fn owners_change_and_delete_their_listings_only() {
    let (app, admin, _, worker) = setup().await;
    let (_, rival) = app.approved_worker("rival@example.com", &admin).await;
    let listing = app
        .listing(&worker.access, json!({"title": "Window cleaning"}))
        .await;
    let id = listing["id"].as_str().expect("id");
    let path = format!("/api/v1/services/{id}");

    let patched = app
        .call(
            Method::PATCH,
            &path,
            Some(&worker.access),
            Some(json!({"price_cents": 7500, "title": " Windows "})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(
        (
            patched.json["price_cents"].clone(),
            patched.json["title"].clone()
        ),
        (json!(7500), json!("Windows"))
    );
    assert_eq!(
        patched.json["description"], listing["description"],
        "absent fields are kept"
    );

    let null = app
        .call(
            Method::PATCH,
            &path,
            Some(&worker.access),
            Some(json!({"title": null})),
        )
        .await;
    null.assert_invalid(&["title"]);
    let bad = app
        .call(
            Method::PATCH,
            &path,
            Some(&worker.access),
            Some(json!({"duration_minutes": 5})),
        )
        .await;
    bad.assert_invalid(&["duration_minutes"]);

    app.call(
        Method::PATCH,
        &path,
        Some(&rival.access),
        Some(json!({"price_cents": 1})),
    )
    .await
    .assert_problem(403, "forbidden");
    app.call(Method::DELETE, &path, Some(&rival.access), None)
        .await
        .assert_problem(403, "forbidden");

    let deleted = app
        .call(Method::DELETE, &path, Some(&worker.access), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, None).await.status, StatusCode::NOT_FOUND);
    let own = app.get(&path, Some(&worker.access)).await;
    assert_eq!(own.json["status"], "deleted");
    app.call(
        Method::PATCH,
        &path,
        Some(&rival.access),
        Some(json!({"price_cents": 1})),
    )
    .await
    .assert_problem(404, "not_found");
    let mine = app
        .get("/api/v1/workers/me/services", Some(&worker.access))
        .await;
    assert_eq!(
        ids(&mine.json),
        [id.to_owned()],
        "own list shows every status"
    );
}

#[tokio::test]
async fn only_workers_create_and_input_is_checked() {
    let (app, _, _, worker) = setup().await;
    let (_, client) = app.user("buyer@example.com", "client").await;
    let body = json!({"title": "T", "description": "D", "category": "c", "price_cents": 1, "pricing_unit": "fixed", "city": "X"});
    app.post("/api/v1/services", Some(&client.access), body)
        .await
        .assert_problem(403, "forbidden");
    let bad = app
        .post(
            "/api/v1/services",
            Some(&worker.access),
            json!({"title": "", "description": "D", "category": "c", "price_cents": -1, "pricing_unit": "fixed", "city": "X", "duration_minutes": 2000}),
        )
        .await;
    bad.assert_invalid(&["title", "price_cents", "duration_minutes"]);
    let fields: HashSet<&str> = bad.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        HashSet::from(["title", "price_cents", "duration_minutes"])
    );
}

#[tokio::test]
async fn pagination_meets_every_row_once_for_every_sort() {
    let (app, _, _, worker) = setup().await;
    let mut all = Vec::new();
    for i in 0..23 {
        // Few distinct prices and ratings: ties everywhere.
        let listing = app
            .listing(
                &worker.access,
                json!({"title": format!("Plumbing job {i}"), "price_cents": 1000 * (i % 4)}),
            )
            .await;
        all.push(listing["id"].as_str().expect("id").to_owned());
    }
    let ratings: Vec<(&str, Option<f64>)> = all
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (
                id.as_str(),
                if i % 3 == 0 {
                    None
                } else {
                    Some((i % 2) as f64 + 4.0)
                },
            )
        })
        .collect();
    set_ratings(&app, &ratings).await;
    let expected: HashSet<String> = all.iter().cloned().collect();

    for sort in ["newest", "price_asc", "price_desc", "rating", "relevance"] {
        let q = if sort == "relevance" {
            "&q=plumbing"
        } else {
            ""
        };
        let seen = walk(&app, &format!("/api/v1/services?limit=4&sort={sort}{q}")).await;
        assert_eq!(seen.len(), all.len(), "{sort}: every row exactly once");
        assert_eq!(
            seen.iter().cloned().collect::<HashSet<_>>(),
            expected,
            "{sort}"
        );
    }

    let newest = walk(&app, "/api/v1/services?limit=5").await;
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(newest, reversed, "newest first by default");

    let by_price = app
        .get("/api/v1/services?sort=price_asc&limit=100", None)
        .await;
    let prices: Vec<i64> = by_price.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["price_cents"].as_i64().expect("price"))
        .collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]));
    let by_rating = app
        .get("/api/v1/services?sort=rating&limit=100", None)
        .await;
    let ratings: Vec<Option<f64>> = by_rating.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["rating_avg"].as_f64())
        .collect();
    let first_unrated = ratings
        .iter()
        .position(Option::is_none)
        .expect("some unrated");
    assert!(
        ratings[first_unrated..].iter().all(Option::is_none),
        "unrated last"
    );
    assert!(ratings[..first_unrated].windows(2).all(|w| w[0] >= w[1]));
}

#[tokio::test]
async fn bad_cursors_and_limits() {
    let (app, _, _, worker) = setup().await;
    for _ in 0..3 {
        app.listing(&worker.access, json!({})).await;
    }
    let page = app.get("/api/v1/services?limit=1", None).await;
    let cursor = page.json["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    app.get(&format!("/api/v1/services?cursor={cursor}x"), None)
        .await
        .assert_problem(400, "bad_cursor");
    app.get("/api/v1/services?cursor=garbage", None)
        .await
        .assert_problem(400, "bad_cursor");
    app.get(
        &format!("/api/v1/services?sort=price_asc&cursor={cursor}"),
        None,
    )
    .await
    .assert_problem(400, "bad_cursor");
    app.get("/api/v1/services?limit=0", None)
        .await
        .assert_invalid(&["limit"]);
    app.get("/api/v1/services?limit=abc", None)
        .await
        .assert_invalid(&["limit"]);
    let clamped = app.get("/api/v1/services?limit=1000", None).await;
    assert_eq!(clamped.status, StatusCode::OK);
    app.get("/api/v1/services?sort=relevance", None)
        .await
        .assert_invalid(&["sort"]);
}

#[tokio::test]
async fn filters_and_relevance() {
    let (app, admin, worker_id, worker) = setup().await;
    let (_, other) = app.approved_worker("other-pro@example.com", &admin).await;
    let title_hit = app
        .listing(&worker.access, json!({"title": "Piano lessons", "description": "Weekly music classes", "category": "Music", "price_cents": 3000, "city": "Porto"}))
        .await;
    let description_hit = app
        .listing(&other.access, json!({"title": "Music classes", "description": "Guitar, violin and piano for children", "category": "music", "price_cents": 2000}))
        .await;
    let unrelated = app
        .listing(&worker.access, json!({"price_cents": 9000}))
        .await;

    let found = app.get("/api/v1/services?q=piano", None).await;
    assert_eq!(
        ids(&found.json),
        [
            title_hit["id"].as_str().expect("id"),
            description_hit["id"].as_str().expect("id")
        ],
        "title matches rank first"
    );

    let by = |query: &str| {
        let app = &app;
        let query = query.to_owned();
        async move {
            ids(&app
                .get(&format!("/api/v1/services?{query}"), None)
                .await
                .json)
        }
    };
    assert_eq!(
        by("category=MUSIC").await.len(),
        2,
        "categories are case-insensitive"
    );
    // Cities match whatever their case.
    assert_eq!(
        by("city=porto").await,
        [title_hit["id"].as_str().expect("id")]
    );
    assert_eq!(
        by("min_price=2000&max_price=3000").await.len(),
        2,
        "inclusive bounds"
    );
    assert_eq!(
        by("min_price=9000").await,
        [unrelated["id"].as_str().expect("id")]
    );
    assert_eq!(by(&format!("worker_id={worker_id}")).await.len(), 2);
    app.get("/api/v1/services?min_price=5&max_price=1", None)
        .await
        .assert_invalid(&["min_price"]);
}

#[tokio::test]
async fn worker_profile_and_availability() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("prof-admin@example.com").await;
    let (id, worker) = app.user("profile@example.com", "worker").await;
    let patched = app
        .call(
            Method::PATCH,
            "/api/v1/workers/me",
            Some(&worker.access),
            Some(json!({"bio": "Ten years of plumbing", "skills": ["pipes", "boilers"], "city": "Lisbon", "timezone": "Europe/Lisbon", "hourly_rate_cents": 2500})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.json["timezone"], "Europe/Lisbon");
    assert_eq!(patched.json["skills"], json!(["pipes", "boilers"]));
    let cleared = app
        .call(
            Method::PATCH,
            "/api/v1/workers/me",
            Some(&worker.access),
            Some(json!({"city": null, "bio": "still here"})),
        )
        .await;
    assert_eq!(cleared.json["city"], Value::Null);
    assert_eq!(cleared.json["hourly_rate_cents"], 2500, "absent is kept");
    for (bad, field) in [
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (json!({"full_name": null}), "full_name"),
        (json!({"hourly_rate_cents": -1}), "hourly_rate_cents"),
    ] {
        app.call(
            Method::PATCH,
            "/api/v1/workers/me",
            Some(&worker.access),
            Some(bad),
        )
        .await
        .assert_invalid(&[field]);
    }

    let slots = json!({"slots": [{"weekday": 0, "start": "09:00", "end": "12:00"}, {"weekday": 0, "start": "12:00", "end": "18:00"}, {"weekday": 6, "start": "20:00", "end": "24:00"}]});
    let put = app
        .call(
            Method::PUT,
            "/api/v1/workers/me/availability",
            Some(&worker.access),
            Some(slots.clone()),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let public = app
        .get(&format!("/api/v1/workers/{id}/availability"), None)
        .await;
    assert_eq!(public.json, slots);
    let overlap = json!({"slots": [{"weekday": 1, "start": "09:00", "end": "12:00"}, {"weekday": 1, "start": "11:00", "end": "13:00"}]});
    let reply = app
        .call(
            Method::PUT,
            "/api/v1/workers/me/availability",
            Some(&worker.access),
            Some(overlap),
        )
        .await;
    reply.assert_invalid(&["slots[1]"]);
    assert_eq!(reply.json["errors"][0]["field"], "slots[1]");
    let backwards = json!({"slots": [{"weekday": 2, "start": "12:00", "end": "09:00"}]});
    app.call(
        Method::PUT,
        "/api/v1/workers/me/availability",
        Some(&worker.access),
        Some(backwards),
    )
    .await
    .assert_invalid(&["slots[0]"]);
    assert_eq!(
        app.get(&format!("/api/v1/workers/{id}/availability"), None)
            .await
            .json,
        slots,
        "unchanged by bad input"
    );

    let profile = app.get(&format!("/api/v1/workers/{id}"), None).await;
    assert_eq!(profile.json["bio"], "still here");
    assert_eq!(profile.json["kyc_status"], "none");
    app.post(
        &format!("/api/v1/admin/users/{id}/suspend"),
        Some(&admin.access),
        json!({"reason": "x"}),
    )
    .await;
    app.get(&format!("/api/v1/workers/{id}"), None)
        .await
        .assert_problem(404, "not_found");
    app.get("/api/v1/workers/me", Some(&admin.access))
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn client_profile_and_favorites() {
    let (app, admin, _, worker) = setup().await;
    let (client_id, client) = app.user("fan@example.com", "client").await;
    let me = app.get("/api/v1/clients/me", Some(&client.access)).await;
    assert_eq!(me.json["id"], client_id);
    let patched = app
        .call(
            Method::PATCH,
            "/api/v1/clients/me",
            Some(&client.access),
            Some(json!({"phone": "+351 900 000 000", "city": "Lisbon"})),
        )
        .await;
    assert_eq!(
        patched.json["phone"], "+351 900 000 000",
        "{}",
        patched.body
    );
    let cleared = app
        .call(
            Method::PATCH,
            "/api/v1/clients/me",
            Some(&client.access),
            Some(json!({"phone": null})),
        )
        .await;
    assert_eq!(
        (cleared.json["phone"].clone(), cleared.json["city"].clone()),
        (Value::Null, json!("Lisbon"))
    );

    let a = app.listing(&worker.access, json!({"title": "A"})).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let b = app.listing(&worker.access, json!({"title": "B"})).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for id in [&a, &b, &a] {
        let reply = app
            .call(
                Method::PUT,
                &format!("/api/v1/clients/me/favorites/{id}"),
                Some(&client.access),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    }
    let favorites = app
        .get("/api/v1/clients/me/favorites", Some(&client.access))
        .await;
    assert_eq!(ids(&favorites.json).len(), 2, "idempotent");

    app.post(
        &format!("/api/v1/admin/services/{b}/hide"),
        Some(&admin.access),
        json!({"reason": "spam"}),
    )
    .await;
    let favorites = app
        .get("/api/v1/clients/me/favorites", Some(&client.access))
        .await;
    assert_eq!(
        ids(&favorites.json),
        [a.as_str()],
        "a hidden listing drops out"
    );
    app.call(
        Method::PUT,
        &format!("/api/v1/clients/me/favorites/{b}"),
        Some(&client.access),
        None,
    )
    .await
    .assert_problem(404, "not_found");

    for _ in 0..2 {
        let reply = app
            .call(
                Method::DELETE,
                &format!("/api/v1/clients/me/favorites/{a}"),
                Some(&client.access),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
    }
    assert!(
        ids(&app
            .get("/api/v1/clients/me/favorites", Some(&client.access))
            .await
            .json)
        .is_empty()
    );
    app.get("/api/v1/clients/me", Some(&worker.access))
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn a_bad_or_revoked_token_on_a_public_read_is_still_401() {
    let (app, _, _, worker) = setup().await;
    let listing = app.listing(&worker.access, json!({})).await;
    let path = format!("/api/v1/services/{}", listing["id"].as_str().expect("id"));
    app.get(&path, Some("garbage"))
        .await
        .assert_problem(401, "unauthorized");
    app.post("/api/v1/auth/logout", Some(&worker.access), json!({}))
        .await;
    app.get(&path, Some(&worker.access))
        .await
        .assert_problem(401, "token_revoked");
    assert_eq!(app.get(&path, None).await.status, StatusCode::OK);
}

/// `GET /services/{id}` runs on connections shared by concurrent reads, their queries
/// pipelined: each answer must still be its own request's, whoever asks.
#[tokio::test]
async fn concurrent_reads_on_shared_connections_each_get_their_own_answer() {
    let app = TestApp::spawn_with(&[("DB_SHARED_READS", "2")]).await;
    let (_, admin) = app.admin("shared-admin@example.com").await;
    let (_, worker) = app.approved_worker("shared@example.com", &admin).await;
    let mut listings = Vec::new();
    for n in 0..8 {
        let title = format!("Listing number {n}");
        let listing = app.listing(&worker.access, json!({ "title": title })).await;
        listings.push((listing["id"].as_str().expect("id").to_owned(), title));
    }
    let (hidden, _) = listings[0].clone();
    let reply = app
        .post(
            &format!("/api/v1/admin/services/{hidden}/hide"),
            Some(&admin.access),
            json!({"reason": "spam"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    // Anonymous, owner and admin reads of every listing, interleaved, 6 times over.
    let reads = (0..6).flat_map(|_| {
        listings.iter().flat_map(|(id, title)| {
            [None, Some(&worker.access), Some(&admin.access)]
                .map(|token| (id.clone(), title.clone(), token))
        })
    });
    let replies = futures_util::future::join_all(reads.map(|(id, title, token)| {
        let app = &app;
        async move {
            let reply = app
                .get(&format!("/api/v1/services/{id}"), token.map(String::as_str))
                .await;
            (id, title, token.is_some(), reply)
        }
    }))
    .await;
    assert_eq!(replies.len(), 6 * 8 * 3);
    for (id, title, signed_in, reply) in replies {
        if id == hidden && !signed_in {
            reply.assert_problem(404, "not_found");
        } else {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            assert_eq!(reply.json["id"], id.as_str());
            assert_eq!(reply.json["title"], title.as_str());
        }
    }
    // 144 reads at once, and no more than the 2 shared backends served them.
    assert_eq!(shared_read_backends(&app).await, 2);
}

/// Backends of the test's database that the shared read connections opened.
async fn shared_read_backends(app: &TestApp) -> i64 {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.state.db.get().await.expect("conn");
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'marketplace-reads'",
    )
    .get_result::<Count>(&mut conn)
    .await
    .expect("pg_stat_activity")
    .n
}

/// A shared read connection the server closed while idle (a restart,
/// `idle_session_timeout`) is replaced on the next read, which still succeeds: the
/// pool's recycling does as much for a checked-out connection.
#[tokio::test]
async fn a_shared_read_connection_closed_while_idle_is_replaced_unseen() {
    use diesel_async::RunQueryDsl;
    let (app, _, _, worker) = setup().await;
    let listing = app.listing(&worker.access, json!({})).await;
    let path = format!("/api/v1/services/{}", listing["id"].as_str().expect("id"));
    assert_eq!(app.get(&path, None).await.status, StatusCode::OK);
    assert_eq!(shared_read_backends(&app).await, 1);

    let mut conn = app.state.db.get().await.expect("conn");
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'marketplace-reads'",
    )
    .execute(&mut conn)
    .await
    .expect("terminate");
    drop(conn);
    for _ in 0..50 {
        if shared_read_backends(&app).await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(shared_read_backends(&app).await, 0);
    // Time for the client to see the close, as it would between two idle reads.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let reply = app.get(&path, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(shared_read_backends(&app).await, 1);
    assert!(
        crate::common::wait_for_log("a shared read connection is gone; replacing it")
            .await
            .contains("a shared read connection is gone; replacing it")
    );
}

/// A shared read connection that goes silent (a network path that died without a
/// reset: no answer, not even the statement timeout's) costs the reads on it a 503 after
/// `ANSWER_TIMEOUT`, is replaced for the next read, and never goes back to the pool to be
/// lent again.
#[tokio::test]
async fn a_shared_read_connection_that_goes_silent_is_condemned() {
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/{{db}}", proxy.port);
    let app = TestApp::spawn_with(&[("DATABASE_URL", &url)]).await;
    let (_, admin) = app.admin("silent-admin@example.com").await;
    let (_, worker) = app.approved_worker("silent@example.com", &admin).await;
    let listing = app.listing(&worker.access, json!({})).await;
    let path = format!("/api/v1/services/{}", listing["id"].as_str().expect("id"));
    assert_eq!(app.get(&path, None).await.status, StatusCode::OK);

    proxy.freeze_open();
    let started = std::time::Instant::now();
    let reply = app.get(&path, None).await;
    let waited = started.elapsed();
    reply.assert_problem(503, "dependency_unavailable");
    assert!(
        waited >= marketplace::db::shared::ANSWER_TIMEOUT,
        "waited {waited:?}"
    );
    assert!(
        crate::common::wait_for_log("no answer")
            .await
            .contains("a shared read connection is gone")
    );
    // A pooled connection would be lent again, and stay silent.
    let reply = app.get(&path, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}
