//! The outermost middleware: request id, tracing span, access log, metrics, and the
//! last-resort conversion of any error into problem+json.

use std::time::Instant;

use poem::{
    Endpoint, IntoResponse, PathPattern, Request, Response,
    http::{HeaderName, HeaderValue},
};
use tracing::Instrument;

use crate::error::into_problem;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, echoed in `X-Request-Id` and on every log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// Accepts a client's id when it is 1-128 characters of `[A-Za-z0-9._-]`, so it is
    /// safe to log and echo; anything else gets a fresh id instead.
    pub fn from_client(value: &[u8]) -> Option<Self> {
        let valid = (1..=128).contains(&value.len())
            && value
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        // The bytes were just checked to be ASCII.
        valid.then(|| Self(String::from_utf8_lossy(value).into_owned()))
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }
}

/// Wraps the whole router. Only the path is logged: a query string can carry a ticket.
pub async fn observe<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| RequestId::from_client(v.as_bytes()))
        .unwrap_or_else(RequestId::generate);
    let method = req.method().clone();
    let span =
        tracing::info_span!("request", request_id = %id.0, %method, path = %req.uri().path());
    req.set_data(id.clone());

    let mut response = match next.call(req).instrument(span.clone()).await {
        Ok(response) => response.into_response(),
        Err(err) => {
            let route = err.data::<PathPattern>().cloned();
            let mut response = span.in_scope(|| into_problem(err));
            if let Some(route) = route {
                response.set_data(route);
            }
            response
        }
    };

    let status = response.status();
    let elapsed = started.elapsed();
    let route = response
        .data::<PathPattern>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.0.to_string());
    crate::core::metrics::record_request(method.as_str(), route, status.as_u16(), elapsed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_safe_ids_only() {
        assert!(RequestId::from_client(b"abc-123_x.y").is_some());
        assert!(RequestId::from_client(b"").is_none());
        assert!(RequestId::from_client(&[b'a'; 129]).is_none());
        assert!(RequestId::from_client(b"a b").is_none());
        assert!(RequestId::from_client("é".as_bytes()).is_none());
    }

    proptest! {
        #[test]
        fn accepted_ids_are_exactly_the_allowed_alphabet(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let allowed = !bytes.is_empty() && bytes.len() <= 128
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b));
            prop_assert_eq!(RequestId::from_client(&bytes).is_some(), allowed);
        }
    }
}
