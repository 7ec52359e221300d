//! What the published OpenAPI document says about a route, for answering errors the
//! routes never see: the methods a path allows (a 405's `Allow` header) and what a query
//! parameter must look like (a 422 that names it and says what would be valid); and,
//! to hold the routes to it, the statuses each operation documents.
//!
//! Read from the document itself, once, so these answers follow every route and
//! parameter that is added, with no list to keep in step by hand.

use std::{collections::HashMap, sync::LazyLock};

use serde_json::Value;

/// Per path, as poem matches it (`/api/v1/services/:param0`).
struct PathEntry {
    /// The `Allow` header value.
    allow: String,
    /// Query and path parameters by name: what a valid value looks like.
    params: HashMap<String, String>,
    /// The statuses each method's operation documents.
    statuses: HashMap<String, Vec<u16>>,
}

static INDEX: LazyLock<HashMap<String, PathEntry>> = LazyLock::new(|| {
    let document: Value = serde_json::from_str(&crate::routes::document()).unwrap_or(Value::Null);
    index(&document)
});

fn index(document: &Value) -> HashMap<String, PathEntry> {
    let schemas = &document["components"]["schemas"];
    let Some(paths) = document["paths"].as_object() else {
        return HashMap::new();
    };
    paths
        .iter()
        .map(|(path, operations)| {
            let mut methods = Vec::new();
            let mut params = HashMap::new();
            let mut statuses = HashMap::new();
            for (method, operation) in operations.as_object().into_iter().flatten() {
                methods.push(method.to_ascii_uppercase());
                let documented = operation["responses"].as_object().into_iter().flatten();
                let documented = documented.filter_map(|(status, _)| status.parse().ok());
                statuses.insert(method.to_ascii_uppercase(), documented.collect());
                for param in operation["parameters"].as_array().into_iter().flatten() {
                    if let Some(name) = param["name"].as_str() {
                        params.insert(name.to_owned(), describe(&param["schema"], schemas));
                    }
                }
            }
            // poem answers HEAD wherever it answers GET.
            if methods.iter().any(|m| m == "GET") {
                methods.push("HEAD".to_owned());
            }
            methods.sort();
            let entry = PathEntry {
                allow: methods.join(", "),
                params,
                statuses,
            };
            (poem_path(path), entry)
        })
        .collect()
}

/// `/services/{id}/reviews/{review}` as poem-openapi registers it with poem's router,
/// and so as a matched route's pattern reads: `/services/:param0/reviews/:param1`.
fn poem_path(path: &str) -> String {
    let mut params = 0;
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                params += 1;
                format!(":param{}", params - 1)
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What a valid value of `schema` is, as a sentence ending a field name.
fn describe(schema: &Value, schemas: &Value) -> String {
    let schema = resolve(schema, schemas);
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        return format!("must be one of: {}", values.join(", "));
    }
    let range = match (schema["minimum"].as_f64(), schema["maximum"].as_f64()) {
        (Some(min), Some(max)) => format!(" from {min} to {max}"),
        (Some(min), None) => format!(" of at least {min}"),
        (None, Some(max)) => format!(" of at most {max}"),
        (None, None) => String::new(),
    };
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("integer"), _) => format!("must be an integer{range}"),
        (Some("number"), _) => format!("must be a number{range}"),
        (Some("boolean"), _) => "must be true or false".to_owned(),
        (_, Some("uuid")) => "must be a UUID".to_owned(),
        (_, Some("date-time")) => "must be an RFC 3339 date-time".to_owned(),
        _ => "is not a valid value".to_owned(),
    }
}

/// Follows a `$ref`, or the first part of an `allOf` (how a described reference is
/// written), to the schema that says what the value is.
fn resolve<'a>(schema: &'a Value, schemas: &'a Value) -> &'a Value {
    if let Some(name) = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        return &schemas[name];
    }
    match schema["allOf"].as_array().and_then(|parts| parts.first()) {
        Some(first) if schema["type"].is_null() => resolve(first, schemas),
        _ => schema,
    }
}

/// The `Allow` header of a 405 on `pattern` (a route as poem matched it).
pub fn allowed_methods(pattern: &str) -> Option<&'static str> {
    INDEX.get(pattern).map(|entry| entry.allow.as_str())
}

/// Whether `status` is one the operation `method` `pattern` documents; true where the
/// document has no such operation (a 405, a preflight: nothing to hold to).
pub fn documents(pattern: &str, method: &str, status: u16) -> bool {
    // poem answers HEAD with its GET route.
    let method = if method == "HEAD" { "GET" } else { method };
    INDEX
        .get(pattern)
        .and_then(|entry| entry.statuses.get(method))
        .is_none_or(|statuses| statuses.contains(&status))
}

/// What is wrong with parameter `name` on `pattern`, when it could not be parsed.
pub fn parameter_message(pattern: Option<&str>, name: &str) -> &'static str {
    pattern
        .and_then(|pattern| INDEX.get(pattern))
        .and_then(|entry| entry.params.get(name))
        .map_or("is not a valid value", String::as_str)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn indexes_methods_and_parameters_by_poem_path() {
        let document = json!({
            "paths": {"/things/{id}": {
                "get": {"parameters": [
                    {"name": "sort", "schema": {"$ref": "#/components/schemas/Sort"}},
                    {"name": "limit", "schema": {"type": "integer", "minimum": 1.0}},
                    {"name": "id", "schema": {"type": "string", "format": "uuid"}}
                ], "responses": {"200": {}, "404": {}}},
                "delete": {}
            }},
            "components": {"schemas": {"Sort": {"type": "string", "enum": ["new", "old"]}}}
        });
        let index = index(&document);
        let entry = &index["/things/:param0"];
        assert_eq!(entry.allow, "DELETE, GET, HEAD");
        assert_eq!(entry.params["sort"], "must be one of: new, old");
        assert_eq!(entry.params["limit"], "must be an integer of at least 1");
        assert_eq!(entry.params["id"], "must be a UUID");
        assert_eq!(entry.statuses["GET"], [200, 404]);
        assert!(entry.statuses["DELETE"].is_empty());
    }

    #[test]
    fn the_published_document_is_indexed() {
        assert!(allowed_methods("/api/v1/auth/login").is_some_and(|allow| allow.contains("POST")));
        assert!(documents("/api/v1/jobs/:param0", "GET", 404));
        assert!(documents("/api/v1/jobs/:param0", "HEAD", 200));
        assert!(!documents("/api/v1/jobs/:param0", "GET", 409));
        assert!(documents("/api/v1/jobs/:param0", "PUT", 405));
    }
}
