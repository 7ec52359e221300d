//! `/api/v1/auth/email/…` and `/api/v1/auth/password/{forgot,reset}`: thin handlers over
//! [`crate::auth::lifecycle::services`].

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use crate::{
    auth::lifecycle::{
        schemas::{ForgotPasswordRequest, Queued, ResetPasswordRequest, VerifyEmailRequest},
        services,
    },
    config::Secret,
    core::{auth::AnyUser, json::JsonBody, limiter::ClientIp},
    error::{Fails, fails::*},
    routes::{ApiTags, NoContent},
    state::AppState,
};

pub struct LifecycleApi;

#[derive(ApiResponse)]
pub enum Accepted {
    /// Taken; the email is sent in the background.
    #[oai(status = 202)]
    Queued(Json<Queued>),
}

impl Accepted {
    fn with(detail: &str) -> Self {
        Self::Queued(Json(Queued {
            detail: detail.to_owned(),
        }))
    }
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl LifecycleApi {
    /// Prove the account's email with the token of a verification link (single use, 24 h).
    #[oai(path = "/email/verify", method = "post")]
    async fn verify_email(
        &self,
        state: Data<&AppState>,
        body: JsonBody<VerifyEmailRequest>,
    ) -> Result<NoContent, Fails<BODY>> {
        services::verify_email(&state, &body.0.token).await?;
        Ok(NoContent::Done)
    }

    /// Send a new verification email; links sent earlier stop working.
    #[oai(path = "/email/resend", method = "post")]
    async fn resend_verification(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        ip: Data<&ClientIp>,
    ) -> Result<Accepted, Fails<{ AUTH | CONFLICT }>> {
        services::resend_verification(&state, user.0, **ip).await?;
        Ok(Accepted::with("a new verification email is on its way"))
    }

    /// Ask for a password-reset link. The answer is the same whether or not an account
    /// uses the address.
    #[oai(path = "/password/forgot", method = "post")]
    async fn forgot_password(
        &self,
        state: Data<&AppState>,
        ip: Data<&ClientIp>,
        body: JsonBody<ForgotPasswordRequest>,
    ) -> Result<Accepted, Fails<BODY>> {
        services::forgot_password(&state, **ip, &body.0.email).await?;
        Ok(Accepted::with(
            "if an account uses this address, a reset link is on its way",
        ))
    }

    /// Set a new password with the token of the newest reset link (single use, 30 min);
    /// every session of the account is revoked.
    #[oai(path = "/password/reset", method = "post")]
    async fn reset_password(
        &self,
        state: Data<&AppState>,
        body: JsonBody<ResetPasswordRequest>,
    ) -> Result<NoContent, Fails<BODY>> {
        let body = body.0;
        services::reset_password(&state, &body.token, Secret::new(body.new_password)).await?;
        Ok(NoContent::Done)
    }
}
