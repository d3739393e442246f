#!/usr/bin/env bash
# Pushes both OCI images to a private registry on 127.0.0.1, pulls them back and checks them.
#
# Installs Debian's docker-registry and skopeo when they are missing (without starting the
# packaged registry service, whose default configuration listens on every interface), runs
# a registry of its own on a free loopback port, and stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

HOST_TEST=target/harness/host-test
MODULE=dist/portcullis.wasm
SCHEMAS=${OCI_SCHEMAS:-../shared/corpora/oci/image-spec-schema}
TAG=test

if [ ! -d "$SCHEMAS" ]; then
    echo "SKIP oci registry test: no image-spec schemas at $SCHEMAS"
    exit 0
fi

if ! command -v docker-registry >/dev/null 2>&1 || ! command -v skopeo >/dev/null 2>&1; then
    policy=/usr/sbin/policy-rc.d
    created_policy=""
    if [ ! -e "$policy" ]; then
        # Exit code 101 tells the package scripts not to start any service.
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod +x "$policy"
        created_policy=yes
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry skopeo >/dev/null
    if [ -n "$created_policy" ]; then
        rm -f "$policy"
    fi
fi
python3 -c 'import jsonschema, referencing' 2>/dev/null || pip install --quiet jsonschema

work=$(mktemp -d)
registry_pid=""
cleanup() {
    if [ -n "$registry_pid" ]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/', timeout=1)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done

"$HOST_TEST" oci --wasm "$MODULE" --out "$work/built" --tag "$TAG" > "$work/digests"
"$HOST_TEST" oci --wasm "$MODULE" --out "$work/again" --tag "$TAG" > "$work/digests-again"
if ! diff <(cut -d' ' -f1,3 "$work/digests") <(cut -d' ' -f1,3 "$work/digests-again") >/dev/null; then
    echo "FAIL oci: two builds of the same module gave different digests"
    exit 1
fi
echo "PASS oci: builds are reproducible ($(tr '\n' ' ' < "$work/digests"))"

for format in compat oci; do
    skopeo copy --quiet --insecure-policy --dest-tls-verify=false --preserve-digests \
        "oci:$work/built/$format:$TAG" "docker://127.0.0.1:$port/portcullis:$format"
    skopeo copy --quiet --insecure-policy --src-tls-verify=false --preserve-digests \
        "docker://127.0.0.1:$port/portcullis:$format" "oci:$work/pulled-$format:$TAG"
    python3 tests/oci/check_layout.py "$format" "$work/built/$format" "$work/pulled-$format" \
        "http://127.0.0.1:$port" portcullis "$format" "$MODULE" "$SCHEMAS"
done
