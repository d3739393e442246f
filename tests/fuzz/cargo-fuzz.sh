#!/usr/bin/env bash
# Builds the libFuzzer targets under fuzz/ and runs each for FUZZ_SECONDS
# seconds (default 20) with a fixed seed, so that a CI failure reproduces.
# Exits non-zero when a target crashes, hangs, runs out of memory or fails
# to build.
#
# cargo-fuzz passes nightly `-Z` flags to rustc; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them, AddressSanitizer included.
#
# Environment:
#   FUZZ_SECONDS      run time of each target, in seconds (default 20)
#   FUZZ_SEED         libFuzzer seed (default 1)
#   FUZZ_TARGETS      space-separated targets (default: all of fuzz/Cargo.toml)
#   CARGO_TARGET_DIR  build directory (default target/fuzz in the repository)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root/fuzz"

seconds="${FUZZ_SECONDS:-20}"
seed="${FUZZ_SEED:-1}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/fuzz}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"

echo "cargo-fuzz: building $(echo $targets | wc -w) targets"
cargo fuzz build

failed=()
for target in $targets; do
    # Seeds under corpus/ are read only; new inputs go to the ignored work/
    # directory, and crash inputs to artifacts/<target>/.
    mkdir -p "work/corpus/$target" "artifacts/$target"
    echo "cargo-fuzz: running $target for ${seconds}s (seed $seed)"
    if ! cargo fuzz run "$target" "work/corpus/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -seed="$seed" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"work/$target.log" 2>&1; then
        failed+=("$target")
        tail -n 60 "work/$target.log"
        echo "cargo-fuzz: $target FAILED, input saved under fuzz/artifacts/$target/"
        continue
    fi
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "work/$target.log")"
    echo "cargo-fuzz: $target passed, ${runs:-?} runs"
done

passed=$(($(echo $targets | wc -w) - ${#failed[@]}))
echo "cargo-fuzz: ${passed} passed, ${#failed[@]} failed"
if ((${#failed[@]} > 0)); then
    echo "cargo-fuzz: failing targets: ${failed[*]}"
    exit 1
fi
