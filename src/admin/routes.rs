//! `/api/v1/admin`: moderation endpoints, admins only.

use poem::web::Data;
use poem_openapi::{OpenApi, param::Path, payload::Json};

use crate::{
    admin::{schemas::ReasonRequest, services},
    auth::schemas::User,
    core::{auth::AdminUser, ids::UserId, json::JsonBody},
    db::enums::UserStatus,
    error::AppError,
    routes::ApiTags,
    state::AppState,
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
}
