//! Checks a JSON request body against the schema the OpenAPI document declares for it.
//!
//! poem-openapi's own parsing stops at the first problem, names the Rust type rather
//! than the field (`Expected input type "UserRole", found "superuser"`) and coerces a
//! number into a string. A client that generated its types from our document and shows
//! our 422s beside form fields needs every problem of a body at once, each under its
//! JSON path (`slots[2].start`, `location.lat`) with a sentence a person can act on.
//!
//! The check walks the very schema the document publishes (the types' poem-openapi
//! registry), so what is refused is exactly what the document forbids: a constraint
//! declared on a field (`#[oai(validator(...))]`, an enum, `nullable`) is enforced by
//! being declared, for every route that takes a [`JsonBody`](crate::core::json::JsonBody),
//! now and later. Unknown fields are ignored, as the contract says.

use std::{
    any::TypeId,
    collections::HashMap,
    sync::{LazyLock, RwLock},
};

use poem_openapi::{
    registry::{MetaDiscriminatorObject, MetaSchema, MetaSchemaRef, Registry},
    types::Type,
};
use serde_json::Value;

use crate::{core::validate::NUL_MESSAGE, error::FieldError};

/// The schema of one body type and every schema it refers to.
pub struct BodySchema {
    registry: Registry,
    root: MetaSchemaRef,
}

/// Built once per body type: registering walks every nested type.
static SCHEMAS: LazyLock<RwLock<HashMap<TypeId, &'static BodySchema>>> =
    LazyLock::new(Default::default);

