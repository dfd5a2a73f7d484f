//! The replicated log, with the paper's 1-based indexes. The prefix through `last_included_index` has been
//! compacted into a snapshot (Figure 13); the entry at `last_included_index` is a sentinel whose term is
//! `last_included_term` (index 0 with term 0 before any snapshot).

use std::sync::Arc;

use crate::{Entry, Index, Membership, NodeId, PersistentState, Term};

/// The log of one server. Holds entries `last_included_index() + 1 ..= last_index()`.
///
/// The entries live inside a shared [`PersistentState`], so that handing the durable state to a
/// [`Ready`](crate::Ready) costs a reference count, not a copy of the log: the copy happens only if the log is
/// changed while a `Ready` still holds the old state (copy-on-write).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RaftLog {
    /// `log`, `last_included_index` and `last_included_term` are authoritative here; `current_term` and
    /// `voted_for` are filled in by [`RaftLog::durable`].
    state: Arc<PersistentState>,
}

impl RaftLog {
    /// A log whose prefix through `last_included_index` (of term `last_included_term`) is compacted, followed
    /// by `entries`.
    pub(crate) fn new(
        last_included_index: Index,
        last_included_term: Term,
        entries: Vec<Entry>,
    ) -> Self {
        RaftLog {
            state: Arc::new(PersistentState {
                current_term: 0,
                voted_for: None,
                last_included_index,
                last_included_term,
                membership: Membership::default(),
                log: entries,
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn from_entries(entries: Vec<Entry>) -> Self {
        Self::new(0, 0, entries)
    }

    /// The entries after the snapshot: element `k` is the entry at `last_included_index() + 1 + k`.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.state.log
    }

    fn entries_mut(&mut self) -> &mut Vec<Entry> {
        &mut Arc::make_mut(&mut self.state).log
    }

    /// The whole durable state with this log, shared.
    pub(crate) fn durable(
        &mut self,
        current_term: Term,
        voted_for: Option<NodeId>,
    ) -> Arc<PersistentState> {
        if self.state.current_term != current_term || self.state.voted_for != voted_for {
            let state = Arc::make_mut(&mut self.state);
            state.current_term = current_term;
            state.voted_for = voted_for;
        }
        Arc::clone(&self.state)
    }

    /// The configuration in force at the snapshot's last index (see [`PersistentState::membership`]).
    pub(crate) fn snapshot_membership(&self) -> &Membership {
        &self.state.membership
    }

    /// Records the configuration in force at the snapshot's last index.
    pub(crate) fn set_snapshot_membership(&mut self, membership: Membership) {
        if self.state.membership != membership {
            Arc::make_mut(&mut self.state).membership = membership;
        }
    }

    /// The last configuration entry at or below `index` that the log (after the snapshot) holds, with its
    /// index. Scans backwards from `index`: called when the configuration in force must be found again (a
    /// truncation, a snapshot), not on every append.
    pub(crate) fn last_config_at(&self, index: Index) -> Option<(Index, &Membership)> {
        self.last_config_between(self.state.last_included_index + 1, index)
    }

    /// The last configuration entry at an index in `from..=to` that the log (after the snapshot) holds, with
    /// its index. Scans only that range, backwards.
    pub(crate) fn last_config_between(
        &self,
        from: Index,
        to: Index,
    ) -> Option<(Index, &Membership)> {
        let base = self.state.last_included_index;
        let end = to.min(self.last_index()).saturating_sub(base) as usize;
        let start = (from.saturating_sub(base + 1) as usize).min(end);
        self.state.log[start..end]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(k, e)| e.membership().map(|m| (base + 1 + (start + k) as Index, m)))
    }

    /// The last index covered by the snapshot (0 if there is none).
    pub(crate) fn last_included_index(&self) -> Index {
        self.state.last_included_index
    }

    /// The term of the entry at [`last_included_index`](RaftLog::last_included_index).
    pub(crate) fn last_included_term(&self) -> Term {
        self.state.last_included_term
    }

    pub(crate) fn last_index(&self) -> Index {
        self.state.last_included_index + self.entries().len() as Index
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries()
            .last()
            .map_or(self.state.last_included_term, |e| e.term)
    }

    /// The term of the entry at `index`: `last_included_term` at `last_included_index` (`Some(0)` for the
    /// sentinel index 0), `None` inside the compacted prefix and beyond the log.
    pub(crate) fn term(&self, index: Index) -> Option<Term> {
        if index == self.state.last_included_index {
            return Some(self.state.last_included_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if the log holds it (not compacted, not beyond the end).
    pub(crate) fn entry(&self, index: Index) -> Option<&Entry> {
        let offset = index.checked_sub(self.state.last_included_index + 1)?;
        self.entries().get(usize::try_from(offset).ok()?)
    }

    /// Entries `from..=last_index()`, at most `max` of them. `from` must be past the snapshot.
    pub(crate) fn slice_from(&self, from: Index, max: usize) -> &[Entry] {
        debug_assert!(from > self.state.last_included_index);
        let entries = self.entries();
        let start = usize::try_from(from - self.state.last_included_index - 1)
            .unwrap_or(usize::MAX)
            .min(entries.len());
        let end = start.saturating_add(max).min(entries.len());
        &entries[start..end]
    }

    /// The first index holding an entry of `term`, searching backwards from `index` (which must hold `term`) but
    /// not into the snapshot.
    pub(crate) fn first_index_of_term(&self, index: Index, term: Term) -> Index {
        debug_assert_eq!(self.term(index), Some(term));
        let mut first = index;
        while first > self.state.last_included_index + 1 && self.term(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// The last index holding an entry of `term` at or before `at_most`, if any (the search stops at the
    /// snapshot). Terms never decrease along the log, so the search stops at the first smaller term.
    pub(crate) fn last_index_of_term(&self, term: Term, at_most: Index) -> Option<Index> {
        let mut index = at_most.min(self.last_index());
        while index > 0 {
            let t = self.term(index)?;
            if t == term {
                return Some(index);
            }
            if t < term {
                return None;
            }
            index -= 1;
        }
        None
    }

    /// Candidate's log is at least as up-to-date as this one (§5.4.1).
    pub(crate) fn is_up_to_date(&self, last_log_index: Index, last_log_term: Term) -> bool {
        let my_term = self.last_term();
        last_log_term > my_term || (last_log_term == my_term && last_log_index >= self.last_index())
    }

    pub(crate) fn append(&mut self, entry: Entry) -> Index {
        debug_assert!(entry.term >= self.last_term(), "log terms never decrease");
        self.entries_mut().push(entry);
        self.last_index()
    }

    /// Stores `entries` at `prev_index + 1 ..` as the AppendEntries receiver does (Figure 2, steps 3 and 4): an
    /// existing entry that conflicts (same index, different term) is deleted with all that follow it; entries the
    /// log already holds are left alone, so a stale, shorter AppendEntries never truncates the log. The caller has
    /// checked that the log matches at `prev_index`, which is not inside the snapshot. Returns the first index
    /// that changed, if any.
    pub(crate) fn merge(&mut self, prev_index: Index, entries: &[Entry]) -> Option<Index> {
        debug_assert!(prev_index <= self.last_index());
        debug_assert!(prev_index >= self.state.last_included_index);
        let base = self.state.last_included_index;
        for (offset, entry) in entries.iter().enumerate() {
            let index = prev_index + 1 + offset as Index;
            match self.term(index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    // A conflict: everything from `index` on was never committed (Log Matching), so drop it.
                    self.entries_mut().truncate((index - base - 1) as usize);
                }
                None => {}
            }
            self.entries_mut().extend_from_slice(&entries[offset..]);
            return Some(index);
        }
        None
    }

    /// For the truncate-on-match mutant: deletes everything after `prev_index`, then appends `entries`.
    /// Returns the first index written, if the log changed.
    pub(crate) fn replace_after(&mut self, prev_index: Index, entries: &[Entry]) -> Option<Index> {
        let base = self.state.last_included_index;
        let before = self.last_index();
        self.entries_mut().truncate((prev_index - base) as usize);
        self.entries_mut().extend_from_slice(entries);
        (before != prev_index || !entries.is_empty()).then_some(prev_index + 1)
    }

    /// For the snapshot-drops-suffix mutant: discards every entry after the snapshot.
    pub(crate) fn truncate_after_snapshot(&mut self) {
        self.entries_mut().clear();
    }

    /// For the snapshot-ignores-term mutant: [`compact`](Self::compact), but the entries after `index` are
    /// kept whenever the log goes past it, whatever its term at `index`.
    pub(crate) fn compact_ignoring_term(&mut self, index: Index, term: Term) -> bool {
        if index >= self.last_index() {
            return self.compact(index, term);
        }
        let base = self.state.last_included_index;
        let state = Arc::make_mut(&mut self.state);
        state.log.drain(..(index - base) as usize);
        state.last_included_index = index;
        state.last_included_term = term;
        true
    }

    /// Replaces the prefix through `index` by a snapshot whose last entry has `term` (Figure 13). If the log
    /// holds that entry, the entries after it are kept (a snapshot of a prefix says nothing against them);
    /// otherwise the whole log is discarded. Returns whether the suffix was kept. `index` must be past the
    /// current snapshot.
    pub(crate) fn compact(&mut self, index: Index, term: Term) -> bool {
        debug_assert!(index > self.state.last_included_index);
        let keep = self.term(index) == Some(term);
        let base = self.state.last_included_index;
        let state = Arc::make_mut(&mut self.state);
        if keep {
            state.log.drain(..(index - base) as usize);
        } else {
            state.log.clear();
        }
        state.last_included_index = index;
        state.last_included_term = term;
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(terms: &[Term]) -> RaftLog {
        RaftLog::from_entries(
            terms
                .iter()
                .map(|&term| Entry::command(term, vec![]))
                .collect(),
        )
    }

    fn terms(log: &RaftLog) -> Vec<Term> {
        log.entries().iter().map(|e| e.term).collect()
    }

    #[test]
    fn sentinel_and_bounds() {
        let log = log_of(&[1, 1, 2]);
        assert_eq!(log.term(0), Some(0));
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.term(4), None);
        assert_eq!(log.term(u64::MAX), None);
        assert_eq!(log.slice_from(2, 10).len(), 2);
        assert_eq!(log.slice_from(2, 1).len(), 1);
        assert_eq!(log.slice_from(u64::MAX, 10).len(), 0);
    }

    #[test]
    fn merge_only_truncates_on_conflict() {
        let mut log = log_of(&[1, 1, 2, 2]);
        // A shorter, matching AppendEntries changes nothing.
        assert_eq!(log.merge(1, log_of(&[1, 2]).entries()), None);
        assert_eq!(terms(&log), vec![1, 1, 2, 2]);
        // A conflict at index 3 drops 3.. and appends.
        assert_eq!(log.merge(2, log_of(&[3]).entries()), Some(3));
        assert_eq!(terms(&log), vec![1, 1, 3]);
        // Appending past the end.
        assert_eq!(log.merge(3, log_of(&[3, 3]).entries()), Some(4));
        assert_eq!(terms(&log), vec![1, 1, 3, 3, 3]);
    }

    #[test]
    fn term_searches() {
        let log = log_of(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.first_index_of_term(5, 2), 3);
        assert_eq!(log.first_index_of_term(1, 1), 1);
        assert_eq!(log.last_index_of_term(2, 6), Some(5));
        assert_eq!(log.last_index_of_term(3, 6), None);
        assert_eq!(log.last_index_of_term(1, 100), Some(2));
        assert_eq!(log.last_index_of_term(2, 4), Some(4));
    }

    #[test]
    fn configuration_entries_are_found_in_a_range() {
        let voters = |n| Membership::of_voters(0..n);
        let mut log = log_of(&[1, 1, 1, 1]);
        log.entries_mut()[1] = Entry::config(1, voters(2));
        log.entries_mut()[3] = Entry::config(1, voters(3));
        assert_eq!(log.last_config_at(4), Some((4, &voters(3))));
        assert_eq!(log.last_config_at(3), Some((2, &voters(2))));
        assert_eq!(log.last_config_between(3, 3), None);
        assert_eq!(log.last_config_between(2, 3), Some((2, &voters(2))));
        assert_eq!(log.last_config_at(1), None);
        assert!(log.compact(2, 1));
        assert_eq!(log.last_config_at(4), Some((4, &voters(3))));
        assert_eq!(log.last_config_at(3), None, "entry 2 is in the snapshot");
        assert_eq!(log.last_config_between(9, 12), None);
        assert_eq!(
            std::mem::size_of::<Entry>(),
            32,
            "an entry as small as before"
        );
    }

    #[test]
    fn compaction_keeps_indexes_and_the_matching_suffix() {
        let mut log = log_of(&[1, 1, 2, 2, 3]);
        assert!(log.compact(3, 2));
        assert_eq!(
            (log.last_included_index(), log.last_included_term()),
            (3, 2)
        );
        assert_eq!(terms(&log), vec![2, 3]);
        assert_eq!((log.last_index(), log.last_term()), (5, 3));
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.term(2), None, "compacted");
        assert_eq!(log.term(0), None, "the sentinel moved to the snapshot");
        assert_eq!(log.entry(4).map(|e| e.term), Some(2));
        assert_eq!(log.slice_from(4, 10).len(), 2);
        assert_eq!(
            log.first_index_of_term(4, 2),
            4,
            "never searches into the snapshot"
        );
        assert_eq!(log.last_index_of_term(1, 5), None);
        // Merging after the snapshot uses absolute indexes.
        assert_eq!(log.merge(4, log_of(&[4]).entries()), Some(5));
        assert_eq!(terms(&log), vec![2, 4]);
        // A snapshot the log does not match discards everything.
        assert!(!log.compact(7, 5));
        assert!(log.entries().is_empty());
        assert_eq!((log.last_index(), log.last_term()), (7, 5));
        // A snapshot of the whole log keeps nothing but matches.
        let mut log = log_of(&[1, 2]);
        assert!(log.compact(2, 2));
        assert!(log.entries().is_empty());
        assert!(log.is_up_to_date(2, 2) && !log.is_up_to_date(1, 2));
    }
}
