# switchyard — the two commands a new machine needs: `make run` and `make test`.
CARGO ?= cargo
RELEASE_BIN := target/release/switchyard
DEBUG_BIN := target/debug/switchyard

.PHONY: all deps build run test check-conf bench fuzz fmt clippy clean

all: build

## Install the system packages a fresh machine lacks (cmake, C compiler, curl).
deps:
	@./scripts/install-deps.sh

## Release build.
build: deps
	$(CARGO) build --release

## Build, then serve conf/example.yaml on :8080 with three demo backends.
run: build
	./scripts/demo.sh $(RELEASE_BIN) conf/example.yaml

## Everything CI checks: format, lints, config examples, unit + integration tests.
test:
	@./scripts/install-deps.sh openssl chromium redis-server
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) build
	$(MAKE) --no-print-directory check-conf BIN=$(DEBUG_BIN)
	$(CARGO) test

## `switchyard check` on every shipped config.
check-conf:
	@for f in conf/*.yaml; do $(or $(BIN),$(DEBUG_BIN)) check -c $$f || exit 1; done

## Benchmarks; see README for the numbers and how they were taken. NGINX,
## HAProxy, wrk and h2load are installed so the proxy benches (http_peers,
## edge_peers, l4_throughput) compare against them in the same run.
bench:
	@./scripts/install-deps.sh haproxy nginx wrk nghttp2-client openssl
	$(CARGO) bench

## Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the config checker, the
## request-head handling and the two HTTP/1 engines side by side (`engines`:
## random requests and backend answers through a forwarder listener and a
## `forwarder: false` one), FUZZ_SECONDS per target (default 60). cargo-fuzz wants
## nightly features; RUSTC_BOOTSTRAP lets the stable toolchain provide them.
FUZZ_SECONDS ?= 60
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run config -- -max_total_time=$(FUZZ_SECONDS)
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run request_head -- -max_total_time=$(FUZZ_SECONDS)
	mkdir -p fuzz/corpus/engines && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run engines fuzz/corpus/engines fuzz/seeds/engines -- -max_total_time=$(FUZZ_SECONDS)

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
