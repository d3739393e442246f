#!/usr/bin/env bash
# Gathers the benchmark figures in one run and writes BENCHMARKS.md.
# Run through `make bench`, which builds the module and the harness first.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST_TEST=target/harness/host-test
OUT=BENCHMARKS.md
REQUESTS=${BENCH_REQUESTS:-20000}
BASE_PORT=${BENCH_PORT:-18181}

serve_pids=()
stop_serve() {
    local pid
    for pid in "${serve_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    serve_pids=()
}
trap stop_serve EXIT

# Starts `host-test serve` with the given extra arguments and waits until it listens.
# Several servers may run at once, and `stop_serve` stops them all.
start_serve() {
    local port=$1
    shift
    "$HOST_TEST" serve --listen "127.0.0.1:$port" --upstream builtin --workers 2 "$@" 2>/dev/null &
    serve_pids+=($!)
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "host-test serve did not start on port $port" >&2
    exit 1
}

# Prints the middle one of three numbers.
median_of_three() {
    printf '%s\n' "$@" | sort -n | sed -n 2p
}

throughput() {
    "$HOST_TEST" load "http://127.0.0.1:$1/api/items?page=2" --requests "$REQUESTS" --concurrency 16 | sed -n 's/.*: \([0-9]*\) requests\/s.*/\1/p'
}

# The mean column of the row of a markdown table whose first cell starts with $2.
row_mean() {
    printf '%s\n' "$1" | awk -F'|' -v name="$2" 'index($2, " " name) == 1 {gsub(/ /, "", $4); print $4; exit}'
}

# Runs a command three times and prints the output of the run whose figure is the middle
# one, the figure being what the function named by $1 reads from an output. A slow spell
# of the machine that falls on one run then leaves the figure as it is.
median_run() {
    local figure=$1 outputs=() lines="" index middle
    shift
    for index in 0 1 2; do
        outputs[index]=$("$@")
        lines+="$("$figure" "${outputs[index]}") $index"$'\n'
    done
    middle=$(printf '%s' "$lines" | sort -g | sed -n 2p | cut -d' ' -f2)
    printf '%s\n' "${outputs[middle]}"
}

# The module's mean less the continue-only module's, from a `host-test bench` table.
module_figure() {
    awk -v a="$(row_mean "$1" "dist/portcullis.wasm")" -v b="$(row_mean "$1" "continue-only")" 'BEGIN {printf "%.1f", a - b}'
}

# The mean of a native timing row.
native_figure() {
    row_mean "$1" "native"
}

per_request=$(median_run module_figure "$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config envoy/portcullis-demo.json)
# The same request through the filter natively: the module's cost above minus the
# harness's is to be read against it.
native_filter=$(median_run native_figure cargo run --quiet --release -p portcullis-core --example filter_timing -- envoy/portcullis-demo.json 2>/dev/null)
# The benchmark sends one request again and again, so after the warm-up the filter skips
# the metadata it remembers as clean. The same pair of runs with that memory off shows the
# cost of a request whose every value is new.
memory_off=$(mktemp)
trap 'rm -f "$memory_off"; stop_serve' EXIT
python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); c["filter"]["remember_clean_metadata"] = False; print(json.dumps(c))' \
    envoy/portcullis-demo.json > "$memory_off"
per_request_new=$(median_run module_figure "$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config "$memory_off" |
    tail -1 | sed 's/^| [^|]*|/| dist\/portcullis.wasm, nothing remembered |/')
native_filter_new=$(median_run native_figure cargo run --quiet --release -p portcullis-core --example filter_timing -- "$memory_off" 2>/dev/null |
    sed 's/^| native Filter::inspect_headers |/| native Filter::inspect_headers, nothing remembered |/')

