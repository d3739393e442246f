//! The rule engine: target kinds, operators, severities and compiled rules.
//!
//! A rule has a stable id that appears in events and block responses, a
//! severity that sets its anomaly score, a paranoia level, the target kinds
//! it inspects, a chain of [`Transform`]s and one operator. The built-in rule
//! set is in [`crate::ruleset`]; configurations add custom rules with
//! [`CustomRuleSection`].

use crate::decode::Transform;
use crate::error::Error;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use libinjectionrs::{SqliFlags, SqliState};
use regex_lite::Regex;
use serde::Deserialize;
use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

/// The kind of request value that a rule inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// The `:method` value.
    Method,
    /// The `:path` value before `?`, undecoded.
    Path,
    /// The query string after `?`, undecoded.
    QueryString,
    /// The name of an argument: query, form, JSON key path or multipart
    /// field, decoded once.
    ArgName,
    /// The value of an argument: query, form, JSON string or number, or
    /// multipart field, decoded once.
    ArgValue,
    /// The name of a request header other than pseudo-headers.
    HeaderName,
    /// The value of a request header other than `:path` and `cookie`.
    HeaderValue,
    /// The name of a cookie.
    CookieName,
    /// The value of a cookie.
    CookieValue,
    /// The file name of a multipart part.
    FileName,
    /// A request body whose content type is not parsed into arguments, up to
    /// the buffered size.
    Body,
}

impl TargetKind {
    /// Returns the bit of this kind in a rule's scope.
    pub const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// Scope bits of every argument, header and cookie target.
pub const ARGS: u16 = TargetKind::ArgName.bit() | TargetKind::ArgValue.bit();
/// Scope bits of every value that a client controls freely.
pub const ALL_VALUES: u16 = ARGS
    | TargetKind::Path.bit()
    | TargetKind::HeaderValue.bit()
    | TargetKind::CookieName.bit()
    | TargetKind::CookieValue.bit()
    | TargetKind::FileName.bit()
    | TargetKind::Body.bit();

/// Request headers whose values follow a fixed grammar of tokens, numbers
/// and quality values. Built-in rules other than the Log4Shell ones skip them,
/// because applications do not pass them to interpreters and the `accept`
/// value alone contains `/*`, `;` and `=` in nearly every request.
pub const STRUCTURED_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "cache-control",
    "connection",
    "content-length",
    "dnt",
    "keep-alive",
    "pragma",
    "priority",
    "proxy-connection",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
    "te",
    "upgrade-insecure-requests",
];

/// Seriousness of a rule match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Suspicious but rarely harmful on its own.
    Low,
    /// Harmful in some applications.
    Medium,
    /// Commonly leads to data access or tampering.
    High,
    /// Commonly leads to remote code execution.
    Critical,
}

impl Severity {
    /// Returns the numeric value reported as `event.severity`, on a 0 to 100
    /// scale: low 21, medium 47, high 73, critical 99.
    pub const fn score(self) -> u8 {
        match self {
            Severity::Low => 21,
            Severity::Medium => 47,
            Severity::High => 73,
            Severity::Critical => 99,
        }
    }

    /// Returns the anomaly points that a match adds to the request's score:
    /// low 2, medium 3, high 4, critical 5.
    pub const fn anomaly_points(self) -> u32 {
        match self {
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }
}

/// The identity of a rule, as events and block responses report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    /// Stable id, such as `sqli-union-select`.
    pub id: &'static str,
    /// Human-readable name.
    pub name: &'static str,
    /// Severity of a match.
    pub severity: Severity,
}

/// How a rule tests a transformed value.
#[derive(Debug, Clone)]
pub enum Operator {
    /// A regex, run only when the value contains one of the prefilter
    /// literals (or always when there are none).
    Regex {
        /// Literals of which at least one must occur, matched as given. The
        /// filter merges them into one automaton for all rules; [`Rule::find`]
        /// searches for them one by one.
        literals: &'static [&'static str],
        /// Whether a prefilter literal counts only where it starts a word
        /// and no ASCII letter follows it, so `cat` passes `cat5` and
        /// `;cat` but not `category`.
        word_start: bool,
        /// The pattern, which runs in time linear in the value.
        regex: LazyRegex,
    },
    /// A set of phrases matched with Aho-Corasick. With `word` set, a phrase
    /// matches only between non-alphanumeric characters.
    Phrases {
        /// The phrase automaton.
        matcher: AhoCorasick,
        /// Whether a phrase must stand as a whole word.
        word: bool,
        /// The phrases of `matcher`.
        phrases: Vec<String>,
    },
    /// The libinjection SQL tokenizer and fingerprint check.
    Sqli,
    /// The libinjection HTML5 tokenizer check for script contexts.
    Xss,
}

