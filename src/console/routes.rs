//! `/admin`: thin handlers. Each parses the request, calls the same service function
//! as the matching `/api/v1/admin` route (so rules, audit rows and events are the
//! API's), and renders a page or redirects with a notice of what happened.

use poem::{
    Body, IntoResponse, Request, Response, Route,
    error::ResponseError,
    get, handler,
    http::{StatusCode, header},
    post,
    web::{Data, Html, Path, Query},
};
use serde::Deserialize;

use crate::{
    admin::services as admin,
    audit,
    auth::{
        directory::{self, UserFilter},
        schemas::LoginRequest,
        services as accounts, sessions,
    },
    console::{
        pages::{self, UserFilters},
        session::{self, ConsoleAdmin, LOGIN_COOKIE, Notice, Posted, SESSION_COOKIE, read_form},
    },
    core::{
        auth::CurrentUser,
        ids::{KycId, ReviewId, ServiceId, UserId},
        limiter::ClientIp,
    },
    db::enums::{KycDecision, ServiceStatus, UserRole, UserStatus},
    error::{AppError, FieldError},
    review::services as reviews,
    service::services::{self as listings, ListingFilter},
    state::AppState,
    worker::kyc,
};

/// The stylesheet and icon, compiled in: nothing is loaded from anywhere else.
const STYLESHEET: &str = include_str!("console.css");
const ICON: &str = include_str!("favicon.svg");

pub fn route() -> Route {
    Route::new()
        .at("/", get(dashboard))
        .at("/login", get(login_form).post(login))
        .at("/logout", post(logout))
        .at("/assets/console.css", get(stylesheet))
        .at("/assets/favicon.svg", get(icon))
        .at("/kyc", get(kyc_queue))
        .at("/kyc/:id", get(kyc_review))
        .at("/kyc/:id/document", get(kyc_document))
        .at("/kyc/:id/approve", post(kyc_approve))
        .at("/kyc/:id/reject", post(kyc_reject))
        .at("/users", get(users))
        .at("/users/:id/suspend", post(suspend))
        .at("/users/:id/reinstate", post(reinstate))
        .at("/listings", get(listings_page))
        .at("/listings/:id/hide", post(hide_listing))
        .at("/listings/:id/unhide", post(unhide_listing))
        .at("/reviews", get(reviews_page))
        .at("/reviews/:id/hide", post(hide_review))
        .at("/audit", get(audit_page))
}

fn page(markup: maud::Markup) -> Html<String> {
    Html(markup.into_string())
}

/// A 303 to `to`: after a form, the browser follows with a GET (post/redirect/get).
fn see_other(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .finish()
}

/// Ends an action on a page that says what happened: `to` with a notice on success;
/// `back` with the reason on a refusal the admin can act on (a missing reason, a
/// submission someone else already decided). Sign-in and server failures are pages of
/// their own.
fn finish<T>(
    state: &AppState,
    result: Result<T, AppError>,
    to: &str,
    back: &str,
    done: impl FnOnce(&T) -> String,
) -> poem::Result<Response> {
    let (notice, location) = match result {
        Ok(value) => (Notice::done(done(&value)), to),
        Err(err) if err.status().is_client_error() && err.status() != StatusCode::UNAUTHORIZED => {
            (Notice::failed(err.public_detail()), back)
        }
        Err(err) => return Err(err.into()),
    };
    let mut response = see_other(location);
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::notice_cookie(state, &notice)?);
    Ok(response)
}

/// An optional `<select>` value: blank is "any"; anything but one of `options` is a 422.
fn choice<T: Copy>(
    field: &str,
    value: Option<&str>,
    options: &[T],
    label: fn(T) -> &'static str,
) -> Result<Option<T>, AppError> {
    match value.unwrap_or_default() {
        "" => Ok(None),
        value => options
            .iter()
            .copied()
            .find(|o| label(*o) == value)
            .map(Some)
            .ok_or_else(|| FieldError::new(field, "is not one of the listed values").into()),
    }
}

