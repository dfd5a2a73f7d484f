//! Incremental encoding of a node's durable state.
//!
//! The core hands out its whole `PersistentState` (term, vote, snapshot metadata, the entire log
//! after the snapshot) whenever any of it changes, and the Persister must hold it encoded with the
//! real codec. Encoding the whole log again at every change makes long tests quadratic
//! (TestReliableChurn2C commits thousands of entries and persists about twelve thousand times). A
//! log only ever changes by losing a prefix to a snapshot, losing a suffix and gaining entries;
//! the core says from which index the suffix changed (`Ready::log_changed_from`, the same promise
//! a production storage layer relies on), and `last_included_index` says where the log now
//! starts. So this encoder keeps the encoding of each entry from the previous save, drops the
//! entries a snapshot covers, and encodes only from the changed index. Debug builds check that
//! promise by comparing every kept entry's term and command bytes.
//!
//! The result is byte-for-byte `raft::encode(state)`. That relies on the codec laying out a struct
//! as its fields in order and a sequence as its length followed by its elements, with each
//! entry's command bytes last; the encoder checks itself against `raft::encode` whenever a check
//! is cheap (short logs, which every test starts with), and gives up on incremental encoding for
//! good if the layout ever disagrees (for example after a change of `PersistentState`).

use raft::{Entry, PersistentState};

/// Below this many entries every save is checked against a full encoding.
const CHECK_BELOW: usize = 16;

/// One encoded entry.
#[derive(Clone, Copy)]
struct Meta {
    term: u64,
    /// Where the entry's encoding ends in `bytes`.
    end: usize,
    /// The length of its command (or of its configuration's encoding), whose bytes end its encoding.
    len: usize,
    /// Whether it is a configuration entry.
    config: bool,
}

/// Encodes successive states of one node, reusing the encoding of an unchanged log prefix.
#[derive(Default)]
pub(crate) struct StateEncoder {
    /// The `last_included_index` of the last state: `meta[k]` is the entry at `base + 1 + k`.
    base: u64,
    /// The encodings of the entries of the last state, concatenated.
    bytes: Vec<u8>,
    /// What is known of each entry encoded last time.
    meta: Vec<Meta>,
    /// Set when the layout assumption failed: encode everything, every time.
    disabled: bool,
    /// The length of the last encoding's header (what comes before its entries).
    header_len: usize,
}

impl StateEncoder {
    /// `raft::encode(state)`. `changed_from` is the core's `Ready::log_changed_from`: the first
    /// log index that may differ from the state encoded last time (`None`: none does).
    pub(crate) fn encode(&mut self, state: &PersistentState, changed_from: Option<u64>) -> Vec<u8> {
        if self.disabled {
            return raft::encode(state);
        }
        self.drop_compacted(state.last_included_index);
        let log = &state.log;
        let unchanged = changed_from.map_or(log.len(), |from| {
            from.saturating_sub(self.base + 1)
                .try_into()
                .unwrap_or(usize::MAX)
        });
        let keep = self.meta.len().min(log.len()).min(unchanged);
        if cfg!(debug_assertions) {
            // Check the core's claim (the production runtime relies on it too).
            let exact = self.common_prefix(log);
            assert!(
                exact >= keep,
                "Ready::log_changed_from says entries 1..={keep} are unchanged, but entry {} changed",
                exact + 1
            );
        }
        let start = if keep == 0 {
            0
        } else {
            self.meta[keep - 1].end
        };
        self.bytes.truncate(start);
        self.meta.truncate(keep);
        for e in &log[keep..] {
            self.bytes.extend_from_slice(&raft::encode(e));
            self.meta.push(Meta {
                term: e.term,
                end: self.bytes.len(),
                len: e.bytes().len(),
                config: e.membership().is_some(),
            });
        }
        let mut out = raft::encode(&(
            state.current_term,
            state.voted_for,
            state.last_included_index,
            state.last_included_term,
            &state.membership,
            log.len(),
        ));
        self.header_len = out.len();
        out.extend_from_slice(&self.bytes);
        if log.len() < CHECK_BELOW {
            let full = raft::encode(state);
            if full != out {
                self.disabled = true;
                return full;
            }
        }
        out
    }

    /// Where the encoding of entry `k` of the log (0: the first after the snapshot) starts in the encoding
    /// returned last, if this encoder knows (it does not once it fell back to whole encodings).
    pub(crate) fn entry_offset(&self, k: usize) -> Option<usize> {
        if self.disabled || k > self.meta.len() {
            return None;
        }
        Some(self.header_len + k.checked_sub(1).map_or(0, |j| self.meta[j].end))
    }