/// A rule's regex, compiled when a value first reaches it.
///
/// Most values of ordinary traffic never pass a rule's prefilter, so a VM
/// never needs many regexes of the built-in set. Compiling all of them took
/// about a fifth of the demo configuration's configure time, measured natively. Built-in patterns are
/// compiled by a unit test; a custom pattern is compiled at configuration,
/// where an error can still reject the configuration.
#[derive(Debug, Clone)]
pub struct LazyRegex {
    pattern: Cow<'static, str>,
    compiled: OnceLock<Option<Regex>>,
}

impl LazyRegex {
    fn deferred(pattern: &'static str) -> Self {
        LazyRegex {
            pattern: Cow::Borrowed(pattern),
            compiled: OnceLock::new(),
        }
    }

    fn compiled(pattern: &str) -> Result<Self, regex_lite::Error> {
        let regex = Regex::new(pattern)?;
        Ok(LazyRegex {
            pattern: Cow::Owned(pattern.to_string()),
            compiled: OnceLock::from(Some(regex)),
        })
    }

    /// Returns the pattern's source text.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Returns the regex, compiling it on the first call. `None` only for a
    /// built-in pattern that does not compile, which the unit tests rule out.
    pub fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| Regex::new(&self.pattern).ok())
            .as_ref()
    }

    /// Returns the byte range of the first match in `text`.
    pub fn find(&self, text: &str) -> Option<Range<usize>> {
        self.get()?.find(text).map(|found| found.range())
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Identity of the rule.
    pub info: RuleInfo,
    /// Lowest paranoia level at which the rule runs, 1 to 4.
    pub paranoia: u8,
    /// Index of the rule's transform chain in the filter's chain table.
    pub chain: usize,
    scope: u16,
    /// Lower-case target names the rule is limited to, such as
    /// `user-agent`; empty means every name.
    names: Vec<String>,
    /// Whether the rule skips the headers in [`STRUCTURED_HEADERS`].
    skip_structured: bool,
    operator: Operator,
}

impl Rule {
    /// Tells whether the rule inspects a value of `kind` named `name`.
    pub fn applies_to(&self, kind: TargetKind, name: &str) -> bool {
        let structured = kind == TargetKind::HeaderValue && STRUCTURED_HEADERS.contains(&name);
        self.applies_to_classified(kind, name, structured)
    }

    /// Returns the target kinds that the rule inspects, as
    /// [`TargetKind::bit`] values.
    pub(crate) fn scope(&self) -> u16 {
        self.scope
    }

    /// [`Rule::applies_to`] with the membership of `name` in
    /// [`STRUCTURED_HEADERS`] computed once per target by the caller.
    pub(crate) fn applies_to_classified(
        &self,
        kind: TargetKind,
        name: &str,
        structured: bool,
    ) -> bool {
        self.scope & kind.bit() != 0
            && (self.names.is_empty() || self.names.iter().any(|wanted| wanted == name))
            && !(self.skip_structured && structured)
    }

    /// Returns the target names the rule is limited to; empty when it
    /// applies to every name.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Tells whether the rule skips the headers of [`STRUCTURED_HEADERS`].
    pub(crate) fn skips_structured(&self) -> bool {
        self.skip_structured
    }

    /// Returns the literals that every match of the rule contains: those of
    /// its regex, or one of its phrases. `None` for the libinjection checks.
    pub(crate) fn requirement(&self) -> Option<literals::Need> {
        match &self.operator {
            Operator::Regex { regex, .. } => Some(
                needs::precomputed(self.info.id, regex.pattern())
                    .unwrap_or_else(|| literals::required(regex.pattern())),
            ),
            Operator::Phrases { phrases, .. } => Some(literals::Need::Any(
                phrases
                    .iter()
                    .cloned()
                    .map(literals::Need::Literal)
                    .collect(),
            )),
            _ => None,
        }
    }

