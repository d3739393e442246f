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

start_serve "$BASE_PORT"
without=$(throughput "$BASE_PORT")
stop_serve
start_serve "$((BASE_PORT + 1))" --plugin dist/portcullis.wasm --config envoy/portcullis-demo.json
with=$(throughput "$((BASE_PORT + 1))")
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
tenth as many). The continue-only module is the harness's own cost.

$per_request

## Throughput of host-test serve on loopback

\`host-test load\` with 16 requests in flight, $REQUESTS requests, against \`host-test serve
--workers 2 --upstream builtin\` (the in-process demo application).

| setup | requests/s |
|---|---|
| no module | $without |
| dist/portcullis.wasm, demo configuration | $with |

## Module size

| file | bytes |
|---|---|
| target/wasm32-wasip1/release/portcullis.wasm | $raw_size |
| dist/portcullis.wasm (wasm-opt -Oz when installed) | $opt_size |
MARKDOWN
echo "wrote $OUT"
cat "$OUT"
