//! Literals that every match of a regex contains, derived from its pattern.
//!
//! The derivation follows the prefilter construction of RE2: each part of the
//! pattern either matches one of a small, exact set of strings, or yields a
//! condition of AND and OR over literals. Concatenation crosses exact sets
//! while they stay small, alternation joins them, and a part that can repeat
//! or match any character keeps only what one copy of it requires. The
//! result is a necessary condition, never a sufficient one: the regex still
//! decides, but it runs only on values that contain the literals.
//!
//! The parser reads the regex-lite syntax that rules use. A construct it does
//! not know, such as a flag group or a nested class, makes the whole pattern
//! [`Need::Always`], which is correct but gives no filtering.

use std::collections::BTreeSet;

/// A condition on the literals that occur in a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// Holds for every value.
    Always,
    /// Holds when the value contains the string.
    Literal(String),
    /// Holds when every part holds.
    All(Vec<Need>),
    /// Holds when at least one part holds.
    Any(Vec<Need>),
}

/// Decodes a [`Need`] from the compact form that [`encode`] writes, in
/// which the built-in rules' conditions are kept. Returns `None` for input
/// that is not in that form.
///
/// The form is prefix order: `*` is [`Need::Always`]; `"`, a length byte and
/// that many bytes of UTF-8 is a literal; `&` or `|`, a count byte and that
/// many conditions is [`Need::All`] or [`Need::Any`].
pub(crate) fn decode(bytes: &[u8]) -> Option<Need> {
    fn next(bytes: &[u8], at: &mut usize, depth: usize) -> Option<Need> {
        if depth > MAX_DEPTH {
            return None;
        }
        let tag = *bytes.get(*at)?;
        *at += 1;
        if tag == b'*' {
            return Some(Need::Always);
        }
        let count = usize::from(*bytes.get(*at)?);
        *at += 1;
        match tag {
            b'"' => {
                let text = bytes.get(*at..*at + count)?;
                *at += count;
                Some(Need::Literal(String::from_utf8(text.to_vec()).ok()?))
            }
            b'&' | b'|' => {
                let parts = (0..count)
                    .map(|_| next(bytes, at, depth + 1))
                    .collect::<Option<Vec<Need>>>()?;
                Some(if tag == b'&' {
                    Need::All(parts)
                } else {
                    Need::Any(parts)
                })
            }
            _ => None,
        }
    }
    let mut at = 0;
    let need = next(bytes, &mut at, 0)?;
    (at == bytes.len()).then_some(need)
}

/// Writes a [`Need`] in the form that [`decode`] reads, or returns `None`
/// when a literal or a list is longer than a length byte holds.
#[cfg(test)]
pub(crate) fn encode(need: &Need, out: &mut Vec<u8>) -> Option<()> {
    let list = |tag: u8, parts: &[Need], out: &mut Vec<u8>| {
        out.push(tag);
        out.push(u8::try_from(parts.len()).ok()?);
        parts.iter().try_for_each(|part| encode(part, out))
    };
    match need {
        Need::Always => out.push(b'*'),
        Need::Literal(text) => {
            out.push(b'"');
            out.push(u8::try_from(text.len()).ok()?);
            out.extend_from_slice(text.as_bytes());
        }
        Need::All(parts) => return list(b'&', parts, out),
        Need::Any(parts) => return list(b'|', parts, out),
    }
    Some(())
}

/// Maximum size of an exact set built by concatenation. A larger cross
/// product is cut into separate literals instead.
const MAX_CROSS: usize = 16;
/// Maximum size of an exact set built by alternation.
const MAX_UNION: usize = 1024;
/// Maximum number of characters of a class kept as an exact set.
const MAX_CLASS: usize = 8;
/// Maximum group nesting that the parser follows.
const MAX_DEPTH: usize = 64;

/// Returns the literal condition that every match of `pattern` satisfies.
pub(crate) fn required(pattern: &str) -> Need {
    let mut parser = Parser {
        chars: pattern.chars().collect(),
        position: 0,
    };
    match parser.alternation(0) {
        Ok(info) if parser.position == parser.chars.len() => simplify(info.into_need()),
        _ => Need::Always,
    }
}