# Cost of header hardening per exchange: the core functions natively, and the module with
# headers on and off under host-test (the same filter configuration in both).
native_headers=$(median_run native_figure cargo run --quiet --release -p portcullis-core --example header_timing -- envoy/portcullis-demo.json)
headers_off=$(mktemp)
trap 'rm -f "$memory_off" "$headers_off"; stop_serve' EXIT
echo '{"headers": {"enabled": false}}' > "$headers_off"
wasm_headers_on=$("$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config envoy/portcullis-demo.json | tail -1 | sed 's/^| [^|]*|/| module, headers on |/')
wasm_headers_off=$("$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config "$headers_off" | tail -1 | sed 's/^| [^|]*|/| module, headers off |/')

# Instructions per request, counted by callgrind when valgrind is installed. Unlike the
# times they do not move with the load of the machine, so they compare across runs. Each
# count is the difference between runs of 1000 and 3000 requests, each after a warm-up of
# a tenth as many, so 2200 requests whose start-up and compilation cancel out.

# Prints the instructions that a command executes under callgrind.
count_instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --smc-check=all-non-file "$@" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

# Prints the instructions per request of a command whose COUNT argument is the number of
# requests.
count_per_request() {
    local few many
    # valgrind reports other CPU features to wasmtime. A first run may then compile the
    # module instead of loading it from the cache, so its count is not used.
    count_instructions "${@//COUNT/1}" >/dev/null
    few=$(count_instructions "${@//COUNT/1000}")
    many=$(count_instructions "${@//COUNT/3000}")
    echo $(((many - few) / 2200))
}
if command -v valgrind >/dev/null 2>&1; then
    cargo build --quiet --release -p portcullis-core --example filter_timing --example header_timing
    # `host-test bench` runs the continue-only module and then the plugin, so a run with
    # the continue-only module as the plugin is subtracted.
    bench_both=$(count_per_request "$HOST_TEST" bench --requests COUNT --plugin dist/portcullis.wasm --config envoy/portcullis-demo.json)
    bench_noop=$(count_per_request "$HOST_TEST" bench --requests COUNT --plugin host-test/src/noop.wat --config envoy/portcullis-demo.json)
    module_instructions=$((bench_both - bench_noop))
    filter_instructions=$(count_per_request target/release/examples/filter_timing envoy/portcullis-demo.json COUNT)
    headers_instructions=$(count_per_request target/release/examples/header_timing envoy/portcullis-demo.json COUNT)
    native_instructions=$((filter_instructions + headers_instructions))
    instruction_ratio=$(python3 -c "print(f'{$module_instructions / max($native_instructions, 1):.2f}')")
    instructions_section="| measurement | instructions per request |
|---|---|
| module, less the continue-only module (host calls included) | $module_instructions |
| native Filter::inspect_headers | $filter_instructions |
| native plan_request + response_edits | $headers_instructions |

The module executes ${instruction_ratio}x the instructions of the native rows. A wasm
instruction of cranelift's code and a native one are not of equal cost, so this ratio
tracks changes between runs; the times above are what the target is read against."
else
    instructions_section="valgrind is not installed (Debian package valgrind), so no instructions were counted."
fi

# Cost of per-key counting: the core check natively against an in-memory store with
# Envoy's shared-data semantics, and the module with a per-address policy beside the
# same module with the defaults. Under serve, two workers update the one key of the
# loopback client at once, so their compare-and-swap updates contend.
harness_mean=$(row_mean "$per_request" "continue-only")
module_work=$(module_figure "$per_request")
native_work=$(awk -v a="$(row_mean "$native_filter" "native")" -v b="$(row_mean "$native_headers" "native")" 'BEGIN {printf "%.1f", a + b}')
work_ratio=$(awk -v a="$module_work" -v b="$native_work" 'BEGIN {printf "%.2f", a / b}')
module_work_new=$(awk -v a="$(row_mean "$per_request_new" "dist/portcullis.wasm")" -v b="$harness_mean" 'BEGIN {printf "%.1f", a - b}')
native_work_new=$(awk -v a="$(row_mean "$native_filter_new" "native")" -v b="$(row_mean "$native_headers" "native")" 'BEGIN {printf "%.1f", a + b}')
work_ratio_new=$(awk -v a="$module_work_new" -v b="$native_work_new" 'BEGIN {printf "%.2f", a / b}')

native_limits=$(cargo run --quiet --release -p portcullis-core --example limits_timing 2>/dev/null)
native_limits_rows=$(echo "$native_limits" | grep '^|')
read -r _ bytes_per_key bucket_values bucket_bytes tracked_keys < <(echo "$native_limits" | grep '^BYTES_PER_KEY')
defaults_config=$(mktemp)
trap 'rm -f "$memory_off" "$headers_off" "$defaults_config"; stop_serve' EXIT
echo '{}' > "$defaults_config"
wasm_limits_on=$("$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config tests/bench/limits.json | tail -1 | sed 's/^| [^|]*|/| module, per-address policy |/')
wasm_limits_off=$("$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config "$defaults_config" | tail -1 | sed 's/^| [^|]*|/| module, no policy |/')

# Cost of token verification. Natively, the core check with a store that keeps nothing, so
# that each call verifies. In the module, host-test bench with a distinct valid token per
# request (each one a fresh verification) and with one token throughout (a cache hit).
# A second VM whose rule requires no token gets every request too, and the row is the
# difference, so carrying the header costs the same in both. Three rounds each run the
# native check and every module row once, and each figure is the median of the rounds.
# `openssl speed` gives OpenSSL's figures in CPU time.
JWT_REQUESTS=${BENCH_JWT_REQUESTS:-2000}
JWT_ALGORITHMS=(HS256 RS256 PS256 ES256 ES384 ES512 EdDSA)
jwt_dir=$(mktemp -d)
trap 'rm -rf "$memory_off" "$headers_off" "$defaults_config" "$jwt_dir"; stop_serve' EXIT
python3 tests/bench/make_jwt_tokens.py "$jwt_dir" "$((JWT_REQUESTS + JWT_REQUESTS / 10))" >/dev/null
head -1 "$jwt_dir/tokens-RS256.txt" > "$jwt_dir/one-token.txt"
cargo build --quiet --release -p portcullis-core --example jwt_timing
# Prints the difference row of host-test bench for the tokens of file $1: mean, median and
# p99 of the module with the tokens verified, less the same tokens not verified.
verification_difference() {
    "$HOST_TEST" bench --requests "$JWT_REQUESTS" --plugin dist/portcullis.wasm \
        --config "$jwt_dir/jwt.json" --baseline-config "$jwt_dir/no-token.json" --tokens "$1" |
        awk -F'|' '$2 == " difference " {print $4 + 0, $5 + 0, $6 + 0}'
}
declare -A native_runs module_runs
for round in 1 2 3; do
    native_runs[$round]=$(target/release/examples/jwt_timing "$jwt_dir" "$JWT_REQUESTS")
    for alg in "${JWT_ALGORITHMS[@]}"; do
        module_runs[$round,$alg]=$(verification_difference "$jwt_dir/tokens-$alg.txt")
    done
    module_runs[$round,hit]=$(verification_difference "$jwt_dir/one-token.txt")
done
# Prints the row of the round whose median (third field) is the median of the three rounds.
middle_round() {
    printf '%s\n' "$@" | sort -t' ' -k2,2n | sed -n 2p
}
# Prints a table row: label $1 and the middle round of the module figures of key $2.
module_row() {
    middle_round "${module_runs[1,$2]}" "${module_runs[2,$2]}" "${module_runs[3,$2]}" |
        awk -v label="$1" -v n="$JWT_REQUESTS" '{printf "| %s | %d | %.1f | %.1f | %.1f |\n", label, n, $1, $2, $3}'
}
# Prints the native row of algorithm $1 from the round whose median is the middle one.
native_row() {
    local rows=() round
    for round in 1 2 3; do
        rows+=("$(echo "${native_runs[$round]}" | awk -F'|' -v label=" native, $1 " \
            '$2 == label {print $4 + 0, $5 + 0, $6 + 0}')")
    done
    middle_round "${rows[@]}" |
        awk -v label="native, $1" -v n="$JWT_REQUESTS" '{printf "| %s | %d | %.1f | %.1f | %.1f |\n", label, n, $1, $2, $3}'
}
native_jwt_rows=""
wasm_jwt_rows=""
jwt_ratio_rows=""
openssl_jwt=$(openssl speed -mr -seconds 2 rsa2048 ecdsap256 ecdsap384 ecdsap521 ed25519 2>/dev/null)
openssl_hmac=$(openssl speed -mr -seconds 2 -bytes 256 -hmac sha256 2>/dev/null)
# Microseconds per verification from `openssl speed -mr`: +F2 is RSA, +F4 ECDSA, +F6 EdDSA.
openssl_rsa=$(echo "$openssl_jwt" | awk -F: '$1 == "+F2" && $3 == 2048 {printf "%.1f", 1e6 / $5}')
openssl_p256=$(echo "$openssl_jwt" | awk -F: '$1 == "+F4" && $3 == 256 {printf "%.1f", 1e6 / $5}')
openssl_p384=$(echo "$openssl_jwt" | awk -F: '$1 == "+F4" && $3 == 384 {printf "%.1f", 1e6 / $5}')
openssl_p521=$(echo "$openssl_jwt" | awk -F: '$1 == "+F4" && $3 == 521 {printf "%.1f", 1e6 / $5}')
openssl_ed25519=$(echo "$openssl_jwt" | awk -F: '$1 == "+F6" && $4 == "Ed25519" {printf "%.1f", 1e6 / $6}')
# +F is bytes per second of HMAC over 256-byte inputs, about the length of a signing input.
openssl_hs256=$(echo "$openssl_hmac" | awk -F: '$1 == "+F" {printf "%.2f", 256 * 1e6 / $4}')
for alg in "${JWT_ALGORITHMS[@]}"; do
    native=$(native_row "$alg")
    row=$(module_row "module, $alg, fresh" "$alg")
    native_jwt_rows+="$native"$'\n'
    wasm_jwt_rows+="$row"$'\n'
    case $alg in
        HS256) openssl_us=$openssl_hs256 ;;
        RS256 | PS256) openssl_us=$openssl_rsa ;;
        ES256) openssl_us=$openssl_p256 ;;
        ES384) openssl_us=$openssl_p384 ;;
        ES512) openssl_us=$openssl_p521 ;;
        EdDSA) openssl_us=$openssl_ed25519 ;;
    esac
    native_median=$(echo "$native" | awk -F'|' '{print $5 + 0}')
    module_median=$(echo "$row" | awk -F'|' '{print $5 + 0}')
    jwt_ratio_rows+=$(awk -v alg="$alg" -v n="$native_median" -v m="$module_median" -v o="$openssl_us" \
        'BEGIN {printf "| %s | %.1f | %.1f | %.1f | %s |", alg, n, m, (n > 0 ? m / n : 0), o}')$'\n'
