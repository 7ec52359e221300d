//! `/api/v1/admin`: moderation endpoints, admins only.

use poem::web::Data;
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    admin::{
        schemas::{ReasonRequest, Stats},
        services,
    },
    audit::{self, AuditEntry},
    auth::{
        directory::{self, UserFilter},
        schemas::User,
    },
    core::{
        auth::AdminUser,
        ids::{KycId, ReviewId, ServiceId, UserId},
        json::{DeferredJson, JsonOut},
        pagination::Page,
    },
    db::enums::{KycDecision, UserRole, UserStatus},
    error::{AppError, Fails, fails::*},
    review::{schemas::Review, services as reviews},
    routes::ApiTags,
    service::{schemas::Service, services as listings},
    state::AppState,
    worker::{kyc, schemas::KycSubmission},
};

pub struct AdminApi;

/// Runs a moderation whose `reason` the body carries, in the contract's order: the
/// target first (an unknown one is 404 whatever the body says), then the body. A body
/// that does not parse reaches the service as no reason, and its own problem (400, or a
/// 422 naming its fields) is what the caller gets once the target was found: in place
/// of the service's "reason required", or of an idempotent success (hiding what is
/// already hidden) that a body the document refuses must not earn.
async fn moderate<T>(
    body: &DeferredJson<ReasonRequest>,
    act: impl AsyncFnOnce(Option<&str>) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let parsed = body.parse();
    let done = act(parsed.as_ref().ok().map(|b| b.reason.as_str())).await;
    match (done, parsed) {
        (Ok(_) | Err(AppError::Validation { .. }), Err(problem)) => Err(problem),
        (done, _) => done,
    }
}

#[OpenApi(prefix_path = "/api/v1/admin", tag = "ApiTags::Admin")]
impl AdminApi {
    /// Users, newest first, filtered by `role`, `status` and `q`: a case-insensitive
    /// substring (at most 100 characters, matched literally) of the email or full name.
    #[oai(path = "/users", method = "get")]
    #[allow(clippy::too_many_arguments)] // one per query parameter, as poem-openapi wants
    async fn users(
        &self,
        _admin: AdminUser,
        state: Data<&AppState>,
        role: Query<Option<UserRole>>,
        status: Query<Option<UserStatus>>,
        q: Query<Option<String>>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<User>>, Fails<{ ROLE | LIST }>> {
        let filter = UserFilter {
            role: role.0,
            status: status.0,
            q: q.0.as_deref(),
        };
        directory::search(&state, filter, limit.0, cursor.0.as_deref())
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Suspend a user: their tokens stop working at once and stay dead after reinstatement.
    #[oai(path = "/users/:id/suspend", method = "post")]
    async fn suspend(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<UserId>,
        body: DeferredJson<ReasonRequest>,
    ) -> Result<Json<User>, Fails<{ ROLE | NOT_FOUND | BODY }>> {
        moderate(&body, async |reason| {
            services::set_status(&state, admin.0, id.0, UserStatus::Suspended, reason).await
        })
        .await
        .map(Json)
        .map_err(Fails)
    }

    /// Reinstate a suspended user (they must log in again).
    #[oai(path = "/users/:id/reinstate", method = "post")]
    async fn reinstate(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<UserId>,
    ) -> Result<Json<User>, Fails<{ ROLE | NOT_FOUND }>> {
        services::set_status(&state, admin.0, id.0, UserStatus::Active, None)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// KYC submissions awaiting review (or in `status`), oldest first.
    #[oai(path = "/kyc", method = "get")]
    async fn kyc_queue(
        &self,
        _admin: AdminUser,
        state: Data<&AppState>,
        status: Query<Option<KycDecision>>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<KycSubmission>>, Fails<{ ROLE | LIST }>> {
        kyc::queue(&state, status.0, limit.0, cursor.0.as_deref())
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Approve a pending submission: the worker's listings become public.
    #[oai(path = "/kyc/:id/approve", method = "post")]
    async fn kyc_approve(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<KycId>,
    ) -> Result<Json<KycSubmission>, Fails<{ ROLE | NOT_FOUND | CONFLICT }>> {
        kyc::decide(&state, admin.0, id.0, KycDecision::Approved, None)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Reject a pending submission; `reason` is required and shown to the worker.
    #[oai(path = "/kyc/:id/reject", method = "post")]
    async fn kyc_reject(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<KycId>,
        body: DeferredJson<ReasonRequest>,
    ) -> Result<Json<KycSubmission>, Fails<{ ROLE | NOT_FOUND | CONFLICT | BODY }>> {
        moderate(&body, async |reason| {
            kyc::decide(&state, admin.0, id.0, KycDecision::Rejected, reason).await
        })
        .await
        .map(Json)
        .map_err(Fails)
    }

    /// Hide a listing from the public (its owner still sees it).
    #[oai(path = "/services/:id/hide", method = "post")]
    async fn hide_service(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<ServiceId>,
        body: DeferredJson<ReasonRequest>,
    ) -> Result<JsonOut<Service>, Fails<{ ROLE | NOT_FOUND | BODY }>> {
        moderate(&body, async |reason| {
            listings::set_hidden(&state, admin.0, id.0, true, reason).await
        })
        .await
        .map(JsonOut)
        .map_err(Fails)
    }

    /// Make a hidden listing public again.
    #[oai(path = "/services/:id/unhide", method = "post")]
    async fn unhide_service(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<ServiceId>,
    ) -> Result<JsonOut<Service>, Fails<{ ROLE | NOT_FOUND }>> {
        listings::set_hidden(&state, admin.0, id.0, false, None)
            .await
            .map(JsonOut)
            .map_err(Fails)
    }

    /// Hide a review: it leaves the worker's public reviews, and the worker's and the
    /// listing's ratings are recomputed without it. Already hidden → 409
    /// `review_already_hidden`.
    #[oai(path = "/reviews/:id/hide", method = "post")]
    async fn hide_review(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<ReviewId>,
        body: DeferredJson<ReasonRequest>,
    ) -> Result<Json<Review>, Fails<{ ROLE | NOT_FOUND | CONFLICT | BODY }>> {
        moderate(&body, async |reason| {
            reviews::hide(&state, admin.0, id.0, reason).await
        })
        .await
        .map(Json)
        .map_err(Fails)
    }

    /// Every admin action, newest first.
    #[oai(path = "/audit-log", method = "get")]
    async fn audit_log(
        &self,
        _admin: AdminUser,
        state: Data<&AppState>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<AuditEntry>>, Fails<{ ROLE | LIST }>> {
        audit::list(&state, limit.0, cursor.0.as_deref())
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Platform figures: users by role, jobs by status (every status, 0 when none),
    /// KYC submissions awaiting review and active listings.
    #[oai(path = "/stats", method = "get")]
    async fn stats(
        &self,
        _admin: AdminUser,
        state: Data<&AppState>,
    ) -> Result<Json<Stats>, Fails<ROLE>> {
        services::stats(&state).await.map(Json).map_err(Fails)
    }
}
