//! `JsonBody<T>`: the request-body extractor every JSON route uses.
//!
//! poem-openapi's `Json<T>` answers 400 for everything, reads bodies of any size and
//! demands a Content-Type. The contract wants more precision: bytes that are not JSON
//! are 400 `malformed_body`, JSON of the wrong shape is 422 `validation_failed`, a body
//! over [`MAX_JSON_BYTES`] is 413, and action endpoints accept an empty body or none
//! (read as `{}`), with or without a Content-Type. `DeferredJson<T>` reads the same way
//! but parses when the route asks, after its access checks.
//!
//! `JsonOut<T>` is the response side for the hot read paths: written straight from `T`
//! with serde, without poem-openapi's intermediate `serde_json::Value` tree.

use std::marker::PhantomData;

use poem::{IntoResponse, Request, RequestBody, Response, error::ReadBodyError};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions,
    payload::{Json, ParsePayload, Payload},
    registry::{MetaMediaType, MetaRequest, MetaResponses, MetaSchemaRef, Registry},
    types::{ParseFromJSON, ToJSON, Type},
};
use serde::Serialize;

use crate::{
    core::{connections::is_body_timeout, schema_check::BodySchema},
    error::{AppError, FieldError, into_problem},
};

/// No JSON request of this API is anywhere near this; larger bodies are refused unread
/// (the 413's detail and the document say "64 KiB": keep them in step).
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// A JSON request body parsed into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A JSON payload described by `T`'s schema, announced with `$content_type`.
macro_rules! json_payload {
    ($payload:ident, $content_type:expr) => {
        impl<T: Type> Payload for $payload<T> {
            const CONTENT_TYPE: &'static str = $content_type;

            fn check_content_type(content_type: &str) -> bool {
                is_json(content_type)
            }

            fn schema_ref() -> MetaSchemaRef {
                T::schema_ref()
            }

            fn register(registry: &mut Registry) {
                T::register(registry);
            }
        }
    };
}

json_payload!(JsonBody, "application/json");

/// `application/json`, or any `application/*+json`.
fn is_json(content_type: &str) -> bool {
    content_type.parse::<mime::Mime>().is_ok_and(|mime| {
        mime.type_() == mime::APPLICATION
            && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
    })
}

/// Checks the Content-Type and reads at most [`MAX_JSON_BYTES`].
async fn read(request: &Request, body: &mut RequestBody) -> Result<bytes::Bytes, AppError> {
    if let Some(content_type) = request.content_type()
        && !is_json(content_type)
    {
        return Err(AppError::UnsupportedMediaType(format!(
            "expected application/json, got {content_type}"
        )));
    }
    body.take()
        .map_err(|err| AppError::MalformedBody(err.to_string()))?
        .into_bytes_limit(MAX_JSON_BYTES)
        .await
        .map_err(|err| match err {
            ReadBodyError::PayloadTooLarge => {
                AppError::PayloadTooLarge("JSON bodies are limited to 64 KiB".into())
            }
            ReadBodyError::Io(io) if is_body_timeout(&io) => AppError::RequestTimeout,
            other => AppError::MalformedBody(format!("could not read the body: {other}")),
        })
}

/// Bytes that are not JSON: 400; JSON that breaks the documented schema: 422 naming
/// every offending field (see [`schema_check`](crate::core::schema_check)); a blank body:
/// `{}` where that is a valid body (action endpoints), else 400.
fn parse<T: ParseFromJSON + 'static>(bytes: &[u8]) -> Result<T, AppError> {
    let schema = BodySchema::of::<T>();
    let value = if bytes.iter().all(u8::is_ascii_whitespace) {
        if !schema.accepts_empty_object() {
            return Err(AppError::MalformedBody(
                "the body is empty; this endpoint expects a JSON object".to_owned(),
            ));
        }
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(bytes)
            .map_err(|err| AppError::MalformedBody(format!("the body is not valid JSON: {err}")))?
    };
    let errors = schema.check(&value);
    if !errors.is_empty() {
        return Err(AppError::invalid_fields(errors));
    }
    // The schema check covers what poem-openapi parses; a type's own parse rule the
    // document cannot express would still be caught here, for the body as a whole.
    T::parse_from_json(Some(value)).map_err(|err| FieldError::new("", err.into_message()).into())
}

