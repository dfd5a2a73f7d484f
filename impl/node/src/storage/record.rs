//! The framing every file of the storage uses. A record is a header of [`HEADER`] bytes, then its payload (a
//! postcard-encoded value):
//!
//! | bytes  | field                                                                             |
//! |--------|-----------------------------------------------------------------------------------|
//! | 0..4   | the payload's length (u32, little-endian)                                         |
//! | 4..12  | the record's sequence number in its file (u64, little-endian; 0 is the first)     |
//! | 12..16 | the CRC32C of the payload                                                         |
//! | 16..20 | the CRC32C of the file's number (u64, little-endian) followed by bytes 0..16      |
//!
//! The header's own checksum covers the length, so a damaged length is seen as damage, never trusted to say
//! where the next record starts; and it covers the record's [`Place`] (the file's number and the sequence
//! number), so a record of another segment, or one out of its place, cannot pass for the one expected there.
//!
//! A bad record at the end of the last segment is the torn tail of a save that never returned only if it
//! looks like one ([`is_torn_tail`]): nothing valid follows it anywhere in the file, and its damage is what a
//! crash does (the file ends inside it, or a sector of it reads back as zeros), not a flipped bit.

use raft::{Entry, Index, Membership, NodeId, Term};
use serde::{Deserialize, Serialize};

/// The format of the files; a file of another format is refused.
pub const FORMAT: u32 = 4;

/// Bytes before a record's payload.
pub const HEADER: usize = 20;

/// The largest payload a record may have: a writer refuses to write more, a reader takes a longer length
/// as damage.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// The unit a disk writes atomically; a crash can leave a sector of unsynced bytes reading as zeros.
pub const SECTOR: usize = 512;

/// The number the snapshot file's record is tied to (segments use their own numbers, which never reach it).
pub const SNAPSHOT_FILE: u64 = u64::MAX;

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
    /// The first record of every segment: whose segment it is, and the whole state at its start (its log
    /// continued by the batches that follow, if it is too large for one record), so that a segment can be
    /// replayed without the ones before it.
    Checkpoint {
        /// The format of the file, [`FORMAT`] when written; replay refuses a segment of another format.
        format: u32,
        /// The cluster and node the segment belongs to; replay refuses a segment of another cluster or node.
        identity: Identity,
        /// The current term and the vote cast in it (`None`: no vote), at the segment's start.
        hard: (Term, Option<NodeId>),
        /// The index and term of the last entry the snapshot covers.
        snapshot: (Index, Term),
        /// The configuration in force at the snapshot's index (see [`raft::PersistentState::membership`]).
        membership: &'a Membership,
        /// The log's entries from the one after the snapshot's index on: all of them, or only the first run
        /// of them if the rest do not fit, which then follows in [`RecordRef::Batch`] records.
        log: &'a [Entry],
    },
    /// What one save changed (or a part of it, if it is too large for one record).
    Batch {
        /// The new current term and vote (`None`: unchanged).
        hard: Option<(Term, Option<NodeId>)>,
        /// The snapshot's new last index and term (`None`: unchanged): replay drops the entries through that
        /// index from the log, and keeps the ones after it only if the log holds that entry with that term.
        snapshot: Option<(Index, Term)>,
        /// The new configuration in force at the snapshot's index (`None`: unchanged).
        membership: Option<&'a Membership>,
        /// An index and the entries from it on (`None`: no entries): replay drops the log's entries from
        /// that index on and appends these.
        entries: Option<(Index, &'a [Entry])>,
    },
}

/// A record of the write-ahead log, read back.
#[derive(Debug, Deserialize)]
pub enum Record {
    /// See [`RecordRef::Checkpoint`].
    Checkpoint {
        /// The format of the file; replay refuses a segment whose format is not [`FORMAT`].
        format: u32,
        /// The cluster and node the segment belongs to; replay refuses a segment of another cluster or node.
        identity: Identity,
        /// The current term and the vote cast in it (`None`: no vote), at the segment's start.
        hard: (Term, Option<NodeId>),
        /// The index and term of the last entry the snapshot covers.
        snapshot: (Index, Term),
        /// The configuration in force at the snapshot's index.
        membership: Membership,
        /// The log's entries from the one after the snapshot's index on (or the first run of them, the rest
        /// following in batches).
        log: Vec<Entry>,
    },
    /// See [`RecordRef::Batch`]: the term and vote, if they changed; the snapshot's last index and term, if
    /// it changed (entries through it leave the log); the configuration at the snapshot's index, if it
    /// changed; the entries from an index on, replacing the log's.
    Batch {
        /// The new current term and vote (`None`: unchanged).
        hard: Option<(Term, Option<NodeId>)>,
        /// The snapshot's new last index and term (`None`: unchanged).
        snapshot: Option<(Index, Term)>,
        /// The new configuration in force at the snapshot's index (`None`: unchanged).
        membership: Option<Membership>,
        /// An index and the entries that replace the log's from it on (`None`: no entries).
        entries: Option<(Index, Vec<Entry>)>,
    },
}

