#!/usr/bin/env bash
# Checks the YAML files under envoy/ against Envoy's API and the module's configuration parser.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -c 'import envoy_data_plane, yaml' 2>/dev/null || pip install --quiet envoy-data-plane==2.2.0 pyyaml
python3 tests/envoy/check_configs.py target/harness/host-test dist/portcullis.wasm
