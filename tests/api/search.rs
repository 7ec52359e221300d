//! Search beyond the basics: "near me" (radius, distance, nearest first), listing
//! locations, and relevance by tier (title matches first), newest first in each.

use std::collections::HashSet;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    catalog::{ids, walk},
    common::{PG_HOST, TestApp, Tokens},
};

/// Lisbon's centre.
const LISBON: (f64, f64) = (38.7223, -9.1393);
/// Kilometres per degree of latitude on earthdistance's sphere (radius 6378.168 km).
const KM_PER_DEGREE: f64 = 6378.168 * std::f64::consts::PI / 180.0;

async fn setup() -> (TestApp, Tokens, Tokens) {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("search-admin@example.com").await;
    let (_, worker) = app.approved_worker("search-pro@example.com", &admin).await;
    (app, admin, worker)
}

fn id(listing: &Value) -> String {
    listing["id"].as_str().expect("id").to_owned()
}

/// A listing `north_km` north and `east_km` east of Lisbon's centre.
async fn placed(
    app: &TestApp,
    worker: &Tokens,
    north_km: f64,
    east_km: f64,
    extra: Value,
) -> String {
    let lat = LISBON.0 + north_km / KM_PER_DEGREE;
    let lng = LISBON.1 + east_km / (KM_PER_DEGREE * LISBON.0.to_radians().cos());
    let mut body = json!({"location": {"lat": lat, "lng": lng}});
    for (key, value) in extra.as_object().expect("object") {
        body[key] = value.clone();
    }
    id(&app.listing(&worker.access, body).await)
}

#[tokio::test]
async fn near_finds_listings_within_the_radius_nearest_first() {
    let (app, _, worker) = setup().await;
    let centre = placed(&app, &worker, 0.0, 0.0, json!({"price_cents": 3000})).await;
    let north = placed(&app, &worker, 5.0, 0.0, json!({"title": "Bathroom tiling"})).await;
    let twin = placed(
        &app,
        &worker,
        5.0,
        0.0,
        json!({"title": "Kitchen tiling", "category": "tiling"}),
    )
    .await;
    let east = placed(
        &app,
        &worker,
        0.0,
        20.0,
        json!({"title": "Roof tiling", "category": "tiling"}),
    )
    .await;
    let far = placed(&app, &worker, -100.0, 0.0, json!({})).await;
    let nowhere = id(&app.listing(&worker.access, json!({})).await);
    let near = format!("near={},{}", LISBON.0, LISBON.1);

    let page = app
        .get(&format!("/api/v1/services?{near}&sort=distance"), None)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let mut ties = [north.clone(), twin.clone()];
    ties.sort();
    let expected = [
        centre.clone(),
        ties[0].clone(),
        ties[1].clone(),
        east.clone(),
    ];
    assert_eq!(
        ids(&page.json),
        expected,
        "25 km by default, nearest first, ties by id"
    );
    let distances: Vec<f64> = page.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["distance_km"].as_f64().expect("distance_km"))
        .collect();
    for (got, want) in distances.iter().zip([0.0, 5.0, 5.0, 20.0]) {
        assert!((got - want).abs() < 0.05, "{distances:?}");
    }
    assert_eq!(
        walk(
            &app,
            &format!("/api/v1/services?{near}&sort=distance&limit=1")
        )
        .await,
        expected,
        "keyset pages meet every listing once, in order"
    );

    let within = |query: String| {
        let app = &app;
        async move {
            let page = app.get(&format!("/api/v1/services?{query}"), None).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            ids(&page.json).into_iter().collect::<HashSet<_>>()
        }
    };
    assert_eq!(
        within(format!("{near}&radius_km=10")).await,
        HashSet::from([centre.clone(), north.clone(), twin.clone()])
    );
    assert!(within(format!("{near}&radius_km=150")).await.contains(&far));
    assert!(
        !within(format!("{near}&radius_km=500"))
            .await
            .contains(&nowhere),
        "no location, never near"
    );
    assert_eq!(
        within(format!("{near}&q=tiling&category=tiling")).await,
        HashSet::from([twin.clone(), east.clone()]),
        "with full text and a filter"
    );
    let by_price = app
        .get(
            &format!("/api/v1/services?{near}&radius_km=10&sort=price_asc"),
            None,
        )
        .await;
    assert_eq!(
        ids(&by_price.json)[0],
        centre,
        "another sort inside the radius"
    );
    assert!(by_price.json["items"][0]["distance_km"].is_number());

    let plain = app.get("/api/v1/services", None).await;
    let item = &plain.json["items"][0];
    assert!(
        item.get("distance_km").is_none(),
        "distance only with `near`"
    );
    assert!(item["location"].is_object() || item["location"].is_null());
}