/// The snapshot file, as written.
#[derive(Serialize)]
pub struct SnapshotRef<'a> {
    /// The format of the file, [`FORMAT`] when written; recovery refuses a snapshot file of another
    /// format.
    pub format: u32,
    /// The cluster and node the file belongs to; recovery refuses a snapshot file of another cluster or
    /// node.
    pub identity: Identity,
    /// The index of the last entry the snapshot covers.
    pub index: Index,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The configuration in force at `index`.
    pub membership: &'a Membership,
    /// The snapshot's bytes as the core handed them over ([`raft::Ready::snapshot`]); storage does not
    /// interpret them.
    pub data: &'a [u8],
}

/// The snapshot file, as read back.
#[derive(Debug, Deserialize)]
pub struct Snapshot {
    /// The format of the file; recovery refuses the file if it is not [`FORMAT`].
    pub format: u32,
    /// The cluster and node the file belongs to; recovery refuses the file if they are not this node's.
    pub identity: Identity,
    /// The index of the last entry the snapshot covers.
    pub index: Index,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The configuration in force at `index`.
    pub membership: Membership,
    /// The snapshot's bytes, as written; recovery hands them back without interpreting them.
    pub data: Vec<u8>,
}

/// Where a record belongs: the number of its file and its sequence number there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// The segment's number, or [`SNAPSHOT_FILE`].
    pub file: u64,
    /// The record's position in the file: 0 for the first.
    pub seq: u64,
}

/// A record longer than the limit: it is not written.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a record of {len} bytes is over the limit of {max}")]
pub struct TooLarge {
    /// The payload's length.
    pub len: usize,
    /// The limit.
    pub max: usize,
}

/// `value` framed as the record at `place`, if its payload is at most `max` bytes (and [`MAX_PAYLOAD`]).
pub fn frame(value: &impl Serialize, place: Place, max: usize) -> Result<Vec<u8>, TooLarge> {
    let payload = postcard::to_stdvec(value).expect("records always encode");
    let max = max.min(MAX_PAYLOAD);
    if payload.is_empty() || payload.len() > max {
        return Err(TooLarge {
            len: payload.len(),
            max,
        });
    }
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&place.seq.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    let header_crc = header_crc(place.file, &out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The checksum of a header's first 16 bytes, tied to the file.
fn header_crc(file: u64, first16: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&file.to_le_bytes()), first16)
}

/// Why the bytes at an offset are not the record expected there.
#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    /// The file ends inside the header.
    ShortHeader,
    /// The header does not match its checksum (or belongs to another file).
    Header,
    /// The header is whole, but declares an impossible length (zero, or past [`MAX_PAYLOAD`]).
    Length(u32),
    /// A whole record, but not the one expected here: its sequence number is another.
    Misplaced {
        /// The sequence number expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// The file ends inside the payload.
    ShortPayload,
    /// The payload does not match its checksum.
    Payload,
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::ShortHeader => write!(f, "the file ends inside a record's header"),
            Bad::Header => write!(f, "header checksum mismatch"),
            Bad::Length(len) => write!(f, "impossible record length {len}"),
            Bad::Misplaced { expected, found } => {
                write!(f, "record {found} where record {expected} belongs")
            }
            Bad::ShortPayload => write!(f, "the file ends inside a record"),
            Bad::Payload => write!(f, "payload checksum mismatch"),
        }
    }
}

/// The header at `offset`, checked against its checksum for file `file`: the payload's length, the
/// sequence number and the payload's checksum.
fn header(bytes: &[u8], offset: usize, file: u64) -> Result<(usize, u64, u32), Bad> {
    let header = bytes
        .get(offset..offset.saturating_add(HEADER))
        .ok_or(Bad::ShortHeader)?;
    let word = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("four bytes"));
    if header_crc(file, &header[..16]) != word(16) {
        return Err(Bad::Header);
    }
    let len = word(0);
    if len == 0 || len as usize > MAX_PAYLOAD {
        return Err(Bad::Length(len));
    }
    let seq = u64::from_le_bytes(header[4..12].try_into().expect("eight bytes"));
    Ok((len as usize, seq, word(12)))
}

/// The record at `offset` of `bytes`, which must be the one at `place`: its payload and the offset after it.
pub fn unframe(bytes: &[u8], offset: usize, place: Place) -> Result<(&[u8], usize), Bad> {
    let (len, seq, crc) = header(bytes, offset, place.file)?;
    if seq != place.seq {
        return Err(Bad::Misplaced {
            expected: place.seq,
            found: seq,
        });
    }
    let start = offset + HEADER;
    let payload = bytes.get(start..start + len).ok_or(Bad::ShortPayload)?;
    if crc32c::crc32c(payload) != crc {
        return Err(Bad::Payload);
    }
    Ok((payload, start + len))
}

