//! `Patch<T>`: what a PATCH body asks of one field, without the HTTP layer's types.
//!
//! Routes turn poem-openapi's `MaybeUndefined` into this once, so services (and any
//! other caller: a CLI, a background task) speak in domain terms.

use poem_openapi::types::MaybeUndefined;

/// One field of a partial update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// The field was absent: leave it alone.
    #[default]
    Keep,
    /// The field was `null`: clear it (or refuse, for a required field).
    Clear,
    /// The field was given: set it.
    Set(T),
}

impl<T> Patch<T> {
    /// The new value, if one is set.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Set(value) => Some(value),
            Self::Keep | Self::Clear => None,
        }
    }
}

impl<T> From<MaybeUndefined<T>> for Patch<T> {
    fn from(value: MaybeUndefined<T>) -> Self {
        match value {
            MaybeUndefined::Undefined => Self::Keep,
            MaybeUndefined::Null => Self::Clear,
            MaybeUndefined::Value(value) => Self::Set(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_absent_null_and_value() {
        assert_eq!(Patch::<i32>::from(MaybeUndefined::Undefined), Patch::Keep);
        assert_eq!(Patch::<i32>::from(MaybeUndefined::Null), Patch::Clear);
        assert_eq!(Patch::from(MaybeUndefined::Value(3)), Patch::Set(3));
        assert_eq!(Patch::Set(3).value(), Some(&3));
        assert_eq!(Patch::<i32>::Clear.value(), None);
    }
}