    /// Forgets the entries at or below `last_included_index`: a snapshot now covers them.
    fn drop_compacted(&mut self, last_included_index: u64) {
        if last_included_index < self.base {
            // Snapshots never move back; start afresh rather than trust anything kept.
            self.meta.clear();
            self.bytes.clear();
        } else if last_included_index > self.base {
            let gone = usize::try_from(last_included_index - self.base)
                .unwrap_or(usize::MAX)
                .min(self.meta.len());
            if gone > 0 {
                let cut = self.meta[gone - 1].end;
                self.bytes.drain(..cut);
                self.meta.drain(..gone);
                for m in &mut self.meta {
                    m.end -= cut;
                }
            }
        }
        self.base = last_included_index;
    }

    /// How many leading entries of `log` are exactly those encoded last time.
    fn common_prefix(&self, log: &[Entry]) -> usize {
        let n = log.len().min(self.meta.len());
        for (k, (e, m)) in log.iter().zip(&self.meta).enumerate() {
            // Same term and same command bytes give the same encoding: the codec is
            // deterministic.
            let bytes = e.bytes();
            if m.term != e.term
                || m.config != e.membership().is_some()
                || m.len != bytes.len()
                || !same_bytes(&self.bytes[m.end - m.len..m.end], &bytes)
            {
                return k;
            }
        }
        n
    }
}

/// Slice equality, inlined: the slices here are a few bytes long, where a call to `memcmp`
/// costs more than the comparison.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        if u64::from_ne_bytes(x.try_into().expect("8 bytes"))
            != u64::from_ne_bytes(y.try_into().expect("8 bytes"))
        {
            return false;
        }
    }
    ca.remainder()
        .iter()
        .zip(cb.remainder())
        .all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn matches_the_codec_through_random_truncations_and_appends() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut enc = StateEncoder::default();
        let mut state = PersistentState::default();
        let mut unchecked = 0;
        for step in 0..2000 {
            // What the core would report as `log_changed_from` (1-based, absolute).
            let mut changed: Option<u64> = None;
            let base = state.last_included_index + 1;
            let mut touch = |k: usize| {
                let index = base + k as u64;
                changed = Some(changed.map_or(index, |c| c.min(index)))
            };
            match rng.random_range(0..21) {
                20 if !state.log.is_empty() => {
                    // A snapshot: the prefix through some entry goes, or (installed from a leader
                    // that disagrees) the whole log.
                    let k = rng.random_range(0..state.log.len());
                    state.last_included_index += k as u64 + 1;
                    state.last_included_term = state.log[k].term;
                    if rng.random_range(0..4) == 0 {
                        // Everything after the new snapshot changed.
                        touch(k + 1);
                        state.log.clear();
                    } else {
                        state.log.drain(..=k);
                    }
                    state.membership = raft::Membership::of_voters(0..rng.random_range(0..5));
                }
                0 => {
                    let keep = rng.random_range(state.log.len() / 2..=state.log.len());
                    state.log.truncate(keep);
                    touch(keep);
                }
                1 => {
                    state.current_term += rng.random_range(0..300);
                    state.voted_for = if rng.random() {
                        Some(rng.random_range(0..5))
                    } else {
                        None
                    };
                }
                2 if !state.log.is_empty() => {
                    // Same term, different command: must be noticed.
                    let k = rng.random_range(0..state.log.len());
                    state.log[k].payload =
                        raft::Payload::Command(vec![rng.random(); rng.random_range(0..4)]);
                    touch(k);
                }
                3 if !state.log.is_empty() => {
                    // Same term, a configuration instead: must be noticed too.
                    let k = rng.random_range(0..state.log.len());
                    let voters = raft::Membership::of_voters(0..rng.random_range(1..5));
                    state.log[k] = Entry::config(state.log[k].term, voters);
                    touch(k);
                }
                _ => {
                    let len = rng.random_range(0..200);
                    touch(state.log.len());
                    state.log.push(Entry::command(
                        state.current_term,
                        (0..len).map(|_| rng.random()).collect(),
                    ));
                }
            }
            assert_eq!(
                enc.encode(&state, changed),
                raft::encode(&state),
                "step {step}"
            );
            if state.log.len() >= CHECK_BELOW {
                unchecked += 1;
            }
        }
        assert!(!enc.disabled);
        assert!(unchecked > 500, "the unchecked path was exercised");
    }
}
