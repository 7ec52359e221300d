//! Review rules and the ratings they keep exact.

use diesel::{
    dsl::{count_star, sum},
    prelude::*,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{
    audit::{self, Target},
    core::{
        auth::CurrentUser,
        ids::{JobId, ReviewId, ServiceId, UserId},
        pagination::{self, Page},
    },
    db::{
        enums::{AuditAction, JobStatus, UserStatus},
        schema::{reviews, services, users, workers},
    },
    error::{AppError, FieldError, codes},
    events::{self, Event},
    job::services::for_review,
    review::schemas::{NewReview, Review},
    state::AppState,
};

/// A review as the rules accept it: a rating of 1 to 5 and a trimmed comment of at most
/// 2000 characters (empty when none was given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewInput {
    pub rating: i16,
    pub comment: String,
}

impl TryFrom<NewReview> for ReviewInput {
    type Error = AppError;

    fn try_from(body: NewReview) -> Result<Self, AppError> {
        let rating = i16::try_from(body.rating)
            .ok()
            .filter(|r| (1..=5).contains(r))
            .ok_or_else(|| FieldError::new("rating", "must be between 1 and 5"))?;
        let comment = body.comment.unwrap_or_default().trim().to_owned();
        if comment.chars().count() > 2000 {
            return Err(FieldError::new("comment", "must be at most 2000 characters").into());
        }
        Ok(Self { rating, comment })
    }
}

/// Records the review and recomputes the worker's and the listing's averages from the
/// visible reviews, in one transaction (see `lock_ratings`).
pub async fn create(
    state: &AppState,
    caller: CurrentUser,
    job_id: JobId,
    body: impl FnOnce() -> Result<ReviewInput, AppError>,
) -> Result<Review, AppError> {
    let mut conn = state.conn().await?;
    let job = for_review(&mut conn, caller, job_id).await?;
    // Parsed only now: 404 and 403 come before a malformed body's 422.
    let ReviewInput { rating, comment } = body()?;
    if job.status != JobStatus::Completed {
        return Err(AppError::conflict(
            codes::JOB_INVALID_TRANSITION,
            "only a completed job can be reviewed",
        ));
    }
    conn.transaction::<_, AppError, _>(async |conn| {
        lock_ratings(conn, job.worker_id, job.service_id).await?;
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
                ) => AppError::conflict(codes::REVIEW_EXISTS, "this job has already been reviewed"),
                other => other.into(),
            })?;
        recompute_ratings(conn, job.worker_id, job.service_id).await?;
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

/// Admin moderation: hides a review from public lists and recomputes the worker's and
/// the listing's ratings without it, with an audit row, in one transaction.
///
/// Checks run in the contract's order: unknown review (404), reason (422), already
/// hidden (409 `review_already_hidden`).
pub async fn hide(
    state: &AppState,
    admin: CurrentUser,
    id: ReviewId,
    reason: Option<&str>,
) -> Result<Review, AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        // Who is rated never changes, so it can be read before the locks are taken in
        // the same order as `create` takes them (worker, listing, review).
        let (worker, service): (UserId, ServiceId) = reviews::table
            .find(id)
            .select((reviews::worker_id, reviews::service_id))
            .first(conn)
            .await?;
        lock_ratings(conn, worker, service).await?;
        let hidden: bool = reviews::table
            .find(id)
            .select(reviews::hidden)
            .for_update()
            .first(conn)
            .await?;
        let reason = crate::core::validate::moderation_reason(reason.unwrap_or_default())?;
        if hidden {
            return Err(AppError::conflict(
                codes::REVIEW_ALREADY_HIDDEN,
                "the review is already hidden",
            ));
        }
        let review: Review = diesel::update(reviews::table.find(id))
            .set(reviews::hidden.eq(true))
            .returning(Review::as_returning())
            .get_result(conn)
            .await?;
        recompute_ratings(conn, worker, service).await?;
        audit::record(
            conn,
            admin.id,
            AuditAction::ReviewHidden,
            Target::Review(id),
            Some(reason),
        )
        .await?;
        let event = Event::ReviewHidden {
            review_id: id,
            admin_id: admin.id,
        };
        events::record(conn, &event).await?;
        Ok(review)
    })
    .await
}

/// Locks the worker's and the listing's rows, in that order, so that writers of one
/// worker's reviews recompute the ratings one after the other and the result is exact.
async fn lock_ratings(
    conn: &mut AsyncPgConnection,
    worker: UserId,
    service: ServiceId,
) -> Result<(), AppError> {
    workers::table
        .find(worker)
        .select(workers::user_id)
        .for_update()
        .execute(conn)
        .await?;
    services::table
        .find(service)
        .select(services::id)
        .for_update()
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores the worker's and the listing's averages, recomputed from their visible
/// reviews. Call it under [`lock_ratings`].
async fn recompute_ratings(
    conn: &mut AsyncPgConnection,
    worker: UserId,
    service: ServiceId,
) -> Result<(), AppError> {
    let (avg, count) = summary(conn, Scope::Worker(worker)).await?;
    diesel::update(workers::table.find(worker))
        .set((workers::rating_avg.eq(avg), workers::rating_count.eq(count)))
        .execute(conn)
        .await?;
    let (avg, count) = summary(conn, Scope::Service(service)).await?;
    diesel::update(services::table.find(service))
        .set((
            services::rating_avg.eq(avg),
            services::rating_count.eq(count),
        ))
        .execute(conn)
        .await?;
    Ok(())
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

/// A review with its moderation state, as admins see it.
#[derive(Debug, poem_openapi::Object)]
pub struct Moderated {
    pub review: Review,
    /// Hidden by an admin: out of public lists and ratings.
    pub hidden: bool,
}

/// Every review, hidden ones included, newest first: what admins moderate.
pub async fn for_moderation(
    state: &AppState,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<Moderated>, AppError> {
    let limit = pagination::limit(limit)?;
    let after: Option<ReviewId> = state.cursors.decode_opt(cursor)?;
    let mut query = reviews::table
        .order(reviews::id.desc())
        .limit(limit + 1)
        .select((Review::as_select(), reviews::hidden))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(reviews::id.lt(after));
    }
    let rows: Vec<(Review, bool)> = query.load(&mut state.conn().await?).await?;
    pagination::paginate(
        &state.cursors,
        rows,
        limit,
        |(review, _)| review.id,
        |(review, hidden)| Moderated { review, hidden },
    )
}
