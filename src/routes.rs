//! The public HTTP surface: every OpenAPI module combined, plus shared response types.

use poem_openapi::{ApiResponse, OpenApi, OpenApiService, Tags};

use crate::{
    admin::routes::AdminApi,
    auth::{lifecycle::routes::LifecycleApi, oidc::routes::OidcApi, routes::AuthApi},
    client::routes::ClientsApi,
    job::routes::JobsApi,
    messaging::routes::MessagingApi,
    notification::routes::NotificationsApi,
    ops::OpsApi,
    review::routes::ReviewsApi,
    service::routes::ServicesApi,
    worker::routes::{KycApi, WorkersApi},
};

/// Groups of operations in the OpenAPI document.
#[derive(Tags)]
pub enum ApiTags {
    /// Liveness, readiness and metrics.
    Operations,
    /// Accounts, logins and tokens.
    Auth,
    /// Worker profiles, availability and KYC documents.
    Workers,
    /// Service listings and search.
    Services,
    /// Client profiles and favorites.
    Clients,
    /// Bookings, their lifecycle and reviews.
    Jobs,
    /// Threads, messages and the real-time WebSocket.
    Messaging,
    /// The caller's notifications.
    Notifications,
    /// Moderation (admin role only).
    Admin,
}

/// An action that succeeded with nothing to return.
#[derive(ApiResponse)]
pub enum NoContent {
    #[oai(status = 204)]
    Done,
}

/// The OpenAPI service: routes, and the document `/api/v1/openapi.json` serves.
pub fn openapi() -> OpenApiService<impl OpenApi, ()> {
    let apis = (
        OpsApi,
        AuthApi,
        LifecycleApi,
        OidcApi,
        WorkersApi,
        KycApi,
        ServicesApi,
        ClientsApi,
        JobsApi,
        ReviewsApi,
        MessagingApi,
        NotificationsApi,
        AdminApi,
    );
    OpenApiService::new(apis, "marketplace", env!("CARGO_PKG_VERSION")).description(
        "Clients book workers; workers manage listings and KYC; admins moderate. \
             Errors are RFC 9457 problem+json; a 422 lists each offending field by its JSON \
             path. Text fields refuse NUL characters (422). JSON bodies are limited to 64 KiB.",
    )
}

/// The OpenAPI document, as `/api/v1/openapi.json` serves it and `marketplace openapi`
/// prints it.
pub fn document() -> String {
    openapi().spec()
}
