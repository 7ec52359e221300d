//! `/api/v1/auth/oidc/…`: thin handlers over [`crate::auth::oidc::services`].

use poem::web::Data;
use poem_openapi::{OpenApi, param::Path, payload::Json};

use crate::{
    auth::{
        oidc::{
            schemas::{OidcCallbackRequest, OidcProviders, OidcStart, OidcStartRequest},
            services,
        },
        schemas::TokenPair,
    },
    core::json::JsonBody,
    error::{Fails, fails::*},
    routes::ApiTags,
    state::AppState,
};

pub struct OidcApi;

#[OpenApi(prefix_path = "/api/v1/auth/oidc", tag = "ApiTags::Auth")]
impl OidcApi {
    /// The OpenID Connect providers configured for sign-in (empty when none).
    #[oai(path = "/providers", method = "get")]
    async fn providers(&self, state: Data<&AppState>) -> Result<Json<OidcProviders>, Fails<0>> {
        Ok(Json(services::providers(&state)))
    }

    /// Begin a sign-in: the provider's authorization URL to send the user to.
    #[oai(path = "/:provider/start", method = "post")]
    async fn start(
        &self,
        state: Data<&AppState>,
        provider: Path<String>,
        body: JsonBody<OidcStartRequest>,
    ) -> Result<Json<OidcStart>, Fails<{ NOT_FOUND | BODY }>> {
        let body = body.0;
        services::start(&state, &provider, &body.redirect_uri, body.role)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Finish a sign-in with the code and state the provider sent back; the same
    /// session a password login gives.
    #[oai(path = "/:provider/callback", method = "post")]
    async fn callback(
        &self,
        state: Data<&AppState>,
        provider: Path<String>,
        body: JsonBody<OidcCallbackRequest>,
    ) -> Result<Json<TokenPair>, Fails<{ NOT_FOUND | BODY | AUTH | FORBIDDEN | CONFLICT }>> {
        let body = body.0;
        services::callback(&state, &provider, &body.code, &body.state)
            .await
            .map(Json)
            .map_err(Fails)
    }
}
