#!/usr/bin/env bash
# Gathers the benchmark figures in one run and writes BENCHMARKS.md.
# Run through `make bench`, which builds the module and the harness first.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST_TEST=target/harness/host-test
OUT=BENCHMARKS.md
REQUESTS=${BENCH_REQUESTS:-20000}
BASE_PORT=${BENCH_PORT:-18181}

serve_pid=""
stop_serve() {
    if [ -n "$serve_pid" ]; then
        kill "$serve_pid" 2>/dev/null || true
        wait "$serve_pid" 2>/dev/null || true
        serve_pid=""
    fi
}
trap stop_serve EXIT

# Starts `host-test serve` with the given extra arguments and waits until it listens.
start_serve() {
    local port=$1
    shift
    "$HOST_TEST" serve --listen "127.0.0.1:$port" --upstream builtin --workers 2 "$@" 2>/dev/null &
    serve_pid=$!
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "host-test serve did not start on port $port" >&2
    exit 1
}

throughput() {
    "$HOST_TEST" load "http://127.0.0.1:$1/api/items?page=2" --requests "$REQUESTS" --concurrency 16 | sed -n 's/.*: \([0-9]*\) requests\/s.*/\1/p'
}

per_request=$("$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config envoy/portcullis-demo.json)
# The same request through the filter natively: the module's cost above minus the
# harness's is to be read against it.
native_filter=$(cargo run --quiet --release -p portcullis-core --example filter_timing -- envoy/portcullis-demo.json 2>/dev/null)

# Cost of header hardening per exchange: the core functions natively, and the module with
# headers on and off under host-test (the same filter configuration in both).
native_headers=$(cargo run --quiet --release -p portcullis-core --example header_timing -- envoy/portcullis-demo.json)
headers_off=$(mktemp)
trap 'rm -f "$headers_off"; stop_serve' EXIT
echo '{"headers": {"enabled": false}}' > "$headers_off"
wasm_headers_on=$("$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config envoy/portcullis-demo.json | tail -1 | sed 's/^| [^|]*|/| module, headers on |/')
wasm_headers_off=$("$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config "$headers_off" | tail -1 | sed 's/^| [^|]*|/| module, headers off |/')

# Cost of per-key counting: the core check natively against an in-memory store with
# Envoy's shared-data semantics, and the module with a per-address policy beside the
# same module with the defaults. Under serve, two workers update the one key of the
# loopback client at once, so their compare-and-swap updates contend.
native_limits=$(cargo run --quiet --release -p portcullis-core --example limits_timing 2>/dev/null)
native_limits_rows=$(echo "$native_limits" | grep '^|')
read -r _ bytes_per_key bucket_values bucket_bytes tracked_keys < <(echo "$native_limits" | grep '^BYTES_PER_KEY')
defaults_config=$(mktemp)
trap 'rm -f "$headers_off" "$defaults_config"; stop_serve' EXIT
echo '{}' > "$defaults_config"
wasm_limits_on=$("$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config tests/bench/limits.json | tail -1 | sed 's/^| [^|]*|/| module, per-address policy |/')
wasm_limits_off=$("$HOST_TEST" bench --requests "$REQUESTS" --plugin dist/portcullis.wasm --config "$defaults_config" | tail -1 | sed 's/^| [^|]*|/| module, no policy |/')

start_serve "$BASE_PORT"
without=$(throughput "$BASE_PORT")
stop_serve
start_serve "$((BASE_PORT + 1))" --plugin dist/portcullis.wasm --config envoy/portcullis-demo.json
with=$(throughput "$((BASE_PORT + 1))")
stop_serve
start_serve "$((BASE_PORT + 2))" --plugin dist/portcullis.wasm --config "$defaults_config"
with_defaults=$(throughput "$((BASE_PORT + 2))")
stop_serve
start_serve "$((BASE_PORT + 3))" --plugin dist/portcullis.wasm --config tests/bench/limits.json
with_limits=$(throughput "$((BASE_PORT + 3))")
stop_serve

raw_size=$(stat -c %s target/wasm32-wasip1/release/portcullis.wasm)
opt_size=$(stat -c %s dist/portcullis.wasm)
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
tenth as many). The continue-only module is the harness's own cost. The native row runs
the request filter alone (\`plugin/core/examples/filter_timing.rs\`, release build) on the
same request, with the demo configuration.

$per_request
$native_filter

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

## Throughput of host-test serve on loopback

\`host-test load\` with 16 requests in flight, $REQUESTS requests, against \`host-test serve
--workers 2 --upstream builtin\` (the in-process demo application).

| setup | requests/s |
|---|---|
| no module | $without |
| dist/portcullis.wasm, demo configuration | $with |
| dist/portcullis.wasm, \`{}\` | $with_defaults |
| dist/portcullis.wasm, \`{}\` and a per-address policy, two workers on one key | $with_limits |

## Module size

| file | bytes |
|---|---|
| target/wasm32-wasip1/release/portcullis.wasm | $raw_size |
| dist/portcullis.wasm (wasm-opt -Oz when installed) | $opt_size |
MARKDOWN
echo "wrote $OUT"
cat "$OUT"
