//! The one layer between the server and the routes.
//!
//! Every request passes, in this order: a request id and the tracing span that carries
//! it; the application state; the client IP (after trusted proxies) and the per-IP rate
//! limit; the routes; problem+json for any error; metrics and the access log; the
//! `X-Request-Id` response header.
//!
//! It is one hand-written [`Endpoint`] rather than a stack of poem middlewares because
//! each poem layer moves the request (about 500 bytes) and nests its future inside the
//! next, and the server copies the whole nest into a box for every request: five layers
//! made that copy about 9 KiB. Here the routes are boxed once, so the future stays small.

use std::time::Instant;

use poem::{Endpoint, PathPattern, Request, Response, endpoint::BoxEndpoint, http::HeaderValue};
use tracing::Instrument;

use crate::{
    core::{
        limiter::ClientIp,
        metrics,
        request_id::{REQUEST_ID_HEADER, RequestId},
    },
    error::into_problem,
    state::AppState,
};

/// Paths that are never rate limited: probes and scrapes must always answer.
const UNLIMITED: &[&str] = &["/health", "/ready", "/metrics"];

/// See the module documentation.
pub struct Edge {
    state: AppState,
    routes: BoxEndpoint<'static>,
}

impl Edge {
    pub fn new(state: AppState, routes: BoxEndpoint<'static>) -> Self {
        Self { state, routes }
    }

    /// Admission (state, client IP, rate limit), then the route; errors become problem+json.
    async fn handle(&self, mut req: Request) -> Response {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip());
        let ip = ClientIp::resolve(peer, forwarded, &self.state.settings.trusted_proxies);
        req.set_data(ip);
        req.set_data(self.state.clone());
        if !UNLIMITED.contains(&req.uri().path()) {
            if let Err(err) = self.state.limits.check_request(ip) {
                return into_problem(err.into());
            }
        }
        match self.routes.call(req).await {
            Ok(response) => response,
            Err(err) => {
                let route = err.data::<PathPattern>().cloned();
                let mut response = into_problem(err);
                if let Some(route) = route {
                    response.set_data(route);
                }
                response
            }
        }
    }
}

impl Endpoint for Edge {
    type Output = Response;

    /// Only the path is logged: a query string can carry a ticket.
    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let id = req
            .headers()
            .get(&REQUEST_ID_HEADER)
            .and_then(|v| RequestId::from_client(v.as_bytes()))
            .unwrap_or_else(RequestId::generate);
        let method = req.method().clone();
        let span =
            tracing::info_span!("request", request_id = %id.0, %method, path = %req.uri().path());
        let mut response = self.handle(req).instrument(span.clone()).await;

        let status = response.status();
        let elapsed = started.elapsed();
        // poem marks a miss under a nested router with an empty pattern.
        let route = response
            .data::<PathPattern>()
            .filter(|p| !p.0.is_empty())
            .map(|p| p.0.clone());
        metrics::record_request(&method, route, status.as_u16(), elapsed);
        span.in_scope(|| {
            tracing::info!(
                status = status.as_u16(),
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                "request finished"
            );
        });
        if let Ok(value) = HeaderValue::from_str(&id.0) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        Ok(response)
    }
}
