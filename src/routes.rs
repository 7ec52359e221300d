//! The public HTTP surface: every OpenAPI module combined, plus shared response types.

use poem_openapi::{ApiResponse, OpenApiService, Tags};

use crate::{admin::routes::AdminApi, auth::routes::AuthApi, ops::OpsApi};

/// Groups of operations in the OpenAPI document.
#[derive(Tags)]
pub enum ApiTags {
    /// Liveness, readiness and metrics.
    Operations,
    /// Accounts, logins and tokens.
    Auth,
    /// Moderation (admin role only).
    Admin,
}

/// An action that succeeded with nothing to return.
#[derive(ApiResponse)]
pub enum NoContent {
    #[oai(status = 204)]
    Done,
}

pub type Apis = (OpsApi, AuthApi, AdminApi);

/// The OpenAPI service: routes, and the document `/api/v1/openapi.json` serves.
pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (OpsApi, AuthApi, AdminApi),
        "marketplace",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Clients book workers; workers manage listings and KYC; admins moderate.")
}
