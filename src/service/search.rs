//! The public catalog queries: hand-written SQL over the listing table alone.
//!
//! Every public read path (search, a listing by id, a client's favorites, booking) tests
//! `s.listed`, which `service::listed` keeps equal to the visibility rule, so "publicly
//! visible" has exactly one definition and no read joins the worker or user tables for it.
//! Sorting is keyset-based on `(sort key, id)`; each sort matches an index of the catalog
//! migrations so a page reads a bounded number of rows.

use diesel::{
    QueryableByName,
    sql_types::{BigInt, Bool, Float4, Float8, Nullable, Text, Uuid},
};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::{
    core::validate,
    core::{
        auth::CurrentUser,
        ids::{ServiceId, UserId},
        limiter::ClientIp,
        pagination::{self, Page},
    },
    db::{self, enums::UserRole, sql::Sql},
    error::{AppError, FieldError},
    service::{
        models::{GeoPoint, ServiceRow},
        schemas::{Service, SortOrder},
    },
    state::AppState,
};

/// A listing's point, as the location index has it (migration
/// `2026-12-06-000200_location_reads`): the body of earthdistance's `ll_to_earth`, written
/// out. `ll_to_earth`, `earth_box`, `earth_distance`, `gc_to_sec` and `sec_to_gc` are
/// SQL-language functions PostgreSQL does not inline (a domain result, a CASE under
/// STRICT): each query parsed and planned their bodies again and ran a small plan per
/// row. Profiled at 100k listings, that parsing was the largest cost of a nearest-first
/// page; these queries use none of them.
const POINT: &str = "cube(cube(cube(6378168::float8 * cos(radians(s.location_lat)) * cos(radians(s.location_lng))), \
     6378168::float8 * cos(radians(s.location_lat)) * sin(radians(s.location_lng))), \
     6378168::float8 * sin(radians(s.location_lat)))";

/// earthdistance's `earth()`: the radius its cube points sit on, in metres.
const EARTH_RADIUS_M: f64 = 6_378_168.0;

/// The straight-line (chord) length of a great-circle distance, as `gc_to_sec`: what the
/// cube distance `<->` measures, so a radius becomes a bound on it.
fn chord(metres: f64) -> f64 {
    if metres < 0.0 {
        0.0
    } else if metres / EARTH_RADIUS_M > std::f64::consts::PI {
        2.0 * EARTH_RADIUS_M
    } else {
        2.0 * EARTH_RADIUS_M * (metres / (2.0 * EARTH_RADIUS_M)).sin()
    }
}

/// The great-circle distance in km of a chord, as `sec_to_gc`.
fn great_circle_km(chord: f64) -> f64 {
    let metres = if chord < 0.0 {
        0.0
    } else if chord / (2.0 * EARTH_RADIUS_M) > 1.0 {
        std::f64::consts::PI * EARTH_RADIUS_M
    } else {
        2.0 * EARTH_RADIUS_M * (chord / (2.0 * EARTH_RADIUS_M)).asin()
    };
    metres / 1000.0
}

/// What booking needs of a publicly visible listing.
#[derive(Debug, QueryableByName)]
pub struct Bookable {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub worker_id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub price_cents: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub duration_minutes: i32,
    /// The worker's IANA timezone.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub timezone: String,
}

/// The listing `id` as booking needs it, if it is publicly visible (404 otherwise).
pub async fn bookable(
    conn: &mut diesel_async::AsyncPgConnection,
    id: ServiceId,
) -> Result<Bookable, AppError> {
    let mut sql = Sql::new();
    sql.push(
        "SELECT s.worker_id, s.price_cents, s.duration_minutes, w.timezone \
         FROM services s JOIN workers w ON w.user_id = s.worker_id WHERE s.id = ",
    )
    .bind::<diesel::sql_types::Uuid, _>(id.0)
    .push(" AND s.listed");
    Ok(sql.get_result(conn).await?)
}

const COLUMNS: &str = "s.id, s.worker_id, s.title, s.description, s.category, s.price_cents, s.pricing_unit, \
     s.city, s.duration_minutes, s.status, s.rating_avg, s.rating_count, s.created_at, s.updated_at, \
     s.location_lat, s.location_lng";

/// How an unrated listing sorts by rating: below every real rating (1 to 5).
const UNRATED: f64 = -1.0;

/// The radius of a `near` search when none is given, and the largest one, in km.
const DEFAULT_RADIUS_KM: f64 = 25.0;
const MAX_RADIUS_KM: f64 = 500.0;

