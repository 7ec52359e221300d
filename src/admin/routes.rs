//! `/api/v1/admin`: moderation endpoints, admins only.

use poem::web::Data;
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    admin::{schemas::ReasonRequest, services},
    auth::schemas::User,
    core::{
        auth::AdminUser,
        ids::{KycId, ServiceId, UserId},
        json::{JsonBody, JsonOut},
        pagination::Page,
    },
    db::enums::{KycDecision, UserStatus},
    error::AppError,
    routes::ApiTags,
    service::{schemas::Service, services as listings},
    state::AppState,
    worker::{kyc, schemas::KycSubmission},
};

pub struct AdminApi;

#[OpenApi(prefix_path = "/api/v1/admin", tag = "ApiTags::Admin")]
impl AdminApi {
    /// Suspend a user: their tokens stop working at once and stay dead after reinstatement.
    #[oai(path = "/users/:id/suspend", method = "post")]
    async fn suspend(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<UserId>,
        body: JsonBody<ReasonRequest>,
    ) -> Result<Json<User>, AppError> {
        let reason = body.0.reason.as_deref();
        services::set_status(&state, admin.0, id.0, UserStatus::Suspended, reason)
            .await
            .map(Json)
    }

    /// Reinstate a suspended user (they must log in again).
    #[oai(path = "/users/:id/reinstate", method = "post")]
    async fn reinstate(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<UserId>,
    ) -> Result<Json<User>, AppError> {
        services::set_status(&state, admin.0, id.0, UserStatus::Active, None)
            .await
            .map(Json)
    }

    /// KYC submissions awaiting review (or in `status`), oldest first.
    #[oai(path = "/kyc", method = "get")]
    async fn kyc_queue(
        &self,
        _admin: AdminUser,
        state: Data<&AppState>,
        status: Query<Option<KycDecision>>,
        limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<KycSubmission>>, AppError> {
        kyc::queue(&state, status.0, limit.0, cursor.0.as_deref())
            .await
            .map(Json)
    }

    /// Approve a pending submission: the worker's listings become public.
    #[oai(path = "/kyc/:id/approve", method = "post")]
    async fn kyc_approve(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<KycId>,
    ) -> Result<Json<KycSubmission>, AppError> {
        kyc::decide(&state, admin.0, id.0, KycDecision::Approved, None)
            .await
            .map(Json)
    }

    /// Reject a pending submission; `reason` is required and shown to the worker.
    #[oai(path = "/kyc/:id/reject", method = "post")]
    async fn kyc_reject(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<KycId>,
        body: JsonBody<ReasonRequest>,
    ) -> Result<Json<KycSubmission>, AppError> {
        kyc::decide(
            &state,
            admin.0,
            id.0,
            KycDecision::Rejected,
            body.0.reason.as_deref(),
        )
        .await
        .map(Json)
    }

    /// Hide a listing from the public (its owner still sees it).
    #[oai(path = "/services/:id/hide", method = "post")]
    async fn hide_service(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<ServiceId>,
        body: JsonBody<ReasonRequest>,
    ) -> Result<JsonOut<Service>, AppError> {
        listings::set_hidden(&state, admin.0, id.0, true, body.0.reason.as_deref())
            .await
            .map(JsonOut)
    }

    /// Make a hidden listing public again.
    #[oai(path = "/services/:id/unhide", method = "post")]
    async fn unhide_service(
        &self,
        admin: AdminUser,
        state: Data<&AppState>,
        id: Path<ServiceId>,
    ) -> Result<JsonOut<Service>, AppError> {
        listings::set_hidden(&state, admin.0, id.0, false, None)
            .await
            .map(JsonOut)
    }
}
