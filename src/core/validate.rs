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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_counts_characters() {
        assert_eq!(trimmed("f", "  ab ", 1..=2).as_deref(), Ok("ab"));
        assert!(trimmed("f", "   ", 1..=2).is_err());
        assert_eq!(trimmed("f", "", 0..=2).as_deref(), Ok(""));
        assert!(trimmed("f", "ééé", 1..=2).is_err());
        assert_eq!(trimmed("f", "éé", 1..=2).as_deref(), Ok("éé"));
    }
}