#[handler]
fn stylesheet() -> impl IntoResponse {
    STYLESHEET.with_content_type("text/css; charset=utf-8")
}

#[handler]
fn icon() -> impl IntoResponse {
    ICON.with_content_type("image/svg+xml")
}

#[derive(Deserialize)]
struct NoFields {}

#[derive(Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// The sign-in page, with a fresh nonce its CSRF token is bound to.
fn login_page(
    state: &AppState,
    status: StatusCode,
    email: &str,
    notice: Option<&Notice>,
) -> Response {
    let (nonce, cookie) = session::login_nonce(state);
    let token = state.console_keys.login_token(&nonce);
    let mut response = page(pages::login(email, &token, notice)).into_response();
    response.set_status(status);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[handler]
fn login_form(req: &Request, state: Data<&AppState>) -> Response {
    let notice = session::read_notice(&state, req);
    login_page(&state, StatusCode::OK, "", notice.as_ref())
}

/// Signs an admin in through the API's own password check (its rate limits, one
/// password hash whatever the email), then opens a login session without tokens and
/// binds the cookie to it. A client's or worker's correct password opens nothing: they
/// are told why.
#[handler]
async fn login(
    req: &Request,
    state: Data<&AppState>,
    ip: Data<&ClientIp>,
    body: Body,
) -> poem::Result<Response> {
    let form: LoginForm = read_form(body).await?;
    if !session::check_login_token(&state, req, &form.csrf) {
        let notice = Notice::failed("The sign-in form expired. Please sign in again.");
        return Ok(login_page(
            &state,
            StatusCode::FORBIDDEN,
            &form.email,
            Some(&notice),
        ));
    }
    let credentials = LoginRequest {
        email: form.email.clone(),
        password: form.password,
    };
    let refused = |err: AppError, text: String| {
        Ok(login_page(
            &state,
            err.status(),
            &form.email,
            Some(&Notice::failed(text)),
        ))
    };
    let refusal = |err: AppError| match err {
        AppError::InvalidCredentials => refused(err, "Wrong email or password.".to_owned()),
        AppError::AccountSuspended | AppError::RateLimited { .. } => {
            let text = err.public_detail();
            refused(err, format!("Cannot sign in: {text}."))
        }
        err => Err(err.into()),
    };
    let user = match accounts::authenticate(&state, **ip, credentials).await {
        Ok(user) => user,
        Err(err) => return refusal(err),
    };
    if user.role != UserRole::Admin {
        let text = format!(
            "This is a {} account: the console is for admins only. Use the marketplace app instead.",
            user.role.as_str()
        );
        return refused(AppError::Forbidden("admins only"), text);
    }
    let sid = match sessions::open_without_tokens(&state, &user).await {
        Ok(sid) => sid,
        Err(err) => return refusal(err),
    };
    let mut response = see_other("/admin/");
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        session::session_cookie(&state, sid, user.id)?,
    );
    headers.append(header::SET_COOKIE, session::expired(&state, LOGIN_COOKIE));
    Ok(response)
}

/// Revokes the console's login session (everywhere, like an API logout).
#[handler]
async fn logout(state: Data<&AppState>, posted: Posted<NoFields>) -> poem::Result<Response> {
    accounts::logout(&state, posted.admin, None).await?;
    let mut response = see_other("/admin/login");
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session::expired(&state, SESSION_COOKIE));
    headers.append(
        header::SET_COOKIE,
        session::notice_cookie(&state, &Notice::done("Signed out."))?,
    );
    Ok(response)
}

#[handler]
async fn dashboard(state: Data<&AppState>, me: ConsoleAdmin) -> poem::Result<Html<String>> {
    let stats = admin::stats(&state).await?;
    Ok(page(pages::dashboard(&me, &stats)))
}

#[derive(Deserialize)]
struct Paged {
    cursor: Option<String>,
}