impl BodySchema {
    /// The schema of `T`, as the OpenAPI document describes it.
    pub fn of<T: Type + 'static>() -> &'static Self {
        let key = TypeId::of::<T>();
        if let Some(schema) = SCHEMAS.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return schema;
        }
        let mut registry = Registry::new();
        T::register(&mut registry);
        let schema: &'static Self = Box::leak(Box::new(Self {
            registry,
            root: T::schema_ref(),
        }));
        SCHEMAS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(schema)
    }

    /// Whether `{}` is a valid body, so that an empty body (an action endpoint's) may
    /// stand for it.
    pub fn accepts_empty_object(&self) -> bool {
        self.check(&Value::Object(serde_json::Map::new()))
            .is_empty()
    }

    /// Every problem of `value`, each under its JSON path; empty when it conforms.
    pub fn check(&self, value: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.visit(&self.root, value, &mut String::new(), &mut errors);
        errors
    }

    fn resolve<'a>(&'a self, schema: &'a MetaSchemaRef) -> Option<&'a MetaSchema> {
        match schema {
            MetaSchemaRef::Inline(schema) => Some(schema),
            MetaSchemaRef::Reference(name) => self.registry.schemas.get(name),
        }
    }

    fn nullable(&self, schema: &MetaSchema) -> bool {
        schema.nullable
            || schema
                .all_of
                .iter()
                .filter_map(|part| self.resolve(part))
                .any(|part| self.nullable(part))
    }

    fn visit(
        &self,
        schema: &MetaSchemaRef,
        value: &Value,
        path: &mut String,
        errors: &mut Vec<FieldError>,
    ) {
        // A reference this registry lacks cannot happen (registering is recursive);
        // were it to, the type's own parsing still runs after this check.
        let Some(schema) = self.resolve(schema) else {
            return;
        };
        let mut fail = |message: String| errors.push(FieldError::new(path.as_str(), message));
        if value.is_null() {
            if !self.nullable(schema) && !schema.is_empty() {
                fail("must not be null".to_owned());
            }
            return;
        }
        if !schema.all_of.is_empty() {
            for part in &schema.all_of {
                self.visit(part, value, path, errors);
            }
            return;
        }
        if let Some(discriminator) = &schema.discriminator {
            self.visit_tagged(discriminator, value, path, errors);
            return;
        }
        if !schema.one_of.is_empty() || !schema.any_of.is_empty() {
            let matches = schema
                .one_of
                .iter()
                .chain(&schema.any_of)
                .any(|option| self.conforms(option, value));
            if !matches {
                fail("does not match any of the allowed shapes".to_owned());
            }
            return;
        }
        if !schema.enum_items.is_empty() {
            if !schema.enum_items.contains(value) {
                fail(format!("must be one of: {}", list(&schema.enum_items)));
            }
            return;
        }
        match schema.ty {
            "object" => self.visit_object(schema, value, path, errors),
            "array" => self.visit_array(schema, value, path, errors),
            "string" => match value.as_str() {
                Some(text) => check_string(schema, text).map_or((), fail),
                None => fail("expected a string".to_owned()),
            },
            "integer" => match value.as_i64() {
                Some(number) => check_range(schema, number as f64).map_or((), fail),
                None if value.is_u64() => fail(out_of_range(schema)),
                None => fail("expected an integer".to_owned()),
            },
            "number" => match value.as_f64() {
                Some(number) => check_range(schema, number).map_or((), fail),
                None => fail("expected a number".to_owned()),
            },
            "boolean" if !value.is_boolean() => fail("expected true or false".to_owned()),
            _ => {}
        }
    }

    /// A union told apart by a property (`"type": "send"`): checked as the variant it
    /// names, so its fields are named one by one; an unknown tag names the property.
    fn visit_tagged(
        &self,
        discriminator: &MetaDiscriminatorObject,
        value: &Value,
        path: &mut String,
        errors: &mut Vec<FieldError>,
    ) {
        let Some(fields) = value.as_object() else {
            errors.push(FieldError::new(path.as_str(), "expected an object"));
            return;
        };
        let tag = fields
            .get(discriminator.property_name)
            .and_then(Value::as_str);
        let variant = discriminator
            .mapping
            .iter()
            .find(|(name, _)| Some(name.as_str()) == tag);
        match variant {
            Some((_, reference)) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                self.visit(
                    &MetaSchemaRef::Reference(name.to_owned()),
                    value,
                    path,
                    errors,
                );
            }
            None => {
                let names: Vec<&str> = discriminator
                    .mapping
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect();
                let field = match path.is_empty() {
                    true => discriminator.property_name.to_owned(),
                    false => format!("{path}.{}", discriminator.property_name),
                };
                errors.push(FieldError::new(
                    field,
                    format!("must be one of: {}", names.join(", ")),
                ));
            }
        }
    }

    fn conforms(&self, schema: &MetaSchemaRef, value: &Value) -> bool {
        let mut errors = Vec::new();
        self.visit(schema, value, &mut String::new(), &mut errors);
        errors.is_empty()
    }

    fn visit_object(
        &self,
        schema: &MetaSchema,
        value: &Value,
        path: &mut String,
        errors: &mut Vec<FieldError>,
    ) {
        let Some(fields) = value.as_object() else {
            errors.push(FieldError::new(path.as_str(), "expected an object"));
            return;
        };
        for (name, property) in &schema.properties {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(name);
            match fields.get(*name) {
                Some(field) => self.visit(property, field, path, errors),
                None if schema.required.contains(name) => {
                    errors.push(FieldError::new(path.as_str(), "is required"));
                }
                None => {}
            }
            path.truncate(len);
        }
        if let Some(values) = &schema.additional_properties {
            for (key, field) in fields {
                let len = path.len();
                if key.contains('\0') {
                    errors.push(FieldError::new(path.as_str(), NUL_MESSAGE));
                    continue;
                }
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                self.visit(values, field, path, errors);
                path.truncate(len);
            }
        }
    }

    fn visit_array(
        &self,
        schema: &MetaSchema,
        value: &Value,
        path: &mut String,
        errors: &mut Vec<FieldError>,
    ) {
        let Some(items) = value.as_array() else {
            errors.push(FieldError::new(path.as_str(), "expected an array"));
            return;
        };
        if let Some(min) = schema.min_items.filter(|min| items.len() < *min) {
            errors.push(FieldError::new(
                path.as_str(),
                format!("must have at least {min} item(s)"),
            ));
        }
        if let Some(max) = schema.max_items.filter(|max| items.len() > *max) {
            errors.push(FieldError::new(
                path.as_str(),
                format!("must have at most {max} item(s)"),
            ));
        }
        if schema.unique_items == Some(true) {
            let duplicate = items
                .iter()
                .enumerate()
                .any(|(i, item)| items[..i].contains(item));
            if duplicate {
                errors.push(FieldError::new(path.as_str(), "must not repeat an item"));
            }
        }
        if let Some(item_schema) = &schema.items {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                self.visit(item_schema, item, path, errors);
                path.truncate(len);
            }
        }
    }
}

/// `a, b, c` from an enum's values.
fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(|value| match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pattern text fields declare for "not only whitespace" (services trim them).
const NOT_BLANK: &str = r"\S";

/// Length (in characters, as JSON Schema counts), pattern and format of a string.
fn check_string(schema: &MetaSchema, text: &str) -> Option<String> {
    if text.contains('\0') {
        return Some(NUL_MESSAGE.to_owned());
    }
    let chars = text.chars().count();
    match (schema.min_length, schema.max_length) {
        (Some(min), Some(max)) if chars < min || chars > max => {
            return Some(format!("must be {min} to {max} characters"));
        }
        (Some(min), None) if chars < min => {
            return Some(format!("must be at least {min} character(s)"));
        }
        (None, Some(max)) if chars > max => {
            return Some(format!("must be at most {max} characters"));
        }
        _ => {}
    }
    if let Some(pattern) = &schema.pattern
        && matches_pattern(pattern, text) == Some(false)
    {
        return Some(if pattern == NOT_BLANK {
            "must not be blank".to_owned()
        } else {
            format!("must match the pattern {pattern}")
        });
    }
    match schema.format {
        Some("uuid") if uuid::Uuid::parse_str(text).is_err() => Some("expected a UUID".to_owned()),
        Some("email") if !email_address::EmailAddress::is_valid(text) => {
            Some("must be a valid email address".to_owned())
        }
        Some("date-time") if chrono::DateTime::parse_from_rfc3339(text).is_err() => {
            Some("expected an RFC 3339 date-time such as 2026-01-31T09:30:00Z".to_owned())
        }
        _ => None,
    }
}

/// Whether `text` matches `pattern`, compiled once per pattern; `None` if it does not
/// compile (poem-openapi compiles every declared pattern first, so it always does).
fn matches_pattern(pattern: &str, text: &str) -> Option<bool> {
    static COMPILED: LazyLock<RwLock<HashMap<String, regex::Regex>>> =
        LazyLock::new(Default::default);
    if let Some(re) = COMPILED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(pattern)
    {
        return Some(re.is_match(text));
    }
    let re = regex::Regex::new(pattern).ok()?;
    let matched = re.is_match(text);
    COMPILED
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pattern.to_owned(), re);
    Some(matched)
}

