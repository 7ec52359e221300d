//! Listing rules: who may create, change, delete, hide and unhide.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{
    audit::{self, Target},
    core::patch::Patch,
    core::validate::trimmed,
    core::{
        auth::CurrentUser,
        ids::{ServiceId, UserId},
        pagination::{self, Page},
    },
    db::{
        enums::{AuditAction, ServiceStatus},
        schema::services,
    },
    error::{AppError, FieldError},
    events::{self, Event},
    service::{
        listed::{self, Scope},
        models::{GeoPoint, ServiceRow},
        schemas::{Location, NewService, Service},
        search,
    },
    state::AppState,
};

const DEFAULT_DURATION: i32 = 60;

fn price(value: i64) -> Result<i64, FieldError> {
    (0..=10_000_000_000)
        .contains(&value)
        .then_some(value)
        .ok_or_else(|| FieldError::new("price_cents", "must be 0 to 10000000000"))
}

fn duration(value: i32) -> Result<i32, FieldError> {
    (15..=1440)
        .contains(&value)
        .then_some(value)
        .ok_or_else(|| FieldError::new("duration_minutes", "must be 15 to 1440"))
}

fn category(value: &str) -> Result<String, FieldError> {
    trimmed("category", value, 1..=50).map(|c| c.to_lowercase())
}

fn location(value: Location) -> Result<GeoPoint, FieldError> {
    GeoPoint::new(value.lat, value.lng, "location", true)
}

/// Collects the errors of several field checks, or their values.
macro_rules! fields {
    ($($name:ident = $check:expr),+ $(,)?) => {
        let mut errors = Vec::new();
        $(let $name = $check.map_err(|e| errors.push(e)).ok();)+
        if !errors.is_empty() {
            return Err(AppError::invalid_fields(errors));
        }
        $(let Some($name) = $name else { unreachable!("errors were returned above") };)+
    };
}

pub async fn create(
    state: &AppState,
    worker: UserId,
    body: NewService,
) -> Result<Service, AppError> {
    fields! {
        title = trimmed("title", &body.title, 1..=200),
        description = trimmed("description", &body.description, 1..=5000),
        category = category(&body.category),
        city = trimmed("city", &body.city, 1..=100),
        price_cents = price(body.price_cents),
        duration_minutes = duration(body.duration_minutes.unwrap_or(DEFAULT_DURATION)),
        place = body.location.map(location).transpose(),
    }
    let id = ServiceId::new();
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        listed::lock_worker(conn, worker, false).await?;
        diesel::insert_into(services::table)
            .values((
                services::id.eq(id),
                services::worker_id.eq(worker),
                services::title.eq(title),
                services::description.eq(description),
                services::category.eq(category),
                services::price_cents.eq(price_cents),
                services::pricing_unit.eq(body.pricing_unit),
                services::city.eq(city),
                services::duration_minutes.eq(duration_minutes),
                services::location_lat.eq(place.map(|p| p.lat)),
                services::location_lng.eq(place.map(|p| p.lng)),
            ))
            .execute(conn)
            .await?;
        listed::relist(conn, Scope::Listing(id)).await?;
        Ok(services::table
            .find(id)
            .select(ServiceRow::as_select())
            .first::<ServiceRow>(conn)
            .await?
            .into())
    })
    .await
}

/// The listing a worker may change: theirs and not deleted. Another worker's listing is
/// 403 when it is publicly visible (its existence is no secret) and 404 otherwise.
async fn owned(
    conn: &mut diesel_async::AsyncPgConnection,
    worker: UserId,
    id: ServiceId,
) -> Result<(), AppError> {
    let (owner, status): (UserId, ServiceStatus) = services::table
        .find(id)
        .select((services::worker_id, services::status))
        .for_update()
        .first(conn)
        .await?;
    if owner == worker {
        return if status == ServiceStatus::Deleted {
            Err(AppError::NotFound)
        } else {
            Ok(())
        };
    }
    search::ensure_visible(conn, id).await?;
    Err(AppError::Forbidden(
        "this listing belongs to another worker",
    ))
}