/// The strings or the condition that a part of a pattern matches.
#[derive(Debug, Clone)]
struct Info {
    /// The strings the part matches, when they are few and known exactly.
    exact: Option<BTreeSet<String>>,
    /// The condition for a part without an exact set.
    need: Need,
}

impl Info {
    fn exact<I: IntoIterator<Item = String>>(strings: I) -> Self {
        Info {
            exact: Some(strings.into_iter().collect()),
            need: Need::Always,
        }
    }

    fn empty() -> Self {
        Info::exact([String::new()])
    }

    fn anything() -> Self {
        Info {
            exact: None,
            need: Need::Always,
        }
    }

    fn into_need(self) -> Need {
        match self.exact {
            Some(set) => set_need(set),
            None => self.need,
        }
    }
}

/// Turns an exact set into the condition that one of its strings occurs.
fn set_need(set: BTreeSet<String>) -> Need {
    if set.iter().any(String::is_empty) {
        return Need::Always;
    }
    Need::Any(set.into_iter().map(Need::Literal).collect())
}

/// The error of a pattern that the parser does not follow.
struct Unsupported;

struct Parser {
    chars: Vec<char>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn advance(&mut self) -> Result<char, Unsupported> {
        let c = self.peek().ok_or(Unsupported)?;
        self.position += 1;
        Ok(c)
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn alternation(&mut self, depth: usize) -> Result<Info, Unsupported> {
        if depth > MAX_DEPTH {
            return Err(Unsupported);
        }
        let mut branches = vec![self.concatenation(depth)?];
        while self.eat('|') {
            branches.push(self.concatenation(depth)?);
        }
        Ok(join_alternatives(branches))
    }

    fn concatenation(&mut self, depth: usize) -> Result<Info, Unsupported> {
        let mut parts = Vec::new();
        // Plain characters without a quantifier are gathered into one string
        // and enter the sequence as one exact part.
        let mut plain = String::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            if is_plain(c)
                && !self
                    .chars
                    .get(self.position + 1)
                    .is_some_and(|&next| is_quantifier(next))
            {
                plain.push(c);
                self.position += 1;
                continue;
            }
            if !plain.is_empty() {
                parts.push(Info::exact([std::mem::take(&mut plain)]));
            }
            let atom = self.atom(depth)?;
            parts.push(self.repetition(atom)?);
        }
        if !plain.is_empty() {
            parts.push(Info::exact([plain]));
        }
        Ok(join_sequence(parts))
    }

    fn atom(&mut self, depth: usize) -> Result<Info, Unsupported> {
        match self.advance()? {
            '(' => {
                // Only non-capturing and plain groups: flags could change
                // what literals mean.
                if self.eat('?') && !self.eat(':') {
                    return Err(Unsupported);
                }
                let inner = self.alternation(depth + 1)?;
                if !self.eat(')') {
                    return Err(Unsupported);
                }
                Ok(inner)
            }
            '[' => self.class(),
            '.' => Ok(Info::anything()),
            '^' | '$' => Ok(Info::empty()),
            '\\' => match self.escape()? {
                Escape::Char(c) => Ok(Info::exact([c.to_string()])),
                Escape::Class => Ok(Info::anything()),
                Escape::Assertion => Ok(Info::empty()),
            },
            '*' | '+' | '?' | '{' => Err(Unsupported),
            c => Ok(Info::exact([c.to_string()])),
        }
    }

    /// Applies the quantifiers after an atom, each with its optional lazy
    /// marker.
    fn repetition(&mut self, mut info: Info) -> Result<Info, Unsupported> {
        loop {
            let (min, max) = match self.peek() {
                Some('?') => (0, Some(1)),
                Some('*') => (0, None),
                Some('+') => (1, None),
                Some('{') => {
                    self.position += 1;
                    let bounds = self.counted()?;
                    info = quantify(info, bounds.0, bounds.1);
                    self.eat('?');
                    continue;
                }
                _ => return Ok(info),
            };
            self.position += 1;
            info = quantify(info, min, max);
            self.eat('?');
        }
    }