    /// Returns the prefilter literals of a regex rule and whether they count
    /// only as words, or `None` when the rule has no prefilter.
    pub fn prefilter_literals(&self) -> Option<(&'static [&'static str], bool)> {
        match &self.operator {
            Operator::Regex {
                literals,
                word_start,
                ..
            } if !literals.is_empty() => Some((literals, *word_start)),
            _ => None,
        }
    }

    /// Returns the first match in a transformed value, as a byte range of
    /// `text`, without the prefilter check: the caller has found one of the
    /// [`Rule::prefilter_literals`] in `text` already.
    pub fn find_prefiltered(&self, text: &str) -> Option<Range<usize>> {
        match &self.operator {
            Operator::Regex { regex, .. } => regex.find(text),
            _ => self.find(text),
        }
    }

    /// Returns the first match in a transformed value, as a byte range of
    /// `text`.
    pub fn find(&self, text: &str) -> Option<Range<usize>> {
        match &self.operator {
            Operator::Regex {
                literals,
                word_start,
                regex,
            } => {
                let passes = literals.is_empty()
                    || literals
                        .iter()
                        .any(|literal| contains_literal(text, literal, *word_start));
                if !passes {
                    return None;
                }
                regex.find(text)
            }
            Operator::Phrases { matcher, word, .. } => {
                let bytes = text.as_bytes();
                matcher
                    .find_iter(text)
                    .map(|found| found.range())
                    .find(|found| !*word || is_word_at(bytes, found.start, found.end))
            }
            // Both tokenizers read a value of ASCII letters and digits only as
            // one bare word or number, which they never report. Skipping it
            // saves their passes on most ordinary values.
            Operator::Sqli | Operator::Xss if is_alphanumeric(text) => None,
            // The HTML5 tokenizer reports only tags, comments and doctypes,
            // which start with `<`, and attribute values, which follow `=`
            // (a value that starts the input has no attribute name and is
            // never reported).
            Operator::Xss if !text.bytes().any(|byte| byte == b'<' || byte == b'=') => None,
            // Arithmetic on numbers, such as `(2+3)*4/5-1`, reads as SQL
            // operators, but without a string, keyword, comparison or
            // comment it can neither leave a literal nor change a condition.
            Operator::Sqli if is_arithmetic(text) => None,
            Operator::Sqli => {
                // `detect_sqli` tokenizes the value once more after the
                // check to report a fingerprint. Only a value that reads as
                // SQL needs one here.
                let mut state = SqliState::new(text.as_bytes(), SqliFlags::FLAG_NONE);
                if !state.detect() {
                    return None;
                }
                let fingerprint = state.get_fingerprint();
                let code = is_code_fingerprint(fingerprint.as_bytes(), !text.contains('@'));
                (!code).then_some(0..text.len())
            }
            Operator::Xss => {
                let neutral = neutralize_plain_styles(text);
                let input = neutral.as_deref().unwrap_or(text);
                libinjectionrs::detect_xss(input.as_bytes())
                    .is_injection()
                    .then_some(0..text.len())
            }
        }
    }
}