fn check_range(schema: &MetaSchema, number: f64) -> Option<String> {
    let below = schema.minimum.is_some_and(|min| {
        number < min || (schema.exclusive_minimum == Some(true) && number == min)
    });
    let above = schema.maximum.is_some_and(|max| {
        number > max || (schema.exclusive_maximum == Some(true) && number == max)
    });
    (below || above).then(|| out_of_range(schema))
}

fn out_of_range(schema: &MetaSchema) -> String {
    let bound = |value: f64, exclusive: Option<bool>, inclusive: &str, strict: &str| {
        let word = if exclusive == Some(true) {
            strict
        } else {
            inclusive
        };
        format!("{word} {value}")
    };
    let min = schema
        .minimum
        .map(|min| bound(min, schema.exclusive_minimum, "at least", "greater than"));
    let max = schema
        .maximum
        .map(|max| bound(max, schema.exclusive_maximum, "at most", "less than"));
    match (min, max) {
        (Some(min), Some(max)) => format!("must be {min} and {max}"),
        (Some(bound), None) | (None, Some(bound)) => format!("must be {bound}"),
        (None, None) => "is out of range".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::{Enum, Object, types::MaybeUndefined};
    use serde_json::json;

    use super::*;

    #[derive(Enum)]
    #[oai(rename_all = "snake_case")]
    enum Role {
        Client,
        Worker,
    }

    #[derive(Object)]
    struct Slot {
        #[oai(validator(minimum(value = "0"), maximum(value = "6")))]
        weekday: i32,
        #[oai(validator(pattern = r"^\d\d:\d\d$"))]
        start: String,
    }

    #[derive(Object)]
    struct Body {
        #[oai(validator(min_length = 8, max_length = 128))]
        password: String,
        role: Role,
        slots: Vec<Slot>,
        #[oai(nullable)]
        note: MaybeUndefined<String>,
        city: Option<String>,
    }

    fn errors(value: Value) -> Vec<(String, String)> {
        BodySchema::of::<Body>()
            .check(&value)
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    fn pair(field: &str, message: &str) -> (String, String) {
        (field.to_owned(), message.to_owned())
    }

    #[test]
    fn a_valid_body_has_no_errors() {
        let body = json!({"password": "long enough", "role": "worker",
            "slots": [{"weekday": 6, "start": "09:00"}], "note": null, "ignored": 1});
        assert_eq!(errors(body), vec![]);
    }

    #[test]
    fn every_problem_is_reported_under_its_path() {
        let body = json!({"password": 12345678, "role": "superuser",
            "slots": [{"weekday": 1, "start": "09:00"}, {"weekday": 7, "start": "9h"}, {}],
            "city": null});
        assert_eq!(
            errors(body),
            vec![
                pair("password", "expected a string"),
                pair("role", "must be one of: client, worker"),
                pair("slots[1].weekday", "must be at least 0 and at most 6"),
                pair("slots[1].start", r"must match the pattern ^\d\d:\d\d$"),
                pair("slots[2].weekday", "is required"),
                pair("slots[2].start", "is required"),
                pair("city", "must not be null"),
            ]
        );
    }

    #[test]
    fn missing_fields_and_wrong_containers_are_named() {
        assert_eq!(
            errors(json!({"password": "x", "slots": {}})),
            vec![
                pair("password", "must be 8 to 128 characters"),
                pair("role", "is required"),
                pair("slots", "expected an array"),
            ]
        );
        assert_eq!(errors(json!([])), vec![pair("", "expected an object")]);
        assert!(!BodySchema::of::<Body>().accepts_empty_object());
    }

    #[test]
    fn numbers_are_not_coerced_and_nul_is_refused() {
        let body = json!({"password": "a\u{0}bcdefgh", "role": "client",
            "slots": [{"weekday": 1.5, "start": "09:00"}, {"weekday": "1", "start": "09:00"}]});
        assert_eq!(
            errors(body),
            vec![
                pair("password", NUL_MESSAGE),
                pair("slots[0].weekday", "expected an integer"),
                pair("slots[1].weekday", "expected an integer"),
            ]
        );
    }
}