    /// Reads `n}`, `n,}` or `n,m}` after a `{`.
    fn counted(&mut self) -> Result<(usize, Option<usize>), Unsupported> {
        let min = self.number()?;
        let max = if self.eat(',') {
            if self.peek() == Some('}') {
                None
            } else {
                Some(self.number()?)
            }
        } else {
            Some(min)
        };
        if !self.eat('}') {
            return Err(Unsupported);
        }
        Ok((min, max))
    }

    fn number(&mut self) -> Result<usize, Unsupported> {
        let mut value: usize = 0;
        let mut digits = 0;
        while let Some(digit) = self.peek().and_then(|c| c.to_digit(10)) {
            value = value
                .checked_mul(10)
                .and_then(|value| value.checked_add(digit as usize))
                .ok_or(Unsupported)?;
            digits += 1;
            self.position += 1;
        }
        if digits == 0 {
            return Err(Unsupported);
        }
        Ok(value)
    }

    fn escape(&mut self) -> Result<Escape, Unsupported> {
        let c = self.advance()?;
        let escape = match c {
            'b' | 'B' | 'A' | 'z' => {
                // The parser does not follow `\b{start}` and similar forms.
                if self.peek() == Some('{') {
                    return Err(Unsupported);
                }
                Escape::Assertion
            }
            // `\<` and `\>` are word-boundary assertions, not literals.
            '<' | '>' => Escape::Assertion,
            'd' | 'D' | 'w' | 'W' | 's' | 'S' => Escape::Class,
            'n' => Escape::Char('\n'),
            'r' => Escape::Char('\r'),
            't' => Escape::Char('\t'),
            'f' => Escape::Char('\u{c}'),
            'v' => Escape::Char('\u{b}'),
            'a' => Escape::Char('\u{7}'),
            'x' | 'u' => {
                let code = if self.eat('{') {
                    let start = self.position;
                    while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                        self.position += 1;
                    }
                    let digits: String = self.chars[start..self.position].iter().collect();
                    if digits.is_empty() || !self.eat('}') {
                        return Err(Unsupported);
                    }
                    digits
                } else {
                    let width = if c == 'x' { 2 } else { 4 };
                    let digits: String = self
                        .chars
                        .get(self.position..self.position + width)
                        .ok_or(Unsupported)?
                        .iter()
                        .collect();
                    self.position += width;
                    digits
                };
                let value = u32::from_str_radix(&code, 16).map_err(|_| Unsupported)?;
                Escape::Char(char::from_u32(value).ok_or(Unsupported)?)
            }
            c if c.is_ascii_alphanumeric() => return Err(Unsupported),
            c => Escape::Char(c),
        };
        Ok(escape)
    }

    /// Reads a bracketed class after its `[`.
    fn class(&mut self) -> Result<Info, Unsupported> {
        let negated = self.eat('^');
        let mut members: BTreeSet<char> = BTreeSet::new();
        let mut wide = false;
        let mut first = true;
        loop {
            let c = self.advance()?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let low = match c {
                '[' => return Err(Unsupported),
                '&' | '-' | '~' if self.peek() == Some(c) => return Err(Unsupported),
                '\\' => match self.escape()? {
                    Escape::Char(c) => c,
                    Escape::Class => {
                        wide = true;
                        continue;
                    }
                    Escape::Assertion => return Err(Unsupported),
                },
                c => c,
            };
            let is_range = self.peek() == Some('-')
                && self.chars.get(self.position + 1).is_some_and(|&c| c != ']');
            if !is_range {
                members.insert(low);
                continue;
            }
            self.position += 1;
            let high = match self.advance()? {
                '\\' => match self.escape()? {
                    Escape::Char(c) => c,
                    _ => return Err(Unsupported),
                },
                '[' => return Err(Unsupported),
                c => c,
            };
            if high < low {
                return Err(Unsupported);
            }
            if (high as u32 - low as u32) as usize >= MAX_CLASS {
                wide = true;
                continue;
            }
            members.extend(low..=high);
        }
        if negated || wide || members.len() > MAX_CLASS {
            return Ok(Info::anything());
        }
        Ok(Info::exact(members.into_iter().map(String::from)))
    }
}

