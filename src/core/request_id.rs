//! The request id: the client's own when it is safe to log and echo, a fresh one otherwise
//! (the [`edge`](crate::core::edge) puts it on the span and in `X-Request-Id`).

use poem::http::HeaderName;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, echoed in `X-Request-Id` and on every log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// Accepts a client's id when it is 1-128 characters of `[A-Za-z0-9._-]`, so it is
    /// safe to log and echo; anything else gets a fresh id instead.
    pub fn from_client(value: &[u8]) -> Option<Self> {
        let valid = (1..=128).contains(&value.len())
            && value
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        // The bytes were just checked to be ASCII.
        valid.then(|| Self(String::from_utf8_lossy(value).into_owned()))
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_safe_ids_only() {
        assert!(RequestId::from_client(b"abc-123_x.y").is_some());
        assert!(RequestId::from_client(b"").is_none());
        assert!(RequestId::from_client(&[b'a'; 129]).is_none());
        assert!(RequestId::from_client(b"a b").is_none());
        assert!(RequestId::from_client("é".as_bytes()).is_none());
    }

    proptest! {
        #[test]
        fn accepted_ids_are_exactly_the_allowed_alphabet(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let allowed = !bytes.is_empty() && bytes.len() <= 128
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b));
            prop_assert_eq!(RequestId::from_client(&bytes).is_some(), allowed);
        }
    }
}