impl<T: ParseFromJSON + 'static> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = read(request, body).await?;
        Ok(Self(parse(&bytes)?))
    }
}

/// A JSON body read up front but parsed only when the route asks, after it has checked
/// who may act on what: the contract ranks 404 and 403 before a malformed body's 422.
pub struct DeferredJson<T> {
    bytes: bytes::Bytes,
    body: PhantomData<T>,
}

impl<T: ParseFromJSON + 'static> DeferredJson<T> {
    pub fn parse(&self) -> Result<T, AppError> {
        parse(&self.bytes)
    }
}

impl<'a, T: ParseFromJSON + 'static> ApiExtractor<'a> for DeferredJson<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <JsonBody<T> as ApiExtractor>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        <JsonBody<T> as ApiExtractor>::request_meta()
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self {
            bytes: read(request, body).await?,
            body: PhantomData,
        })
    }
}

impl<'a, T: ParseFromJSON + 'static> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <Self as Payload>::CONTENT_TYPE,
                schema: <Self as Payload>::schema_ref(),
            }],
            // An action endpoint whose body may be `{}` takes an empty body too.
            required: !BodySchema::of::<T>().accepts_empty_object(),
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        <Self as ParsePayload>::from_request(request, body).await
    }
}

/// A JSON response written straight from `T` with serde.
///
/// poem-openapi's `Json<T>` first builds a `serde_json::Value` tree (a map per object),
/// then serializes the tree; on a listing read that detour cost about a sixth of the
/// server's instructions per request. The OpenAPI description is still `T`'s, so `T`'s
/// serde form must equal its poem-openapi form: a test beside each type sent this way
/// checks it with `assert_same_json`. (Object keys come in declaration order rather
/// than sorted; JSON objects are unordered, and no client may depend on either.)
#[derive(Debug)]
pub struct JsonOut<T>(pub T);

/// The Content-Type poem-openapi's `Json` answers with.
const JSON_UTF8: &str = "application/json; charset=utf-8";

json_payload!(JsonOut, JSON_UTF8);

impl<T: Serialize + Send> IntoResponse for JsonOut<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::builder().content_type(JSON_UTF8).body(body),
            // Only a map with non-string keys can fail, and no response type has one.
            Err(err) => {
                into_problem(AppError::internal(format!("serializing a response: {err}")).into())
            }
        }
    }
}

/// Documented exactly as poem-openapi's `Json<T>` (same status, media type and schema).
impl<T: ToJSON + Serialize + Send> ApiResponse for JsonOut<T> {
    fn meta() -> MetaResponses {
        <Json<T> as ApiResponse>::meta()
    }

    fn register(registry: &mut Registry) {
        <Json<T> as ApiResponse>::register(registry);
    }
}

/// Serializes a timestamp as poem-openapi does (`to_rfc3339`, `+00:00`), so a type can
/// be sent through [`JsonOut`] and poem-openapi's `Json` alike.
pub fn rfc3339<S: serde::Serializer>(
    at: &chrono::DateTime<chrono::Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&at.to_rfc3339())
}

/// Panics unless `value` serializes to the same JSON through serde as through
/// poem-openapi (what [`JsonOut`] relies on).
#[cfg(test)]
pub fn assert_same_json<T: Serialize + ToJSON>(value: &T) {
    let serde = serde_json::to_value(value).expect("serde serializes");
    assert_eq!(
        Some(serde),
        value.to_json(),
        "serde and poem-openapi disagree"
    );
}
