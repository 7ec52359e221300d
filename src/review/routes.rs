//! `/api/v1/workers/{id}/reviews`: a worker's public reviews.

use poem::web::Data;
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    core::{ids::UserId, pagination::Page},
    error::{Fails, fails::*},
    review::{schemas::Review, services},
    routes::ApiTags,
    state::AppState,
};

pub struct ReviewsApi;

#[OpenApi(prefix_path = "/api/v1/workers", tag = "ApiTags::Workers")]
impl ReviewsApi {
    /// A worker's reviews, newest first (hidden ones excluded).
    #[oai(path = "/:id/reviews", method = "get")]
    async fn for_worker(
        &self,
        state: Data<&AppState>,
        id: Path<UserId>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Review>>, Fails<{ NOT_FOUND | LIST }>> {
        services::for_worker(&state, id.0, limit.0, cursor.0.as_deref())
            .await
            .map(Json)
            .map_err(Fails)
    }
}