/// Filters and order of a search, as the query string gave them.
#[derive(Debug, Default)]
pub struct Search {
    pub q: Option<String>,
    pub category: Option<String>,
    pub city: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub worker_id: Option<UserId>,
    /// `<lat>,<lng>`.
    pub near: Option<String>,
    pub radius_km: Option<f64>,
    pub sort: Option<SortOrder>,
}

/// Where a page ended: the sort it belongs to, its key, and the last id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Position {
    Newest(ServiceId),
    PriceAsc(i64, ServiceId),
    PriceDesc(i64, ServiceId),
    /// `COALESCE(rating_avg, -1)`: unrated listings sort last.
    Rating(f64, ServiceId),
    /// The relevance tier and the last id in it; whether the last word was a prefix.
    Relevance(Tier, ServiceId, bool),
    /// The cube distance `<->` from the `near` point (ordered like the great circle).
    Distance(f64, ServiceId),
    /// `word_similarity` of the query to the title: the typo fallback's pages.
    Similar(f32, ServiceId),
}

/// How well a listing matches the words, best first; within a tier, newest first.
///
/// Two tiers and an id order, rather than a score: a score (`ts_rank`, RUM's `<=>`)
/// needs every match scored before the first is known, and with few distinct scores
/// an exact (score, id) keyset page reads a whole tie group. Ordered by (tier, id),
/// a page of a common word is an id-index walk that stops after a page of matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Tier {
    /// The title alone matches the words.
    Title,
    /// Only title and description together do.
    Text,
}

impl Tier {
    const ALL: [Self; 2] = [Self::Title, Self::Text];

    fn condition(self) -> &'static str {
        match self {
            Self::Title => "s.title_search @@ query",
            Self::Text => "s.search @@ query AND NOT s.title_search @@ query",
        }
    }
}

/// How many of the newest listings (that pass the other filters) a relevance page
/// looks at for its words before it asks the words' index instead. A word in one
/// listing in a hundred fills a page of 20 inside the window; a rarer one is cheaper
/// from its GIN posting list (measured at 100k listings: 2 000 rows walked in about
/// 1 ms, against 70–100 ms for the planner's own walk through a whole tier that turned
/// out empty, which it chose whenever it overestimated a word).
const WINDOW: i64 = 2000;

/// How the rows of a search with `q` are matched and ranked. A first page tries each in
/// turn until one finds something: the exact words (the cheapest, and planned fastest:
/// a prefix query took 22 ms to plan and 33 ms to run against 0.3 ms and 9 ms for
/// `plumbing` at 100k listings), then the last word as a prefix, then similar titles.
/// Later pages keep the first page's way (their cursor says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matching {
    /// Full text, by [`Tier`]; `true`: the last word is also a prefix (`plumb` finds
    /// plumbing, as a search box typed into needs).
    Words(bool),
    /// Nothing matched the words: titles similar to what was typed (pg_trgm), most similar
    /// first, so `plumbr` or `plumber` still finds plumbing.
    Similar,
}

#[derive(diesel::QueryableByName)]
struct Ranked {
    #[diesel(embed)]
    service: ServiceRow,
    #[diesel(sql_type = Float4)]
    rank: f32,
    /// The chord to the `near` point: the nearest-first sort key, and the distance.
    #[diesel(sql_type = Nullable<Float8>)]
    knn: Option<f64>,
}

/// A `near` search: the point and the radius in metres.
#[derive(Debug, Clone, Copy)]
struct Around {
    point: GeoPoint,
    metres: f64,
}

fn around(near: Option<&str>, radius_km: Option<f64>) -> Result<Option<Around>, FieldError> {
    let Some(near) = near else {
        return match radius_km {
            Some(_) => Err(FieldError::new("radius_km", "needs `near`")),
            None => Ok(None),
        };
    };
    validate::storable("near", near)?;
    let point = GeoPoint::parse("near", near)?;
    let km = radius_km.unwrap_or(DEFAULT_RADIUS_KM);
    if !(km > 0.0 && km <= MAX_RADIUS_KM) {
        return Err(FieldError::new(
            "radius_km",
            format!("must be more than 0 and at most {MAX_RADIUS_KM}"),
        ));
    }
    Ok(Some(Around {
        point,
        metres: km * 1000.0,
    }))
}

