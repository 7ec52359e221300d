//! Worker profile and availability rules.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{
    core::ids::UserId,
    core::patch::Patch,
    core::validate::trimmed,
    db::{
        enums::UserStatus,
        schema::{availability_slots, users, workers},
    },
    error::{AppError, FieldError},
    state::AppState,
    worker::{
        availability::{self, Slot},
        models::WorkerRow,
        schemas::{Availability, SlotBody, WorkerProfile},
    },
};

const MAX_SKILLS: usize = 30;
const MAX_BIO_CHARS: usize = 2000;

/// A worker's profile; `only_active` hides suspended workers (the public view).
pub async fn profile(
    state: &AppState,
    id: UserId,
    only_active: bool,
) -> Result<WorkerProfile, AppError> {
    let mut conn = state.conn().await?;
    load(&mut conn, id, only_active).await
}

async fn load(
    conn: &mut AsyncPgConnection,
    id: UserId,
    only_active: bool,
) -> Result<WorkerProfile, AppError> {
    let mut query = workers::table
        .inner_join(users::table)
        .filter(workers::user_id.eq(id))
        .select((WorkerRow::as_select(), users::full_name))
        .into_boxed();
    if only_active {
        query = query.filter(users::status.eq(UserStatus::Active));
    }
    let (row, name): (WorkerRow, String) = query.first(conn).await?;
    Ok(WorkerProfile::new(row, name))
}

/// The changes a worker asks of their profile; `Clear` on a required field is refused.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    pub full_name: Patch<String>,
    pub bio: Patch<String>,
    pub skills: Patch<Vec<String>>,
    pub city: Patch<String>,
    pub hourly_rate_cents: Patch<i64>,
    /// An IANA name such as `Europe/Lisbon`.
    pub timezone: Patch<String>,
}

/// Applies a PATCH: absent fields untouched, `null` clears optional ones.
pub async fn update(
    state: &AppState,
    me: UserId,
    patch: ProfileChanges,
) -> Result<WorkerProfile, AppError> {
    let mut errors = Vec::new();
    let mut check = |r: Result<(), FieldError>| {
        if let Err(e) = r {
            errors.push(e);
        }
    };
    let required = |field: &str, v: &Patch<String>| match v {
        Patch::Clear => Err(FieldError::new(field, "cannot be null")),
        _ => Ok(()),
    };
    check(required("full_name", &patch.full_name));
    check(required("timezone", &patch.timezone));
    let full_name = patch
        .full_name
        .value()
        .map(|v| trimmed("full_name", v, 1..=200))
        .transpose();
    let bio = patch
        .bio
        .value()
        .map(|v| trimmed("bio", v, 0..=MAX_BIO_CHARS))
        .transpose();
    let city = patch
        .city
        .value()
        .map(|v| trimmed("city", v, 1..=100))
        .transpose();
    let skills = patch
        .skills
        .value()
        .map(|skills| {
            if skills.len() > MAX_SKILLS {
                return Err(FieldError::new(
                    "skills",
                    format!("at most {MAX_SKILLS} skills"),
                ));
            }
            skills
                .iter()
                .map(|s| trimmed("skills", s, 1..=50).map(Some))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose();
    let timezone = patch
        .timezone
        .value()
        .map(|tz| {
            tz.parse::<chrono_tz::Tz>()
                .map(|tz| tz.name().to_owned())
                .map_err(|_| {
                    FieldError::new("timezone", "must be an IANA timezone such as Europe/Lisbon")
                })
        })
        .transpose();
    if let Patch::Set(rate) = patch.hourly_rate_cents {
        check(
            (rate >= 0)
                .then_some(())
                .ok_or_else(|| FieldError::new("hourly_rate_cents", "must be >= 0")),
        );
    }
    for result in [
        full_name.as_ref().err(),
        bio.as_ref().err(),
        city.as_ref().err(),
        skills.as_ref().err(),
        timezone.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        errors.push(result.clone());
    }
    if !errors.is_empty() {
        return Err(AppError::invalid_fields(errors));
    }
    let (full_name, bio, city, skills, timezone) = (full_name?, bio?, city?, skills?, timezone?);

    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        if let Some(name) = full_name {
            diesel::update(users::table.find(me))
                .set((
                    users::full_name.eq(name),
                    users::updated_at.eq(chrono::Utc::now()),
                ))
                .execute(conn)
                .await?;
        }
        let changes = WorkerChanges {
            bio: match (&patch.bio, bio) {
                (Patch::Clear, _) => Some(String::new()),
                (_, value) => value,
            },
            skills: match (&patch.skills, skills) {
                (Patch::Clear, _) => Some(Vec::new()),
                (_, value) => value,
            },
            city: patch_optional(&patch.city, city),
            hourly_rate_cents: patch_optional(
                &patch.hourly_rate_cents,
                patch.hourly_rate_cents.value().copied(),
            ),
            timezone,
            updated_at: chrono::Utc::now(),
        };
        diesel::update(workers::table.find(me))
            .set(&changes)
            .execute(conn)
            .await?;
        load(conn, me, false).await
    })
    .await
}