done
wasm_jwt_hit=$(module_row "module, RS256, cache hit" hit)
rs256_median=$(echo "$wasm_jwt_rows" | awk -F'|' '$2 == " module, RS256, fresh " {print $5 + 0}')
hit_median=$(echo "$wasm_jwt_hit" | awk -F'|' '{print $5 + 0}')
hit_share=$(awk -v h="$hit_median" -v r="$rs256_median" 'BEGIN {printf "1/%.0f", (h > 0 ? r / h : 0)}')

# Every setup listens at once and the rounds take them in turn, so that a slow spell of
# the machine falls on all of them. Each figure is the median of the rounds.
serve_labels=(
    "no module"
    "host-test's module that only continues (\`host-test/src/noop.wat\`)"
    "dist/portcullis.wasm, demo configuration"
    "dist/portcullis.wasm, \`{}\`"
    "dist/portcullis.wasm, \`{}\` and a per-address policy, two workers on one key"
)
start_serve "$BASE_PORT"
start_serve "$((BASE_PORT + 1))" --plugin host-test/src/noop.wat --config "$defaults_config"
start_serve "$((BASE_PORT + 2))" --plugin dist/portcullis.wasm --config envoy/portcullis-demo.json
start_serve "$((BASE_PORT + 3))" --plugin dist/portcullis.wasm --config "$defaults_config"
start_serve "$((BASE_PORT + 4))" --plugin dist/portcullis.wasm --config tests/bench/limits.json
serve_samples=("" "" "" "" "")
for _ in 1 2 3; do
    for index in 0 1 2 3 4; do
        serve_samples[index]+="$(throughput "$((BASE_PORT + index))") "
    done
