//! Booking rules and transitions.
//!
//! Loading a job filters by participation, so a stranger's request is a 404 before any
//! rule is considered. A transition is decided by [`lifecycle::transition`] and applied
//! as one statement — a conditional UPDATE and its history row in one CTE — so of two
//! racing calls exactly one matches the expected status. Every booking, transition and
//! expiry records its domain event ([`crate::events`]) in the same transaction.

use chrono::Utc;
use diesel::{
    prelude::*,
    sql_types::{Nullable, Text, Uuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{
    core::validate::{all_valid, trimmed},
    core::{
        auth::CurrentUser,
        ids::{JobId, UserId},
        pagination::{self, Page},
    },
    db::{
        enums::{JobStatus, UserRole},
        schema::{job_events, jobs},
        sql::Sql,
    },
    error::{AppError, FieldError},
    events::{self, Event},
    job::{
        lifecycle::{self, Action, Party, Refusal},
        models::{EventRow, JobRow},
        schedule,
        schemas::{Job, JobEvent, NewJob},
    },
    service::search,
    state::AppState,
    worker::services::slots_of,
};

const JOB_COLUMNS: &str = "id, service_id, client_id, worker_id, status, price_cents, scheduled_at, ends_at, \
     address, notes, thread_id, expires_at, created_at, updated_at";

/// An `Idempotency-Key` header: 1 to 255 characters.
pub fn check_idempotency_key(key: Option<String>) -> Result<Option<String>, AppError> {
    match key {
        Some(k) if k.is_empty() || k.chars().count() > 255 => {
            Err(FieldError::new("Idempotency-Key", "must be 1 to 255 characters").into())
        }
        other => Ok(other),
    }
}

async fn by_key(
    conn: &mut AsyncPgConnection,
    client: UserId,
    key: &str,
) -> Result<Option<JobRow>, AppError> {
    Ok(jobs::table
        .filter(jobs::client_id.eq(client))
        .filter(jobs::idempotency_key.eq(key))
        .select(JobRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Books a visible listing. With an `Idempotency-Key` already used by this client, the
/// first job comes back instead (`false`: not created now).
pub async fn book(
    state: &AppState,
    client: UserId,
    body: NewJob,
    key: Option<String>,
) -> Result<(Job, bool), AppError> {
    let mut conn = state.conn().await?;
    let listing = search::bookable(&mut conn, body.service_id).await?;
    let key = check_idempotency_key(key)?;
    if let Some(key) = &key
        && let Some(existing) = by_key(&mut conn, client, key).await?
    {
        return Ok((existing.into(), false));
    }

    let address = trimmed("address", &body.address, 1..=500);
    let notes = trimmed("notes", body.notes.as_deref().unwrap_or_default(), 0..=2000);
    let in_future = (body.scheduled_at > Utc::now())
        .then_some(())
        .ok_or_else(|| FieldError::new("scheduled_at", "must be in the future"));
    all_valid([
        address.as_ref().err().cloned(),
        notes.as_ref().err().cloned(),
        in_future.as_ref().err().cloned(),
    ])?;
    let (address, notes) = (address?, notes?);
    let worker = UserId(listing.worker_id);
    let ends_at =
        body.scheduled_at + chrono::Duration::minutes(i64::from(listing.duration_minutes));
    let timezone: chrono_tz::Tz = listing.timezone.parse().unwrap_or(chrono_tz::UTC);
    let slots = slots_of(&mut conn, worker).await?;
    if !schedule::fits(&slots, timezone, body.scheduled_at, ends_at) {
        return Err(AppError::Unprocessable {
            code: crate::error::codes::OUTSIDE_AVAILABILITY,
            detail: "the booking does not fit inside one of the worker's availability slots",
        });
    }
    let ttl = chrono::Duration::from_std(state.settings.job_request_ttl)
        .unwrap_or(chrono::Duration::hours(48));
    let expires_at = (Utc::now() + ttl).min(body.scheduled_at);

    let inserted = conn
        .transaction::<_, AppError, _>(async |conn| {
            let job_id = JobId::new();
            let thread_id =
                crate::messaging::services::create_job_thread(conn, job_id, client, worker).await?;
            let job: JobRow = diesel::insert_into(jobs::table)
                .values((
                    jobs::id.eq(job_id),
                    jobs::service_id.eq(body.service_id),
                    jobs::client_id.eq(client),
                    jobs::worker_id.eq(worker),
                    jobs::price_cents.eq(listing.price_cents),
                    jobs::scheduled_at.eq(body.scheduled_at),
                    jobs::ends_at.eq(ends_at),
                    jobs::address.eq(&address),
                    jobs::notes.eq(&notes),
                    jobs::thread_id.eq(thread_id),
                    jobs::idempotency_key.eq(key.as_deref()),
                    jobs::expires_at.eq(expires_at),
                ))
                .returning(JobRow::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(job_events::table)
                .values((
                    job_events::job_id.eq(job_id),
                    job_events::to_status.eq(JobStatus::Requested),
                    job_events::actor_id.eq(Some(client)),
                ))
                .execute(conn)
                .await?;
            events::record(
                conn,
                &Event::JobBooked {
                    job_id,
                    client_id: client,
                    worker_id: worker,
                    scheduled_at: job.scheduled_at,
                },
            )
            .await?;
            Ok(job)
        })
        .await;
    match (inserted, &key) {
        (Ok(job), _) => Ok((job.into(), true)),
        // The same key raced in from another request: the first job wins.
        (Err(AppError::Internal(err)), Some(key)) if is_unique_violation(&err) => {
            let existing = by_key(&mut conn, client, key)
                .await?
                .ok_or(AppError::NotFound)?;
            Ok((existing.into(), false))
        }
        (Err(err), _) => Err(err),
    }
}

fn is_unique_violation(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<diesel::result::Error>(),
        Some(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}

/// A job the caller takes part in (admins see every job); anyone else gets 404.
async fn load(
    conn: &mut AsyncPgConnection,
    caller: CurrentUser,
    id: JobId,
) -> Result<JobRow, AppError> {
    let mut query = jobs::table
        .find(id)
        .select(JobRow::as_select())
        .into_boxed();
    if caller.role != UserRole::Admin {
        query = query.filter(
            jobs::client_id
                .eq(caller.id)
                .or(jobs::worker_id.eq(caller.id)),
        );
    }
    Ok(query.first(conn).await?)
}

pub async fn get(state: &AppState, caller: CurrentUser, id: JobId) -> Result<Job, AppError> {
    let mut conn = state.conn().await?;
    load(&mut conn, caller, id).await.map(Job::from)
}

fn party(job: &JobRow, caller: CurrentUser) -> Party {
    if job.client_id == caller.id {
        Party::Client
    } else if job.worker_id == caller.id {
        Party::Worker
    } else {
        Party::Admin
    }
}

/// How a transition treats a requested job's expiry deadline, judged by the
/// database's clock inside the UPDATE itself, so no race can slip past it.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    /// Participants' actions: only before the deadline.
    Before,
    /// The expiry itself: only once the deadline has passed.
    Passed,
}

impl Deadline {
    fn guard(self) -> &'static str {
        match self {
            Self::Before => " AND NOT (status = 'requested' AND expires_at <= now())",
            Self::Passed => " AND expires_at <= now()",
        }
    }
}

/// Who moves a job: a participant's action, or the deadline.
#[derive(Debug, Clone, Copy)]
enum Cause {
    Action(Action, UserId),
    Expiry,
}

/// Moves a job from `from` to `to` and logs the history row, in one statement (a
/// conditional UPDATE and its `job_events` row as one CTE), then records the domain
/// event in the same transaction. `None` when the job was no longer in `from` (a
/// concurrent call won), and then no event.
async fn apply(
    conn: &mut AsyncPgConnection,
    id: JobId,
    from: JobStatus,
    to: JobStatus,
    cause: Cause,
    reason: Option<&str>,
    deadline: Deadline,
) -> Result<Option<JobRow>, diesel::result::Error> {
    let actor = match cause {
        Cause::Action(_, actor) => Some(actor),
        Cause::Expiry => None,
    };
    conn.transaction(async |conn| {
        let mut sql = Sql::new();
        sql.push("WITH moved AS (UPDATE jobs SET status = ")
            .bind::<crate::db::schema::sql_types::JobStatus, _>(to)
            .push(", updated_at = now() WHERE id = ")
            .bind::<Uuid, _>(id.0)
            .push(" AND status = ")
            .bind::<crate::db::schema::sql_types::JobStatus, _>(from)
            .push(deadline.guard())
            .push(" RETURNING ")
            .push(JOB_COLUMNS)
            .push("), logged AS (INSERT INTO job_events (job_id, from_status, to_status, actor_id, reason) SELECT id, ")
            .bind::<crate::db::schema::sql_types::JobStatus, _>(from)
            .push(", status, ")
            .bind::<Nullable<Uuid>, _>(actor.map(|a| a.0))
            .push(", ")
            .bind::<Nullable<Text>, _>(reason.map(str::to_owned))
            .push(" FROM moved) SELECT ")
            .push(JOB_COLUMNS)
            .push(" FROM moved");
        let moved: Option<JobRow> = sql.get_result(conn).await.optional()?;
        if let Some(job) = &moved {
            let event = match cause {
                Cause::Action(action, actor) => Event::JobTransitioned {
                    job_id: job.id,
                    client_id: job.client_id,
                    worker_id: job.worker_id,
                    actor_id: actor,
                    action,
                    from,
                    to,
                },
                Cause::Expiry => expired(job.id, job.client_id, job.worker_id),
            };
            events::record(conn, &event).await?;
        }
        Ok(moved)
    })
    .await
}

fn expired(job_id: JobId, client_id: UserId, worker_id: UserId) -> Event {
    Event::JobExpired {
        job_id,
        client_id,
        worker_id,
    }
}

fn invalid(action: Action) -> AppError {
    AppError::conflict(
        crate::error::codes::JOB_INVALID_TRANSITION,
        format!(
            "a job cannot be {} from its current status",
            match action {
                Action::Accept => "accepted",
                Action::Decline => "declined",
                Action::Start => "started",
                Action::Complete => "completed",
                Action::Cancel => "cancelled",
            }
        ),
    )
}

/// Applies `action` for the caller: 404 for strangers, 403 for the wrong party, 422 for
/// a missing cancel reason, 409 for a status that does not allow it (or a lost race),
/// and 409 `worker_busy` for an accept that would overlap the worker's commitments.
pub async fn act(
    state: &AppState,
    caller: CurrentUser,
    id: JobId,
    action: Action,
    reason: impl FnOnce() -> Result<Option<String>, AppError>,
) -> Result<Job, AppError> {
    let mut conn = state.conn().await?;
    let job = load(&mut conn, caller, id).await?;
    let decided = lifecycle::transition(job.status, action, party(&job, caller));
    if decided == Err(Refusal::NotYours) {
        return Err(AppError::Forbidden(
            "this action belongs to the other party of the job",
        ));
    }
    // Parsed only now: 404 and 403 come before a malformed body's 422.
    let reason = reason()?;
    if action == Action::Cancel && reason.is_none() {
        return Err(FieldError::new("reason", "is required to cancel").into());
    }
    let Ok(to) = decided else {
        return Err(invalid(action));
    };
    let moved = apply(
        &mut conn,
        id,
        job.status,
        to,
        Cause::Action(action, caller.id),
        reason.as_deref(),
        Deadline::Before,
    )
    .await;
    match moved {
        Ok(Some(row)) => Ok(row.into()),
        Ok(None) => {
            // Lost a race, or the request is past its deadline: expire it on the spot
            // (a no-op unless it is due) and refuse either way.
            if job.status == JobStatus::Requested {
                apply(
                    &mut conn,
                    id,
                    JobStatus::Requested,
                    JobStatus::Expired,
                    Cause::Expiry,
                    None,
                    Deadline::Passed,
                )
                .await?;
            }
            Err(invalid(action))
        }
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.constraint_name() == Some("jobs_worker_busy") =>
        {
            Err(AppError::conflict(
                crate::error::codes::WORKER_BUSY,
                "the worker has another accepted job at that time",
            ))
        }
        Err(err) => Err(err.into()),
    }
}

/// The caller's jobs, newest first: a client's bookings, a worker's assignments, all for admins.
pub async fn list(
    state: &AppState,
    caller: CurrentUser,
    status: Option<JobStatus>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<Job>, AppError> {
    let limit = pagination::limit(limit)?;
    let after: Option<JobId> = state.cursors.decode_opt(cursor)?;
    let mut query = jobs::table
        .select(JobRow::as_select())
        .order(jobs::id.desc())
        .limit(limit + 1)
        .into_boxed();
    query = match caller.role {
        UserRole::Client => query.filter(jobs::client_id.eq(caller.id)),
        UserRole::Worker => query.filter(jobs::worker_id.eq(caller.id)),
        UserRole::Admin => query,
    };
    if let Some(status) = status {
        query = query.filter(jobs::status.eq(status));
    }
    if let Some(after) = after {
        query = query.filter(jobs::id.lt(after));
    }
    let mut conn = state.conn().await?;
    let rows = query.load(&mut conn).await?;
    pagination::paginate(&state.cursors, rows, limit, |r| r.id, Job::from)
}

/// A job's history, oldest first.
pub async fn events(
    state: &AppState,
    caller: CurrentUser,
    id: JobId,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<JobEvent>, AppError> {
    let limit = pagination::limit(limit)?;
    let after: Option<i64> = state.cursors.decode_opt(cursor)?;
    let mut conn = state.conn().await?;
    load(&mut conn, caller, id).await?;
    let mut query = job_events::table
        .filter(job_events::job_id.eq(id))
        .order(job_events::id.asc())
        .limit(limit + 1)
        .select(EventRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(job_events::id.gt(after));
    }
    let rows = query.load(&mut conn).await?;
    pagination::paginate(&state.cursors, rows, limit, |r| r.id, JobEvent::from)
}

/// Expires requested jobs past their deadline, in batches that skip rows another
/// instance is expiring: several sweepers never log a job twice. Returns how many.
pub async fn expire_due(state: &AppState, batch: i64) -> Result<usize, AppError> {
    let mut total = 0;
    let mut conn = state.conn().await?;
    loop {
        let mut sql = Sql::new();
        sql.push(
            "WITH due AS (SELECT id FROM jobs WHERE status = 'requested' AND expires_at <= now() \
             ORDER BY expires_at LIMIT ",
        )
        .bind::<diesel::sql_types::BigInt, _>(batch)
        .push(
            " FOR UPDATE SKIP LOCKED), moved AS (UPDATE jobs SET status = 'expired', updated_at = now() \
             FROM due WHERE jobs.id = due.id AND jobs.status = 'requested' \
             RETURNING jobs.id, jobs.client_id, jobs.worker_id), \
             logged AS (INSERT INTO job_events (job_id, from_status, to_status, actor_id) \
             SELECT id, 'requested', 'expired', NULL FROM moved) \
             SELECT id, client_id, worker_id FROM moved",
        );
        // The batch and its events commit together.
        let expired_now = conn
            .transaction::<_, AppError, _>(async |conn| {
                let moved: Vec<Expired> = sql.load(conn).await?;
                let events: Vec<Event> = moved
                    .iter()
                    .map(|m| expired(m.id, m.client_id, m.worker_id))
                    .collect();
                events::record_all(conn, &events).await?;
                Ok(moved.len())
            })
            .await?;
        total += expired_now;
        if expired_now < usize::try_from(batch).unwrap_or(usize::MAX) {
            return Ok(total);
        }
    }
}

#[derive(QueryableByName)]
struct Expired {
    #[diesel(sql_type = Uuid)]
    id: JobId,
    #[diesel(sql_type = Uuid)]
    client_id: UserId,
    #[diesel(sql_type = Uuid)]
    worker_id: UserId,
}

/// The job a review is for: visible to the caller (404), the caller's as client (403).
pub async fn for_review(
    conn: &mut AsyncPgConnection,
    caller: CurrentUser,
    id: JobId,
) -> Result<JobRow, AppError> {
    let job = load(conn, caller, id).await?;
    if job.client_id != caller.id {
        return Err(AppError::Forbidden("only the job's client reviews it"));
    }
    Ok(job)
}

/// How many jobs are in each status (statuses without jobs are absent).
pub async fn count_by_status(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<(JobStatus, i64)>, AppError> {
    Ok(jobs::table
        .group_by(jobs::status)
        .select((jobs::status, diesel::dsl::count_star()))
        .load(conn)
        .await?)
}
