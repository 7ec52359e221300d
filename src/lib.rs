//! `marketplace`: the backend of a service marketplace.
//!
//! Clients book workers, workers manage listings and identity (KYC) documents, admins
//! moderate. Start at [`app`] (the router every process and test serves), then follow
//! a feature module: each has `routes.rs` (thin HTTP handlers), `services.rs` (the
//! rules), `schemas.rs` (API bodies) and `models.rs` (database rows).

pub mod admin;
pub mod auth;
pub mod client;
pub mod config;
pub mod core;
pub mod db;
pub mod error;
pub mod job;
pub mod ops;
pub mod review;
pub mod routes;
pub mod seed;
pub mod server;
pub mod service;
pub mod state;
pub mod tasks;
pub mod worker;

use poem::{
    Endpoint, EndpointExt, Route,
    http::{HeaderValue, header},
    middleware::{Cors, SetHeader},
};

use crate::{
    core::{limiter, request_id},
    state::AppState,
};

/// The complete HTTP application: API, docs, probes, and the middleware stack
/// (outermost first) security headers → request id, metrics and problem+json → state
/// → CORS → client IP and rate limit.
pub fn app(state: AppState) -> impl Endpoint {
    // Install the metrics recorder before the first request is counted.
    core::metrics::handle();
    let api = routes::openapi();
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let cors = (!state.settings.cors_origins.is_empty())
        .then(|| Cors::new().allow_origins(state.settings.cors_origins.iter().map(String::as_str)));
    Route::new()
        .at("/api/v1/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
        .around(limiter::limit)
        .with_if(cors.is_some(), cors.unwrap_or_default())
        .data(state)
        .around(request_id::observe)
        .with(security_headers())
}

/// Headers every response carries. poem sends no `Server` banner to begin with.
fn security_headers() -> SetHeader {
    SetHeader::new()
        .overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        )
        .overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        )
        .overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"))
}