#[handler]
async fn kyc_queue(
    state: Data<&AppState>,
    me: ConsoleAdmin,
    query: Query<Paged>,
) -> poem::Result<Html<String>> {
    let page_ = kyc::queue(&state, None, None, query.cursor.as_deref()).await?;
    let emails = directory::emails(&state, page_.items.iter().map(|s| s.worker_id)).await?;
    Ok(page(pages::kyc_queue(&me, &page_, &emails)))
}

#[handler]
async fn kyc_review(
    state: Data<&AppState>,
    me: ConsoleAdmin,
    id: Path<KycId>,
) -> poem::Result<Html<String>> {
    let review = kyc::for_review(&state, id.0).await?;
    let worker = directory::find(&state, review.submission.worker_id).await?;
    Ok(page(pages::kyc_review(&me, &review, &worker)))
}

/// The document, inline, for the review page's `<img>` or `<iframe>`. Sandboxed: were
/// it to run anything, it would run with no origin, no scripts and no forms; only the
/// console itself may frame it.
#[handler]
async fn kyc_document(
    state: Data<&AppState>,
    me: ConsoleAdmin,
    id: Path<KycId>,
) -> poem::Result<Response> {
    let download = kyc::file(&state, me.user, id.0).await?;
    Ok(Response::builder()
        .content_type(download.kind.content_type())
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "inline; filename=\"{}.{}\"",
                download.filename_stem,
                download.kind.extension()
            ),
        )
        .header(
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'; img-src 'self'; frame-ancestors 'self'",
        )
        .header(header::X_FRAME_OPTIONS, "SAMEORIGIN")
        .body(download.body))
}

#[handler]
async fn kyc_approve(
    state: Data<&AppState>,
    posted: Posted<NoFields>,
    id: Path<KycId>,
) -> poem::Result<Response> {
    decide(
        &state,
        posted.admin,
        id.0,
        KycDecision::Approved,
        None,
        "Approved",
    )
    .await
}

#[handler]
async fn kyc_reject(
    state: Data<&AppState>,
    posted: Posted<ReasonForm>,
    id: Path<KycId>,
) -> poem::Result<Response> {
    let reason = Some(posted.form.reason.as_str());
    decide(
        &state,
        posted.admin,
        id.0,
        KycDecision::Rejected,
        reason,
        "Rejected",
    )
    .await
}

/// Both KYC buttons: the API's decision, then the queue saying what was `done` (or the
/// review page again with why not).
async fn decide(
    state: &AppState,
    admin: CurrentUser,
    id: KycId,
    decision: KycDecision,
    reason: Option<&str>,
    done: &str,
) -> poem::Result<Response> {
    let result = kyc::decide(state, admin, id, decision, reason).await;
    finish(
        state,
        result,
        "/admin/kyc",
        &format!("/admin/kyc/{id}"),
        |s| {
            format!(
                "{done} the {} of submission {}.",
                s.document_type.as_str(),
                s.id
            )
        },
    )
}

