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
    assert_eq!(compiled().len(), RULES.len());
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