/// Tells whether `literal` occurs in `text`, where it starts a word when
/// `word_start` is set. Occurrences may overlap.
pub(crate) fn contains_literal(text: &str, literal: &str, word_start: bool) -> bool {
    if literal.is_empty() {
        return true;
    }
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text.get(from..).and_then(|rest| rest.find(literal)) {
        let start = from + offset;
        if !word_start || is_word_start(bytes, start, start + literal.len()) {
            return true;
        }
        // The next occurrence starts after the first byte of this one, at a
        // character boundary since `literal` is a whole string.
        from = start + literal.chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Tells whether a libinjection fingerprint has only bare words (`n`),
/// function names (`f`), parentheses and operators (`&`, `o`), with no
/// number, string, comment or SQL keyword. Program code such as
/// `if (a < b && c > d)` reads this way. An injection usually carries one of
/// the missing tokens to leave its string or to compare values; the other
/// SQL rules still inspect the value.
///
/// With `without_at_sign`, a variable token (`v`) counts as code too.
/// libinjection reads `null` as a variable, so `null or undefined` and
/// `x == null || y` have one, while the MySQL variables that an injection
/// reads, such as `@@version`, contain `@`.
fn is_code_fingerprint(fingerprint: &[u8], without_at_sign: bool) -> bool {
    let code_tokens: &[u8] = if without_at_sign {
        b"nf()&ov"
    } else {
        b"nf()&o"
    };
    fingerprint
        .iter()
        .take_while(|&&token| token != 0)
        .all(|token| code_tokens.contains(token))
}

/// Returns `text` with every quoted `style` attribute whose value is plain
/// CSS renamed to `title`, or `None` when there is none. libinjection
/// reports any `style` attribute, which rich-text editors put on ordinary
/// paragraphs. A value with an escape, a comment, a URL, `expression`,
/// `behavior`, `binding`, `@import` or `javascript` is left for it to report.
fn neutralize_plain_styles(text: &str) -> Option<String> {
    const UNSAFE: [&str; 8] = [
        "\\",
        "/*",
        "url",
        "expression",
        "behavior",
        "binding",
        "import",
        "script",
    ];
    let mut output = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("style=") {
        let before_ok = rest[..at]
            .chars()
            .next_back()
            .is_some_and(char::is_whitespace);
        let after = &rest[at + "style=".len()..];
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
        let value_end = quote.and_then(|quote| after[1..].find(quote));
        match (before_ok, quote, value_end) {
            (true, Some(quote), Some(end)) => {
                let value = &after[1..1 + end];
                if UNSAFE.iter().any(|word| value.contains(word)) {
                    output.push_str(&rest[..at + "style=".len()]);
                    rest = after;
                    continue;
                }
                output.push_str(&rest[..at]);
                output.push_str("title=");
                output.push(quote);
                output.push_str(value);
                output.push(quote);
                rest = &after[end + 2..];
                changed = true;
            }
            _ => {
                output.push_str(&rest[..at + "style=".len()]);
                rest = after;
            }
        }
    }
    output.push_str(rest);
    changed.then_some(output)
}

/// Tells whether `text` has only digits, spaces, arithmetic operators,
/// parentheses, dots and commas, and no `--` or `/*` comment.
fn is_arithmetic(text: &str) -> bool {
    text.bytes()
        .all(|byte| byte.is_ascii_digit() || b" +-*/%().,".contains(&byte))
        && !text.contains("--")
        && !text.contains("/*")
}

fn is_alphanumeric(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

/// Tells whether the literal at `start..end` of `bytes` stands as a word for
/// [`Test::WordRegex`]: no ASCII letter or digit before it and no ASCII letter
/// after it.
pub(crate) fn is_word_start(bytes: &[u8], start: usize, end: usize) -> bool {
    let before = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
    let after = end >= bytes.len() || !bytes[end].is_ascii_alphabetic();
    before && after
}

fn is_word_at(bytes: &[u8], start: usize, end: usize) -> bool {
    let before = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
    let after = end >= bytes.len() || !bytes[end].is_ascii_alphanumeric();
    before && after
}

/// How a rule spec names its test.
#[derive(Debug, Clone, Copy)]
pub enum Test {
    /// A regex with prefilter literals.
    Regex(&'static [&'static str], &'static str),
    /// A regex with prefilter literals that count only as words, with
    /// digits allowed after them, for long lists of command names.
    WordRegex(&'static [&'static str], &'static str),
    /// Phrases anywhere in the value.
    Phrases(&'static [&'static str]),
    /// Phrases standing as whole words.
    Words(&'static [&'static str]),
    /// The libinjection SQL check.
    Sqli,
    /// The libinjection XSS check.
    Xss,
}

/// A built-in rule as written in [`crate::ruleset`].
#[derive(Debug, Clone, Copy)]
pub struct RuleSpec {
    /// Identity of the rule.
    pub info: RuleInfo,
    /// Lowest paranoia level at which the rule runs.
    pub paranoia: u8,
    /// Target kinds, as [`TargetKind::bit`] values.
    pub scope: u16,
    /// Lower-case target names the rule is limited to.
    pub names: &'static [&'static str],
    /// Whether the rule skips the headers in [`STRUCTURED_HEADERS`].
    pub skip_structured: bool,
    /// Transform chain applied before the test.
    pub transforms: &'static [Transform],
    /// The test.
    pub test: Test,
}

/// A custom rule in the `filter.rules` list of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct CustomRuleSection {
    /// Rule id reported in events and block responses: letters, digits,
    /// `-`, `_` and `.`, different from every built-in and custom id.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[A-Za-z0-9._-]+$")))]
    id: String,
    /// Rule name in events. Default `Custom rule ID`.
    #[serde(default)]
    name: Option<String>,
    /// Severity, which sets the anomaly points of a match. Default
    /// `critical`.
    #[serde(default = "default_severity")]
    severity: Severity,
    /// Lowest `filter.paranoia_level` at which the rule runs, 1 to 4.
    /// Default 1.
    #[serde(default = "default_paranoia")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 4)))]
    paranoia: u8,
    /// Kinds of request value that the rule inspects, at least one.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    targets: Vec<TargetKind>,
    /// Header, argument or cookie names, compared case-insensitively, that
    /// the rule is limited to. Default empty: every name.
    #[serde(default)]
    names: Vec<String>,
    /// Transforms applied in order to each value before matching. Default
    /// empty.
    #[serde(default)]
    transforms: Vec<Transform>,
    /// Regex (regex-lite syntax, which has no Unicode classes) that
    /// matches anywhere in the transformed value. Exactly one of `regex`
    /// and a non-empty `phrases` is required.
    #[serde(default)]
    regex: Option<String>,
    /// Literal phrases, any of which matches anywhere in the transformed
    /// value, case-sensitively. Exactly one of `regex` and a non-empty
    /// `phrases` is required.
    #[serde(default)]
    phrases: Vec<String>,
}

