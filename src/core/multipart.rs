//! `MultipartForm<F>`: hands a route the raw `multipart/form-data` stream (parsed by
//! multer, with limits, in the service), while documenting the form's fields in the
//! OpenAPI document through `F`. poem's own multipart reader has no size limits.

use std::marker::PhantomData;

use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry},
};

/// Describes a form's fields for the OpenAPI document.
pub trait FormSchema {
    /// `(name, schema)` of every field; all are required.
    fn fields() -> Vec<(&'static str, MetaSchemaRef)>;
    fn register(registry: &mut Registry);
}

/// A binary file field, as OpenAPI writes it.
pub fn binary_field() -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "binary")))
}

pub struct MultipartForm<F> {
    pub content_type: Option<String>,
    pub body: poem::Body,
    form: PhantomData<F>,
}

impl<'a, F: FormSchema + Send> ApiExtractor<'a> for MultipartForm<F> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        F::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        let fields = F::fields();
        let mut schema = MetaSchema::new("object");
        schema.required = fields.iter().map(|(name, _)| *name).collect();
        schema.properties = fields;
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "multipart/form-data",
                schema: MetaSchemaRef::Inline(Box::new(schema)),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self {
            content_type: request.content_type().map(str::to_owned),
            body: body.take()?,
            form: PhantomData,
        })
    }
}
