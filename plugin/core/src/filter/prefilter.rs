//! The literal gate in front of every rule: one Aho-Corasick pass over a
//! transformed value finds the literals of all rules, and a rule's test runs
//! only when its condition on those literals holds.
//!
//! A regex rule's condition is its prefilter literals (any one of them, as a
//! word for a word rule) and the literals that every match of its
//! regex contains, from [`crate::rules::literals`]. A phrase rule's condition
//! is one of its phrases. Each is necessary for a match, so the gate never
//! hides one. The libinjection checks run on every value.

use crate::error::Error;
use crate::fnv::Fnv;
use crate::rules::literals::Need;
use crate::rules::{is_word_start, Rule};
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, MatchKind};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// The builder's tables. Their keys are the configuration's own literals,
/// and SipHash's cost showed in configuration time.
type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// A condition on the literals found in a value. Its leaves are groups of
/// literals that hold when any literal of the group occurs, so that the long
/// OR lists of command or function names cost one bit test.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Always,
    Group(usize),
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

impl Condition {
    fn holds(&self, found: &[u64]) -> bool {
        match self {
            Condition::Always => true,
            Condition::Group(index) => found
                .get(index / 64)
                .is_some_and(|word| word & (1 << (index % 64)) != 0),
            Condition::All(parts) => parts.iter().all(|part| part.holds(found)),
            Condition::Any(parts) => parts.iter().any(|part| part.holds(found)),
        }
    }
}

/// The literals of every rule in one automaton, and each rule's condition.
#[derive(Debug, Clone)]
pub(super) struct Prefilter {
    /// The automaton of all literals, walked byte by byte in
    /// [`Prefilter::scan`]. aho-corasick's iterators cost a few hundred wasm
    /// instructions per occurrence, and short literals such as `=` or `/`
    /// occur in most values.
    matcher: Option<NFA>,
    /// For each pattern of `matcher`, the index of its literal in `word`
    /// and `groups`.
    pattern_literal: Vec<usize>,
    /// The single-byte literals that count anywhere, such as `'` or `(`,
    /// are not in `matcher`, because most values contain some of them and a
    /// stop at a match state on each such byte cost more than this table.
    /// For each byte, the found-group bits of the literal that is that byte.
    single_byte: Vec<Vec<(usize, u64)>>,
    /// The bytes that `single_byte` has groups for, as a 256-bit set.
    single_bytes: [u64; 4],
    /// For each literal, whether it counts only where it starts a word, as
    /// [`is_word_start`] decides.
    word: Vec<bool>,
    /// The literals, which the tests search for one by one.
    #[cfg(test)]
    literals: Vec<String>,
    /// For each literal, the groups that it makes hold, as pairs of a word
    /// of the found-group set and the bits to set in it.
    groups: Vec<Vec<(usize, u64)>>,
    group_count: usize,
    /// For each rule, in the filter's order, a group that its condition
    /// requires. The filter selects rules by this group before it tests the
    /// rest of their condition, and on ordinary text most rules stop there.
    gates: Vec<Option<usize>>,
    /// For each rule, the rest of the condition under which its test runs,
    /// once its gate bit is set.
    conditions: Vec<Condition>,
}

impl Prefilter {
    pub(super) fn build(rules: &[Rule]) -> Result<Self, Error> {
        let mut builder = Builder::default();
        let conditions: Vec<Condition> = rules
            .iter()
            .map(|rule| {
                let mut parts = Vec::new();
                if let Some((literals, word)) = rule.prefilter_literals() {
                    let keys = literals.iter().map(|literal| (literal.to_string(), word));
                    parts.push(builder.group(keys.collect()));
                }
                if let Some(need) = rule.requirement() {
                    parts.push(builder.condition(need));
                }
                builder.all(parts)
            })
            .collect();
        let groups: Vec<Vec<(usize, u64)>> = builder
            .literal_groups
            .iter()
            .map(|groups| group_bits(groups))
            .collect();
        let mut single_byte = vec![Vec::new(); 256];
        let mut single_bytes = [0u64; 4];
        let mut pattern_literal = Vec::new();
        for (index, literal) in builder.literals.iter().enumerate() {
            match literal.as_bytes() {
                &[byte] if !builder.word[index] => {
                    single_byte[usize::from(byte)] = groups[index].clone();
                    single_bytes[usize::from(byte >> 6)] |= 1 << (byte & 63);
                }
                _ => pattern_literal.push(index),
            }
        }
        let matcher = if pattern_literal.is_empty() {
            None
        } else {
            let patterns = pattern_literal
                .iter()
                .map(|&index| &builder.literals[index]);
            let built = NFA::builder()
                .match_kind(MatchKind::Standard)
                .prefilter(false)
                .build(patterns)
                .map_err(|error| Error::invalid("filter.rules", error.to_string()))?;
            Some(built)
        };
        let (gates, conditions) = conditions.into_iter().map(split_gate).unzip();
        Ok(Prefilter {
            matcher,
            pattern_literal,
            single_byte,
            single_bytes,
            word: builder.word,
            #[cfg(test)]
            literals: builder.literals.clone(),
            groups,
            group_count: builder.groups.len(),
            gates,
            conditions,
        })
    }