/// Tells whether `c` is a literal character outside a class.
fn is_plain(c: char) -> bool {
    !matches!(
        c,
        '\\' | '(' | ')' | '[' | ']' | '{' | '}' | '.' | '^' | '$' | '|' | '*' | '+' | '?'
    )
}

fn is_quantifier(c: char) -> bool {
    matches!(c, '*' | '+' | '?' | '{')
}

enum Escape {
    Char(char),
    Class,
    Assertion,
}

fn quantify(info: Info, min: usize, max: Option<usize>) -> Info {
    match (min, max) {
        (1, Some(1)) => info,
        (0, Some(1)) => match info.exact {
            Some(mut set) => {
                set.insert(String::new());
                Info::exact(set)
            }
            None => Info::anything(),
        },
        (0, _) => Info::anything(),
        _ => {
            // `min` copies of an exact set in a row, while the product stays
            // small: `(?:\.|%2e){2}` needs `..`, `.%2e`, `%2e.` or `%2e%2e`.
            let repeated = info.exact.as_ref().and_then(|set| {
                let mut run = set.clone();
                for _ in 1..min {
                    if run.len() * set.len() > MAX_CROSS {
                        return None;
                    }
                    run = cross(&run, set);
                }
                Some(run)
            });
            match repeated {
                Some(run) if max == Some(min) => Info::exact(run),
                Some(run) => Info {
                    exact: None,
                    need: set_need(run),
                },
                None => Info {
                    exact: None,
                    need: info.into_need(),
                },
            }
        }
    }
}

fn join_alternatives(branches: Vec<Info>) -> Info {
    let all_exact = branches.iter().all(|branch| branch.exact.is_some());
    let total: usize = branches
        .iter()
        .map(|branch| branch.exact.as_ref().map_or(0, BTreeSet::len))
        .sum();
    if all_exact && total <= MAX_UNION {
        return Info::exact(
            branches
                .into_iter()
                .flat_map(|branch| branch.exact.into_iter().flatten()),
        );
    }
    Info {
        exact: None,
        need: Need::Any(branches.into_iter().map(Info::into_need).collect()),
    }
}

/// Joins consecutive parts: runs of exact parts are crossed while the product
/// stays within [`MAX_CROSS`], and the runs and inexact parts are ANDed.
fn join_sequence(parts: Vec<Info>) -> Info {
    let mut needs = Vec::new();
    let mut run: BTreeSet<String> = BTreeSet::from([String::new()]);
    for part in parts {
        match part.exact {
            Some(mut set) => {
                if run.len() == 1 && set.len() == 1 {
                    if let (Some(mut head), Some(tail)) = (run.pop_first(), set.pop_first()) {
                        head.push_str(&tail);
                        run.insert(head);
                    }
                } else if run.len() * set.len() <= MAX_CROSS {
                    run = cross(&run, &set);
                } else {
                    needs.push(set_need(std::mem::replace(&mut run, set)));
                }
            }
            None => {
                needs.push(set_need(std::mem::replace(
                    &mut run,
                    BTreeSet::from([String::new()]),
                )));
                needs.push(part.need);
            }
        }
    }
    if needs.is_empty() {
        return Info::exact(run);
    }
    needs.push(set_need(run));
    Info {
        exact: None,
        need: Need::All(needs),
    }
}

fn cross(left: &BTreeSet<String>, right: &BTreeSet<String>) -> BTreeSet<String> {
    left.iter()
        .flat_map(|head| right.iter().map(move |tail| format!("{head}{tail}")))
        .collect()
}