fn default_severity() -> Severity {
    Severity::Critical
}

fn default_paranoia() -> u8 {
    1
}

/// A rule before its transform chain is entered in the chain table.
pub(crate) struct Uncompiled {
    pub(crate) rule: Rule,
    pub(crate) transforms: Vec<Transform>,
}

fn phrase_matcher(phrases: &[impl AsRef<[u8]>]) -> Result<AhoCorasick, String> {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(phrases)
        .map_err(|error| error.to_string())
}

/// Compiles one built-in rule spec.
pub(crate) fn compile_spec(spec: &RuleSpec) -> Result<Uncompiled, Error> {
    let fail = |message: String| Error::InvalidRule {
        id: spec.info.id,
        message,
    };
    let operator = match spec.test {
        Test::Regex(literals, pattern) | Test::WordRegex(literals, pattern) => Operator::Regex {
            literals,
            word_start: matches!(spec.test, Test::WordRegex(..)),
            regex: LazyRegex::deferred(pattern),
        },
        Test::Phrases(phrases) => Operator::Phrases {
            matcher: phrase_matcher(phrases).map_err(fail)?,
            word: false,
            phrases: phrases.iter().map(|phrase| phrase.to_string()).collect(),
        },
        Test::Words(phrases) => Operator::Phrases {
            matcher: phrase_matcher(phrases).map_err(fail)?,
            word: true,
            phrases: phrases.iter().map(|phrase| phrase.to_string()).collect(),
        },
        Test::Sqli => Operator::Sqli,
        Test::Xss => Operator::Xss,
    };
    Ok(Uncompiled {
        rule: Rule {
            info: spec.info,
            paranoia: spec.paranoia,
            chain: 0,
            scope: spec.scope,
            names: spec.names.iter().map(|name| name.to_string()).collect(),
            skip_structured: spec.skip_structured,
            operator,
        },
        transforms: spec.transforms.to_vec(),
    })
}

/// Compiles one custom rule; `path` is its JSON path for errors.
///
/// NOTE: the id and name are leaked to get `&'static str`, so each
/// reconfiguration keeps a few bytes per custom rule for the life of the VM.
pub(crate) fn compile_custom(section: &CustomRuleSection, path: &str) -> Result<Uncompiled, Error> {
    if section.id.is_empty()
        || !section
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(Error::invalid(
            format!("{path}.id"),
            format!(
                "must be letters, digits, '-', '_' or '.', got {:?}",
                section.id
            ),
        ));
    }
    if !(1..=4).contains(&section.paranoia) {
        return Err(Error::invalid(
            format!("{path}.paranoia"),
            format!("must be 1 to 4, got {}", section.paranoia),
        ));
    }
    if section.targets.is_empty() {
        return Err(Error::invalid(
            format!("{path}.targets"),
            "must name at least one target kind",
        ));
    }
    let operator = match (&section.regex, section.phrases.is_empty()) {
        (Some(pattern), true) => Operator::Regex {
            literals: &[],
            word_start: false,
            regex: LazyRegex::compiled(pattern).map_err(|error| {
                Error::invalid(format!("{path}.regex"), format!("invalid regex: {error}"))
            })?,
        },
        (None, false) => Operator::Phrases {
            matcher: phrase_matcher(&section.phrases)
                .map_err(|error| Error::invalid(format!("{path}.phrases"), error))?,
            word: false,
            phrases: section.phrases.clone(),
        },
        _ => {
            return Err(Error::invalid(
                path.to_string(),
                "needs exactly one of `regex` and `phrases`",
            ))
        }
    };
    let id: &'static str = Box::leak(section.id.clone().into_boxed_str());
    let name: &'static str = Box::leak(
        section
            .name
            .clone()
            .unwrap_or_else(|| format!("Custom rule {}", section.id))
            .into_boxed_str(),
    );
    Ok(Uncompiled {
        rule: Rule {
            info: RuleInfo {
                id,
                name,
                severity: section.severity,
            },
            paranoia: section.paranoia,
            chain: 0,
            scope: section
                .targets
                .iter()
                .fold(0, |scope, kind| scope | kind.bit()),
            names: section
                .names
                .iter()
                .map(|name| name.to_ascii_lowercase())
                .collect(),
            skip_structured: false,
            operator,
        },
        transforms: section.transforms.clone(),
    })
}

pub(crate) mod literals;
mod needs;

#[cfg(test)]
mod tests;