done
stop_serve
serve_rows=""
without=""
for index in 0 1 2 3 4; do
    # Unquoted, so that the three samples are separate words.
    median=$(median_of_three ${serve_samples[index]})
    [ -n "$without" ] || without=$median
    serve_rows+=$(awk -v label="${serve_labels[index]}" -v m="$median" -v w="$without" -v all="${serve_samples[index]% }" \
        'BEGIN {printf "| %s | %d | %s | %.2f |", label, m, all, (m > 0 ? w / m : 0)}')$'\n'
done

# Start-up cost and memory of one VM: compile without the on-disk cache, instantiate and
# configure each VM, and linear memory at rest and after a mixed load.
startup_demo=$("$HOST_TEST" startup --plugin dist/portcullis.wasm --config envoy/portcullis-demo.json)
native_configure=$(cargo run --quiet --release -p portcullis-core --example config_timing -- envoy/portcullis-demo.json)

# Detection on the labelled request corpus beside the repository, when it is present:
# through the module at paranoia levels 1 and 2, and natively with the mean filter time.
CORPUS=${BENCH_CORPUS:-../shared/corpora/waf/requests.jsonl}
if [ -f "$CORPUS" ]; then
    pl_dir=$(mktemp -d)
    trap 'rm -rf "$memory_off" "$headers_off" "$defaults_config" "$jwt_dir" "$pl_dir"; stop_serve' EXIT
    echo '{"filter": {"paranoia_level": 1}}' > "$pl_dir/pl1.json"
    echo '{"filter": {"paranoia_level": 2}}' > "$pl_dir/pl2.json"
    corpus_pl1=$("$HOST_TEST" replay "$CORPUS" --plugin dist/portcullis.wasm --config "$pl_dir/pl1.json" --column "PL1")
    corpus_pl2=$("$HOST_TEST" replay "$CORPUS" --plugin dist/portcullis.wasm --config "$pl_dir/pl2.json" --column "PL2")
    corpus_native=$(cargo run --quiet --release -p portcullis-core --example replay -- "$CORPUS" | grep '^Native mean')
    corpus_section="The corpus ($CORPUS, $(grep -c . "$CORPUS") lines) sent through dist/portcullis.wasm by
