//! Review rules and the ratings they keep exact.

use diesel::{
    dsl::{count_star, sum},
    prelude::*,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{
    core::{
        auth::CurrentUser,
        ids::{JobId, ReviewId, ServiceId, UserId},
        json::DeferredJson,
        pagination::{self, Page},
    },
    db::{
        enums::{JobStatus, UserStatus},
        schema::{reviews, services, users, workers},
    },
    error::{AppError, FieldError},
    events::{self, Event},
    job::services::for_review,
    review::schemas::{NewReview, Review},
    state::AppState,
};

/// Records the review and recomputes the worker's and the listing's averages from the
/// visible reviews, in one transaction. Both rows are locked first, so concurrent
/// reviews of one worker recompute one after the other and the result is exact.
pub async fn create(
    state: &AppState,
    caller: CurrentUser,
    job_id: JobId,
    body: &DeferredJson<NewReview>,
) -> Result<Review, AppError> {
    let mut conn = state.conn().await?;
    let job = for_review(&mut conn, caller, job_id).await?;
    // Parsed only now: 404 and 403 come before a malformed body's 422.
    let body = body.parse()?;
    let rating = i16::try_from(body.rating)
        .ok()
        .filter(|r| (1..=5).contains(r))
        .ok_or_else(|| FieldError::new("rating", "must be between 1 and 5"))?;
    let comment = body.comment.unwrap_or_default().trim().to_owned();
    if comment.chars().count() > 2000 {
        return Err(FieldError::new("comment", "must be at most 2000 characters").into());
    }
    if job.status != JobStatus::Completed {
        return Err(AppError::conflict(
            "job_invalid_transition",
            "only a completed job can be reviewed",
        ));
    }
    conn.transaction::<_, AppError, _>(async |conn| {
        workers::table
            .find(job.worker_id)
            .select(workers::user_id)
            .for_update()
            .first::<UserId>(conn)
            .await?;
        services::table
            .find(job.service_id)
            .select(services::id)
            .for_update()
            .execute(conn)
            .await?;
        let review: Review = diesel::insert_into(reviews::table)
            .values((
                reviews::id.eq(ReviewId::new()),
                reviews::job_id.eq(job.id),
                reviews::service_id.eq(job.service_id),
                reviews::worker_id.eq(job.worker_id),
                reviews::client_id.eq(job.client_id),
                reviews::rating.eq(rating),
                reviews::comment.eq(&comment),
            ))
            .returning(Review::as_returning())
            .get_result(conn)
            .await
            .map_err(|err| match err {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => AppError::conflict("review_exists", "this job has already been reviewed"),
                other => other.into(),
            })?;
        let (avg, count) = summary(conn, Scope::Worker(job.worker_id)).await?;
        diesel::update(workers::table.find(job.worker_id))
            .set((workers::rating_avg.eq(avg), workers::rating_count.eq(count)))
            .execute(conn)
            .await?;
        let (avg, count) = summary(conn, Scope::Service(job.service_id)).await?;
        diesel::update(services::table.find(job.service_id))
            .set((
                services::rating_avg.eq(avg),
                services::rating_count.eq(count),
            ))
            .execute(conn)
            .await?;
        let event = Event::ReviewPosted {
            review_id: review.id,
            job_id: job.id,
            worker_id: job.worker_id,
            client_id: job.client_id,
            rating,
        };
        events::record(conn, &event).await?;
        Ok(review)
    })
    .await
}

/// Whose rating a summary is.
enum Scope {
    Worker(UserId),
    Service(ServiceId),
}

/// The mean and number of the visible reviews matching `scope`, recomputed from the rows
/// (not incremented), so hiding or concurrent reviews can never make them drift.
async fn summary(
    conn: &mut AsyncPgConnection,
    scope: Scope,
) -> Result<(Option<f64>, i32), AppError> {
    let query = reviews::table
        .filter(reviews::hidden.eq(false))
        .into_boxed();
    let query = match scope {
        Scope::Worker(id) => query.filter(reviews::worker_id.eq(id)),
        Scope::Service(id) => query.filter(reviews::service_id.eq(id)),
    };
    let (total, count): (Option<i64>, i64) = query
        .select((sum(reviews::rating), count_star()))
        .first(conn)
        .await?;
    let average = total.filter(|_| count > 0).map(|t| t as f64 / count as f64);
    Ok((average, i32::try_from(count).unwrap_or(i32::MAX)))
}

/// A worker's visible reviews, newest first (404 for unknown or suspended workers).
pub async fn for_worker(
    state: &AppState,
    worker: UserId,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<Review>, AppError> {
    let limit = pagination::limit(limit)?;
    let after: Option<ReviewId> = state.cursors.decode_opt(cursor)?;
    let mut conn = state.conn().await?;
    users::table
        .inner_join(workers::table)
        .filter(users::id.eq(worker))
        .filter(users::status.eq(UserStatus::Active))
        .select(users::id)
        .first::<UserId>(&mut conn)
        .await?;
    let mut query = reviews::table
        .filter(reviews::worker_id.eq(worker))
        .filter(reviews::hidden.eq(false))
        .order(reviews::id.desc())
        .limit(limit + 1)
        .select(Review::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(reviews::id.lt(after));
    }
    let rows = query.load(&mut conn).await?;
    pagination::paginate(&state.cursors, rows, limit, |r| r.id, |r| r)
}