#[derive(AsChangeset)]
#[diesel(table_name = services)]
struct Changes {
    title: Option<String>,
    description: Option<String>,
    category: Option<String>,
    price_cents: Option<i64>,
    pricing_unit: Option<crate::db::enums::PricingUnit>,
    city: Option<String>,
    duration_minutes: Option<i32>,
    /// `Some(None)` clears (both columns together).
    location_lat: Option<Option<f64>>,
    location_lng: Option<Option<f64>>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// The changes a worker asks of their listing; every field but `location` is required, so
/// `Clear` is a 422 there.
#[derive(Debug, Clone, Default)]
pub struct ListingChanges {
    pub title: Patch<String>,
    pub description: Patch<String>,
    pub category: Patch<String>,
    pub price_cents: Patch<i64>,
    pub pricing_unit: Patch<crate::db::enums::PricingUnit>,
    pub city: Patch<String>,
    pub duration_minutes: Patch<i32>,
    pub location: Patch<Location>,
}

/// `null` on a required field is a 422; absent is "keep".
fn required<T>(field: &str, value: Patch<T>) -> Result<Option<T>, FieldError> {
    match value {
        Patch::Clear => Err(FieldError::new(field, "cannot be null")),
        Patch::Keep => Ok(None),
        Patch::Set(v) => Ok(Some(v)),
    }
}

pub async fn update(
    state: &AppState,
    worker: UserId,
    id: ServiceId,
    patch: ListingChanges,
) -> Result<Service, AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        owned(conn, worker, id).await?;
        fields! {
            title = required("title", patch.title).and_then(|v| v.map(|v| trimmed("title", &v, 1..=200)).transpose()),
            description = required("description", patch.description).and_then(|v| v.map(|v| trimmed("description", &v, 1..=5000)).transpose()),
            category = required("category", patch.category).and_then(|v| v.map(|v| category(&v)).transpose()),
            city = required("city", patch.city).and_then(|v| v.map(|v| trimmed("city", &v, 1..=100)).transpose()),
            price_cents = required("price_cents", patch.price_cents).and_then(|v| v.map(price).transpose()),
            duration_minutes = required("duration_minutes", patch.duration_minutes).and_then(|v| v.map(duration).transpose()),
            pricing_unit = required("pricing_unit", patch.pricing_unit),
            place = match patch.location {
                Patch::Keep => Ok(None),
                Patch::Clear => Ok(Some(None)),
                Patch::Set(value) => location(value).map(|p| Some(Some(p))),
            },
        }
        let changes = Changes {
            title,
            description,
            category,
            price_cents,
            pricing_unit,
            city,
            duration_minutes,
            location_lat: place.map(|p| p.map(|p| p.lat)),
            location_lng: place.map(|p| p.map(|p| p.lng)),
            updated_at: chrono::Utc::now(),
        };
        let row: ServiceRow = diesel::update(services::table.find(id))
            .set(&changes)
            .returning(ServiceRow::as_returning())
            .get_result(conn)
            .await?;
        Ok(row.into())
    })
    .await
}

/// Soft delete: jobs that reference the listing keep working.
pub async fn delete(state: &AppState, worker: UserId, id: ServiceId) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        owned(conn, worker, id).await?;
        diesel::update(services::table.find(id))
            .set((
                services::status.eq(ServiceStatus::Deleted),
                services::updated_at.eq(chrono::Utc::now()),
            ))
            .execute(conn)
            .await?;
        listed::relist(conn, Scope::Listing(id)).await?;
        Ok(())
    })
    .await
}

/// A worker's own listings, any status, newest first.
pub async fn list_own(
    state: &AppState,
    worker: UserId,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<Service>, AppError> {
    let limit = pagination::limit(limit)?;
    let after: Option<ServiceId> = state.cursors.decode_opt(cursor)?;
    let mut query = services::table
        .filter(services::worker_id.eq(worker))
        .order(services::id.desc())
        .limit(limit + 1)
        .select(ServiceRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(services::id.lt(after));
    }
    let mut conn = state.conn().await?;
    let rows = query.load(&mut conn).await?;
    pagination::paginate(&state.cursors, rows, limit, |r| r.id, Service::from)
}

/// What an admin looks for among listings; every field is optional.
#[derive(Debug, Default)]
pub struct ListingFilter<'a> {
    /// A case-insensitive substring of the title, or a listing's or worker's exact id.
    pub q: Option<&'a str>,
    /// `active` or `hidden`; deleted listings are gone and never listed.
    pub status: Option<ServiceStatus>,
}