/// Flattens nested conditions, drops parts that always hold, and drops
/// literals of an OR that contain another of its literals, since the shorter
/// one occurs whenever the longer one does.
fn simplify(need: Need) -> Need {
    match need {
        Need::All(parts) => {
            let mut flat = Vec::new();
            for part in parts.into_iter().map(simplify) {
                match part {
                    Need::Always => {}
                    Need::All(inner) => flat.extend(inner),
                    other => flat.push(other),
                }
            }
            match flat.len() {
                0 => Need::Always,
                1 => flat.pop().unwrap_or(Need::Always),
                _ => Need::All(flat),
            }
        }
        Need::Any(parts) => {
            let mut flat = Vec::new();
            for part in parts.into_iter().map(simplify) {
                match part {
                    Need::Always => return Need::Always,
                    Need::Any(inner) => flat.extend(inner),
                    other => flat.push(other),
                }
            }
            let redundant = contains_shorter(&flat);
            let mut index = 0;
            flat.retain(|_| {
                index += 1;
                !redundant.get(index - 1).copied().unwrap_or(false)
            });
            flat.dedup();
            match flat.len() {
                0 => Need::Always,
                1 => flat.pop().unwrap_or(Need::Always),
                _ => Need::Any(flat),
            }
        }
        other => other,
    }
}

