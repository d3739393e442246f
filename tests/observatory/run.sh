#!/usr/bin/env bash
# Grades the module's headers with the MDN HTTP Observatory for the default
# configuration and the demo configuration; fails below A+.
# Run through `make observatory`, which builds the module and the harness and
# installs the npm package first.
set -euo pipefail
cd "$(dirname "$0")/../.."

HOST_TEST=${HOST_TEST:-target/harness/host-test}
PLUGIN=${PLUGIN:-dist/portcullis.wasm}

# The package's postinstall script downloads Chromium's HSTS preload list, and
# `npm install --ignore-scripts` skips it. The graded host is under the reserved
# `.test` domain, which no preload list contains, so an empty list grades the same.
preload=tests/observatory/node_modules/@mdn/mdn-http-observatory/conf/hsts-preload.json
if [ ! -f "$preload" ]; then
    echo '{}' > "$preload"
fi

defaults=$(mktemp)
trap 'rm -f "$defaults"' EXIT
echo '{}' > "$defaults"

node tests/observatory/grade.mjs "$HOST_TEST" "$PLUGIN" "$defaults" "default configuration"
node tests/observatory/grade.mjs "$HOST_TEST" "$PLUGIN" envoy/portcullis-demo.json "envoy/portcullis-demo.json"
