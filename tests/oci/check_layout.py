"""Checks an OCI image layout built by `host-test oci` and its copy pulled back from a registry.

Usage: check_layout.py FORMAT BUILT_LAYOUT PULLED_LAYOUT REGISTRY REPOSITORY TAG MODULE SCHEMAS

Every document is validated against the OCI image-spec JSON schemas in SCHEMAS, every blob's
digest and size against its descriptor, the registry's manifest against the built one, and
the module inside the pulled image against MODULE, byte for byte.
"""

import gzip
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def schema_registry(folder):
    """Serves every schema by its file name, whatever base URI a reference resolves against."""
    documents = {p.name: json.loads(p.read_text()) for p in Path(folder).glob("*.json")}

    def retrieve(uri):
        name = uri.rsplit("/", 1)[-1]
        if name not in documents:
            raise LookupError(f"no schema named {name}")
        return Resource.from_contents(documents[name], default_specification=DRAFT4)

    return documents, Registry(retrieve=retrieve)


def validate(documents, registry, schema_name, instance, label):
    schema = documents[schema_name]
    validator = jsonschema.Draft4Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    for error in errors:
        failures.append(f"{label}: {schema_name}: {error.message} at {list(error.path)}")


def blob(layout, descriptor):
    digest = descriptor["digest"]
    algorithm, hex_digest = digest.split(":", 1)
    data = (Path(layout) / "blobs" / algorithm / hex_digest).read_bytes()
    check(hashlib.sha256(data).hexdigest() == hex_digest, f"{layout}: blob {digest} has another digest")
    check(len(data) == descriptor["size"], f"{layout}: blob {digest} is {len(data)} bytes, descriptor says {descriptor['size']}")
    return data


def read_layout(layout, documents, registry, label):
    root = Path(layout)
    validate(documents, registry, "image-layout-schema.json", json.loads((root / "oci-layout").read_text()), f"{label} oci-layout")
    index = json.loads((root / "index.json").read_text())
    validate(documents, registry, "image-index-schema.json", index, f"{label} index.json")
    check(len(index["manifests"]) == 1, f"{label}: index lists {len(index['manifests'])} manifests, expected 1")
    descriptor = index["manifests"][0]
    validate(documents, registry, "content-descriptor.json", descriptor, f"{label} manifest descriptor")
    check(descriptor["mediaType"] == OCI_MANIFEST, f"{label}: manifest media type {descriptor['mediaType']}")
    manifest = json.loads(blob(layout, descriptor))
    validate(documents, registry, "image-manifest-schema.json", manifest, f"{label} manifest")
    return descriptor, manifest


def module_from(layout, manifest, image_format, label):
    check(len(manifest["layers"]) == 1, f"{label}: {len(manifest['layers'])} layers, expected 1")
    layer = manifest["layers"][0]
    data = blob(layout, layer)
    if image_format == "oci":
        check(manifest["config"]["mediaType"] == WASM_CONFIG, f"{label}: config media type {manifest['config']['mediaType']}")
        check(layer["mediaType"] == WASM_LAYER, f"{label}: layer media type {layer['mediaType']}")
        json.loads(blob(layout, manifest["config"]))
        return data
    check(manifest["config"]["mediaType"] == OCI_CONFIG, f"{label}: config media type {manifest['config']['mediaType']}")
    check(layer["mediaType"] == OCI_LAYER_GZIP, f"{label}: layer media type {layer['mediaType']}")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as archive:
        names = archive.getnames()
        check(names == ["plugin.wasm"], f"{label}: layer holds {names}, expected only plugin.wasm")
        member = archive.extractfile("plugin.wasm")
        return member.read() if member else b""


def main():
    image_format, built, pulled, registry_url, repository, tag, module, schemas = sys.argv[1:9]
    documents, registry = schema_registry(schemas)
    built_descriptor, built_manifest = read_layout(built, documents, registry, f"built {image_format}")
    pulled_descriptor, pulled_manifest = read_layout(pulled, documents, registry, f"pulled {image_format}")
    if image_format == "compat":
        validate(documents, registry, "config-schema.json", json.loads(blob(built, built_manifest["config"])), "built config")
    check(built_descriptor["digest"] == pulled_descriptor["digest"],
          f"{image_format}: pulled manifest {pulled_descriptor['digest']} differs from built {built_descriptor['digest']}")
    check(built_manifest == pulled_manifest, f"{image_format}: pulled manifest content differs")

    request = urllib.request.Request(f"{registry_url}/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    with urllib.request.urlopen(request, timeout=10) as response:
        served = response.read()
        check(response.headers.get("Content-Type") == OCI_MANIFEST,
              f"{image_format}: registry serves the manifest as {response.headers.get('Content-Type')}")
        check(response.headers.get("Docker-Content-Digest") == built_descriptor["digest"],
              f"{image_format}: registry digest {response.headers.get('Docker-Content-Digest')}, built {built_descriptor['digest']}")
    check("sha256:" + hashlib.sha256(served).hexdigest() == built_descriptor["digest"], f"{image_format}: served manifest bytes differ")
    check(len(served) == built_descriptor["size"], f"{image_format}: served manifest is {len(served)} bytes")

    expected = Path(module).read_bytes()
    check(module_from(built, built_manifest, image_format, f"built {image_format}") == expected, f"built {image_format}: module differs from {module}")
    check(module_from(pulled, pulled_manifest, image_format, f"pulled {image_format}") == expected, f"pulled {image_format}: module differs from {module}")

    if failures:
        for failure in failures:
            print(f"FAIL {failure}")
        sys.exit(1)
    print(f"PASS oci {image_format}: {built_descriptor['digest']}, {len(expected)}-byte module round-tripped through {registry_url}")


if __name__ == "__main__":
    main()