/// Listings for moderation, newest first, whatever their public visibility (an admin
/// must find hidden ones to unhide them). A title substring cannot use an index: this
/// reads the table, which suits an admin's occasional search, not a public one.
pub async fn moderation_list(
    state: &AppState,
    filter: ListingFilter<'_>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<Service>, AppError> {
    let limit = pagination::limit(limit)?;
    let q = filter.q.unwrap_or_default();
    let exact_id = uuid::Uuid::parse_str(q.trim()).ok();
    let pattern = crate::core::validate::substring_pattern("q", q)?;
    let after: Option<ServiceId> = state.cursors.decode_opt(cursor)?;
    let mut query = services::table
        .filter(services::status.ne(ServiceStatus::Deleted))
        .order(services::id.desc())
        .limit(limit + 1)
        .select(ServiceRow::as_select())
        .into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(services::status.eq(status));
    }
    query = match (exact_id, pattern) {
        (Some(id), _) => query.filter(
            services::id
                .eq(ServiceId(id))
                .or(services::worker_id.eq(UserId(id))),
        ),
        (None, Some(pattern)) => query.filter(services::title.ilike(pattern)),
        (None, None) => query,
    };
    if let Some(after) = after {
        query = query.filter(services::id.lt(after));
    }
    let mut conn = state.conn().await?;
    let rows = query.load(&mut conn).await?;
    pagination::paginate(&state.cursors, rows, limit, |r| r.id, Service::from)
}

/// Admin moderation: hide an active listing or unhide a hidden one (idempotent),
/// with an audit row. Deleted listings are gone (404).
pub async fn set_hidden(
    state: &AppState,
    admin: CurrentUser,
    id: ServiceId,
    hidden: bool,
    reason: Option<&str>,
) -> Result<Service, AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let status: ServiceStatus = services::table
            .find(id)
            .select(services::status)
            .for_update()
            .first(conn)
            .await?;
        if status == ServiceStatus::Deleted {
            return Err(AppError::NotFound);
        }
        let target = if hidden {
            ServiceStatus::Hidden
        } else {
            ServiceStatus::Active
        };
        if status == target {
            // Already in the requested state: nothing changes, nothing to audit.
            return Ok(services::table
                .find(id)
                .select(ServiceRow::as_select())
                .first(conn)
                .await?
                .into());
        }
        let reason = if hidden {
            Some(crate::core::validate::moderation_reason(
                reason.unwrap_or_default(),
            )?)
        } else {
            None
        };
        let row: ServiceRow = diesel::update(services::table.find(id))
            .set((
                services::status.eq(target),
                services::updated_at.eq(chrono::Utc::now()),
            ))
            .returning(ServiceRow::as_returning())
            .get_result(conn)
            .await?;
        listed::relist(conn, Scope::Listing(id)).await?;
        let action = if hidden {
            AuditAction::ServiceHidden
        } else {
            AuditAction::ServiceUnhidden
        };
        audit::record(conn, admin.id, action, Target::Service(id), reason).await?;
        if hidden {
            let event = Event::ServiceHidden {
                service_id: id,
                admin_id: admin.id,
            };
            events::record(conn, &event).await?;
        }
        Ok(row.into())
    })
    .await
}

/// How many listings are in their own `active` state (not hidden or deleted), whether
/// or not their worker is currently visible.
pub async fn count_active(conn: &mut AsyncPgConnection) -> Result<i64, AppError> {
    Ok(services::table
        .filter(services::status.eq(ServiceStatus::Active))
        .count()
        .get_result(conn)
        .await?)
}