/// One page of public search results.
pub async fn search(
    state: &AppState,
    ip: ClientIp,
    search: Search,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<Service>, AppError> {
    let limit = pagination::limit(limit)?;
    let q = query_text(search.q.as_deref())?;
    let around = around(search.near.as_deref(), search.radius_km)?;
    for (field, value) in [("category", &search.category), ("city", &search.city)] {
        if let Some(value) = value {
            validate::storable(field, value)?;
        }
    }
    if let (Some(min), Some(max)) = (search.min_price, search.max_price)
        && min > max
    {
        return Err(FieldError::new("min_price", "must not exceed max_price").into());
    }
    let sort = match (search.sort, q) {
        (Some(SortOrder::Relevance), None) => {
            return Err(FieldError::new("sort", "relevance needs a search query `q`").into());
        }
        (Some(SortOrder::Distance), _) if around.is_none() => {
            return Err(FieldError::new("sort", "distance needs `near`").into());
        }
        (Some(sort), _) => sort,
        (None, Some(_)) => SortOrder::Relevance,
        (None, None) => SortOrder::Newest,
    };
    let after: Option<Position> = state.cursors.decode_opt(cursor)?;
    let filters = Filters {
        q,
        around,
        category: search.category.map(|c| c.trim().to_lowercase()),
        city: search.city.map(|c| c.trim().to_owned()),
        min_price: search.min_price,
        max_price: search.max_price,
        worker_id: search.worker_id,
    };
    let mut matching = match after {
        Some(Position::Similar(..)) => Matching::Similar,
        Some(Position::Relevance(.., prefix)) => Matching::Words(prefix),
        _ => Matching::Words(false),
    };

    // Search's own pool: its concurrency and statement timeout are capped apart from
    // the rest of the API's (see `db::search_pool`).
    let _place = state
        .limits
        .searches
        .enter(ip)
        .ok_or(AppError::RateLimited {
            retry_after_secs: 1,
        })?;
    let mut conn = crate::db::checkout(&state.search_db).await?;
    let mut rows = load(&mut conn, &filters, matching, sort, after, limit).await?;
    if after.is_none() && sort == SortOrder::Relevance {
        let fallbacks = [
            q.and_then(prefixed).map(|_| Matching::Words(true)),
            Some(Matching::Similar),
        ];
        for fallback in fallbacks.into_iter().flatten() {
            if !rows.is_empty() {
                break;
            }
            matching = fallback;
            rows = load(&mut conn, &filters, matching, sort, after, limit).await?;
        }
    }
    pagination::paginate(
        &state.cursors,
        rows,
        limit,
        |(position, _)| *position,
        |(_, r)| Service {
            distance_km: r.knn.map(great_circle_km),
            ..Service::from(r.service)
        },
    )
}

/// Up to `limit + 1` rows after `after`, each with its position.
async fn load(
    conn: &mut db::DbConn,
    filters: &Filters<'_>,
    matching: Matching,
    sort: SortOrder,
    after: Option<Position>,
    limit: i64,
) -> Result<Vec<(Position, Ranked)>, AppError> {
    if let (SortOrder::Relevance, Matching::Words(prefix), Some(q)) = (sort, matching, filters.q) {
        return by_tier(conn, filters, Words { q, prefix }, after, limit).await;
    }
    let rows: Vec<Ranked> = page_sql(filters, matching, sort, after, limit)?
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (position(sort, &r), r)).collect())
}

/// The words of a full-text search: `q`, and whether its last word is also a prefix.
#[derive(Debug, Clone, Copy)]
struct Words<'a> {
    q: &'a str,
    prefix: bool,
}