/// With words, the radius narrows by a latitude band before the exact distance: the band
/// must keep what is within the radius at its north and south edges, and the distance
/// must still drop what the band lets through east and west.
#[tokio::test]
async fn words_and_near_keep_the_exact_radius() {
    let (app, _, worker) = setup().await;
    let tiling = json!({"title": "Roof tiling", "category": "tiling"});
    let north_edge = placed(&app, &worker, 9.99, 0.0, tiling.clone()).await;
    let south_edge = placed(&app, &worker, -9.99, 0.0, tiling.clone()).await;
    let _north_out = placed(&app, &worker, 10.01, 0.0, tiling.clone()).await;
    let _east_out = placed(&app, &worker, 0.0, 10.5, tiling.clone()).await;
    let _west_out = placed(&app, &worker, 1.0, -10.0, tiling.clone()).await;
    let near = format!("near={},{}&radius_km=10", LISBON.0, LISBON.1);
    for query in [
        format!("{near}&q=tiling"),
        format!("{near}&q=tiling&sort=newest"),
        format!("{near}&q=tilin"),
    ] {
        let page = app.get(&format!("/api/v1/services?{query}"), None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert_eq!(
            ids(&page.json).into_iter().collect::<HashSet<_>>(),
            HashSet::from([north_edge.clone(), south_edge.clone()]),
            "{query}"
        );
        for item in page.json["items"].as_array().expect("items") {
            let km = item["distance_km"].as_f64().expect("distance_km");
            assert!((km - 9.99).abs() < 0.01, "{query}: {km}");
        }
    }
}

#[tokio::test]
async fn a_location_is_set_changed_and_cleared() {
    let (app, _, worker) = setup().await;
    let made = app
        .listing(
            &worker.access,
            json!({"location": {"lat": 41.1579, "lng": -8.6291}}),
        )
        .await;
    assert_eq!(made["location"], json!({"lat": 41.1579, "lng": -8.6291}));
    assert_eq!(
        app.listing(&worker.access, json!({"location": null})).await["location"],
        Value::Null
    );
    let path = format!("/api/v1/services/{}", id(&made));
    let patch = |body: Value| {
        let app = &app;
        let path = path.clone();
        let token = worker.access.clone();
        async move {
            app.call(Method::PATCH, &path, Some(&token), Some(body))
                .await
        }
    };
    let moved = patch(json!({"location": {"lat": -33.9, "lng": 151.2}})).await;
    assert_eq!(
        moved.json["location"],
        json!({"lat": -33.9, "lng": 151.2}),
        "{}",
        moved.body
    );
    let kept = patch(json!({"title": "Renamed"})).await;
    assert_eq!(
        kept.json["location"],
        json!({"lat": -33.9, "lng": 151.2}),
        "absent is kept"
    );
    assert_eq!(
        patch(json!({"location": null})).await.json["location"],
        Value::Null
    );

    let field = |reply: &crate::common::Reply| {
        reply.assert_problem(422, "validation_failed");
        reply.json["errors"][0]["field"]
            .as_str()
            .expect("field")
            .to_owned()
    };
    assert_eq!(
        field(&patch(json!({"location": {"lat": 10, "lng": 180.5}})).await),
        "location.lng"
    );
    let bad = app
        .post(
            "/api/v1/services",
            Some(&worker.access),
            json!({"title": "T", "description": "D", "category": "c", "price_cents": 1,
                   "pricing_unit": "fixed", "city": "X", "location": {"lat": 90.5, "lng": 0}}),
        )
        .await;
    assert_eq!(field(&bad), "location.lat");
}

#[tokio::test]
async fn bad_near_radius_or_distance_sort_is_a_422_naming_the_field() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("near=abc", "near"),
        ("near=38.7", "near"),
        ("near=91,0", "near"),
        ("near=0,-181", "near"),
        ("near=38.7,-9.1&radius_km=0", "radius_km"),
        ("near=38.7,-9.1&radius_km=-3", "radius_km"),
        ("near=38.7,-9.1&radius_km=500.5", "radius_km"),
        ("near=38.7,-9.1&radius_km=far", "radius_km"),
        ("radius_km=10", "radius_km"),
        ("sort=distance", "sort"),
        ("sort=distance&q=tiling", "sort"),
    ] {
        let reply = app.get(&format!("/api/v1/services?{query}"), None).await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(
            reply.json["errors"][0]["field"], field,
            "{query}: {}",
            reply.body
        );
    }
    let edge = app
        .get("/api/v1/services?near=-90,180&radius_km=500", None)
        .await;
    assert_eq!(edge.status, StatusCode::OK, "{}", edge.body);
}