/// Returns, for each part, whether it is a literal that contains another,
/// different literal among `parts`. Long lists index the literals by their
/// first byte, so that each position of a literal is compared only with the
/// literals that could start there.
fn contains_shorter(parts: &[Need]) -> Vec<bool> {
    let literals: Vec<Option<&[u8]>> = parts
        .iter()
        .map(|part| match part {
            Need::Literal(text) => Some(text.as_bytes()),
            _ => None,
        })
        .collect();
    let contains = |text: &[u8], other: &[u8]| {
        other.len() < text.len() && text.windows(other.len()).any(|window| window == other)
    };
    if literals.len() <= 8 {
        return literals
            .iter()
            .map(|text| {
                text.is_some_and(|text| {
                    literals
                        .iter()
                        .flatten()
                        .any(|other| !other.is_empty() && contains(text, other))
                })
            })
            .collect();
    }
    let mut by_first: Vec<Vec<&[u8]>> = vec![Vec::new(); 256];
    for text in literals.iter().flatten() {
        if let Some(&first) = text.first() {
            by_first[usize::from(first)].push(text);
        }
    }
    // Equal bytes are equal characters: UTF-8 never starts a character with
    // a continuation byte, so a byte match never begins inside a character.
    literals
        .iter()
        .map(|text| {
            text.is_some_and(|text| {
                text.iter().enumerate().any(|(start, &first)| {
                    by_first[usize::from(first)]
                        .iter()
                        .any(|other| other.len() < text.len() && text[start..].starts_with(other))
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(text: &str) -> Need {
        Need::Literal(text.to_string())
    }

    fn any(texts: &[&str]) -> Need {
        Need::Any(texts.iter().map(|text| literal(text)).collect())
    }

    #[test]
    fn plain_literal_required() {
        assert_eq!(required("union"), literal("union"));
    }

    #[test]
    fn repetition_separates_literals() {
        assert_eq!(
            required(r"cast\s*\("),
            Need::All(vec![literal("cast"), literal("(")])
        );
    }

    #[test]
    fn optional_part_crossed() {
        assert_eq!(required(r"cmd(?:\.exe)?"), literal("cmd"));
        assert_eq!(
            required(r"(?:ba|z)?sh\s+-c"),
            Need::All(vec![literal("sh"), literal("-c")])
        );
    }

    #[test]
    fn alternation_of_literals() {
        assert_eq!(
            required(r"\b(?:eval|exec)\s*\("),
            Need::All(vec![any(&["eval", "exec"]), literal("(")])
        );
    }

    #[test]
    fn alternation_with_unfiltered_branch() {
        assert_eq!(required(r"abc|\w+"), Need::Always);
        assert_eq!(required(r"x*"), Need::Always);
    }

    #[test]
    fn small_class_expanded() {
        assert_eq!(
            required(r"['\x22]\s*or\b"),
            Need::All(vec![any(&["\"", "'"]), literal("or")])
        );
        assert_eq!(required(r"[a-z]+x"), literal("x"));
        assert_eq!(required(r"[^a]bc"), literal("bc"));
    }

    #[test]
    fn escapes_decoded() {
        assert_eq!(
            required(r"\u{ac}\u{ed}\x00\x05"),
            literal("\u{ac}\u{ed}\u{0}\u{5}")
        );
        assert_eq!(required(r"_\$\$nd"), literal("_$$nd"));
    }

    #[test]
    fn word_boundary_escapes_are_empty() {
        assert_eq!(required(r"\<cat\>"), literal("cat"));
    }

    #[test]
    fn counted_repetition_keeps_its_copies() {
        assert_eq!(
            required(r"(?:\.|0x2e){2}/"),
            any(&["../", ".0x2e/", "0x2e./", "0x2e0x2e/"])
        );
        assert_eq!(required(r"a{0,3}b"), literal("b"));
    }

    #[test]
    fn long_alternation_drops_longer_literals() {
        // More than eight branches, so the first-byte index decides: `ax1b`
        // and `\u{e9}x1` contain `x1` and are dropped.
        let mut words: Vec<String> = (0..40).map(|n| format!("w{n}q")).collect();
        words.push("x1".to_string());
        words.push("ax1b".to_string());
        words.push("\u{e9}x1".to_string());
        let pattern = words.join("|");
        let Need::Any(parts) = required(&pattern) else {
            panic!("expected an OR of literals");
        };
        assert!(parts.contains(&literal("x1")));
        assert!(!parts.contains(&literal("ax1b")));
        assert!(!parts.contains(&literal("\u{e9}x1")));
        // `w1q` is no substring of `w11q`, so both stay.
        assert!(parts.contains(&literal("w1q")));
        assert!(parts.contains(&literal("w11q")));
        assert_eq!(parts.len(), 41);
    }

    #[test]
    fn plain_runs_split_at_quantifiers() {
        assert_eq!(required("abc?d"), any(&["abcd", "abd"]));
        assert_eq!(
            required("ab+cd"),
            Need::All(vec![literal("a"), literal("b"), literal("cd")])
        );
        assert_eq!(required("select}"), literal("select}"));
    }

    #[test]
    fn counted_repetition_crosses_small_sets() {
        assert_eq!(
            required(r"(?:\.|%2e){2}/"),
            any(&["%2e%2e/", "%2e./", ".%2e/", "../"])
        );
        assert_eq!(
            required(r"(?:\.|%2e){2,}/"),
            Need::All(vec![any(&["%2e%2e", "%2e.", ".%2e", ".."]), literal("/")])
        );
    }

    #[test]
    fn unsupported_syntax_requires_nothing() {
        for pattern in [
            r"(?i)union",
            r"[[:alpha:]]x",
            r"\pLx",
            r"(?P<name>x)",
            r"a(b",
            r"\b{start}x",
        ] {
            assert_eq!(required(pattern), Need::Always, "{pattern}");
        }
    }

    #[test]
    fn containment_matches_pairwise_check() {
        // Lists of 2 to 40 literals over an alphabet with two-byte and
        // three-byte characters, against the definition checked pair by pair.
        let alphabet = ["a", "b", "\u{e9}", "\u{20ac}", "/"];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for _ in 0..300 {
            let count = 2 + next(39);
            let parts: Vec<Need> = (0..count)
                .map(|_| {
                    let length = 1 + next(5);
                    literal(
                        &(0..length)
                            .map(|_| alphabet[next(alphabet.len())])
                            .collect::<String>(),
                    )
                })
                .collect();
            let texts: Vec<&str> = parts
                .iter()
                .map(|part| match part {
                    Need::Literal(text) => text.as_str(),
                    _ => "",
                })
                .collect();
            let expected: Vec<bool> = texts
                .iter()
                .map(|text| {
                    texts
                        .iter()
                        .any(|other| other != text && text.contains(other))
                })
                .collect();
            assert_eq!(contains_shorter(&parts), expected, "{texts:?}");
        }
    }
}
