//! The one error type of the service and its RFC 9457 `application/problem+json` form.
//!
//! Services return `Result<T, AppError>`; this module alone chooses status codes. Errors
//! that are not ours (poem's unknown route, poem-openapi's parse failures) are turned into
//! the same shape by [`into_problem`], so a client never sees a plain-text error body.

use std::borrow::Cow;

use poem::{
    Response,
    error::ResponseError,
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::ToJSON,
};

use crate::core::document_index;

/// Codes of errors that carry their own (`AppError::Conflict`, `AppError::Unprocessable`),
/// named once here so call sites cannot misspell them. Listed in API.md; an existing
/// code never changes meaning.
pub mod codes {
    /// 409: sign-up with an email that an account already uses.
    pub const EMAIL_TAKEN: &str = "email_taken";
    /// 422: a booking does not fit inside one of the worker's availability slots.
    pub const OUTSIDE_AVAILABILITY: &str = "outside_availability";
    /// 409: a job (or review of it) asked for a move its current status does not allow.
    pub const JOB_INVALID_TRANSITION: &str = "job_invalid_transition";
    /// 409: accepting a job that overlaps another accepted job of the same worker.
    pub const WORKER_BUSY: &str = "worker_busy";
    /// 409: reviewing a job that has already been reviewed.
    pub const REVIEW_EXISTS: &str = "review_exists";
    /// 409: hiding a review that is already hidden.
    pub const REVIEW_ALREADY_HIDDEN: &str = "review_already_hidden";
    /// 409: uploading a KYC document while too many already await review.
    pub const KYC_TOO_MANY_PENDING: &str = "kyc_too_many_pending";
    /// 409: deciding on a KYC submission that has already been reviewed.
    pub const KYC_NOT_PENDING: &str = "kyc_not_pending";
    /// 409: opening a WebSocket when the account already has as many open as it may.
    pub const TOO_MANY_SOCKETS: &str = "too_many_sockets";
    /// 409: asking for a verification email for an address already verified.
    pub const EMAIL_ALREADY_VERIFIED: &str = "email_already_verified";

    /// Every code above, for the uniqueness test.
    #[cfg(test)]
    pub(crate) const ALL: &[&str] = &[
        EMAIL_TAKEN,
        OUTSIDE_AVAILABILITY,
        JOB_INVALID_TRANSITION,
        WORKER_BUSY,
        REVIEW_EXISTS,
        REVIEW_ALREADY_HIDDEN,
        KYC_TOO_MANY_PENDING,
        KYC_NOT_PENDING,
        TOO_MANY_SOCKETS,
        EMAIL_ALREADY_VERIFIED,
    ];

    #[cfg(test)]
    mod tests {
        use std::collections::HashSet;