/// Listings for relevance, made oldest first: title matches, description-only
/// matches, and a listing that matches only with both (`piano` in the title, `violin`
/// in the description), interleaved in time.
async fn relevance_fixture(app: &TestApp, worker: &Tokens) -> (Vec<String>, Vec<String>) {
    let mut titled = Vec::new();
    let mut described = Vec::new();
    for i in 0..7 {
        titled.push(id(&app
            .listing(
                &worker.access,
                json!({"title": format!("Piano lessons {i}"), "description": "Weekly violin classes", "price_cents": 6000}),
            )
            .await));
        described.push(id(&app.listing(&worker.access, json!({"title": format!("Music classes {i}"), "description": "Guitar and piano for children", "price_cents": 5000 + i})).await));
    }
    app.listing(&worker.access, json!({"title": "Drum lessons"}))
        .await;
    (titled, described)
}

#[tokio::test]
async fn relevance_is_title_matches_then_the_rest_newest_first_over_exact_pages() {
    let (app, _, worker) = setup().await;
    let (titled, described) = relevance_fixture(&app, &worker).await;
    let newest_first = |ids: &[String]| ids.iter().rev().cloned().collect::<Vec<_>>();
    let expected = [newest_first(&titled), newest_first(&described)].concat();
    // Pages of 3 and 4 cut inside each tier and across the boundary (7 title matches);
    // each match comes exactly once, title matches first, newest first in each tier.
    for limit in [1, 3, 4, 7, 100] {
        let seen = walk(&app, &format!("/api/v1/services?q=piano&limit={limit}")).await;
        assert_eq!(seen, expected, "limit {limit}");
    }
    // Both words in the title, or only with the description.
    let both = walk(&app, "/api/v1/services?q=piano%20violin&limit=2").await;
    assert_eq!(
        both,
        newest_first(&titled),
        "title + description together match"
    );
    // Every filter still applies, in both tiers and on every page.
    let cheap = walk(&app, "/api/v1/services?q=piano&max_price=5003&limit=2").await;
    assert_eq!(cheap, newest_first(&described[..4]));
    let none = app
        .get("/api/v1/services?q=piano&max_price=4999", None)
        .await;
    assert!(ids(&none.json).is_empty(), "{}", none.body);
    // Near: the same tiers, only inside the radius.
    let near = placed(&app, &worker, 1.0, 0.0, json!({"title": "Piano tuning"})).await;
    let far = placed(&app, &worker, 40.0, 0.0, json!({"title": "Piano removals"})).await;
    let around = walk(
        &app,
        &format!(
            "/api/v1/services?q=piano&near={},{}&radius_km=5&limit=1",
            LISBON.0, LISBON.1
        ),
    )
    .await;
    assert_eq!(around, [near], "{far} is outside the radius");
    // A cursor of another sort is refused, not misread.
    let cursor = app.get("/api/v1/services?limit=1", None).await.json["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    app.get(&format!("/api/v1/services?q=piano&cursor={cursor}"), None)
        .await
        .assert_problem(400, "bad_cursor");
}

/// A PostgreSQL where the service's role may not create RUM (a managed provider's
/// allow-list with cube and earthdistance but not rum): the catalog migration, which
/// tried RUM before search ranked by tier, still succeeds, and so does every later one.
#[tokio::test]
async fn migrations_succeed_where_rum_cannot_be_created() {
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let name = self.0.clone();
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    if let Ok(mut admin) =
                        AsyncPgConnection::establish(crate::common::PG_ADMIN_URL).await
                    {
                        for statement in [
                            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                            format!("DROP ROLE IF EXISTS {name}"),
                        ] {
                            let _ = admin.batch_execute(&statement).await;
                        }
                    }
                });
            })
            .join();
        }
    }
    let name = format!("mpt_{}_norum", std::process::id());
    let _cleanup = Cleanup(name.clone());
    let mut admin = AsyncPgConnection::establish(crate::common::PG_ADMIN_URL)
        .await
        .expect("admin");
    // One statement per call: CREATE and DROP DATABASE refuse to run in a transaction.
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {name}"),
        format!("CREATE ROLE {name} LOGIN"),
        format!("CREATE DATABASE {name} OWNER {name}"),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .expect("role and database");
    }
    AsyncPgConnection::establish(&format!("{PG_HOST}/{name}"))
        .await
        .expect("as superuser")
        .batch_execute("CREATE EXTENSION cube; CREATE EXTENSION earthdistance")
        .await
        .expect("allow-listed extensions");
    let url: url::Url = format!("postgres://{name}@127.0.0.1:5432/{name}")
        .parse()
        .expect("url");
    marketplace::db::run_migrations(&url, &marketplace::db::tls::PgTls::Disable)
        .await
        .expect("migrations without rum");
    let settings = crate::common::settings_for(
        &name,
        &format!("mpt:{name}:"),
        &[("DATABASE_URL", url.as_str())],
    );
    let state = marketplace::state::AppState::new(settings)
        .await
        .expect("state");
    state.db.close();
    state.search_db.close();
}

