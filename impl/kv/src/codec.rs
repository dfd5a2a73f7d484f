//! The codec of commands, answers, snapshots and the wire types: postcard (compact, varint-encoded
//! integers), the codec of the rest of the project.

use serde::{de::DeserializeOwned, Serialize};

/// Bytes that are no encoding of the type asked for.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Truncated or malformed.
    #[error("malformed: {0}")]
    Malformed(#[from] postcard::Error),
    /// A valid value followed by more bytes.
    #[error("{0} bytes after the value")]
    TrailingBytes(usize),
}

/// Encodes `value`.
///
/// # Panics
///
/// Only if `T`'s `Serialize` fails, which this crate's types never do.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encodes any value in memory")
}

/// Decodes the whole of `bytes` as a `T`. Any bytes give a value or an error, never a panic.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match postcard::take_from_bytes(bytes)? {
        (value, []) => Ok(value),
        (_, rest) => Err(CodecError::TrailingBytes(rest.len())),
    }
}
