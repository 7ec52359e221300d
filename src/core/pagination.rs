//! Keyset pagination: bounded page sizes and opaque, tamper-proof cursors.
//!
//! A cursor is the position of the last row served — its sort key and id — as compact
//! JSON, followed by a truncated HMAC-SHA256 under a key derived from the server secret,
//! base64url-encoded. Anything that does not verify is a 400 `bad_cursor`; a cursor
//! can never smuggle a value into a query the server did not put there itself.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use poem_openapi::{
    Object,
    types::{ParseFromJSON, ToJSON, Type},
};
use serde::{Serialize, de::DeserializeOwned};
use sha2::Sha256;

use crate::{config::Secret, error::AppError};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
/// Bytes of the MAC kept in a cursor: forging one means guessing 96 bits.
const MAC_BYTES: usize = 12;

/// `?limit=`: 20 when absent, clamped to 100; below 1 is a 422.
pub fn limit(requested: Option<i64>) -> Result<i64, AppError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if n < 1 => {
            Err(crate::error::FieldError::new("limit", "must be at least 1").into())
        }
        Some(n) => Ok(n.min(MAX_LIMIT)),
    }
}

/// One page of a list.
#[derive(Debug, Object, serde::Serialize)]
pub struct Page<T: ParseFromJSON + ToJSON + Type> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// Signs and verifies cursors.
pub struct Cursors {
    key: Vec<u8>,
}

impl Cursors {
    pub fn new(secret: &Secret) -> Self {
        // Domain-separated from the JWT use of the same secret.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"marketplace cursor key v1");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
    }

    pub fn encode<P: Serialize>(&self, position: &P) -> Result<String, AppError> {
        let mut bytes = serde_json::to_vec(position).map_err(AppError::internal)?;
        let mut mac = self.mac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes()[..MAC_BYTES]);
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn decode<P: DeserializeOwned>(&self, cursor: &str) -> Result<P, AppError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| AppError::BadCursor)?;
        if bytes.len() <= MAC_BYTES {
            return Err(AppError::BadCursor);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_BYTES);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_truncated_left(tag)
            .map_err(|_| AppError::BadCursor)?;
        serde_json::from_slice(payload).map_err(|_| AppError::BadCursor)
    }

    /// Decodes an optional `?cursor=`.
    pub fn decode_opt<P: DeserializeOwned>(
        &self,
        cursor: Option<&str>,
    ) -> Result<Option<P>, AppError> {
        cursor.map(|c| self.decode(c)).transpose()
    }
}

/// Cuts a `limit + 1` fetch to `limit` rows and derives the next cursor from the last.
pub fn paginate<R, T, P: Serialize>(
    cursors: &Cursors,
    mut rows: Vec<R>,
    limit: i64,
    position: impl Fn(&R) -> P,
    into_item: impl FnMut(R) -> T,
) -> Result<Page<T>, AppError>
where
    T: ParseFromJSON + ToJSON + Type,
{
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last()
            .map(|last| cursors.encode(&position(last)))
            .transpose()?
    } else {
        None
    };
    Ok(Page {
        items: rows.into_iter().map(into_item).collect(),
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cursors() -> Cursors {
        Cursors::new(&Secret::new("s".repeat(32)))
    }

    #[test]
    fn limits_default_clamp_and_reject() {
        assert_eq!(limit(None).expect("default"), 20);
        assert_eq!(limit(Some(1000)).expect("clamped"), 100);
        assert_eq!(limit(Some(5)).expect("kept"), 5);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(-3)).is_err());
    }

    #[test]
    fn round_trip() {
        let c = cursors();
        let position = (1234_i64, uuid::Uuid::now_v7());
        let encoded = c.encode(&position).expect("encode");
        assert_eq!(
            c.decode::<(i64, uuid::Uuid)>(&encoded).expect("decode"),
            position
        );
    }

    #[test]
    fn other_keys_and_garbage_are_bad_cursors() {
        let encoded = cursors()
            .encode(&(1_i64, uuid::Uuid::nil()))
            .expect("encode");
        let other = Cursors::new(&Secret::new("t".repeat(32)));
        assert!(matches!(
            other.decode::<(i64, uuid::Uuid)>(&encoded),
            Err(AppError::BadCursor)
        ));
        for garbage in ["", "!!!", "AAAA", "eyJ4IjoxfQ"] {
            assert!(matches!(
                cursors().decode::<(i64, uuid::Uuid)>(garbage),
                Err(AppError::BadCursor)
            ));
        }
    }

    proptest! {
        #[test]
        fn any_tampering_is_a_bad_cursor(flip in 0usize..64, bit in 0u8..8) {
            let c = cursors();
            let encoded = c.encode(&(42_i64, uuid::Uuid::nil())).expect("encode");
            let mut bytes = URL_SAFE_NO_PAD.decode(&encoded).expect("b64");
            let at = flip % bytes.len();
            bytes[at] ^= 1 << bit;
            let tampered = URL_SAFE_NO_PAD.encode(bytes);
            prop_assert!(matches!(c.decode::<(i64, uuid::Uuid)>(&tampered), Err(AppError::BadCursor)));
        }
    }
}