#[tokio::test]
async fn words_people_type_find_their_trade() {
    let (app, _, worker) = setup().await;
    let mut titled = HashSet::new();
    for i in 0..5 {
        titled.insert(id(&app
            .listing(
                &worker.access,
                json!({"title": format!("Bathroom plumbing {i}"), "description": "Leaks fixed"}),
            )
            .await));
    }
    let described = id(&app
        .listing(
            &worker.access,
            json!({"title": "Leak repair", "description": "A reliable plumbing service"}),
        )
        .await);
    app.listing(&worker.access, json!({"title": "Garden care"}))
        .await;
    let found = |q: &str| {
        let app = &app;
        let q = q.to_owned();
        async move { walk(app, &format!("/api/v1/services?q={q}&limit=2")).await }
    };
    let mut every = titled.clone();
    every.insert(described.clone());
    for q in ["plumb", "plumbing", "bathroom%20plu"] {
        let seen = found(q).await;
        assert_eq!(
            seen.len(),
            seen.iter().collect::<HashSet<_>>().len(),
            "{q}: once each"
        );
        let expected = if q.starts_with("bathroom") {
            &titled
        } else {
            &every
        };
        assert_eq!(
            &seen.into_iter().collect::<HashSet<_>>(),
            expected,
            "{q}: the last word is a prefix"
        );
    }
    for typo in ["plumbr", "plumber", "bathrom"] {
        let seen = found(typo).await;
        assert_eq!(
            seen.len(),
            titled.len(),
            "{typo}: each similar title once, over pages"
        );
        assert_eq!(
            seen.into_iter().collect::<HashSet<_>>(),
            titled,
            "{typo}: similar titles"
        );
    }
    assert!(found("zzzzqx").await.is_empty());
    let newest = app.get("/api/v1/services?q=plumbr&sort=newest", None).await;
    assert!(
        ids(&newest.json).is_empty(),
        "the fallback ranks by similarity, for relevance only"
    );
}
