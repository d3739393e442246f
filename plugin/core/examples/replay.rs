//! Replays the labelled request corpus through the core filter natively and
//! prints detection and false-positive rates as a Markdown table, with the
//! mean time per request.
//!
//! ```sh
//! cargo run --release -p portcullis-core --example replay [CORPUS] [--misses [--every-line]] [--profile]
//! ```
//!
//! The table has one column for each half of the corpus at paranoia level 1
//! (see `is_development`), one for the whole corpus at level 1 and one at
//! level 2. `--misses` lists the missed attacks and blocked benign lines of
//! the development half at level 1, or of every line with `--every-line`,
//! for corpora that were not used in tuning. `--profile` prints the time that each
//! rule's test takes over the whole corpus, transforms excluded.

#[path = "../tests/support/replay.rs"]
#[allow(dead_code, clippy::panic)]
mod replay;

use portcullis_core::decode::{apply, to_text};
use portcullis_core::filter::Filter;
use portcullis_core::ruleset::RULES;
use portcullis_core::targets::{body_targets, header_targets};
use replay::{corpus_path, filter, is_development, load, Entry, Report};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let mut path = corpus_path();
    let mut misses = false;
    let mut every_line = false;
    let mut profile = false;
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            "--misses" => misses = true,
            "--every-line" => every_line = true,
            "--profile" => profile = true,
            _ => path = PathBuf::from(argument),
        }
    }
    let Some(entries) = load(&path) else {
        eprintln!("corpus not found at {}", path.display());
        std::process::exit(2);
    };
    let (development, held_out): (Vec<Entry>, Vec<Entry>) =
        entries.iter().cloned().partition(is_development);
    let level1 = filter(1);
    let reports = [
        replay::replay(&level1, &development),
        replay::replay(&level1, &held_out),
        replay::replay(&level1, &entries),
        replay::replay(&filter(2), &entries),
    ];
    print_table(&reports);
    if misses && every_line {
        print_misses(&reports[2], &entries, &level1);
    } else if misses {
        print_misses(&reports[0], &development, &level1);
    }
    if profile {
        print_profile(&level1, &entries);
    }
}

fn print_misses(report: &Report, entries: &[Entry], level1: &Filter) {
    println!("\nMissed attacks at paranoia level 1:");
    for id in &report.misses {
        let Some(entry) = entries.iter().find(|entry| entry.id == *id) else {
            continue;
        };
        let headers: Vec<_> = entry
            .headers
            .iter()
            .filter(|(name, _)| {
                !matches!(
                    name.as_str(),
                    "Host"
                        | "Accept"
                        | "Accept-Encoding"
                        | "Accept-Language"
                        | "Keep-Alive"
                        | "Proxy-Connection"
                        | "Connection"
                )
            })
            .collect();
        println!(
            "  {id} {} {} {} {:?} {:?} {:?}",
            entry.category,
            entry.method,
            entry.uri,
            headers,
            entry.body.chars().take(300).collect::<String>(),
            replay::explain(level1, entry)
        );
    }
    println!("Blocked benign lines at paranoia level 1:");
    let blocked_negatives = entries
        .iter()
        .filter(|entry| entry.category == replay::CRS_NEGATIVE && replay::blocked(level1, entry))
        .map(|entry| &entry.id);
    for id in report.false_positives.iter().chain(blocked_negatives) {
        let Some(entry) = entries.iter().find(|entry| entry.id == *id) else {
            continue;
        };
        println!(
            "  {id} {} {}",
            entry.uri,
            replay::explain(level1, entry).join(" ")
        );
    }
}

/// Prints the rules whose tests take the most time over every target of
/// every corpus line, with each rule's chain applied outside the timing.
fn print_profile(level1: &Filter, entries: &[Entry]) {
    let mut slowest: Vec<(Duration, &str)> = entries
        .iter()
        .map(|entry| {
            let started = Instant::now();
            replay::blocked(level1, entry);
            (started.elapsed(), entry.id.as_str())
        })
        .collect();
    slowest.sort_by_key(|(elapsed, _)| std::cmp::Reverse(*elapsed));
    println!("\nSlowest lines at paranoia level 1:");
    for (elapsed, id) in slowest.iter().take(8) {
        println!("  {:>8.1} µs  {id}", elapsed.as_secs_f64() * 1e6);
    }

    let rules = level1.rules();
    let mut spent = vec![Duration::ZERO; RULES.len()];
    let mut transform_time = Duration::ZERO;
    for entry in entries {
        let headers = entry.header_pairs();
        let mut targets = header_targets(&headers);
        let content_type = headers
            .iter()
            .find(|(name, _)| name == "content-type")
            .map(|(_, value)| value.as_slice());
        if !entry.body.is_empty() {
            targets.extend(body_targets(entry.body.as_bytes(), content_type, &[]));
        }
        for target in &targets {
            for (index, spec) in RULES.iter().enumerate() {
                let rule = &rules[index];
                if rule.paranoia > 1 || !rule.applies_to(target.kind, &target.name) {
                    continue;
                }
                let started = Instant::now();
                let text = to_text(&apply(spec.transforms, &target.value));
                transform_time += started.elapsed();
                let started = Instant::now();
                let _ = rule.find(&text);
                spent[index] += started.elapsed();
            }
        }
    }

    let mut order: Vec<usize> = (0..RULES.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(spent[index]));
    println!("\nTest time per rule over the corpus at paranoia level 1:");
    for index in order.into_iter().take(25) {
        println!(
            "  {:>8.1} µs/request  {}",
            spent[index].as_secs_f64() * 1e6 / entries.len() as f64,
            RULES[index].info.id
        );
    }
    println!(
        "  transforms, unshared: {:.1} µs/request",
        transform_time.as_secs_f64() * 1e6 / entries.len() as f64
    );
}

fn print_table(reports: &[Report; 4]) {
    println!("| category | lines | PL1 dev half | PL1 held-out half | PL1 all | PL2 all |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, pick: &dyn Fn(&Report) -> replay::Count| {
        let counts: Vec<replay::Count> = reports.iter().map(pick).collect();
        let cells: Vec<String> = counts
            .iter()
            .map(|count| format!("{:.1}% ({}/{})", count.rate(), count.blocked, count.total))
            .collect();
        println!("| {name} | {} | {} |", counts[2].total, cells.join(" | "));
    };
    for category in reports[2].attacks.keys() {
        row(category, &|report| {
            report.attacks.get(category).copied().unwrap_or_default()
        });
    }
    row(
        "**all attacks** (CRS PL1 and PL2 tests, authored)",
        &|report| report.attack_total(),
    );
    row("CRS tests for PL3 and PL4 (apart)", &|report| {
        report.high_paranoia_attacks
    });
    for category in reports[2].benign.keys() {
        row(category, &|report| {
            report.benign.get(category).copied().unwrap_or_default()
        });
    }
    row("**all ordinary benign** (false positives)", &|report| {
        report.benign_total()
    });
    row("benign-crs-negative (apart)", &|report| report.crs_negative);
    for (name, report) in ["PL1 all", "PL2 all"].iter().zip(&reports[2..]) {
        println!(
            "\nNative mean time per request, {name}: {:.1} µs over {} requests.",
            report.elapsed.as_secs_f64() * 1e6 / report.requests.max(1) as f64,
            report.requests
        );
    }
}
