# Thin index of siplab's workflows. Everything real lives in cargo and tools/scripts.
CARGO ?= cargo
CFG   ?= etc/siplab.cfg

.PHONY: run test lint unit deps bench fuzz build release

## run: build release and start the proxy in the foreground with etc/siplab.cfg
run: release
	./target/release/siplab -f $(CFG) -DD -E

## test: everything the project checks (installs sipp when missing)
test: deps lint unit

deps:
	tools/scripts/ensure-deps

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

build:
	$(CARGO) build --workspace --locked

release:
	$(CARGO) build --release --locked --bin siplab

## bench: criterion micro-benchmarks (results: copy target/criterion summaries to benches/runs/<date>/)
bench:
	$(CARGO) bench --workspace

## fuzz: local only; needs cargo-fuzz (cargo install cargo-fuzz); uses RUSTC_BOOTSTRAP for -Zsanitizer (not run in CI)
fuzz:
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run parse_message -- -max_total_time=$${FUZZ_SECONDS:-60}
