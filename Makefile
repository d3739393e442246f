# Portcullis: build the module, the harness, run the tests, the demo and the benchmarks.
#
# Every target installs what it needs itself (the wasm32-wasip1 target), so a fresh
# machine with only the Rust toolchain can run `make demo` and `make test`.

CARGO        ?= cargo
WASM_TARGET  := wasm32-wasip1
WASM_OUT     := target/$(WASM_TARGET)/release
HOST_TEST    := target/harness/host-test
DEMO_CONFIG  := envoy/portcullis-demo.json
DEMO_LISTEN  ?= 127.0.0.1:8080
SCENARIOS    := $(sort $(wildcard tests/scenarios/*/*.yaml))

.PHONY: all setup build host component component-scenarios test unit schema needs scenarios fuzz-smoke cargo-fuzz fuzz envoy-check observatory oci oci-test demo bench lint clean

all: build host

setup:
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

# The release module, optimised with binaryen's wasm-opt when it is installed, and the probe
# module the host tests use.
build: setup
	$(CARGO) build --release --target $(WASM_TARGET) -p portcullis -p portcullis-probe
	@mkdir -p dist
	@if command -v wasm-opt >/dev/null 2>&1; then \
		wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
			--enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types \
			$(WASM_OUT)/portcullis.wasm -o dist/portcullis.wasm; \
	else \
		echo "wasm-opt not found (Debian package binaryen): dist/portcullis.wasm is not optimised"; \
		cp $(WASM_OUT)/portcullis.wasm dist/portcullis.wasm; \
	fi
	@cp $(WASM_OUT)/portcullis_probe.wasm dist/probe.wasm
	@ls -l dist/portcullis.wasm

# The component (wit/portcullis.wit) for hosts that are not proxies, built for WASI
# preview 2, whose Rust target is added when it is missing.
COMPONENT_TARGET := wasm32-wasip2

component:
	@rustup target list --installed 2>/dev/null | grep -qx $(COMPONENT_TARGET) || rustup target add $(COMPONENT_TARGET)
	$(CARGO) build --release --target $(COMPONENT_TARGET) -p portcullis-component
	@mkdir -p dist
	@cp $(or $(CARGO_TARGET_DIR),target)/$(COMPONENT_TARGET)/release/portcullis_component.wasm dist/portcullis-component.wasm
	@ls -l dist/portcullis-component.wasm

# The harness is built in its own profile: optimised, with unwinding panics.
host:
	$(CARGO) build --profile harness -p host-test

# The `schema` feature adds the configuration's JSON Schema and its tests
# (plugin/core/tests/schema.rs) to the core library's tests.
unit:
	$(CARGO) test -p portcullis-core --features schema
	$(CARGO) test -p portcullis-core --features narrow-limbs --test jwt_conformance
	$(CARGO) test --profile harness -p host-test

# The literal conditions of the built-in rules, precomputed for the prefilter.
needs:
	PORTCULLIS_WRITE_NEEDS=1 $(CARGO) test -q -p portcullis-core --lib precomputed_needs_are_current
	$(CARGO) test -q -p portcullis-core --lib precomputed_needs_are_current

# Regenerates schema/portcullis.schema.json from the configuration types.
schema:
	@mkdir -p schema
	$(CARGO) run -q -p portcullis-core --features schema --example schema > schema/portcullis.schema.json.tmp
	@mv schema/portcullis.schema.json.tmp schema/portcullis.schema.json

PLUGIN_SCENARIOS := $(sort $(wildcard tests/scenarios/plugin/*.yaml))

# The module's scenarios through the component. The driver reports the steps that the
# component world cannot run (http calls, ticks, workers) as skipped. The CR-in-Set-Cookie
# scenario checks the module's log line for a header value the proxy refuses, which has no
# component form.
COMPONENT_SCENARIOS := $(filter-out tests/scenarios/plugin/hostile-set-cookie-crlf.yaml,$(PLUGIN_SCENARIOS))

component-scenarios: component host
	$(HOST_TEST) component --component dist/portcullis-component.wasm $(COMPONENT_SCENARIOS)

# Every scenario under Envoy's host, and the module's own scenarios under Kong's too.
scenarios: build host
	$(HOST_TEST) run --plugin dist/portcullis.wasm $(SCENARIOS)
	$(HOST_TEST) run --host ngx --plugin dist/portcullis.wasm $(PLUGIN_SCENARIOS)

# Generated valid, malformed and hostile exchanges under both hosts, with fixed seeds so
# that a failure reproduces; `make fuzz` runs longer with fresh seeds. A trap, memory that
# keeps growing or a callback after a local response fails the run and writes the
# exchange to target/fuzz-failure.yaml as a scenario.
FUZZ_CONFIGS := tests/fuzz/defaults.json tests/fuzz/all-controls.json
FUZZ_SEEDS   ?= 1 2 3
FUZZ_ITERATIONS ?= 2000

fuzz-smoke: build host
	@for config in $(FUZZ_CONFIGS); do for seed in $(FUZZ_SEEDS); do for host in envoy ngx; do \
		$(HOST_TEST) fuzz --host $$host --plugin dist/portcullis.wasm --config $$config \
			--seed $$seed --iterations $(FUZZ_ITERATIONS) || exit 1; \
	done; done; done

# libFuzzer targets over portcullis-core (fuzz/), with AddressSanitizer, on the stable
# toolchain (the script sets RUSTC_BOOTSTRAP=1 and installs cargo-fuzz on first use):
# 20 s each with a fixed seed in `make test`, 300 s each with a fresh seed in `make fuzz`.
cargo-fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-20} CARGO_TARGET_DIR=$(CURDIR)/target/fuzz bash tests/fuzz/cargo-fuzz.sh

fuzz: build host
	@for config in $(FUZZ_CONFIGS); do for host in envoy ngx; do \
		$(HOST_TEST) fuzz --host $$host --plugin dist/portcullis.wasm --config $$config \
			--iterations 50000 || exit 1; \
	done; done
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} FUZZ_SEED=$${FUZZ_SEED:-$$(date +%s)} \
		CARGO_TARGET_DIR=$(CURDIR)/target/fuzz bash tests/fuzz/cargo-fuzz.sh

# Parses every YAML file under envoy/ into Envoy's typed messages (PyPI envoy-data-plane)
# and hands each embedded plugin configuration to the module.
envoy-check: build host
	bash tests/envoy/check.sh

# Grades the module's headers with the MDN HTTP Observatory's analyzers, offline. The npm
# package is installed without its install scripts, which download lists from the network.
OBSERVATORY_PACKAGE := tests/observatory/node_modules/@mdn/mdn-http-observatory/package.json

$(OBSERVATORY_PACKAGE): tests/observatory/package.json
	cd tests/observatory && npm install --ignore-scripts --no-audit --no-fund
	@touch $@

observatory: build host $(OBSERVATORY_PACKAGE)
	bash tests/observatory/run.sh

test: build host component unit scenarios component-scenarios fuzz-smoke cargo-fuzz envoy-check oci-test observatory

# OCI image layouts of the module in Istio's two formats, under dist/oci/.
oci: build host
	$(HOST_TEST) oci --wasm dist/portcullis.wasm --out dist/oci

# Push both images to a registry on loopback, pull them back and check them.
oci-test: build host
	bash tests/oci/registry-test.sh

demo: build host
	@echo "Portcullis demo on http://$(DEMO_LISTEN), in front of the builtin demo application."
	@echo "Try, from another terminal:"
	@echo "  curl -i http://$(DEMO_LISTEN)/hello                       # hardened response headers"
	@echo "  curl -i 'http://$(DEMO_LISTEN)/search?q=1%27%20OR%201=1--'  # SQL injection: 403"
	@echo "  curl -i 'http://$(DEMO_LISTEN)/files?name=../../etc/passwd' # path traversal: 403"
	@echo "  curl -i -d 'comment=<script>alert(1)</script>' http://$(DEMO_LISTEN)/comments  # XSS in a body: 403"
	@echo "Stop with Ctrl-C."
	$(HOST_TEST) serve --plugin dist/portcullis.wasm --config $(DEMO_CONFIG) --listen $(DEMO_LISTEN) --upstream builtin --workers 2

bench: build host
	bash tests/bench.sh

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p portcullis-core -p host-test --all-targets --features portcullis-core/schema --profile harness -- -D warnings
	$(CARGO) clippy -p portcullis -p portcullis-probe --target $(WASM_TARGET) --release -- -D warnings
	@rustup target list --installed 2>/dev/null | grep -qx $(COMPONENT_TARGET) || rustup target add $(COMPONENT_TARGET)
	$(CARGO) clippy -p portcullis-component --target $(COMPONENT_TARGET) --release -- -D warnings

clean:
	rm -rf dist
	$(CARGO) clean
