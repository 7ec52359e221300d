//! The two layers between the server and the routes, with CORS (when configured)
//! between them:
//!
//! - [`Edge`], outermost: a request id and the tracing span that carries it, problem+json
//!   for any error still left, metrics and the access log, the `X-Request-Id` header.
//!   Every request passes it, CORS preflights and refusals included.
//! - [`Admission`], innermost: the application state, the client IP (after trusted
//!   proxies) and the per-IP rate limit, then the routes. It answers every error as
//!   problem+json itself, so CORS outside it adds its headers to errors too (a browser
//!   can read a 401 or a 429) and preflights, answered by CORS, are never limited.
//!
//! They are hand-written endpoints rather than poem middlewares because each poem layer
//! moves the request (about 500 bytes) and nests its future in the next one, and the
//! server copies the whole nest into a box for every request: the five layers these
//! replace made that copy about 9 KiB. Here the routes are boxed once, behind
//! `Admission`, so what the server copies stays small.

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

/// Request id, span, access log and metrics around `E` (see the module documentation).
pub struct Edge<E> {
    inner: E,
}

impl<E: Endpoint<Output = Response>> Edge<E> {
    pub fn new(inner: E) -> Self {
        Self { inner }
    }
}

impl<E: Endpoint<Output = Response>> Endpoint for Edge<E> {
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
        let mut response = match self.inner.call(req).instrument(span.clone()).await {
            Ok(response) => response,
            // Only CORS refusals get here: `Admission` answers its own errors.
            Err(err) => span.in_scope(|| into_problem(err)),
        };

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

/// State, client IP and rate limit in front of the routes (see the module documentation).
pub struct Admission {
    state: AppState,
    routes: BoxEndpoint<'static>,
}

impl Admission {
    pub fn new(state: AppState, routes: BoxEndpoint<'static>) -> Self {
        Self { state, routes }
    }
}

impl Endpoint for Admission {
    type Output = Response;

    /// Never fails: errors leave as problem+json responses, keeping the route they
    /// matched for the metrics.
    async fn call(&self, mut req: Request) -> poem::Result<Response> {
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
                return Ok(into_problem(err.into()));
            }
        }
        Ok(match self.routes.call(req).await {
            Ok(response) => response,
            Err(err) => {
                let route = err.data::<PathPattern>().cloned();
                let mut response = into_problem(err);
                if let Some(route) = route {
                    response.set_data(route);
                }
                response
            }
        })
    }
}
