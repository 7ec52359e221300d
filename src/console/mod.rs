//! The admin console: moderation in a browser, served by the binary under `/admin`.
//!
//! Server-rendered HTML ([`pages`], maud templates compiled in) that works without
//! JavaScript; its one stylesheet is compiled in too. Sign-in is for admins only and
//! binds a cookie to a login session ([`session`]); every form carries a CSRF token.
//! Handlers ([`routes`](mod@routes)) call the same service functions as `/api/v1/admin`, so who may
//! do what, state changes, audit rows and events are the API's.

pub mod pages;
pub mod routes;
pub mod session;

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, StatusCode, header},
};

use crate::{error::into_problem, state::AppState};

/// What a console page may load: its own stylesheet, documents and frames, and no
/// script at all. Pages are never framed (the document route relaxes that for itself).
const PAGE_POLICY: &str = "default-src 'self'; script-src 'none'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's routes, with its error pages and headers.
pub fn routes() -> Console<poem::Route> {
    Console {
        inner: routes::route(),
    }
}

/// Turns the console's errors into pages (a sign-in page for a missing or dead
/// session) and gives every response the console's policy and a fresh notice.
pub struct Console<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for Console<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let state = req
            .data::<AppState>()
            .cloned()
            .ok_or_else(|| crate::error::AppError::internal("application state missing"))?;
        let had_notice = session::read_cookie(&req, session::NOTICE_COOKIE).is_some();
        let mut response = match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(err) => error_page(&state, err),
        };
        let headers = response.headers_mut();
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(PAGE_POLICY));
        // Pages hold personal data: never cached, whatever the outer layers do.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // The page that followed an action has shown its notice; a redirect passes it on.
        if had_notice && !response.status().is_redirection() {
            response.headers_mut().append(
                header::SET_COOKIE,
                session::expired(&state, session::NOTICE_COOKIE),
            );
        }
        Ok(response)
    }
}

/// The error as a page. `error.rs` still decides the status and logs what must be
/// logged; only the body changes. A request without a live session goes to sign-in.
fn error_page(state: &AppState, err: poem::Error) -> Response {
    let detail = err
        .downcast_ref::<crate::error::AppError>()
        .map(crate::error::AppError::public_detail);
    let mut response = into_problem(err);
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        let mut redirect = Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, "/admin/login")
            .finish();
        redirect.headers_mut().append(
            header::SET_COOKIE,
            session::expired(state, session::SESSION_COOKIE),
        );
        return redirect;
    }
    let detail = detail.unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("The request failed")
            .to_owned()
    });
    response.set_body(pages::error(status.as_u16(), &detail).into_string());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