    /// Returns the number of `u64` words of a found-group set.
    pub(super) fn set_words(&self) -> usize {
        self.group_count.div_ceil(64)
    }

    /// Sets the bit of every group with a literal that occurs in `text`.
    ///
    /// The automaton is built with standard match semantics, so each of its
    /// states lists every literal that ends at the current byte, those of
    /// its failure states included. The walk therefore finds every occurrence,
    /// as an overlapping search does. The same walk notes which bytes occur,
    /// for the single-byte literals.
    pub(super) fn scan(&self, text: &str, found: &mut [u64]) {
        let bytes = text.as_bytes();
        let mut seen = [0u64; 4];
        let mut walk = self.matcher.as_ref().and_then(|matcher| {
            let state = matcher.start_state(Anchored::No).ok()?;
            Some((matcher, state))
        });
        // Only an empty literal makes the start state a match state.
        if let Some((matcher, state)) = walk {
            if matcher.is_match(state) {
                self.record(matcher, state, bytes, 0, found);
            }
        }
        for (at, &byte) in bytes.iter().enumerate() {
            seen[usize::from(byte >> 6)] |= 1 << (byte & 63);
            if let Some((matcher, state)) = &mut walk {
                *state = matcher.next_state(Anchored::No, *state, byte);
                if matcher.is_special(*state) && matcher.is_match(*state) {
                    self.record(matcher, *state, bytes, at + 1, found);
                }
            }
        }
        for (word, (&seen, &wanted)) in seen.iter().zip(&self.single_bytes).enumerate() {
            let mut bytes = seen & wanted;
            while bytes != 0 {
                let byte = word * 64 + bytes.trailing_zeros() as usize;
                bytes &= bytes - 1;
                let groups = self.single_byte.get(byte);
                set_bits(groups.map_or(&[][..], Vec::as_slice), found);
            }
        }
    }

    /// Sets the groups of the literals that end at byte `end` of `bytes`,
    /// where the walk reached match state `state`. A literal that counts
    /// only at the start of a word sets nothing where it does not start one.
    fn record(&self, matcher: &NFA, state: StateID, bytes: &[u8], end: usize, found: &mut [u64]) {
        for index in 0..matcher.match_len(state) {
            let pattern = matcher.match_pattern(state, index);
            let start = end.saturating_sub(matcher.pattern_len(pattern));
            let Some(&literal) = self.pattern_literal.get(pattern.as_usize()) else {
                continue;
            };
            let word = self.word.get(literal).copied().unwrap_or(false);
            if word && !is_word_start(bytes, start, end) {
                continue;
            }
            let groups = self.groups.get(literal);
            set_bits(groups.map_or(&[][..], Vec::as_slice), found);
        }
    }

    /// Sets the groups of every literal that occurs in `text`, searching for
    /// each literal alone. The tests compare [`Prefilter::scan`] with it.
    #[cfg(test)]
    pub(super) fn scan_each(&self, text: &str, found: &mut [u64]) {
        for (index, literal) in self.literals.iter().enumerate() {
            let word = self.word.get(index).copied().unwrap_or(false);
            if !crate::rules::contains_literal(text, literal, word) {
                continue;
            }
            set_bits(self.groups.get(index).map_or(&[][..], Vec::as_slice), found);
        }
    }

    /// Tells whether rule `rule` can match a value whose literals set the
    /// groups in `found`. The filter tests the gate through
    /// [`super::selection::Selection`] and the rest with
    /// [`Prefilter::rest_holds`].
    #[cfg(test)]
    pub(super) fn allows(&self, rule: usize, found: &[u64]) -> bool {
        self.gate(rule)
            .is_none_or(|group| Condition::Group(group).holds(found))
            && self.rest_holds(rule, found)
    }

    /// Returns the group that rule `rule` requires before anything else, or
    /// `None` when its condition starts with no single group.
    pub(super) fn gate(&self, rule: usize) -> Option<usize> {
        self.gates.get(rule).copied().flatten()
    }

    /// Tells whether the part of rule `rule`'s condition after its gate
    /// holds; the caller has checked the gate.
    #[inline]
    pub(super) fn rest_holds(&self, rule: usize, found: &[u64]) -> bool {
        self.conditions
            .get(rule)
            .is_none_or(|condition| condition.holds(found))
    }
}

/// Sets the bits of a list of word and bits pairs in a found-group set.
fn set_bits(bits: &[(usize, u64)], found: &mut [u64]) {
    for &(word, set) in bits {
        if let Some(slot) = found.get_mut(word) {
            *slot |= set;
        }
    }
}

/// Returns the found-group bits of a literal's groups, one pair of a word
/// index and its bits for each word that they fall in.
fn group_bits(groups: &[usize]) -> Vec<(usize, u64)> {
    let mut bits: Vec<(usize, u64)> = Vec::new();
    for &group in groups {
        let (word, bit) = (group / 64, 1u64 << (group % 64));
        match bits.iter_mut().find(|(known, _)| *known == word) {
            Some((_, set)) => *set |= bit,
            None => bits.push((word, bit)),
        }
    }
    bits
}