/// `Some(None)` clears, `Some(Some(v))` sets, `None` leaves alone.
fn patch_optional<T, U>(field: &Patch<T>, value: Option<U>) -> Option<Option<U>> {
    match field {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(_) => Some(value),
    }
}

#[derive(AsChangeset)]
#[diesel(table_name = workers)]
struct WorkerChanges {
    bio: Option<String>,
    skills: Option<Vec<Option<String>>>,
    city: Option<Option<String>>,
    hourly_rate_cents: Option<Option<i64>>,
    timezone: Option<String>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// Replaces the whole weekly schedule.
pub async fn replace_availability(
    state: &AppState,
    me: UserId,
    body: Availability,
) -> Result<Availability, AppError> {
    let raw: Vec<(i64, &str, &str)> = body
        .slots
        .iter()
        .map(|s| (s.weekday, s.start.as_str(), s.end.as_str()))
        .collect();
    let slots = availability::validate(&raw).map_err(AppError::invalid_fields)?;
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        // Two saves racing would otherwise each delete, then both insert.
        workers::table
            .find(me)
            .select(workers::user_id)
            .for_no_key_update()
            .first::<UserId>(conn)
            .await?;
        diesel::delete(availability_slots::table.filter(availability_slots::worker_id.eq(me)))
            .execute(conn)
            .await?;
        let rows: Vec<_> = slots
            .iter()
            .map(|s| {
                (
                    availability_slots::worker_id.eq(me),
                    availability_slots::weekday.eq(i16::from(s.weekday)),
                    availability_slots::start_minute.eq(s.start as i16),
                    availability_slots::end_minute.eq(s.end as i16),
                )
            })
            .collect();
        diesel::insert_into(availability_slots::table)
            .values(rows)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await?;
    Ok(to_body(&slots))
}

/// A worker's schedule; 404 for unknown or suspended workers.
pub async fn availability(state: &AppState, id: UserId) -> Result<Availability, AppError> {
    let mut conn = state.conn().await?;
    users::table
        .filter(users::id.eq(id))
        .filter(users::status.eq(UserStatus::Active))
        .inner_join(workers::table)
        .select(users::id)
        .first::<UserId>(&mut conn)
        .await?;
    Ok(to_body(&slots_of(&mut conn, id).await?))
}

/// The stored slots of a worker, ordered by day and start.
pub async fn slots_of(conn: &mut AsyncPgConnection, id: UserId) -> Result<Vec<Slot>, AppError> {
    let rows: Vec<(i16, i16, i16)> = availability_slots::table
        .filter(availability_slots::worker_id.eq(id))
        .order((
            availability_slots::weekday,
            availability_slots::start_minute,
        ))
        .select((
            availability_slots::weekday,
            availability_slots::start_minute,
            availability_slots::end_minute,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(weekday, start, end)| Slot {
            weekday: weekday as u8,
            start: start as u16,
            end: end as u16,
        })
        .collect())
}

fn to_body(slots: &[Slot]) -> Availability {
    Availability {
        slots: slots
            .iter()
            .map(|s| SlotBody {
                weekday: i64::from(s.weekday),
                start: availability::format_time(s.start),
                end: availability::format_time(s.end),
            })
            .collect(),
    }
}
