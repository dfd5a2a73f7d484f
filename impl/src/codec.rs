//! The one binary codec for messages and persisted state: postcard (compact, varint-encoded integers).

use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;

/// Decoding failed: the bytes are not a valid encoding of the requested type.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The bytes are truncated or malformed.
    #[error("malformed input: {0}")]
    Malformed(#[from] postcard::Error),
    /// A valid value was followed by unread bytes (a framing error on the caller's side).
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// Encodes a value with the crate's codec.
///
/// # Panics
///
/// Only if `T`'s `Serialize` implementation itself fails, which never happens for this crate's types.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard serialization of an in-memory value cannot fail")
}

/// Decodes a value encoded by [`encode`]. Arbitrary (untrusted) bytes yield an error, never a panic, and the
/// whole input must be consumed.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    Ok(value)
}
