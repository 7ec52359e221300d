//! The public catalog queries: hand-written SQL sharing one visibility predicate.
//!
//! Every public read path (search, a listing by id, a client's favorites) uses
//! [`VISIBLE`] over [`FROM_CATALOG`], so "publicly visible" has exactly one definition.
//! Sorting is keyset-based on `(sort key, id)`; each sort matches an index of the
//! catalog migration so a page reads a bounded number of rows.

use diesel::{
    QueryableByName,
    sql_types::{BigInt, Bool, Float4, Float8, Text, Uuid},
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
    db::enums::UserRole,
    db::sql::Sql,
    error::{AppError, FieldError},
    service::{
        models::ServiceRow,
        schemas::{Service, SortOrder},
    },
    state::AppState,
};

/// A listing is public when it is active, its worker is not suspended and the
/// worker's KYC is approved.
const VISIBLE: &str = "s.status = 'active' AND u.status = 'active' AND w.kyc_status = 'approved'";

/// Listings with their worker and user rows, as `VISIBLE` expects them.
const FROM_CATALOG: &str =
    "services s JOIN workers w ON w.user_id = s.worker_id JOIN users u ON u.id = s.worker_id";

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
    sql.push("SELECT s.worker_id, s.price_cents, s.duration_minutes, w.timezone FROM ")
        .push(FROM_CATALOG)
        .push(" WHERE s.id = ")
        .bind::<diesel::sql_types::Uuid, _>(id.0)
        .push(" AND ")
        .push(VISIBLE);
    Ok(sql.get_result(conn).await?)
}

const COLUMNS: &str = "s.id, s.worker_id, s.title, s.description, s.category, s.price_cents, s.pricing_unit, \
     s.city, s.duration_minutes, s.status, s.rating_avg, s.rating_count, s.created_at, s.updated_at";

/// How an unrated listing sorts by rating: below every real rating (1 to 5).
const UNRATED: f64 = -1.0;

/// Filters and order of a search.
#[derive(Debug, Default)]
pub struct Search {
    pub q: Option<String>,
    pub category: Option<String>,
    pub city: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub worker_id: Option<UserId>,
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
    Relevance(f32, ServiceId),
}

#[derive(diesel::QueryableByName)]
struct Ranked {
    #[diesel(embed)]
    service: ServiceRow,
    #[diesel(sql_type = Float4)]
    rank: f32,
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
        (Some(sort), _) => sort,
        (None, Some(_)) => SortOrder::Relevance,
        (None, None) => SortOrder::Newest,
    };
    let after: Option<Position> = state.cursors.decode_opt(cursor)?;

    // Full-text selectivity varies with every query string: a plan made for the value
    // at hand beats the cached generic one (measured for q=plumbing over 100k
    // listings: 122 req/s planned per request, 87 req/s with the generic plan).
    let mut sql = if q.is_some() {
        Sql::planned_per_execution()
    } else {
        Sql::new()
    };
    sql.push("SELECT ").push(COLUMNS);
    match q {
        Some(q) => {
            sql.push(", ts_rank(s.search, query) AS rank FROM ")
                .push(FROM_CATALOG)
                .push(", websearch_to_tsquery('english', ")
                .bind::<Text, _>(q.to_owned())
                .push(") query WHERE s.search @@ query AND ");
        }
        None => {
            sql.push(", 0::real AS rank FROM ")
                .push(FROM_CATALOG)
                .push(" WHERE ");
        }
    }
    sql.push(VISIBLE);
    if let Some(category) = search.category {
        sql.push(" AND s.category = ")
            .bind::<Text, _>(category.trim().to_lowercase());
    }
    if let Some(city) = search.city {
        sql.push(" AND lower(s.city) = lower(")
            .bind::<Text, _>(city.trim().to_owned())
            .push(")");
    }
    if let Some(min) = search.min_price {
        sql.push(" AND s.price_cents >= ").bind::<BigInt, _>(min);
    }
    if let Some(max) = search.max_price {
        sql.push(" AND s.price_cents <= ").bind::<BigInt, _>(max);
    }
    if let Some(worker) = search.worker_id {
        sql.push(" AND s.worker_id = ").bind::<Uuid, _>(worker.0);
    }
    if let Some(after) = after {
        keyset(&mut sql, sort, after)?;
    }
    sql.push(match sort {
        SortOrder::Newest => " ORDER BY s.id DESC",
        SortOrder::PriceAsc => " ORDER BY s.price_cents ASC, s.id ASC",
        SortOrder::PriceDesc => " ORDER BY s.price_cents DESC, s.id DESC",
        SortOrder::Rating => " ORDER BY COALESCE(s.rating_avg, -1) DESC, s.id DESC",
        SortOrder::Relevance => " ORDER BY rank DESC, s.id DESC",
    });
    sql.push(" LIMIT ").bind::<BigInt, _>(limit + 1);

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
    let rows: Vec<Ranked> = sql.load(&mut conn).await?;
    pagination::paginate(
        &state.cursors,
        rows,
        limit,
        |r| position(sort, r),
        |r| Service::from(r.service),
    )
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

fn position(sort: SortOrder, ranked: &Ranked) -> Position {
    let row = &ranked.service;
    match sort {
        SortOrder::Newest => Position::Newest(row.id),
        SortOrder::PriceAsc => Position::PriceAsc(row.price_cents, row.id),
        SortOrder::PriceDesc => Position::PriceDesc(row.price_cents, row.id),
        SortOrder::Rating => Position::Rating(row.rating_avg.unwrap_or(UNRATED), row.id),
        SortOrder::Relevance => Position::Relevance(ranked.rank, row.id),
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
        (SortOrder::Relevance, Position::Relevance(rank, id)) => {
            sql.push(" AND (ts_rank(s.search, query) < ")
                .bind::<Float4, _>(rank)
                .push(" OR (ts_rank(s.search, query) = ")
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
    let mut sql = Sql::new();
    sql.push("SELECT ")
        .push(COLUMNS)
        .push(" FROM ")
        .push(FROM_CATALOG)
        .push(" WHERE s.id = ")
        .bind::<Uuid, _>(id.0)
        .push(" AND (")
        .push(VISIBLE)
        .push(" OR s.worker_id = ")
        .bind::<Uuid, _>(caller.map_or(uuid::Uuid::nil(), |c| c.id.0))
        .push(" OR ")
        .bind::<Bool, _>(caller.is_some_and(|c| c.role == UserRole::Admin))
        .push(")");
    let mut conn = state.conn().await?;
    let row: ServiceRow = sql.get_result(&mut conn).await?;
    Ok(row.into())
}

/// Whether a listing is publicly visible right now (404 when it is not).
pub async fn ensure_visible(
    conn: &mut diesel_async::AsyncPgConnection,
    id: ServiceId,
) -> Result<(), AppError> {
    let mut sql = Sql::new();
    sql.push("SELECT s.id FROM ")
        .push(FROM_CATALOG)
        .push(" WHERE s.id = ")
        .bind::<Uuid, _>(id.0)
        .push(" AND ")
        .push(VISIBLE);
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
        .push(", f.created_at AS added_at FROM ")
        .push(FROM_CATALOG)
        .push(" JOIN favorites f ON f.service_id = s.id WHERE f.client_id = ")
        .bind::<Uuid, _>(client.0)
        .push(" AND ")
        .push(VISIBLE);
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
}