\`host-test replay\` with \`{\"filter\": {\"paranoia_level\": N}}\`; a line counts as blocked when the
module answers it with a local 403. Rules are tuned on the misses of the development half
only, so the held-out half estimates detection on attacks the rules were not written for.

$corpus_pl1

$corpus_pl2

The same corpus through the filter natively (\`plugin/core/examples/replay.rs\`, release build):

$corpus_native"
else
    corpus_section="The corpus was not found at $CORPUS; set BENCH_CORPUS to its path."
fi

raw_size=$(stat -c %s target/wasm32-wasip1/release/portcullis.wasm)
opt_size=$(stat -c %s dist/portcullis.wasm)
size_rows=$(python3 tests/bench/wasm_size.py target/wasm32-wasip1/release/portcullis.wasm 20)
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)

cat > "$OUT" <<MARKDOWN
# Benchmarks

Written by \`make bench\` (\`tests/bench.sh\`) on $(date -u +%Y-%m-%d).
Machine: ${cpu:-unknown CPU}, $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB;
$(rustc --version); wasmtime $(sed -n 's/^wasmtime = { version = "\([^"]*\)".*/\1/p' host-test/Cargo.toml) (cranelift).
The machines are shared and noisy: compare figures of one run with each other, not across runs.

## Per request in host-test

A GET with three headers and a query string, answered by a 200 with a small JSON body,
driven through every callback by \`host-test bench\` ($REQUESTS requests after a warm-up of a
tenth as many). The continue-only module is the harness's own cost. Each of these rows comes
from three runs: the one whose mean, for the module less the harness's, is the middle one.
The native rows run the request filter (\`plugin/core/examples/filter_timing.rs\`) and header hardening
(\`plugin/core/examples/header_timing.rs\`, see below) on the same request with the demo
configuration, release builds of the same code. The rows marked "nothing remembered" run
with \`filter.remember_clean_metadata\` off: the filter then inspects every value of every
request, as it does for metadata it has not seen. With it on (the default), the method,
path, header values, and cookie and argument names of this repeated request are skipped
after the warm-up, and only the query string and the argument and cookie values are
inspected.

$per_request
$per_request_new
$native_filter
$native_filter_new
$native_headers

The module's work per request without signatures, less the harness, is
$module_work µs (mean); the same work natively, the filter and header hardening rows
added, is $native_work µs: the module takes ${work_ratio}x. With nothing remembered, the
module takes $module_work_new µs against $native_work_new µs natively: ${work_ratio_new}x.

### Instructions per request

The same request profile, its instructions counted by callgrind (\`valgrind --tool=callgrind\`)
over 2200 requests: the difference between runs of 1000 and 3000 requests.

$instructions_section

## Header hardening per exchange

\`plan_request\` on the request headers and \`response_edits\` on the response headers of the
profile above, with the demo configuration: natively (\`plugin/core/examples/header_timing.rs\`,
release build), and in the module as the difference between two \`host-test bench\` runs with
\`headers.enabled\` true and false (that difference also contains the host calls that apply
the edits).

| measurement | requests | mean µs | median µs | p99 µs |
|---|---|---|---|---|
$native_headers
$wasm_headers_on
$wasm_headers_off

## Per-key counting per request

One check of a per-address policy (\`tests/bench/limits.json\`): natively
(\`plugin/core/examples/limits_timing.rs\`, release build, against the in-memory store
with Envoy's shared-data semantics), for one key again and again and for a new key each
time; and in the module beside the same module without a policy, both under
\`host-test bench\` (one VM, so no contention). The serve figures below show two workers
contending for the one key of the loopback client.

| measurement | requests | mean µs | median µs | p99 µs |
|---|---|---|---|---|
$native_limits_rows
$wasm_limits_on
$wasm_limits_off

Shared data per tracked key: $bytes_per_key bytes ($bucket_bytes bytes of keys and values
in $bucket_values shared-data values for a policy full at its $tracked_keys keys, the
default \`max_keys\`).

## Token verification

One request with a bearer token that a local JWKS verifies (\`tests/bench/make_jwt_tokens.py\`
writes fresh keys: RSA 2048, P-256, P-384, P-521, Ed25519, a 32-byte HMAC secret). Natively,
\`jwt::check::evaluate\` with a store that keeps nothing (\`plugin/core/examples/jwt_timing.rs\`,
release build), so every call parses the token, verifies its signature and checks its
claims. In the module, \`host-test bench --tokens --baseline-config\`: one VM whose rule
requires the token and one whose rule requires none, each request sent to both in turn, and
the row is the first VM's figure less the second's, so it is the token check alone. A distinct
valid token on each of $JWT_REQUESTS requests never hits the verified-token cache ("fresh"); one
token on every request always hits it ("cache hit"). The request filter is off in both VMs.
Three rounds each run the native check and every module row once; each row is the round with
the median median. Subtracting p99 from p99 only gives an estimate of the tail.

| measurement | requests | mean µs | median µs | p99 µs |
|---|---|---|---|---|
${native_jwt_rows}${wasm_jwt_rows}$wasm_jwt_hit

A cache hit costs $hit_share of a fresh RS256 verification (medians).

Ed25519 signatures are checked as \`[S]B - [k]A\` with two fixed-base tables
(\`plugin/core/src/jwt/ed25519.rs\`): curve25519-dalek's table of the base point and a
table of each key's negated point, built on the key's first verification. Natively
that runs curve25519-dalek's 64-bit field code, and in the module its 32-bit code.
The native RSA and ECDSA rows run \`crypto-bigint\`'s 64-bit limbs
and the \`p256\`, \`p384\` and \`p521\` crates. The module computes both in limbs of 28 bits for these keys
(\`plugin/core/src/jwt/montgomery.rs\` and \`weierstrass.rs\`), which take fewer wasm
instructions than 32-bit limbs with carries.

Median of a fresh verification, and the module's over the native figure. \`openssl speed\`
($(openssl version | cut -d' ' -f1-2), CPU time) gives one bare signature check: rsa2048
verify for RS256 and PS256, ecdsap256, ecdsap384 and ecdsap521 verify, ed25519 verify, and HMAC-SHA256
over 256 bytes.

| algorithm | native median µs | module median µs | module / native | openssl speed µs |
|---|---|---|---|---|
${jwt_ratio_rows}
## Throughput of host-test serve on loopback

\`host-test load\` with 16 requests in flight, $REQUESTS requests, against \`host-test serve
--workers 2 --upstream builtin\` (the in-process demo application). All setups listen at
once and three rounds take them in turn. The figure is the median of the three, and the
last column is the throughput without a module over the setup's. The module that only
continues shows what the proxy-wasm calls of the harness cost by themselves.

| setup | requests/s (median) | the three rounds | no module / setup |
|---|---|---|---|
${serve_rows}
## Request filter on the labelled corpus

$corpus_section

## Module size

| file | bytes |
|---|---|
| target/wasm32-wasip1/release/portcullis.wasm | $raw_size |
| dist/portcullis.wasm (wasm-opt -Oz when installed) | $opt_size |

Where the bytes of the module before wasm-opt go: its data segments, then the code of
each crate's functions (\`tests/bench/wasm_size.py\`, from the \`name\` section).

| part | bytes |
|---|---|
$size_rows

## Start-up and memory per VM

\`host-test startup\` with the demo configuration: compile time of dist/portcullis.wasm by
cranelift without the on-disk cache (each proxy compiles once per module, not per VM), the
time to instantiate and configure one VM (every worker thread of a proxy starts one),
and the VM's linear memory after configure and after a load that mixes ordinary GETs, JSON
writes of 4 KiB in 1 KiB chunks, form logins, blocked requests, and a new client address
and path on every fifth request. The native row parses and compiles the same
configuration outside wasm (\`plugin/core/examples/config_timing.rs\`, release build).
Configure builds the prefilter of every rule but compiles a built-in rule's regex only when
a value first passes that prefilter. The first requests that reach a rule pay for its
compilation (on average about 30 µs a regex natively, an estimate from configure
profiles), and memory grows by the compiled regexes that a load reaches.

$startup_demo

| step | runs | mean ms | max ms |
|---|---|---|---|
$native_configure
MARKDOWN
echo "wrote $OUT"
cat "$OUT"
