//! `/api/v1/services`: thin handlers over the listing services and the search.

use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
};

use crate::{
    core::{
        auth::{WorkerUser, optional_user},
        ids::{ServiceId, UserId},
        json::{JsonBody, JsonOut},
        limiter::ClientIp,
        pagination::Page,
    },
    error::{Fails, fails::*},
    routes::{ApiTags, NoContent},
    service::{
        schemas::{NewService, Service, ServicePatch, SortOrder},
        search::{self, Search},
        services,
    },
    state::AppState,
};

pub struct ServicesApi;

#[derive(ApiResponse)]
pub enum ServiceCreated {
    #[oai(status = 201)]
    Created(JsonOut<Service>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Services")]
impl ServicesApi {
    /// Publish a listing (public once the worker's KYC is approved).
    #[oai(path = "/services", method = "post")]
    async fn create(
        &self,
        user: WorkerUser,
        state: Data<&AppState>,
        body: JsonBody<NewService>,
    ) -> Result<ServiceCreated, Fails<{ ROLE | BODY }>> {
        services::create(&state, user.0.id, body.0)
            .await
            .map(|s| ServiceCreated::Created(JsonOut(s)))
            .map_err(Fails)
    }

    /// Search public listings: full text `q` (relevance-ranked), filters, sorts, keyset pages.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/services", method = "get")]
    async fn search(
        &self,
        state: Data<&AppState>,
        ip: Data<&ClientIp>,
        /// Full-text query over title and description (web-search syntax).
        q: Query<Option<String>>,
        category: Query<Option<String>>,
        city: Query<Option<String>>,
        /// Inclusive, in cents.
        min_price: Query<Option<i64>>,
        /// Inclusive, in cents.
        max_price: Query<Option<i64>>,
        worker_id: Query<Option<UserId>>,
        /// `<lat>,<lng>` in degrees: only listings with a location within `radius_km`,
        /// each with its `distance_km`.
        near: Query<Option<String>>,
        /// With `near`: more than 0, at most 500; default 25.
        radius_km: Query<Option<f64>>,
        /// Default `newest`, or `relevance` when `q` is given. Unrated listings sort last by
        /// rating; `distance` (nearest first) needs `near`.
        sort: Query<Option<SortOrder>>,
        /// 1 to 100 (larger values are clamped); default 20.
        #[oai(validator(minimum(value = "1")))]
        limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<JsonOut<Page<Service>>, Fails<LIST>> {
        let filters = Search {
            q: q.0,
            category: category.0,
            city: city.0,
            min_price: min_price.0,
            max_price: max_price.0,
            worker_id: worker_id.0,
            near: near.0,
            radius_km: radius_km.0,
            sort: sort.0,
        };
        search::search(&state, **ip, filters, limit.0, cursor.0.as_deref())
            .await
            .map(JsonOut)
            .map_err(Fails)
    }

    /// A listing: public ones for anyone; the owner and admins see it in any state.
    #[oai(path = "/services/:id", method = "get")]
    async fn get(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<ServiceId>,
    ) -> Result<JsonOut<Service>, Fails<{ AUTH | NOT_FOUND }>> {
        let caller = optional_user(req).await?;
        search::find(&state, id.0, caller)
            .await
            .map(JsonOut)
            .map_err(Fails)
    }

    /// Change the caller's listing; absent fields are kept.
    #[oai(path = "/services/:id", method = "patch")]
    async fn update(
        &self,
        user: WorkerUser,
        state: Data<&AppState>,
        id: Path<ServiceId>,
        body: JsonBody<ServicePatch>,
    ) -> Result<JsonOut<Service>, Fails<{ ROLE | NOT_FOUND | BODY }>> {
        services::update(&state, user.0.id, id.0, body.0.into())
            .await
            .map(JsonOut)
            .map_err(Fails)
    }

    /// Delete the caller's listing (soft: bookings that reference it keep working).
    #[oai(path = "/services/:id", method = "delete")]
    async fn delete(
        &self,
        user: WorkerUser,
        state: Data<&AppState>,
        id: Path<ServiceId>,
    ) -> Result<NoContent, Fails<{ ROLE | NOT_FOUND }>> {
        services::delete(&state, user.0.id, id.0)
            .await
            .map(|()| NoContent::Done)
            .map_err(Fails)
    }
}
