//! `/api/v1/auth`: thin handlers over [`crate::auth::services`].

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use crate::{
    auth::{
        schemas::{
            LoginRequest, LogoutRequest, PasswordChangeRequest, RefreshRequest, RegisterRequest,
            TokenPair, User,
        },
        services, sessions,
    },
    core::{auth::AnyUser, json::JsonBody, limiter::ClientIp},
    error::{Fails, fails::*},
    routes::{ApiTags, NoContent},
    state::AppState,
};

pub struct AuthApi;

#[derive(ApiResponse)]
pub enum Created {
    /// The account was created.
    #[oai(status = 201)]
    User(Json<User>),
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create a client or worker account.
    #[oai(path = "/register", method = "post")]
    async fn register(
        &self,
        state: Data<&AppState>,
        ip: Data<&ClientIp>,
        body: JsonBody<RegisterRequest>,
    ) -> Result<Created, Fails<{ BODY | CONFLICT }>> {
        let user = services::register(&state, **ip, body.0).await?;
        Ok(Created::User(Json(user)))
    }

    /// Exchange email and password for a token pair.
    #[oai(path = "/login", method = "post")]
    async fn login(
        &self,
        state: Data<&AppState>,
        ip: Data<&ClientIp>,
        body: JsonBody<LoginRequest>,
    ) -> Result<Json<TokenPair>, Fails<{ BODY | AUTH | FORBIDDEN }>> {
        services::login(&state, **ip, body.0)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Rotate a refresh token: the one presented is dead afterwards.
    #[oai(path = "/refresh", method = "post")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        body: JsonBody<RefreshRequest>,
    ) -> Result<Json<TokenPair>, Fails<{ BODY | AUTH | FORBIDDEN }>> {
        sessions::rotate(&state, &body.0.refresh_token)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Revoke this login: its access and refresh tokens stop working everywhere.
    #[oai(path = "/logout", method = "post")]
    async fn logout(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        body: JsonBody<LogoutRequest>,
    ) -> Result<NoContent, Fails<{ AUTH | BODY }>> {
        services::logout(&state, user.0, body.0.refresh_token.as_deref()).await?;
        Ok(NoContent::Done)
    }

    /// The caller's account.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, user: AnyUser, state: Data<&AppState>) -> Result<Json<User>, Fails<AUTH>> {
        services::me(&state, user.0).await.map(Json).map_err(Fails)
    }

    /// Change the password; every other login of the account is revoked.
    #[oai(path = "/password", method = "post")]
    async fn change_password(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        ip: Data<&ClientIp>,
        body: JsonBody<PasswordChangeRequest>,
    ) -> Result<NoContent, Fails<{ AUTH | FORBIDDEN | BODY }>> {
        services::change_password(&state, user.0, **ip, body.0).await?;
        Ok(NoContent::Done)
    }
}