/// A relevance page: the rest of the cursor's tier, then the next tier if the page is
/// not full yet, each newest first.
///
/// Each tier is asked in two ways, so no word makes a page read far more than its
/// matches (the planner, left to choose, walked the id index through whole tiers that
/// turned out empty whenever it overestimated a word):
/// 1. the [`WINDOW`] newest listings that pass the other filters, then the tier's words
///    among them. When that fills the page it is the page: every newer listing was
///    looked at. A common word costs about a page of rows divided by its frequency.
/// 2. otherwise the words' GIN index gives every match of the tier past the cursor
///    and the newest are kept: the cost of a rare word's few matches.
///
/// A `near` search goes to 2 at once: the radius and the words intersect in bitmaps,
/// and a window of the newest listings would have to walk past everything outside it.
/// Both shapes are forced (a subquery with its own LIMIT, an `OFFSET 0` fence), so the
/// plan does not depend on the words and stays cached as a prepared statement.
async fn by_tier(
    conn: &mut db::DbConn,
    filters: &Filters<'_>,
    words: Words<'_>,
    after: Option<Position>,
    limit: i64,
) -> Result<Vec<(Position, Ranked)>, AppError> {
    let after = match after {
        None => None,
        Some(Position::Relevance(tier, id, _)) => Some((tier, id)),
        Some(_) => return Err(AppError::ForeignCursor),
    };
    let want = usize::try_from(limit + 1).unwrap_or(usize::MAX);
    let mut rows = Vec::with_capacity(want);
    for tier in Tier::ALL {
        let from = match after {
            Some((last, _)) if last > tier => continue,
            Some((last, id)) if last == tier => Some(id),
            _ => None,
        };
        let need = want - rows.len();
        let mut found: Vec<Ranked> = Vec::new();
        if filters.around.is_none() {
            found = tier_sql(filters, words, tier, from, need, Some(WINDOW))
                .load(conn)
                .await?;
        }
        if found.len() < need {
            found = tier_sql(filters, words, tier, from, need, None)
                .load(conn)
                .await?;
        }
        rows.extend(
            found
                .into_iter()
                .map(|r| (Position::Relevance(tier, r.service.id, words.prefix), r)),
        );
        if rows.len() == want {
            break;
        }
    }
    Ok(rows)
}

/// A search's checked filters.
struct Filters<'a> {
    q: Option<&'a str>,
    around: Option<Around>,
    category: Option<String>,
    city: Option<String>,
    min_price: Option<i64>,
    max_price: Option<i64>,
    worker_id: Option<UserId>,
}

/// The SQL of one page of every sort but relevance by words ([`tier_sql`]).
fn page_sql(
    filters: &Filters<'_>,
    matching: Matching,
    sort: SortOrder,
    after: Option<Position>,
    limit: i64,
) -> Result<Sql, AppError> {
    let (q, around) = (filters.q, filters.around);
    // Full-text and radius selectivity vary with every value: a plan made for the values
    // at hand beats the cached generic one (measured for q=plumbing over 100k listings:
    // 122 req/s planned per request, 87 req/s with the generic plan). Nearest first is
    // the KNN index order whatever the point and radius, so that plan stays cached
    // (planning it took 0.35 ms, running it 0.5 ms at 100k listings).
    let by_distance = sort == SortOrder::Distance;
    let mut sql = if q.is_some() || (around.is_some() && !by_distance) {
        Sql::planned_per_execution()
    } else {
        Sql::new()
    };
    // The GiST index's `<->` order can only serve an ORDER BY of that one operator, so
    // the tie-break by id is an incremental sort over an ordered subquery, which reads
    // the index in order until the page and its last tie group are complete. The
    // subquery's LIMIT is opaque to the planner (a NULL, so no limit at all), which makes
    // it plan for a fraction of the rows, where the ordered index scan wins over reading
    // every row in the radius to sort them.
    // Nearest first also keeps the radius outside, from `knn`: the chord `<->` is
    // computed once per row and compared with the radius's chord; `distance_km` is its
    // great circle, computed in Rust ([`great_circle_km`]).
    if by_distance {
        sql.push("SELECT * FROM (");
    }
    sql.push("SELECT ").push(COLUMNS);
    sql.push(match (q, matching) {
        (Some(_), Matching::Similar) => ", word_similarity(query, s.title) AS rank",
        _ => ", 0::real AS rank",
    });
    push_distance(&mut sql, around);
    sql.push(" FROM services s");
    match (q, matching) {
        (None, _) => {}
        (Some(q), Matching::Similar) => {
            sql.push(", (SELECT CAST(")
                .bind::<Text, _>(q.to_owned())
                .push(" AS text) AS query) typed");
        }
        (Some(q), Matching::Words(prefix)) => push_words(&mut sql, Words { q, prefix }),
    }
    push_origin(&mut sql, around);
    sql.push(" WHERE s.listed");
    match (q, matching) {
        (None, _) => {}
        (Some(_), Matching::Words(..)) => {
            sql.push(" AND s.search @@ query");
        }
        (Some(_), Matching::Similar) => {
            sql.push(" AND query <% s.title");
        }
    }
    let radius = match (by_distance, q) {
        (true, _) => Radius::Knn,
        (false, Some(_)) => Radius::Band,
        (false, None) => Radius::Box,
    };
    push_filters(&mut sql, filters, radius);
    if let Some(after) = after {
        keyset(&mut sql, sort, after)?;
    }
    if by_distance {
        sql.push(" ORDER BY ")
            .push(POINT)
            .push(" <-> origin LIMIT (SELECT NULL::bigint)) page");
        if let Some(around) = around {
            sql.push(" WHERE page.knn <= ")
                .bind::<Float8, _>(chord(around.metres));
        }
    }
    sql.push(match sort {
        SortOrder::Newest => " ORDER BY s.id DESC",
        SortOrder::PriceAsc => " ORDER BY s.price_cents ASC, s.id ASC",
        SortOrder::PriceDesc => " ORDER BY s.price_cents DESC, s.id DESC",
        SortOrder::Rating => " ORDER BY COALESCE(s.rating_avg, -1) DESC, s.id DESC",
        SortOrder::Relevance => " ORDER BY rank DESC, s.id DESC",
        SortOrder::Distance => " ORDER BY page.knn, page.id",
    });
    sql.push(" LIMIT ").bind::<BigInt, _>(limit + 1);
    Ok(sql)
}

