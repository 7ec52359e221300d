//! `/api/v1/jobs`: thin handlers over the job services.

use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};

use crate::{
    core::{
        auth::{AnyUser, ClientUser},
        ids::JobId,
        json::{DeferredJson, JsonBody},
        pagination::Page,
    },
    db::enums::JobStatus,
    error::{Fails, fails::*},
    job::{
        lifecycle::Action,
        schemas::{CancelBody, Job, JobEvent, NewJob, ReasonBody},
        services,
    },
    review::{
        schemas::{NewReview, Review},
        services as reviews,
    },
    routes::ApiTags,
    state::AppState,
};

pub struct JobsApi;

#[derive(ApiResponse)]
pub enum Booked {
    /// The job was booked.
    #[oai(status = 201)]
    Created(Json<Job>),
    /// A retry with an `Idempotency-Key` already used: the first job.
    #[oai(status = 200)]
    Existing(Json<Job>),
}

#[derive(ApiResponse)]
pub enum ReviewCreated {
    #[oai(status = 201)]
    Created(Json<Review>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Jobs")]
impl JobsApi {
    /// Book a public listing at `scheduled_at` (it must fit the worker's availability).
    #[oai(path = "/jobs", method = "post")]
    async fn book(
        &self,
        user: ClientUser,
        state: Data<&AppState>,
        /// Makes retries safe: the same key from the same client returns the first job.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<NewJob>,
    ) -> Result<Booked, Fails<{ ROLE | BODY | NOT_FOUND }>> {
        let (job, created) = services::book(&state, user.0.id, body.0, idempotency_key.0).await?;
        Ok(if created {
            Booked::Created(Json(job))
        } else {
            Booked::Existing(Json(job))
        })
    }

    /// The caller's jobs, newest first (a client's bookings, a worker's assignments, all for admins).
    #[oai(path = "/jobs", method = "get")]
    async fn list(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        status: Query<Option<JobStatus>>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Job>>, Fails<{ AUTH | LIST }>> {
        services::list(&state, user.0, status.0, limit.0, cursor.0.as_deref())
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// A job of the caller's (admins: any job).
    #[oai(path = "/jobs/:id", method = "get")]
    async fn get(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<JobId>,
    ) -> Result<Json<Job>, Fails<{ AUTH | NOT_FOUND }>> {
        services::get(&state, user.0, id.0)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// The worker accepts a requested job (409 `worker_busy` if it overlaps another).
    #[oai(path = "/jobs/:id/accept", method = "post")]
    async fn accept(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<JobId>,
    ) -> Result<Json<Job>, Fails<{ AUTH | FORBIDDEN | NOT_FOUND | CONFLICT }>> {
        services::act(&state, user.0, id.0, Action::Accept, || Ok(None))
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// The worker declines a requested job.
    #[oai(path = "/jobs/:id/decline", method = "post")]
    async fn decline(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<JobId>,
        body: DeferredJson<ReasonBody>,
    ) -> Result<Json<Job>, Fails<{ AUTH | FORBIDDEN | NOT_FOUND | CONFLICT | BODY }>> {
        services::act(&state, user.0, id.0, Action::Decline, || {
            body.parse()?.into_reason()
        })
        .await
        .map(Json)
        .map_err(Fails)
    }

    /// The worker starts an accepted job.
    #[oai(path = "/jobs/:id/start", method = "post")]
    async fn start(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<JobId>,
    ) -> Result<Json<Job>, Fails<{ AUTH | FORBIDDEN | NOT_FOUND | CONFLICT }>> {
        services::act(&state, user.0, id.0, Action::Start, || Ok(None))
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// The worker completes a job in progress.
    #[oai(path = "/jobs/:id/complete", method = "post")]
    async fn complete(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<JobId>,
    ) -> Result<Json<Job>, Fails<{ AUTH | FORBIDDEN | NOT_FOUND | CONFLICT }>> {
        services::act(&state, user.0, id.0, Action::Complete, || Ok(None))
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Either party cancels a requested or accepted job, saying why.
    #[oai(path = "/jobs/:id/cancel", method = "post")]
    async fn cancel(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<JobId>,
        body: DeferredJson<CancelBody>,
    ) -> Result<Json<Job>, Fails<{ AUTH | FORBIDDEN | NOT_FOUND | CONFLICT | BODY }>> {
        services::act(&state, user.0, id.0, Action::Cancel, || {
            body.parse()?.into_reason()
        })
        .await
        .map(Json)
        .map_err(Fails)
    }

    /// The job's history, oldest first; the first event is the booking.
    #[oai(path = "/jobs/:id/events", method = "get")]
    async fn events(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<JobId>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<JobEvent>>, Fails<{ AUTH | NOT_FOUND | LIST }>> {
        services::events(&state, user.0, id.0, limit.0, cursor.0.as_deref())
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// The job's client reviews a completed job (once).
    #[oai(path = "/jobs/:id/review", method = "post")]
    async fn review(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<JobId>,
        body: DeferredJson<NewReview>,
    ) -> Result<ReviewCreated, Fails<{ AUTH | FORBIDDEN | NOT_FOUND | CONFLICT | BODY }>> {
        reviews::create(&state, user.0, id.0, || body.parse()?.try_into())
            .await
            .map(|r| ReviewCreated::Created(Json(r)))
            .map_err(Fails)
    }
}
