//! The framing every file of the storage uses: a record is its payload's length (u32, little-endian), the
//! CRC32C of the payload (u32, little-endian), then the payload, a postcard-encoded value.

use raft::{Entry, Index, NodeId, Term};
use serde::{Deserialize, Serialize};

/// The format of the files; a file of another format is refused.
pub const FORMAT: u32 = 1;

/// Bytes before a record's payload.
pub const HEADER: usize = 8;

/// The largest payload a record may declare: a length past it is damage, not a record.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// Who a data directory belongs to: every segment and snapshot file names its cluster and node, so that a
/// file from another cluster or node is refused rather than loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The cluster's id.
    pub cluster: u64,
    /// This node's id.
    pub node: NodeId,
}

/// A record of the write-ahead log, as written (borrowing what it writes) and as read back ([`Record`]);
/// the two encode alike.
#[derive(Serialize)]
pub enum RecordRef<'a> {
    /// The first record of every segment: whose segment it is, and the whole state at its start, so that a
    /// segment can be replayed without the ones before it.
    Checkpoint {
        format: u32,
        identity: Identity,
        hard: (Term, Option<NodeId>),
        snapshot: (Index, Term),
        log: &'a [Entry],
    },
    /// What one save changed.
    Batch {
        hard: Option<(Term, Option<NodeId>)>,
        snapshot: Option<(Index, Term)>,
        entries: Option<(Index, &'a [Entry])>,
    },
}

/// A record of the write-ahead log, read back.
#[derive(Debug, Deserialize)]
pub enum Record {
    /// See [`RecordRef::Checkpoint`].
    Checkpoint {
        format: u32,
        identity: Identity,
        hard: (Term, Option<NodeId>),
        snapshot: (Index, Term),
        log: Vec<Entry>,
    },
    /// See [`RecordRef::Batch`]: the term and vote, if they changed; the snapshot's last index and term, if
    /// it changed (entries through it leave the log); the entries from an index on, replacing the log's.
    Batch {
        hard: Option<(Term, Option<NodeId>)>,
        snapshot: Option<(Index, Term)>,
        entries: Option<(Index, Vec<Entry>)>,
    },
}

/// The snapshot file, as written.
#[derive(Serialize)]
pub struct SnapshotRef<'a> {
    pub format: u32,
    pub identity: Identity,
    pub index: Index,
    pub term: Term,
    pub data: &'a [u8],
}

/// The snapshot file, as read back.
#[derive(Debug, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub identity: Identity,
    pub index: Index,
    pub term: Term,
    pub data: Vec<u8>,
}

/// `value` framed as a record.
pub fn frame(value: &impl Serialize) -> Vec<u8> {
    let payload = postcard::to_stdvec(value).expect("records always encode");
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Why the bytes at an offset are not a whole record.
#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    /// The file ends inside the record (or its header).
    Short,
    /// The length is impossible (zero, or past [`MAX_PAYLOAD`]).
    Length(u32),
    /// The payload does not match its checksum.
    Checksum,
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Short => write!(f, "the file ends inside a record"),
            Bad::Length(len) => write!(f, "impossible record length {len}"),
            Bad::Checksum => write!(f, "checksum mismatch"),
        }
    }
}

/// The record at `offset` of `bytes`: its payload and the offset after it.
pub fn unframe(bytes: &[u8], offset: usize) -> Result<(&[u8], usize), Bad> {
    let header = bytes.get(offset..offset + HEADER).ok_or(Bad::Short)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("four bytes"));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("four bytes"));
    if len == 0 || len as usize > MAX_PAYLOAD {
        return Err(Bad::Length(len));
    }
    let start = offset + HEADER;
    let payload = bytes.get(start..start + len as usize).ok_or(Bad::Short)?;
    if crc32c::crc32c(payload) != crc {
        return Err(Bad::Checksum);
    }
    Ok((payload, start + len as usize))
}

/// Whether a bad record at `offset` can be the torn tail of the last write: nothing valid follows it. A
/// record whose header is readable is skipped by its declared length; if a whole, valid record starts
/// there, the damage is in the middle of the file.
pub fn is_torn_tail(bytes: &[u8], offset: usize) -> bool {
    let Some(header) = bytes.get(offset..offset + HEADER) else {
        return true;
    };
    let len = u32::from_le_bytes(header[..4].try_into().expect("four bytes")) as usize;
    let next = offset + HEADER + len;
    len == 0 || next >= bytes.len() || unframe(bytes, next).is_err()
}