/// The SQL of `need` rows of one relevance tier, newest first, older than `after`:
/// among the `window` newest listings that pass the other filters, or (`None`) from
/// every match of the words (see [`by_tier`]). A window cannot be combined with `near`.
fn tier_sql(
    filters: &Filters<'_>,
    words: Words<'_>,
    tier: Tier,
    after: Option<ServiceId>,
    need: usize,
    window: Option<i64>,
) -> Sql {
    // The radius's selectivity decides between the location and the words' indexes;
    // without one, the shape below is the plan whatever the words, and stays cached.
    let mut sql = if filters.around.is_some() {
        Sql::planned_per_execution()
    } else {
        Sql::new()
    };
    let older = |sql: &mut Sql| {
        if let Some(id) = after {
            sql.push(" AND s.id < ").bind::<Uuid, _>(id.0);
        }
    };
    let columns = |sql: &mut Sql| {
        sql.push("SELECT ").push(COLUMNS).push(", 0::real AS rank");
        push_distance(sql, filters.around);
    };
    match window {
        Some(window) => {
            columns(&mut sql);
            sql.push(" FROM (SELECT * FROM services s WHERE s.listed");
            push_filters(&mut sql, filters, Radius::Box);
            older(&mut sql);
            sql.push(" ORDER BY s.id DESC LIMIT ")
                .bind::<BigInt, _>(window)
                .push(") s");
            push_words(&mut sql, words);
            sql.push(" WHERE ").push(tier.condition());
        }
        None => {
            // The `OFFSET 0` fence keeps the planner from walking the id index for the
            // ORDER BY outside it: its guess of the words' frequency decides nothing.
            sql.push("SELECT * FROM (");
            columns(&mut sql);
            sql.push(" FROM services s");
            push_words(&mut sql, words);
            push_origin(&mut sql, filters.around);
            sql.push(" WHERE s.listed AND ").push(tier.condition());
            push_filters(&mut sql, filters, Radius::Band);
            older(&mut sql);
            sql.push(" OFFSET 0) s");
        }
    }
    sql.push(" ORDER BY s.id DESC LIMIT ")
        .bind::<BigInt, _>(i64::try_from(need).unwrap_or(i64::MAX));
    sql
}

/// The chord to the `near` point as `knn` (NULL without one); the distance is computed
/// from it in Rust ([`great_circle_km`]).
fn push_distance(sql: &mut Sql, around: Option<Around>) {
    match around {
        None => sql.push(", NULL::float8 AS knn"),
        Some(_) => sql.push(", ").push(POINT).push(" <-> origin AS knn"),
    };
}

/// The `query` the words make, as a FROM item.
fn push_words(sql: &mut Sql, words: Words<'_>) {
    match prefixed(words.q).filter(|_| words.prefix) {
        Some((rest, last)) => {
            sql.push(", (SELECT websearch_to_tsquery('english', ")
                .bind::<Text, _>(rest.to_owned())
                .push(") && to_tsquery('english', ")
                .bind::<Text, _>(format!("{last}:*"))
                .push(") AS query) words");
        }
        None => {
            sql.push(", websearch_to_tsquery('english', ")
                .bind::<Text, _>(words.q.to_owned())
                .push(") query");
        }
    }
}

