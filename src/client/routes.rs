//! `/api/v1/clients`: thin handlers over the client services.

use poem::web::Data;
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    client::{
        schemas::{ClientPatch, ClientProfile},
        services,
    },
    core::{
        auth::ClientUser,
        ids::ServiceId,
        json::{JsonBody, JsonOut},
        pagination::Page,
    },
    error::{Fails, fails::*},
    routes::{ApiTags, NoContent},
    service::{schemas::Service, search},
    state::AppState,
};

pub struct ClientsApi;

#[OpenApi(prefix_path = "/api/v1/clients", tag = "ApiTags::Clients")]
impl ClientsApi {
    /// The caller's client profile.
    #[oai(path = "/me", method = "get")]
    async fn me(
        &self,
        user: ClientUser,
        state: Data<&AppState>,
    ) -> Result<Json<ClientProfile>, Fails<ROLE>> {
        services::profile(&state, user.0.id)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Update the caller's profile; absent fields are kept, `null` clears phone or city.
    #[oai(path = "/me", method = "patch")]
    async fn update_me(
        &self,
        user: ClientUser,
        state: Data<&AppState>,
        body: JsonBody<ClientPatch>,
    ) -> Result<Json<ClientProfile>, Fails<{ ROLE | BODY }>> {
        services::update(&state, user.0.id, body.0)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Favorite listings that are still public, most recently added first.
    #[oai(path = "/me/favorites", method = "get")]
    async fn favorites(
        &self,
        user: ClientUser,
        state: Data<&AppState>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<JsonOut<Page<Service>>, Fails<{ ROLE | LIST }>> {
        search::favorites(&state, user.0.id, limit.0, cursor.0.as_deref())
            .await
            .map(JsonOut)
            .map_err(Fails)
    }

    /// Add a public listing to favorites (idempotent).
    #[oai(path = "/me/favorites/:service_id", method = "put")]
    async fn add_favorite(
        &self,
        user: ClientUser,
        state: Data<&AppState>,
        service_id: Path<ServiceId>,
    ) -> Result<NoContent, Fails<{ ROLE | NOT_FOUND }>> {
        services::add_favorite(&state, user.0.id, service_id.0)
            .await
            .map(|()| NoContent::Done)
            .map_err(Fails)
    }

    /// Remove a listing from favorites (idempotent).
    #[oai(path = "/me/favorites/:service_id", method = "delete")]
    async fn remove_favorite(
        &self,
        user: ClientUser,
        state: Data<&AppState>,
        service_id: Path<ServiceId>,
    ) -> Result<NoContent, Fails<{ ROLE | NOT_FOUND }>> {
        services::remove_favorite(&state, user.0.id, service_id.0)
            .await
            .map(|()| NoContent::Done)
            .map_err(Fails)
    }
}
