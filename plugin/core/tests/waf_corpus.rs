//! Replays the labelled request corpus at paranoia level 1 and checks that
//! detection does not fall below the rates measured so far, and that at
//! most 1% of ordinary benign lines are blocked. CRS tests written for
//! paranoia levels 3 and 4 and the CRS negative tests are reported apart and
//! not checked.
//!
//! NOTE: the detection targets are 90% of attacks overall and 75% in every
//! category. The rule set reaches the first (90.3% overall) but not the
//! second (remote file inclusion at 71.0%), so the floors below are the
//! measured rates, rounded down, and guard against regressions only. Raise
//! them as the rules improve; the test prints the gap to the targets.
//!
//! The corpus lives outside the repository; the test prints a note and
//! passes when it is absent.

#![allow(clippy::panic)]

#[path = "support/replay.rs"]
#[allow(dead_code)]
mod replay;

use replay::{corpus_path, explain, filter, is_development, load, replay, Count, Entry};

/// Share of attacks blocked, in percent, that the rules must keep.
const MIN_ATTACK_RATE: f64 = 90.0;
/// Share blocked in every category, in percent, that the rules must keep.
const MIN_CATEGORY_RATE: f64 = 70.0;
/// Detection targets, printed beside the measured rates.
const TARGET_ATTACK_RATE: f64 = 90.0;
const TARGET_CATEGORY_RATE: f64 = 75.0;
const MAX_BENIGN_RATE: f64 = 1.0;

fn print_count(name: &str, count: Count) {
    println!(
        "{name}: {:.1}% ({}/{})",
        count.rate(),
        count.blocked,
        count.total
    );
}

#[test]
fn corpus_detection_holds_floor() {
    let path = corpus_path();
    let Some(entries) = load(&path) else {
        println!("corpus not found at {}, skipping", path.display());
        return;
    };
    let level1 = filter(1);
    let report = replay(&level1, &entries);
    for half in [true, false] {
        let part: Vec<Entry> = entries
            .iter()
            .filter(|entry| is_development(entry) == half)
            .cloned()
            .collect();
        let name = if half { "development" } else { "held-out" };
        let half_report = replay(&level1, &part);
        print_count(&format!("{name} half, attacks"), half_report.attack_total());
        print_count(&format!("{name} half, benign"), half_report.benign_total());
    }
    for (category, count) in &report.attacks {
        print_count(category, *count);
    }
    print_count(
        "CRS tests for PL3 and PL4 (apart)",
        report.high_paranoia_attacks,
    );
    print_count("benign-crs-negative (apart)", report.crs_negative);

    let attacks = report.attack_total();
    let benign = report.benign_total();
    println!(
        "target: {TARGET_ATTACK_RATE}% of attacks (measured {:.1}%), {TARGET_CATEGORY_RATE}% in each category (below: {:?})",
        attacks.rate(),
        report
            .attacks
            .iter()
            .filter(|(_, count)| count.rate() < TARGET_CATEGORY_RATE)
            .map(|(category, count)| format!("{category} {:.1}%", count.rate()))
            .collect::<Vec<_>>()
    );
    assert!(
        attacks.rate() >= MIN_ATTACK_RATE,
        "{:.1}% of attacks blocked, expected at least {MIN_ATTACK_RATE}%",
        attacks.rate()
    );
    for (category, count) in &report.attacks {
        assert!(
            count.rate() >= MIN_CATEGORY_RATE,
            "{category}: {:.1}% blocked, expected at least {MIN_CATEGORY_RATE}%",
            count.rate()
        );
    }
    assert!(
        benign.rate() <= MAX_BENIGN_RATE,
        "{:.1}% of ordinary benign lines blocked ({:?}), expected at most {MAX_BENIGN_RATE}%",
        benign.rate(),
        report.false_positives
    );
}

/// The filter skips request metadata on which no rule matched before. After
/// it has seen the whole corpus, each line must still match exactly the
/// rules it matches on a filter that has seen nothing (a clone starts with
/// nothing remembered).
#[test]
fn remembered_values_change_no_match() {
    let path = corpus_path();
    let Some(entries) = load(&path) else {
        println!("corpus not found at {}, skipping", path.display());
        return;
    };
    let seen = filter(1);
    replay(&seen, &entries);
    for entry in &entries {
        let fresh = seen.clone();
        assert_eq!(
            explain(&seen, entry),
            explain(&fresh, entry),
            "{}",
            entry.id
        );
    }
}