/// The `near` point as `origin`, from FROM items the planner flattens: `origin` then
/// stands for the point's expression of `$1, $2` itself, which a cached generic plan can
/// still order the location index by (a function in FROM would be a join input it
/// cannot). The expression is [`POINT`]'s, of the parameters' radians.
fn push_origin(sql: &mut Sql, around: Option<Around>) {
    if let Some(around) = around {
        sql.push(
            ", (SELECT cube(cube(cube(6378168::float8 * cos(lat) * cos(lng)), \
             6378168::float8 * cos(lat) * sin(lng)), 6378168::float8 * sin(lat)) AS origin \
             FROM (SELECT radians(",
        )
        .bind::<Float8, _>(around.point.lat)
        .push(") AS lat, radians(")
        .bind::<Float8, _>(around.point.lng)
        .push(") AS lng) degrees) here");
    }
}

/// How a `near` search's radius narrows the rows before its exact distance.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Radius {
    /// The box the location index answers (`earth_box`, written out); the caller keeps
    /// the rows whose `knn` is within the radius (nearest first).
    Knn,
    /// The box, then the exact distance.
    Box,
    /// With words: a latitude band (plain column statistics and a btree), then the exact
    /// distance. PostgreSQL has no statistics for cube containment and guessed any box at
    /// 100 rows, so it read every listing in the box (8 700 at 10 km around Lisbon, 100k
    /// listings) and filtered the words; with the band it estimates the radius and reads
    /// the words' matches instead (explain: 5 046 → 1 826 buffers, 15 → 7 ms).
    Band,
}

/// Every filter but the words, as ` AND …` conditions on `s`, the radius as `radius` says.
fn push_filters(sql: &mut Sql, filters: &Filters<'_>, radius: Radius) {
    if let Some(around) = filters.around {
        let bound = chord(around.metres);
        sql.push(" AND s.location_lat IS NOT NULL");
        if radius == Radius::Band {
            // A great circle of d metres spans at least d / R radians of latitude; the
            // margin keeps rounding from cutting the band's edge.
            let degrees = (around.metres / EARTH_RADIUS_M).to_degrees() + 1e-6;
            sql.push(" AND s.location_lat BETWEEN ")
                .bind::<Float8, _>(around.point.lat - degrees)
                .push(" AND ")
                .bind::<Float8, _>(around.point.lat + degrees);
        } else {
            sql.push(" AND cube_enlarge(origin, ")
                .bind::<Float8, _>(bound)
                .push(", 3) @> ")
                .push(POINT);
        }
        if radius != Radius::Knn {
            sql.push(" AND ")
                .push(POINT)
                .push(" <-> origin <= ")
                .bind::<Float8, _>(bound);
        }
    }
    if let Some(category) = &filters.category {
        sql.push(" AND s.category = ")
            .bind::<Text, _>(category.clone());
    }
    if let Some(city) = &filters.city {
        sql.push(" AND lower(s.city) = lower(")
            .bind::<Text, _>(city.clone())
            .push(")");
    }
    if let Some(min) = filters.min_price {
        sql.push(" AND s.price_cents >= ").bind::<BigInt, _>(min);
    }
    if let Some(max) = filters.max_price {
        sql.push(" AND s.price_cents <= ").bind::<BigInt, _>(max);
    }
    if let Some(worker) = filters.worker_id {
        sql.push(" AND s.worker_id = ").bind::<Uuid, _>(worker.0);
    }
}

/// `q` as full text whose last word is also a prefix: the words before it, and the last
/// word. `None` when
/// the last word is not a plain word (a quoted phrase, an exclusion, `or`).
fn prefixed(q: &str) -> Option<(&str, &str)> {
    // Split on the last whitespace character, whatever its width in bytes (U+00A0 is two).
    let last = q.rsplit(char::is_whitespace).next().unwrap_or(q);
    let start = q.len() - last.len();
    let plain = !last.is_empty()
        && last.chars().all(char::is_alphanumeric)
        && !last.eq_ignore_ascii_case("or")
        && q.matches('"').count().is_multiple_of(2);
    plain.then(|| (q[..start].trim_end(), last))
}

/// Longest full-text query accepted, in characters.
const MAX_QUERY_CHARS: usize = 200;
/// Most words one full-text query may combine (the `or` operator not counted).
const MAX_QUERY_TERMS: usize = 12;

