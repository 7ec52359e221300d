//! The two layers between the server and the routes, with CORS (when configured)
//! between them:
//!
//! - [`Edge`], outermost: a request id and the tracing span that carries it, problem+json
//!   for any error still left (a handler's panic included: a 500, not a dropped
//!   connection), metrics and the access log, the `X-Request-Id` header.
//!   Every request passes it, CORS preflights and refusals included.
//! - [`Admission`], innermost: the application state, the client IP (after trusted
//!   proxies), the per-IP rate limit and the body's minimum rate
//!   ([`crate::core::connections::TimedBody`]), then the routes. It answers every error as
//!   problem+json itself, so CORS outside it adds its headers to errors too (a browser
//!   can read a 401 or a 429) and preflights, answered by CORS, are never limited.
//!
//! They are hand-written endpoints rather than poem middlewares because each poem layer
//! moves the request (about 500 bytes) and nests its future in the next one, and the
//! server copies the whole nest into a box for every request: the five layers these
//! replace made that copy about 9 KiB. Here the routes are boxed once, behind
//! `Admission`, so what the server copies stays small.

use std::{panic::AssertUnwindSafe, time::Instant};

use futures_util::FutureExt;

use poem::{
    Body, Endpoint, PathPattern, Request, Response,
    endpoint::BoxEndpoint,
    error::ResponseError,
    http::{HeaderValue, Method, StatusCode, header},
};
use tracing::Instrument;

use crate::{
    core::{
        connections::{ConnectionLimits, TimedBody},
        document_index,
        limiter::ClientIp,
        metrics,
        request_id::{REQUEST_ID_HEADER, RequestId},
    },
    error::{AppError, into_problem},
    state::AppState,
};

/// Paths that are never rate limited: probes must always answer. (`/metrics` is
/// limited like any route: it needs a token, and a scraper asks every few seconds.)
const UNLIMITED: &[&str] = &["/health", "/ready"];

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
        // `client_ip` is filled in by `Admission`, `user_id` by the bearer check.
        let span = tracing::info_span!(
            "request",
            request_id = %id.0,
            %method,
            path = %req.uri().path(),
            client_ip = tracing::field::Empty,
            user_id = tracing::field::Empty,
        );
        let called = AssertUnwindSafe(self.inner.call(req).instrument(span.clone()))
            .catch_unwind()
            .await;
        let mut response = match called {
            Ok(Ok(response)) => response,
            // Only CORS refusals get here: `Admission` answers its own errors.
            Ok(Err(err)) => span.in_scope(|| into_problem(err)),
            // A bug in a handler costs its request, never the connection or the
            // process: the client gets a 500 with the request id to quote.
            Err(panic) => span.in_scope(|| {
                metrics::record_panic();
                into_problem(
                    AppError::internal(format!(
                        "a handler panicked: {}",
                        panic_message(panic.as_ref())
                    ))
                    .into(),
                )
            }),
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
            if let Some(event) = security_event(status) {
                // The span adds who (client IP, user id when known) and where (path).
                tracing::warn!(
                    security_event = event,
                    status = status.as_u16(),
                    "security event"
                );
            }
        });
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&id.0) {
            headers.insert(REQUEST_ID_HEADER, value);
        }
        // Tokens, profiles and documents must not sit in shared or browser caches; a
        // response that may be cached says so itself.
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        // Nothing is framed, but what says so itself (the console's document frame).
        headers
            .entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("DENY"));
        Ok(response)
    }
}

/// The text a panic was raised with (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Which responses are security events (ASVS V16): failed authentication (wrong
/// password, bad or revoked token), refused access, and rate limiting.
fn security_event(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::UNAUTHORIZED => Some("authentication_failed"),
        StatusCode::FORBIDDEN => Some("access_denied"),
        StatusCode::TOO_MANY_REQUESTS => Some("rate_limited"),
        _ => None,
    }
}

/// State, client IP, rate limit and body timing in front of the routes (see the
/// module documentation).
pub struct Admission {
    state: AppState,
    routes: BoxEndpoint<'static>,
    limits: ConnectionLimits,
}

impl Admission {
    pub fn new(state: AppState, routes: BoxEndpoint<'static>) -> Self {
        let limits = ConnectionLimits::from(&state.settings);
        Self {
            state,
            routes,
            limits,
        }
    }
}

/// A CORS preflight: `OPTIONS` asking whether a cross-origin method may be used.
fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Whether a request announces a body (a length above zero, or a transfer coding).
fn has_body(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0")
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
        tracing::Span::current().record("client_ip", tracing::field::display(ip.0));
        req.set_data(ip);
        req.set_data(self.state.clone());
        if !UNLIMITED.contains(&req.uri().path())
            && let Err(err) = self.state.limits.check_request(ip)
        {
            return Ok(into_problem(err.into()));
        }
        if has_body(&req) {
            let body = req.take_body().into_bytes_stream();
            req.set_body(Body::from_bytes_stream(TimedBody::new(
                Box::pin(body),
                &self.limits,
            )));
        }
        let preflight = is_preflight(&req);
        let method = req.method().clone();
        let response = match self.routes.call(req).await {
            Ok(response) => response,
            Err(err) => {
                let route = err.data::<PathPattern>().cloned();
                let mut response = if preflight && err.status() == StatusCode::METHOD_NOT_ALLOWED {
                    // With CORS configured, CORS answers preflights before they get here.
                    AppError::Forbidden(
                        "cross-origin requests are refused: no origin is allowed (set CORS_ORIGINS)",
                    )
                    .as_response()
                } else {
                    into_problem(err)
                };
                if let Some(route) = route {
                    response.set_data(route);
                }
                response
            }
        };
        if let Some(route) = response.data::<PathPattern>() {
            let status = response.status().as_u16();
            debug_assert!(
                document_index::documents(&route.0, method.as_str(), status),
                "{method} {} answered {status}, which its operation does not document \
                 (declare it in the handler's `Fails` set)",
                route.0
            );
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use poem::endpoint::make_sync;

    use super::*;

    fn get(path: &str) -> Request {
        Request::builder()
            .uri(path.parse().expect("uri"))
            .header("x-request-id", "panic-test-1")
            .finish()
    }

    /// A panicking handler answers 500 problem+json with the request id, is counted,
    /// and the same endpoint goes on serving.
    #[tokio::test]
    async fn a_panic_in_a_handler_is_a_500_and_serving_goes_on() {
        let endpoint = Edge::new(make_sync(|req: Request| {
            if req.uri().path() == "/boom" {
                panic!("deliberate test panic");
            }
            Response::builder().body("fine")
        }));

        let response = endpoint.call(get("/boom")).await.expect("answered");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response
                .headers()
                .get("x-request-id")
                .map(HeaderValue::as_bytes),
            Some(&b"panic-test-1"[..])
        );
        assert_eq!(response.content_type(), Some("application/problem+json"));
        let body = response.into_body().into_string().await.expect("body");
        let problem: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(problem["code"], "internal");
        assert!(
            !body.contains("deliberate"),
            "the panic's text stays in the log"
        );

        let response = endpoint.call(get("/fine")).await.expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        let scraped = metrics::handle().render();
        assert!(
            scraped.contains("http_handler_panics_total"),
            "not counted: {scraped}"
        );
    }
}