#[derive(Deserialize)]
struct UsersQuery {
    q: Option<String>,
    role: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

#[handler]
async fn users(
    state: Data<&AppState>,
    me: ConsoleAdmin,
    query: Query<UsersQuery>,
) -> poem::Result<Html<String>> {
    use UserRole::{Admin, Client, Worker};
    let role = choice(
        "role",
        query.role.as_deref(),
        &[Client, Worker, Admin],
        UserRole::as_str,
    )?;
    let status = choice(
        "status",
        query.status.as_deref(),
        &[UserStatus::Active, UserStatus::Suspended],
        UserStatus::as_str,
    )?;
    let q = query.q.as_deref().unwrap_or_default();
    let filter = UserFilter {
        role,
        status,
        q: Some(q),
    };
    let found = directory::search(&state, filter, None, query.cursor.as_deref()).await?;
    let filters = UserFilters { q, role, status };
    Ok(page(pages::users(&me, &found, &filters)))
}

#[handler]
async fn suspend(
    state: Data<&AppState>,
    posted: Posted<ReasonForm>,
    id: Path<UserId>,
) -> poem::Result<Response> {
    let reason = Some(posted.form.reason.as_str());
    let result = admin::set_status(&state, posted.admin, id.0, UserStatus::Suspended, reason).await;
    finish(&state, result, "/admin/users", "/admin/users", |u| {
        format!("Suspended {}: their sessions have ended.", u.email)
    })
}

#[handler]
async fn reinstate(
    state: Data<&AppState>,
    posted: Posted<NoFields>,
    id: Path<UserId>,
) -> poem::Result<Response> {
    let result = admin::set_status(&state, posted.admin, id.0, UserStatus::Active, None).await;
    finish(&state, result, "/admin/users", "/admin/users", |u| {
        format!("Reinstated {}.", u.email)
    })
}

#[derive(Deserialize)]
struct ListingsQuery {
    q: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

#[handler]
async fn listings_page(
    state: Data<&AppState>,
    me: ConsoleAdmin,
    query: Query<ListingsQuery>,
) -> poem::Result<Html<String>> {
    let status = choice(
        "status",
        query.status.as_deref(),
        &[ServiceStatus::Active, ServiceStatus::Hidden],
        ServiceStatus::as_str,
    )?;
    let q = query.q.as_deref().unwrap_or_default();
    let filter = ListingFilter { q: Some(q), status };
    let found = listings::moderation_list(&state, filter, None, query.cursor.as_deref()).await?;
    let emails = directory::emails(&state, found.items.iter().map(|s| s.worker_id)).await?;
    Ok(page(pages::listings(&me, &found, &emails, q, status)))
}

#[handler]
async fn hide_listing(
    state: Data<&AppState>,
    posted: Posted<ReasonForm>,
    id: Path<ServiceId>,
) -> poem::Result<Response> {
    let reason = Some(posted.form.reason.as_str());
    let result = listings::set_hidden(&state, posted.admin, id.0, true, reason).await;
    finish(&state, result, "/admin/listings", "/admin/listings", |s| {
        format!("Hid the listing “{}”.", s.title)
    })
}

#[handler]
async fn unhide_listing(
    state: Data<&AppState>,
    posted: Posted<NoFields>,
    id: Path<ServiceId>,
) -> poem::Result<Response> {
    let result = listings::set_hidden(&state, posted.admin, id.0, false, None).await;
    finish(&state, result, "/admin/listings", "/admin/listings", |s| {
        format!("The listing “{}” is visible again.", s.title)
    })
}

#[handler]
async fn reviews_page(
    state: Data<&AppState>,
    me: ConsoleAdmin,
    query: Query<Paged>,
) -> poem::Result<Html<String>> {
    let found = reviews::for_moderation(&state, None, query.cursor.as_deref()).await?;
    let people = found
        .items
        .iter()
        .flat_map(|m| [m.review.client_id, m.review.worker_id]);
    let emails = directory::emails(&state, people).await?;
    Ok(page(pages::reviews(&me, &found, &emails)))
}

#[handler]
async fn hide_review(
    state: Data<&AppState>,
    posted: Posted<ReasonForm>,
    id: Path<ReviewId>,
) -> poem::Result<Response> {
    let reason = Some(posted.form.reason.as_str());
    let result = reviews::hide(&state, posted.admin, id.0, reason).await;
    finish(&state, result, "/admin/reviews", "/admin/reviews", |r| {
        format!(
            "Hid a {}-star review; the ratings were recomputed.",
            r.rating
        )
    })
}

#[handler]
async fn audit_page(
    state: Data<&AppState>,
    me: ConsoleAdmin,
    query: Query<Paged>,
) -> poem::Result<Html<String>> {
    let found = audit::list(&state, None, query.cursor.as_deref()).await?;
    let emails = directory::emails(&state, found.items.iter().map(|e| e.actor_id)).await?;
    Ok(page(pages::audit(&me, &found, &emails)))
}