/// The full-text query, trimmed; `None` when blank. Bounded in length and in words:
/// the cost of ranking grows with every alternative a query ORs together (a thousand
/// words took 4.6 s), and no person types more than a few words into a search box.
fn query_text(raw: Option<&str>) -> Result<Option<&str>, FieldError> {
    let Some(q) = raw.map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    validate::storable("q", q)?;
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(FieldError::new(
            "q",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    // Counted as the parser splits: on anything that is not a letter or a digit.
    let terms = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty() && !word.eq_ignore_ascii_case("or"))
        .count();
    if terms > MAX_QUERY_TERMS {
        return Err(FieldError::new(
            "q",
            format!("must combine at most {MAX_QUERY_TERMS} words"),
        ));
    }
    Ok(Some(q))
}

/// The position of a row of [`page_sql`], where relevance is the typo fallback's
/// similarity (relevance by words is [`by_tier`]'s).
fn position(sort: SortOrder, ranked: &Ranked) -> Position {
    let row = &ranked.service;
    match sort {
        SortOrder::Newest => Position::Newest(row.id),
        SortOrder::PriceAsc => Position::PriceAsc(row.price_cents, row.id),
        SortOrder::PriceDesc => Position::PriceDesc(row.price_cents, row.id),
        SortOrder::Rating => Position::Rating(row.rating_avg.unwrap_or(UNRATED), row.id),
        SortOrder::Relevance => Position::Similar(ranked.rank, row.id),
        // Every row of a `near` search has a point, so `knn` is set.
        SortOrder::Distance => Position::Distance(ranked.knn.unwrap_or(f64::MAX), row.id),
    }
}

/// Restricts to rows after `after` in `sort` order; a cursor of another sort is a 400.
fn keyset(sql: &mut Sql, sort: SortOrder, after: Position) -> Result<(), AppError> {
    match (sort, after) {
        (SortOrder::Newest, Position::Newest(id)) => {
            sql.push(" AND s.id < ").bind::<Uuid, _>(id.0);
        }
        (SortOrder::PriceAsc, Position::PriceAsc(price, id)) => {
            sql.push(" AND (s.price_cents, s.id) > (")
                .bind::<BigInt, _>(price)
                .push(", ")
                .bind::<Uuid, _>(id.0)
                .push(")");
        }
        (SortOrder::PriceDesc, Position::PriceDesc(price, id)) => {
            sql.push(" AND (s.price_cents, s.id) < (")
                .bind::<BigInt, _>(price)
                .push(", ")
                .bind::<Uuid, _>(id.0)
                .push(")");
        }
        (SortOrder::Rating, Position::Rating(rating, id)) => {
            sql.push(" AND (COALESCE(s.rating_avg, -1), s.id) < (")
                .bind::<Float8, _>(rating)
                .push(", ")
                .bind::<Uuid, _>(id.0)
                .push(")");
        }
        (SortOrder::Distance, Position::Distance(knn, id)) => {
            sql.push(" AND (")
                .push(POINT)
                .push(" <-> origin, s.id) > (")
                .bind::<Float8, _>(knn)
                .push(", ")
                .bind::<Uuid, _>(id.0)
                .push(")");
        }
        (SortOrder::Relevance, Position::Similar(rank, id)) => {
            sql.push(" AND (word_similarity(query, s.title) < ")
                .bind::<Float4, _>(rank)
                .push(" OR (word_similarity(query, s.title) = ")
                .bind::<Float4, _>(rank)
                .push(" AND s.id < ")
                .bind::<Uuid, _>(id.0)
                .push("))");
        }
        _ => return Err(AppError::ForeignCursor),
    }
    Ok(())
}

/// A listing by id: publicly visible ones for anyone; the owner and admins see it
/// whatever its state.
pub async fn find(
    state: &AppState,
    id: ServiceId,
    caller: Option<CurrentUser>,
) -> Result<Service, AppError> {
    let caller_id = caller.map_or(uuid::Uuid::nil(), |c| c.id.0);
    let admin = caller.is_some_and(|c| c.role == UserRole::Admin);
    // One indexed statement: the hottest read runs on the shared, pipelined connections.
    let row: ServiceRow = state
        .reads
        .read(|conn| {
            let mut sql = Sql::new();
            sql.push("SELECT ")
                .push(COLUMNS)
                .push(" FROM services s WHERE s.id = ")
                .bind::<Uuid, _>(id.0)
                .push(" AND (s.listed OR s.worker_id = ")
                .bind::<Uuid, _>(caller_id)
                .push(" OR ")
                .bind::<Bool, _>(admin)
                .push(")");
            Box::pin(async move { sql.get_result(&mut { conn }).await })
        })
        .await?;
    Ok(row.into())
}

/// Whether a listing is publicly visible right now (404 when it is not).
pub async fn ensure_visible(
    conn: &mut diesel_async::AsyncPgConnection,
    id: ServiceId,
) -> Result<(), AppError> {
    let mut sql = Sql::new();
    sql.push("SELECT s.id FROM services s WHERE s.id = ")
        .bind::<Uuid, _>(id.0)
        .push(" AND s.listed");
    match sql.execute(conn).await? {
        0 => Err(AppError::NotFound),
        _ => Ok(()),
    }
}

/// A client's favorites that are still visible, most recently added first.
pub async fn favorites(
    state: &AppState,
    client: UserId,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<Service>, AppError> {
    #[derive(diesel::QueryableByName)]
    struct Favorite {
        #[diesel(embed)]
        service: ServiceRow,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        added_at: chrono::DateTime<chrono::Utc>,
    }
    let limit = pagination::limit(limit)?;
    let after: Option<(chrono::DateTime<chrono::Utc>, ServiceId)> =
        state.cursors.decode_opt(cursor)?;
    let mut sql = Sql::new();
    sql.push("SELECT ")
        .push(COLUMNS)
        .push(", f.created_at AS added_at FROM services s")
        .push(" JOIN favorites f ON f.service_id = s.id WHERE f.client_id = ")
        .bind::<Uuid, _>(client.0)
        .push(" AND s.listed");
    if let Some((at, id)) = after {
        sql.push(" AND (f.created_at, f.service_id) < (")
            .bind::<diesel::sql_types::Timestamptz, _>(at)
            .push(", ")
            .bind::<Uuid, _>(id.0)
            .push(")");
    }
    sql.push(" ORDER BY f.created_at DESC, f.service_id DESC LIMIT ")
        .bind::<BigInt, _>(limit + 1);
    let mut conn = state.conn().await?;
    let rows: Vec<Favorite> = sql.load(&mut conn).await?;
    pagination::paginate(
        &state.cursors,
        rows,
        limit,
        |f| (f.added_at, f.service.id),
        |f| Service::from(f.service),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `chord` and `great_circle_km` are earthdistance's `gc_to_sec` and `sec_to_gc`:
    /// inverse of each other over the radii search accepts, clamped outside them.
    #[test]
    fn chords_and_great_circles_convert_both_ways() {
        for km in [0.001, 1.0, 10.0, DEFAULT_RADIUS_KM, MAX_RADIUS_KM, 20_000.0] {
            let back = great_circle_km(chord(km * 1000.0));
            assert!((back - km).abs() < 1e-6, "{km} km came back as {back}");
        }
        assert!(
            chord(10_000.0) < 10_000.0,
            "a chord is shorter than its arc"
        );
        assert_eq!(chord(-1.0), 0.0);
        assert_eq!(chord(1e9), 2.0 * EARTH_RADIUS_M);
        assert_eq!(great_circle_km(-1.0), 0.0);
        assert_eq!(
            great_circle_km(1e9),
            std::f64::consts::PI * EARTH_RADIUS_M / 1000.0
        );
    }

    #[test]
    fn queries_are_bounded_in_length_and_words() {
        assert_eq!(query_text(Some("  ")), Ok(None));
        assert_eq!(query_text(Some(" garden care ")), Ok(Some("garden care")));
        let twelve = ["word"; 12].join(" or ");
        assert_eq!(query_text(Some(&twelve)), Ok(Some(twelve.as_str())));
        let thirteen = ["word"; 13].join(" ");
        assert_eq!(
            query_text(Some(&thirteen)).map_err(|e| e.field),
            Err("q".to_owned())
        );
        assert!(query_text(Some(&"x".repeat(201))).is_err());
        assert!(query_text(Some(&"é".repeat(200))).is_ok());
        assert!(query_text(Some("gar\0den")).is_err());
        let punctuated = ["w"; 13].join(",");
        assert!(
            query_text(Some(&punctuated)).is_err(),
            "commas split words too"
        );
    }

    #[test]
    fn the_last_plain_word_is_a_prefix() {
        assert_eq!(prefixed("plumb"), Some(("", "plumb")));
        assert_eq!(
            prefixed("deep  cleaning lis"),
            Some(("deep  cleaning", "lis"))
        );
        assert_eq!(prefixed("pão"), Some(("", "pão")));
        // Found by fuzzing: a multi-byte space before the last word panicked on slicing.
        assert_eq!(prefixed("deep\u{a0}clean"), Some(("deep", "clean")));
        assert_eq!(prefixed("tile\u{3000}fix"), Some(("tile", "fix")));
        for not_plain in [
            "garden -lawn",
            "\"hedge trim",
            "piano or",
            "tiles!",
            "a b\"c",
        ] {
            assert_eq!(prefixed(not_plain), None, "{not_plain}");
        }
    }
}
