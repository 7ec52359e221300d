//! Small field validators shared by every module's services.

use std::ops::RangeInclusive;

use crate::error::{AppError, FieldError};

/// Why text with a NUL character is refused (PostgreSQL cannot store it).
pub const NUL_MESSAGE: &str = "must not contain NUL characters";

/// Refuses text PostgreSQL could not store, for values that arrive outside a JSON body
/// (query parameters, form fields); JSON bodies are checked as they are parsed.
pub fn storable(field: &str, value: &str) -> Result<(), FieldError> {
    if value.contains('\0') {
        Err(FieldError::new(field, NUL_MESSAGE))
    } else {
        Ok(())
    }
}

/// A moderation reason (suspension, rejection, hiding): trimmed, 1 to 1000 characters.
pub fn moderation_reason(raw: &str) -> Result<&str, FieldError> {
    let reason = raw.trim();
    if (1..=1000).contains(&reason.chars().count()) {
        Ok(reason)
    } else {
        Err(FieldError::new("reason", "must be 1 to 1000 characters"))
    }
}

/// `value` trimmed, if its length in characters (not bytes) is within `chars`.
pub fn trimmed(
    field: &str,
    value: &str,
    chars: RangeInclusive<usize>,
) -> Result<String, FieldError> {
    let value = value.trim();
    if chars.contains(&value.chars().count()) {
        Ok(value.to_owned())
    } else {
        Err(FieldError::new(
            field,
            format!("must be {} to {} characters", chars.start(), chars.end()),
        ))
    }
}

/// Every field error of a request at once (a form shows them together), or `Ok`.
pub fn all_valid(checks: impl IntoIterator<Item = Option<FieldError>>) -> Result<(), AppError> {
    let errors: Vec<FieldError> = checks.into_iter().flatten().collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::invalid_fields(errors))
    }
}

/// Longest substring query accepted, in characters.
const MAX_QUERY_CHARS: usize = 100;

/// A search text `q` (sent as `field`) as an `ILIKE` pattern matching it literally
/// anywhere: `%`, `_` and the escape character `\` (PostgreSQL's default) are escaped.
/// Blank is no filter; over 100 characters or a NUL is a 422.
pub fn substring_pattern(field: &str, q: &str) -> Result<Option<String>, FieldError> {
    let q = q.trim();
    if q.chars().count() > MAX_QUERY_CHARS || q.contains('\0') {
        return Err(FieldError::new(
            field,
            "must be at most 100 characters, without NUL",
        ));
    }
    if q.is_empty() {
        return Ok(None);
    }
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(Some(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_literally() {
        assert_eq!(substring_pattern("q", "  ").expect("blank"), None);
        assert_eq!(
            substring_pattern("q", " Ann ").expect("plain").as_deref(),
            Some("%Ann%")
        );
        assert_eq!(
            substring_pattern("q", r"50%_a\b")
                .expect("wildcards")
                .as_deref(),
            Some(r"%50\%\_a\\b%")
        );
        assert!(substring_pattern("q", "a\0b").is_err());
        assert!(substring_pattern("q", &"é".repeat(100)).is_ok());
        assert!(substring_pattern("q", &"é".repeat(101)).is_err());
    }

    #[test]
    fn trims_and_counts_characters() {
        assert_eq!(trimmed("f", "  ab ", 1..=2).as_deref(), Ok("ab"));
        assert!(trimmed("f", "   ", 1..=2).is_err());
        assert_eq!(trimmed("f", "", 0..=2).as_deref(), Ok(""));
        assert!(trimmed("f", "ééé", 1..=2).is_err());
        assert_eq!(trimmed("f", "éé", 1..=2).as_deref(), Ok("éé"));
    }
}