/// Whether a whole, valid record of file `file` starts anywhere in `bytes` after `offset`.
fn valid_record_after(bytes: &[u8], offset: usize, file: u64) -> bool {
    (offset + 1..bytes.len().saturating_sub(HEADER)).any(|at| {
        header(bytes, at, file).is_ok_and(|(len, _, crc)| {
            bytes
                .get(at + HEADER..at + HEADER + len)
                .is_some_and(|payload| crc32c::crc32c(payload) == crc)
        })
    })
}

/// Whether some sector of the file, as far as it lies in `bytes[from..to]`, reads as zeros.
fn has_zero_sector(bytes: &[u8], from: usize, to: usize) -> bool {
    let mut start = from;
    while start < to {
        let end = (start - start % SECTOR + SECTOR).min(to);
        if bytes[start..end].iter().all(|&b| b == 0) {
            return true;
        }
        start = end;
    }
    false
}

/// Whether `data`'s CRC32C and `expected` differ exactly as one flipped bit, of `data` or of `expected`,
/// makes them differ. CRC32C is linear: the checksums of two messages of one length differ by the checksum
/// (from a zero register, without the final inversion) of the bits in which they differ, so the difference
/// a flip of bit `k` of byte `i` makes is the register after the byte `1 << k` and `len - i - 1` zero bytes.
fn one_bit_off(data: &[u8], expected: u32) -> bool {
    let syndrome = crc32c::crc32c(data) ^ expected;
    if syndrome.count_ones() == 1 {
        return true;
    }
    let table = crc_table();
    let mut registers: [u32; 8] = std::array::from_fn(|k| table[1 << k]);
    for _ in 0..data.len() {
        if registers.contains(&syndrome) {
            return true;
        }
        for r in &mut registers {
            *r = (*r >> 8) ^ table[(*r & 0xff) as usize];
        }
    }
    false
}

/// The byte-wise table of the reflected CRC32C (Castagnoli) polynomial.
fn crc_table() -> [u32; 256] {
    std::array::from_fn(|i| {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
        c
    })
}

/// Whether the record at `offset`, found `bad`, can be the torn tail of a save that never returned (in the
/// last segment, file `file`): nothing valid follows it anywhere in the file, whatever its length says,
/// and its damage is a crash's. A crash leaves a prefix of what was written, or whole sectors of it reading
/// as zeros; it does not flip one bit of a whole record, nor write a whole record out of its place.
pub fn is_torn_tail(bytes: &[u8], offset: usize, file: u64, bad: &Bad) -> bool {
    // The damage first (cheap), then the scan of the rest of the file.
    let crash_like = match bad {
        // A flipped bit does not shorten a file.
        Bad::ShortHeader | Bad::ShortPayload => true,
        Bad::Header => {
            let header = &bytes[offset..offset + HEADER];
            let mut covered = file.to_le_bytes().to_vec();
            covered.extend_from_slice(&header[..16]);
            let stored = u32::from_le_bytes(header[16..].try_into().expect("four bytes"));
            has_zero_sector(bytes, offset, bytes.len()) && !one_bit_off(&covered, stored)
        }
        Bad::Payload => {
            let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("four bytes"));
            let end = offset + HEADER + len as usize;
            let stored = u32::from_le_bytes(
                bytes[offset + 12..offset + 16]
                    .try_into()
                    .expect("four bytes"),
            );
            has_zero_sector(bytes, offset, end)
                && !one_bit_off(&bytes[offset + HEADER..end], stored)
        }
        Bad::Length(_) | Bad::Misplaced { .. } => false,
    };
    crash_like && !valid_record_after(bytes, offset, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_bit_is_told_from_other_damage() {
        let data: Vec<u8> = (0..700u32).map(|i| (i * 7 + 3) as u8).collect();
        let crc = crc32c::crc32c(&data);
        for i in [0, 1, 100, 511, 512, 699] {
            for k in 0..8 {
                let mut flipped = data.clone();
                flipped[i] ^= 1 << k;
                assert!(one_bit_off(&flipped, crc), "byte {i} bit {k}");
            }
        }
        for k in 0..32 {
            assert!(one_bit_off(&data, crc ^ (1 << k)));
        }
        let mut two = data.clone();
        two[3] ^= 1;
        two[400] ^= 4;
        assert!(!one_bit_off(&two, crc));
        let mut zeroed = data.clone();
        zeroed[512..].fill(0);
        assert!(!one_bit_off(&zeroed, crc));
    }

    #[test]
    fn a_record_is_tied_to_its_place() {
        let place = Place { file: 3, seq: 5 };
        let bytes = frame(&"abc", place, MAX_PAYLOAD).unwrap();
        assert!(unframe(&bytes, 0, place).is_ok());
        assert_eq!(
            unframe(&bytes, 0, Place { file: 4, seq: 5 }),
            Err(Bad::Header)
        );
        assert_eq!(
            unframe(&bytes, 0, Place { file: 3, seq: 6 }),
            Err(Bad::Misplaced {
                expected: 6,
                found: 5
            })
        );
        assert_eq!(
            frame(&vec![0u8; 100], place, 50),
            Err(TooLarge { len: 101, max: 50 })
        );
    }
}
