//! Sets of rules as bit masks over rule indexes, so that the filter picks
//! the rules worth running on a value with a few word operations instead of
//! visiting every rule.
//!
//! Each mask is `words` `u64` words long, bit `i` standing for the rule at
//! index `i` of the filter.

use super::prefilter::Prefilter;
use crate::fnv::Fnv;
use crate::rules::Rule;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

#[derive(Debug, Clone)]
pub(super) struct Selection {
    words: usize,
    /// For each target kind, by the position of its bit, the rules at or
    /// below the paranoia level whose scope includes it.
    by_kind: Vec<u64>,
    /// For each transform chain, the rules that run on its output.
    by_chain: Vec<u64>,
    /// For each literal group, the rules whose gate it is.
    by_gate: Vec<u64>,
    /// The groups that are the gate of some rule, `group_words` words.
    gates: Vec<u64>,
    /// The rules without a gate, which every value reaches.
    ungated: Vec<u64>,
    /// The rules limited to targets of given names.
    named_only: Vec<u64>,
    /// For each name that some rule is limited to, the rules that list it.
    by_name: HashMap<String, Vec<u64>, BuildHasherDefault<Fnv>>,
    /// The rules that skip structured headers.
    skips_structured: Vec<u64>,
}

impl Selection {
    pub(super) fn build(
        rules: &[Rule],
        chains: usize,
        paranoia_level: u8,
        prefilter: &Prefilter,
    ) -> Self {
        let words = rules.len().div_ceil(64).max(1);
        let group_words = prefilter.set_words();
        let mut selection = Selection {
            words,
            by_kind: vec![0; u16::BITS as usize * words],
            by_chain: vec![0; chains * words],
            by_gate: vec![0; group_words * 64 * words],
            gates: vec![0; group_words],
            ungated: vec![0; words],
            named_only: vec![0; words],
            by_name: HashMap::default(),
            skips_structured: vec![0; words],
        };
        for (index, rule) in rules.iter().enumerate() {
            let (word, bit) = (index / 64, 1u64 << (index % 64));
            if rule.paranoia <= paranoia_level {
                for kind in 0..u16::BITS as usize {
                    if rule.scope() & (1 << kind) != 0 {
                        selection.by_kind[kind * words + word] |= bit;
                    }
                }
            }
            selection.by_chain[rule.chain * words + word] |= bit;
            match prefilter.gate(index) {
                Some(group) => {
                    selection.by_gate[group * words + word] |= bit;
                    selection.gates[group / 64] |= 1 << (group % 64);
                }
                None => selection.ungated[word] |= bit,
            }
            if !rule.names().is_empty() {
                selection.named_only[word] |= bit;
            }
            for name in rule.names() {
                selection
                    .by_name
                    .entry(name.clone())
                    .or_insert_with(|| vec![0; words])[word] |= bit;
            }
            if rule.skips_structured() {
                selection.skips_structured[word] |= bit;
            }
        }
        selection
    }

    /// Returns the number of `u64` words of a rule mask.
    pub(super) fn words(&self) -> usize {
        self.words
    }

    pub(super) fn kind(&self, kind: usize) -> &[u64] {
        self.by_kind
            .get(kind * self.words..(kind + 1) * self.words)
            .unwrap_or_default()
    }

    pub(super) fn chain(&self, chain: usize) -> &[u64] {
        self.by_chain
            .get(chain * self.words..(chain + 1) * self.words)
            .unwrap_or_default()
    }

    /// Removes from `rules` those that do not apply to a target called
    /// `name`, as [`Rule::applies_to_classified`] decides, given whether
    /// the target is a structured header.
    pub(super) fn keep_applicable(&self, name: &str, structured: bool, rules: &mut [u64]) {
        let listed = self.by_name.get(name);
        for (index, word) in rules.iter_mut().enumerate() {
            let named = listed.and_then(|mask| mask.get(index)).copied();
            *word &= !self.named_only[index] | named.unwrap_or(0);
            if structured {
                *word &= !self.skips_structured[index];
            }
        }
    }

    /// Writes to `passing` the rules that `found` lets through their gate:
    /// the ungated ones and those whose gate group is set in `found`.
    pub(super) fn passing(&self, found: &[u64], passing: &mut [u64]) {
        passing.copy_from_slice(&self.ungated);
        let gates_found = found
            .iter()
            .zip(&self.gates)
            .map(|(set, gates)| set & gates);
        for_each_bit(gates_found, |group| {
            let gated = self
                .by_gate
                .get(group * self.words..(group + 1) * self.words)
                .unwrap_or_default();
            for (rules, gated) in passing.iter_mut().zip(gated) {
                *rules |= gated;
            }
        });
    }
}

/// Tells whether two masks share a rule.
pub(super) fn intersects(first: &[u64], second: &[u64]) -> bool {
    first
        .iter()
        .zip(second)
        .any(|(left, right)| left & right != 0)
}

/// Calls `visit` with the index of each rule in `mask`, in increasing order.
pub(super) fn for_each_rule(mask: &[u64], visit: impl FnMut(usize)) {
    for_each_bit(mask.iter().copied(), visit);
}

/// Calls `visit` with the position of each set bit of `words`, word 0 first,
/// in increasing order.
fn for_each_bit(words: impl IntoIterator<Item = u64>, mut visit: impl FnMut(usize)) {
    for (word, mut bits) in words.into_iter().enumerate() {
        while bits != 0 {
            visit(word * 64 + bits.trailing_zeros() as usize);
            bits &= bits - 1;
        }
    }
}
