//! `marketplace`: the backend of a service marketplace.
//!
//! Clients book workers, workers manage listings and identity (KYC) documents, admins
//! moderate. Start at [`app`] (the router every process and test serves), then follow
//! a feature module: each has `routes.rs` (thin HTTP handlers), `services.rs` (the
//! rules), `schemas.rs` (API bodies) and `models.rs` (database rows).

pub mod admin;
pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod console;
pub mod core;
pub mod db;
pub mod error;
pub mod events;
pub mod job;
pub mod mail;
pub mod messaging;
pub mod notification;
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
    core::{
        edge::{Admission, Edge},
        request_id::REQUEST_ID_HEADER,
    },
    state::AppState,
};

/// The complete HTTP application: API, docs and probes behind [`Admission`] (state,
/// client IP and rate limit), CORS when origins are configured, the [`Edge`] (request id,
/// access log, metrics) and the security headers, outermost first in reverse.
pub fn app(state: AppState) -> impl Endpoint {
    // Install the metrics recorder before the first request is counted.
    core::metrics::handle();
    let api = routes::openapi();
    let spec = api.spec_endpoint();
    let docs = swagger_ui(&api.swagger_ui_html());
    let cors = (!state.settings.cors_origins.is_empty()).then(|| {
        Cors::new()
            .allow_origins(state.settings.cors_origins.iter().map(String::as_str))
            // So browser code can read them: back off on a 429, quote an id to support.
            .expose_headers([header::RETRY_AFTER.as_str(), REQUEST_ID_HEADER.as_str()])
    });
    let routes = Route::new()
        .at("/api/v1/openapi.json", spec)
        .at("/docs", docs)
        .nest("/admin", console::routes())
        .nest("/", api)
        .boxed();
    let admitted = Admission::new(state, routes);
    Edge::new(admitted.with_if(cors.is_some(), cors.unwrap_or_default())).with(security_headers())
}

/// Swagger UI as poem-openapi builds it, with its online validator off: the validator
/// badge would send the document to validator.swagger.io, and /docs makes no outside call.
fn swagger_ui(html: &str) -> impl Endpoint + use<> {
    const OPTIONS: &str = "deepLinking: true,";
    let html = html.replacen(
        OPTIONS,
        "deepLinking: true,\n        validatorUrl: null,",
        1,
    );
    debug_assert!(
        html.contains("validatorUrl: null"),
        "poem-openapi's template changed"
    );
    poem::endpoint::make_sync(move |_| poem::web::Html(html.clone()))
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
}