        #[test]
        fn codes_are_unique_and_snake_case() {
            let mut seen = HashSet::new();
            for code in super::ALL {
                assert!(seen.insert(*code), "duplicate code {code}");
                assert!(
                    !code.is_empty()
                        && !code.starts_with('_')
                        && !code.ends_with('_')
                        && !code.contains("__")
                        && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{code} is not snake_case"
                );
            }
        }
    }
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Object, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document, as every error response carries it.
#[derive(Debug, Object)]
#[oai(rename = "Problem")]
pub struct Problem {
    /// `about:blank`: the `code` is the machine-readable discriminator.
    #[oai(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable snake_case code; an existing code never changes meaning.
    pub code: String,
    /// Present on validation errors: which fields failed and why.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldError>>,
}

/// Everything that can go wrong in a request, by what the client should do about it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    MalformedBody(String),
    #[error("the cursor is not one this API issued")]
    BadCursor,
    /// A genuine cursor, passed with a different sort than the query that issued it.
    #[error("the cursor belongs to another query (a different sort); start again without it")]
    ForeignCursor,
    #[error("{detail}")]
    Validation {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// Well-formed but refused by a business rule with a code of its own (422).
    #[error("{detail}")]
    Unprocessable {
        code: &'static str,
        detail: &'static str,
    },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("the token has been revoked")]
    TokenRevoked,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("the account is suspended")]
    AccountSuspended,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the resource does not exist")]
    NotFound,
    /// `allow` lists the methods the path has (the `Allow` header), when known.
    #[error("the method is not allowed on this resource")]
    MethodNotAllowed { allow: Option<&'static str> },
    /// An email link's token that is unknown, used, superseded or expired.
    #[error("the link is invalid, used or expired; ask for a new one")]
    TokenInvalid,
    /// An OpenID callback's `state` that is unknown, used, expired or another provider's.
    #[error("the sign-in state is invalid, used or expired; start again")]
    OidcStateInvalid,
    /// The provider refused the code, or its ID token did not verify.
    #[error("the identity provider's answer could not be verified")]
    OidcFailed,
    /// A conflict with the current state; `code` names which.
    #[error("{detail}")]
    Conflict {
        code: &'static str,
        detail: Cow<'static, str>,
    },
    /// The body is over a limit; the detail names it.
    #[error("{0}")]
    PayloadTooLarge(Cow<'static, str>),
    /// The request body arrived too slowly (see `core::connections::TimedBody`).
    #[error("the request body arrived too slowly")]
    RequestTimeout,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// This instance is at capacity for the work asked (password hashing): retry soon.
    #[error("the server is busy; retry in {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    /// A dependency (PostgreSQL, Redis) is unreachable or timed out.
    #[error("{0} is unavailable")]
    Unavailable(&'static str),
    /// A bug or an unexpected failure: logged in full, answered opaquely.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A 422 from several field errors (never call it with an empty list). A field
    /// named `""` is the body as a whole.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| match e.field.as_str() {
                "" => format!("the body {}", e.message),
                field => format!("{field}: {}", e.message),
            })
            .collect::<Vec<_>>()
            .join("; ");
        Self::Validation { detail, errors }
    }

    pub fn conflict(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{message}"))
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedBody(_) => "malformed_body",
            Self::BadCursor | Self::ForeignCursor => "bad_cursor",
            Self::Validation { .. } => "validation_failed",
            Self::Unprocessable { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::TokenRevoked => "token_revoked",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden(_) => "forbidden",
            Self::AccountSuspended => "account_suspended",
            Self::WrongPassword => "wrong_password",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::TokenInvalid => "token_invalid",
            Self::OidcStateInvalid => "oidc_state_invalid",
            Self::OidcFailed => "oidc_failed",
            Self::Conflict { code, .. } => code,
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::Overloaded { .. } => "overloaded",
            Self::Unavailable(_) => "dependency_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// What the client may read about this error (problem `detail`, WebSocket `error` frames).
    pub fn public_detail(&self) -> String {
        match self {
            // Internals never leave the process; the log has them under the request id.
            Self::Internal(_) => "an internal error occurred; it has been logged".to_owned(),
            other => other.to_string(),
        }
    }

    /// The fields a `validation_failed` names (a 422's `errors`, a WebSocket error frame's).
    pub fn field_errors(&self) -> Option<&[FieldError]> {
        match self {
            Self::Validation { errors, .. } => Some(errors),
            _ => None,
        }
    }

    fn problem(&self) -> Problem {
        let status = self.status();
        let detail = self.public_detail();
        Problem {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: self.code().to_owned(),
            errors: self.field_errors().map(<[FieldError]>::to_vec),
        }
    }
}

impl From<FieldError> for AppError {
    fn from(error: FieldError) -> Self {
        Self::invalid_fields(vec![error])
    }
}

impl ResponseError for AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::MalformedBody(_)
            | Self::BadCursor
            | Self::ForeignCursor
            | Self::TokenInvalid
            | Self::OidcStateInvalid => StatusCode::BAD_REQUEST,
            Self::Validation { .. } | Self::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Unauthorized(_)
            | Self::TokenRevoked
            | Self::InvalidCredentials
            | Self::OidcFailed => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::AccountSuspended | Self::WrongPassword => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Overloaded { .. } | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        match self {
            Self::Internal(err) => tracing::error!(error = ?err, "internal error"),
            Self::Unavailable(dependency) => tracing::warn!(dependency, "dependency unavailable"),
            _ => {}
        }
        let body = self.problem().to_json_string();
        let mut response = Response::builder()
            .status(self.status())
            .content_type("application/problem+json")
            .body(body);
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized(_) | Self::TokenRevoked => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited { retry_after_secs } | Self::Overloaded { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::MethodNotAllowed { allow: Some(allow) } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::PayloadTooLarge(_) | Self::RequestTimeout => {
                // The rest of the body is not read: the connection cannot be reused.
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// The error statuses an operation documents, as bits of the `SET` of its
/// [`Fails`] return type. Each names what makes an operation able to answer it, so a
/// route's set reads off its signature: a guard (`AUTH`, `ROLE`), an id in the path
/// (`NOT_FOUND`), a body (`BODY`), a list (`LIST`), and what its service refuses.
pub mod fails {
    /// 400 `malformed_body`, `bad_cursor`, `token_invalid`, ...
    pub const MALFORMED: u32 = 1 << 0;
    /// 401: a bearer guard, an optional bearer, or credentials in the body.
    pub const AUTH: u32 = 1 << 1;
    /// 403: a role guard, an ownership rule, a suspended account.
    pub const FORBIDDEN: u32 = 1 << 2;
    /// 404: an id in the path (or in the body) that names nothing visible to the caller.
    pub const NOT_FOUND: u32 = 1 << 3;
    /// 408: a body that arrives too slowly.
    pub const TIMEOUT: u32 = 1 << 4;
    /// 409: a conflict with the current state.
    pub const CONFLICT: u32 = 1 << 5;
    /// 413: a body over its limit.
    pub const TOO_LARGE: u32 = 1 << 6;
    /// 415: a body of a media type not accepted.
    pub const MEDIA_TYPE: u32 = 1 << 7;
    /// 422: invalid values (a body's, a parameter's) or a business rule with its own code.
    pub const INVALID: u32 = 1 << 8;

    /// A role guard: no or a bad token (401), another role (403).
    pub const ROLE: u32 = AUTH | FORBIDDEN;
    /// Any request body.
    pub const BODY: u32 = MALFORMED | TIMEOUT | TOO_LARGE | MEDIA_TYPE | INVALID;
    /// A paginated list: a parameter out of range (422), a cursor not issued (400).
    pub const LIST: u32 = MALFORMED | INVALID;
    /// A probe, never rate limited (`core::edge::UNLIMITED`): no 429.
    pub const PROBE: u32 = 1 << 31;

    /// What any operation may answer whatever it declares: the per-IP rate limit (429),
    /// a bug (500), a dependency down or the server busy (503).
    pub(super) const STATUSES: [(u32, u16, &str); 12] = [
        (
            MALFORMED,
            400,
            "Malformed request (`malformed_body`, `bad_cursor`, ...)",
        ),
        (
            AUTH,
            401,
            "Missing, invalid, expired or revoked token or credentials",
        ),
        (
            FORBIDDEN,
            403,
            "Role, ownership or account status does not allow this",
        ),
        (NOT_FOUND, 404, "No such resource visible to the caller"),
        (TIMEOUT, 408, "The body arrived too slowly"),
        (CONFLICT, 409, "Conflict with the current state"),
        (
            TOO_LARGE,
            413,
            "The body is over its limit (JSON: 64 KiB; uploads: `UPLOAD_MAX_BYTES`)",
        ),
        (
            MEDIA_TYPE,
            415,
            "The body's media type (or an upload's content) is not one accepted",
        ),
        (
            INVALID,
            422,
            "Well-formed but invalid values (`validation_failed`, with `errors`) or a rule's own code",
        ),
        (0, 429, "Rate limited; see `Retry-After`"),
        (0, 500, "Internal error (logged, never detailed)"),
        (
            0,
            503,
            "A dependency is unavailable (`dependency_unavailable`) or the server is busy (`overloaded`, see `Retry-After`)",
        ),
    ];
}

/// An operation's error: an [`AppError`], documented as the statuses of `SET` (bits of
/// [`fails`]) plus 429, 500 and 503, which every operation may answer. Handlers return
/// `Result<T, Fails<{ fails::ROLE | fails::NOT_FOUND }>>` and `?` their services' errors.
///
/// What is declared is checked, not trusted: in debug builds (tests, the fuzz run) every
/// answer of the API is compared with its operation's documented statuses
/// (`core::document_index::documents`), and one that is not documented panics.
#[derive(Debug)]
pub struct Fails<const SET: u32>(pub AppError);

impl<const SET: u32> From<AppError> for Fails<SET> {
    fn from(err: AppError) -> Self {
        Self(err)
    }
}

impl<const SET: u32> From<FieldError> for Fails<SET> {
    fn from(err: FieldError) -> Self {
        Self(err.into())
    }
}

impl<const SET: u32> From<Fails<SET>> for poem::Error {
    fn from(err: Fails<SET>) -> Self {
        err.0.into()
    }
}

impl<const SET: u32> ApiResponse for Fails<SET> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: fails::STATUSES
                .into_iter()
                .filter(|(bit, _, _)| *bit == 0 || SET & bit != 0)
                .filter(|(_, status, _)| *status != 429 || SET & fails::PROBE == 0)
                .map(|(_, status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/problem+json",
                        schema: <Problem as poem_openapi::types::Type>::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        <Problem as poem_openapi::types::Type>::register(registry);
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => Self::NotFound,
            // The connection broke, or the server is going away, overloaded or read-only
            // (failover): the request may succeed on retry.
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::ReadOnlyTransaction,
                _,
            ) => Self::Unavailable("database"),
            Error::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if is_outage(info.message()) =>
            {
                Self::Unavailable("database")
            }
            other => Self::Internal(other.into()),
        }
    }
}

/// PostgreSQL messages of its outage classes (57 operator intervention, 53 insufficient
/// resources, 08 connection exception); diesel does not expose the SQLSTATE itself.
fn is_outage(message: &str) -> bool {
    const OUTAGE: &[&str] = &[
        "canceling statement due to statement timeout",
        "terminating connection",
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        "too many clients",
        "too many connections",
        "connection closed",
        "connection reset",
    ];
    OUTAGE.iter().any(|needle| message.contains(needle))
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AppError {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        tracing::warn!(error = %err, "database pool");
        Self::Unavailable("database")
    }
}

/// Turns any error that reached the top of the router into problem+json.
///
/// Ours keep their code; poem's and poem-openapi's are classified by status, keeping
/// their message only for client errors (it says what was wrong with the request).
pub fn into_problem(err: poem::Error) -> Response {
    if let Some(app) = err.downcast_ref::<AppError>() {
        return app.as_response();
    }
    // A malformed id in a path names nothing that exists.
    if err.is::<poem_openapi::error::ParsePathError>() {
        return AppError::NotFound.as_response();
    }
    let pattern = err.data::<poem::PathPattern>().map(|p| &*p.0);
    if let Some(param) = err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        let message = document_index::parameter_message(pattern, param.name);
        return AppError::from(FieldError::new(param.name, message)).as_response();
    }
    if err.is::<poem::error::CorsError>() {
        return AppError::Forbidden("this origin is not allowed by the CORS policy (CORS_ORIGINS)")
            .as_response();
    }
    let status = err.status();
    let message = err.to_string();
    let app = match status {
        StatusCode::NOT_FOUND => AppError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed {
            allow: pattern.and_then(document_index::allowed_methods),
        },
        StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::PayloadTooLarge("the payload is larger than the limit".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(message),
        StatusCode::UNAUTHORIZED => AppError::Unauthorized("authentication is required"),
        StatusCode::UNPROCESSABLE_ENTITY => AppError::Validation {
            detail: message,
            errors: Vec::new(),
        },
        s if s.is_client_error() => AppError::MalformedBody(message),
        _ => AppError::internal(message),
    };
    app.as_response()
}
