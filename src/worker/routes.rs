//! `/api/v1/workers` and `/api/v1/kyc`: thin handlers over the worker services.

use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
    registry::{MetaSchemaRef, Registry},
    types::Type,
};

use crate::{
    core::{
        auth::{AnyUser, WorkerUser},
        ids::{KycId, UserId},
        json::{JsonBody, JsonOut},
        limiter::ClientIp,
        multipart::{FormSchema, MultipartForm, binary_field},
        pagination::Page,
        upload::Download,
    },
    db::enums::KycDocumentType,
    error::{Fails, fails::*},
    routes::ApiTags,
    service::{schemas::Service, services as listings},
    state::AppState,
    worker::{
        kyc,
        schemas::{Availability, KycSubmission, WorkerPatch, WorkerProfile},
        services,
    },
};

pub struct WorkersApi;

/// The KYC upload form: `document_type` and `file` (JPEG, PNG or PDF by content).
pub struct KycForm;

impl FormSchema for KycForm {
    fn fields() -> Vec<(&'static str, MetaSchemaRef)> {
        vec![
            ("document_type", KycDocumentType::schema_ref()),
            ("file", binary_field()),
        ]
    }

    fn register(registry: &mut Registry) {
        KycDocumentType::register(registry);
    }
}

#[derive(ApiResponse)]
pub enum KycCreated {
    /// Stored and pending review.
    #[oai(status = 201)]
    Created(Json<KycSubmission>),
}

#[OpenApi(prefix_path = "/api/v1/workers", tag = "ApiTags::Workers")]
impl WorkersApi {
    /// The caller's worker profile.
    #[oai(path = "/me", method = "get")]
    async fn me(
        &self,
        user: WorkerUser,
        state: Data<&AppState>,
    ) -> Result<Json<WorkerProfile>, Fails<ROLE>> {
        services::profile(&state, user.0.id, false)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Update the caller's profile; absent fields are kept, `null` clears optional ones.
    #[oai(path = "/me", method = "patch")]
    async fn update_me(
        &self,
        user: WorkerUser,
        state: Data<&AppState>,
        body: JsonBody<WorkerPatch>,
    ) -> Result<Json<WorkerProfile>, Fails<{ ROLE | BODY }>> {
        services::update(&state, user.0.id, body.0.into())
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// Replace the weekly availability (wall-clock slots in the worker's timezone).
    #[oai(path = "/me/availability", method = "put")]
    async fn put_availability(
        &self,
        user: WorkerUser,
        state: Data<&AppState>,
        body: JsonBody<Availability>,
    ) -> Result<Json<Availability>, Fails<{ ROLE | BODY }>> {
        services::replace_availability(&state, user.0.id, body.0)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// The caller's listings, whatever their visibility, newest first.
    #[oai(path = "/me/services", method = "get")]
    async fn my_services(
        &self,
        user: WorkerUser,
        state: Data<&AppState>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<JsonOut<Page<Service>>, Fails<{ ROLE | LIST }>> {
        listings::list_own(&state, user.0.id, limit.0, cursor.0.as_deref())
            .await
            .map(JsonOut)
            .map_err(Fails)
    }

    /// Submit an identity document (multipart: `document_type`, `file`). The type is
    /// decided by the file's bytes; files over `UPLOAD_MAX_BYTES` are refused with 413.
    #[oai(path = "/me/kyc", method = "post")]
    async fn submit_kyc(
        &self,
        user: WorkerUser,
        state: Data<&AppState>,
        ip: Data<&ClientIp>,
        form: MultipartForm<KycForm>,
    ) -> Result<KycCreated, Fails<{ ROLE | BODY | CONFLICT }>> {
        let stream = form.body.into_bytes_stream();
        kyc::submit(
            &state,
            user.0.id,
            **ip,
            form.content_type.as_deref(),
            stream,
        )
        .await
        .map(|s| KycCreated::Created(Json(s)))
        .map_err(Fails)
    }

    /// The caller's KYC submissions, newest first.
    #[oai(path = "/me/kyc", method = "get")]
    async fn my_kyc(
        &self,
        user: WorkerUser,
        state: Data<&AppState>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<KycSubmission>>, Fails<{ ROLE | LIST }>> {
        kyc::list_mine(&state, user.0.id, limit.0, cursor.0.as_deref())
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// A worker's public profile (active workers only).
    #[oai(path = "/:id", method = "get")]
    async fn public_profile(
        &self,
        state: Data<&AppState>,
        id: Path<UserId>,
    ) -> Result<Json<WorkerProfile>, Fails<NOT_FOUND>> {
        services::profile(&state, id.0, true)
            .await
            .map(Json)
            .map_err(Fails)
    }

    /// A worker's weekly availability.
    #[oai(path = "/:id/availability", method = "get")]
    async fn public_availability(
        &self,
        state: Data<&AppState>,
        id: Path<UserId>,
    ) -> Result<Json<Availability>, Fails<NOT_FOUND>> {
        services::availability(&state, id.0)
            .await
            .map(Json)
            .map_err(Fails)
    }
}

pub struct KycApi;

#[OpenApi(prefix_path = "/api/v1/kyc", tag = "ApiTags::Workers")]
impl KycApi {
    /// A KYC document's bytes, for its worker or an admin (anyone else: 404).
    #[oai(path = "/:id/file", method = "get")]
    async fn file(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<KycId>,
    ) -> Result<Download, Fails<{ AUTH | NOT_FOUND }>> {
        kyc::file(&state, user.0, id.0).await.map_err(Fails)
    }
}