/// Splits a condition into a leading group that it requires and what else
/// it requires. `All` keeps its strongest part first, so that part becomes
/// the gate.
fn split_gate(condition: Condition) -> (Option<usize>, Condition) {
    match condition {
        Condition::Group(group) => (Some(group), Condition::Always),
        Condition::All(mut parts) => match parts.first() {
            Some(&Condition::Group(group)) => {
                parts.remove(0);
                let rest = match parts.len() {
                    0 => Condition::Always,
                    1 => parts.pop().unwrap_or(Condition::Always),
                    _ => Condition::All(parts),
                };
                (Some(group), rest)
            }
            _ => (None, Condition::All(parts)),
        },
        other => (None, other),
    }
}

/// The literal and group tables while conditions are built, each literal
/// and each group entered once.
#[derive(Default)]
struct Builder {
    literals: Vec<String>,
    word: Vec<bool>,
    literal_groups: Vec<Vec<usize>>,
    literal_index: FnvMap<(String, bool), usize>,
    groups: FnvMap<Vec<(String, bool)>, usize>,
    /// The literals of each group, by group index.
    group_keys: Vec<Vec<(String, bool)>>,
}

impl Builder {
    /// Returns the condition that one of `keys` (literal and word flag)
    /// occurs.
    fn group(&mut self, mut keys: Vec<(String, bool)>) -> Condition {
        keys.sort();
        keys.dedup();
        if let Some(&group) = self.groups.get(&keys) {
            return Condition::Group(group);
        }
        let group = self.groups.len();
        for key in &keys {
            let index = match self.literal_index.get(key) {
                Some(&index) => index,
                None => {
                    let index = self.literals.len();
                    self.literal_index.insert(key.clone(), index);
                    self.literals.push(key.0.clone());
                    self.word.push(key.1);
                    self.literal_groups.push(Vec::new());
                    index
                }
            };
            if let Some(groups) = self.literal_groups.get_mut(index) {
                groups.push(group);
            }
        }
        self.groups.insert(keys.clone(), group);
        self.group_keys.push(keys);
        Condition::Group(group)
    }

    fn condition(&mut self, need: Need) -> Condition {
        match need {
            Need::Always => Condition::Always,
            Need::Literal(text) => self.group(vec![(text, false)]),
            Need::All(parts) => {
                let parts = parts.into_iter().map(|part| self.condition(part)).collect();
                self.all(parts)
            }
            Need::Any(parts) => {
                if parts.iter().all(|part| matches!(part, Need::Literal(_))) {
                    let keys = parts
                        .into_iter()
                        .filter_map(|part| match part {
                            Need::Literal(text) => Some((text, false)),
                            _ => None,
                        })
                        .collect();
                    return self.group(keys);
                }
                let parts: Vec<Condition> =
                    parts.into_iter().map(|part| self.condition(part)).collect();
                self.with_summary(parts)
            }
        }
    }

    /// Builds the AND of `parts`, flattened, with the part least likely to
    /// hold first so that evaluation stops early.
    fn all(&self, parts: Vec<Condition>) -> Condition {
        let mut flat = Vec::new();
        for part in parts {
            match part {
                Condition::Always => {}
                Condition::All(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        flat.sort_by_key(|part| std::cmp::Reverse(self.strength(part)));
        match flat.len() {
            0 => Condition::Always,
            1 => flat.pop().unwrap_or(Condition::Always),
            _ => Condition::All(flat),
        }
    }

    /// Ranks how rarely a condition holds on ordinary text: the length of
    /// the shortest literal of a group, since short literals such as `(`
    /// occur in most values.
    fn strength(&self, condition: &Condition) -> usize {
        match condition {
            Condition::Group(group) => self
                .group_keys
                .get(*group)
                .and_then(|keys| keys.iter().map(|(text, _)| text.len()).min())
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// Builds the OR of `parts`, preceded by a test of one group that holds
    /// whenever any part holds, so that a value without any of the parts'
    /// literals fails with one bit test instead of a walk over every part.
    fn with_summary(&mut self, parts: Vec<Condition>) -> Condition {
        let mut keys = Vec::new();
        for part in &parts {
            match self.necessary_keys(part) {
                Some(part_keys) => keys.extend(part_keys),
                None => return Condition::Any(parts),
            }
        }
        let summary = self.group(keys);
        Condition::All(vec![summary, Condition::Any(parts)])
    }

    /// Returns literals of which one occurs whenever `condition` holds.
    fn necessary_keys(&self, condition: &Condition) -> Option<Vec<(String, bool)>> {
        match condition {
            Condition::Always => None,
            Condition::Group(group) => self.group_keys.get(*group).cloned(),
            Condition::All(parts) => parts
                .iter()
                .filter_map(|part| self.necessary_keys(part))
                .max_by_key(|keys| keys.iter().map(|(text, _)| text.len()).min().unwrap_or(0)),
            Condition::Any(parts) => {
                let mut keys = Vec::new();
                for part in parts {
                    keys.extend(self.necessary_keys(part)?);
                }
                Some(keys)
            }
        }
    }
}
