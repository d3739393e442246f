"""Checks every YAML file under envoy/ offline.

- Envoy bootstraps are parsed into Envoy's typed API messages with envoy-data-plane, which
  rejects unknown fields, wrong types, bad enum values and unregistered type URLs.
- Istio WasmPlugin and Envoy Gateway EnvoyExtensionPolicy resources are checked for the
  fields those controllers need.
- Every embedded plugin configuration is handed to the module's proxy_on_configure through
  `host-test run`, which fails when the module rejects it.

Usage: check_configs.py HOST_TEST MODULE
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

# The typed-config messages the bootstraps use must be imported to be registered.
import envoy_data_plane.envoy.extensions.filters.http.router.v3  # noqa: F401
import envoy_data_plane.envoy.extensions.filters.http.wasm.v3  # noqa: F401
import envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3  # noqa: F401
from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap

WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
STRING_VALUE_TYPE = "type.googleapis.com/google.protobuf.StringValue"

failures = []


def wasm_configs(node):
    """Yields every Wasm filter `config` found anywhere in a bootstrap."""
    if isinstance(node, dict):
        if node.get("@type") == WASM_FILTER_TYPE:
            yield node.get("config", {})
        for value in node.values():
            yield from wasm_configs(value)
    elif isinstance(node, list):
        for value in node:
            yield from wasm_configs(value)


def plugin_configurations(path, document):
    """Returns (label, configuration text) pairs, after checking the document's structure."""
    kind = document.get("kind")
    if kind == "WasmPlugin":
        spec = document.get("spec", {})
        if document.get("apiVersion") != "extensions.istio.io/v1alpha1":
            failures.append(f"{path}: WasmPlugin apiVersion {document.get('apiVersion')!r}")
        if not str(spec.get("url", "")).startswith(("oci://", "https://", "file://")):
            failures.append(f"{path}: WasmPlugin spec.url must be oci://, https:// or file://")
        if spec.get("failStrategy", "FAIL_CLOSE") not in ("FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"):
            failures.append(f"{path}: WasmPlugin spec.failStrategy {spec.get('failStrategy')!r}")
        return [(f"{path} pluginConfig", json.dumps(spec.get("pluginConfig", {})))]
    if kind == "EnvoyExtensionPolicy":
        if document.get("apiVersion") != "gateway.envoyproxy.io/v1alpha1":
            failures.append(f"{path}: EnvoyExtensionPolicy apiVersion {document.get('apiVersion')!r}")
        result = []
        for index, wasm in enumerate(document.get("spec", {}).get("wasm", [])):
            code = wasm.get("code", {})
            if code.get("type") not in ("Image", "HTTP"):
                failures.append(f"{path}: spec.wasm[{index}].code.type {code.get('type')!r}")
            if code.get("type") == "Image" and not code.get("image", {}).get("url"):
                failures.append(f"{path}: spec.wasm[{index}].code.image.url is missing")
            result.append((f"{path} spec.wasm[{index}].config", json.dumps(wasm.get("config", {}))))
        return result
    if "static_resources" in document or "admin" in document:
        try:
            Bootstrap.from_dict(document)
        except Exception as error:  # envoy-data-plane raises KeyError, TypeError or ValueError
            failures.append(f"{path}: not a valid Envoy bootstrap: {type(error).__name__}: {error}")
        result = []
        for index, config in enumerate(wasm_configs(document)):
            configuration = config.get("configuration", {})
            if configuration.get("@type") != STRING_VALUE_TYPE:
                failures.append(f"{path}: Wasm filter {index}: configuration is not a google.protobuf.StringValue")
            result.append((f"{path} Wasm filter {index}", configuration.get("value", "")))
        if not result:
            failures.append(f"{path}: no envoy.filters.http.wasm filter found")
        return result
    return []


def check_with_module(host_test, module, label, configuration):
    scenario = {"configuration_raw": configuration, "steps": [{"request": {"path": "/"}, "expect": {"vm_failed": False}}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as file:
        json.dump(scenario, file)
    result = subprocess.run([host_test, "run", "--plugin", module, file.name], capture_output=True, text=True)
    Path(file.name).unlink()
    if result.returncode != 0:
        failures.append(f"{label}: the module rejected the configuration:\n{result.stdout}{result.stderr}")
    else:
        print(f"PASS {label}: accepted by the module")


def main():
    host_test, module = sys.argv[1:3]
    files = sorted(Path("envoy").glob("*.yaml"))
    checked = 0
    for path in files:
        if path.name == "docker-compose.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            for label, configuration in plugin_configurations(path, document or {}):
                check_with_module(host_test, module, label, configuration)
                checked += 1
    if checked == 0:
        failures.append("no plugin configuration found under envoy/")
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"{checked - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
