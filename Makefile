# Two commands set up a fresh machine: `make run` and `make test` (see README.md).
MODEL ?= tiny.en
CARGO ?= cargo

.PHONY: run test fetch build bench

## Fetch the default model if missing, build, transcribe the bundled sample.
run: models/$(MODEL)/.complete
	$(CARGO) build --release --bin scribe
	./target/release/scribe transcribe --model $(MODEL) --output_dir target/sample-output samples/hello.wav

models/%/.complete:
	models/fetch $*

## Everything CI runs: fetch the test models, then every test of the workspace, optimised.
test: models/tiny.en/.complete models/base/.complete
	scripts/install-test-deps
	$(CARGO) test --profile test --workspace --all-targets --no-fail-fast
	# The CUDA builds (cudarc loads the libraries at run time, so no toolkit or GPU is needed):
	# the whole suite again with the CUDA 12 target, where GPU tests print "skipped: no CUDA
	# device", and a compile check of the CUDA 13 target.
	$(CARGO) test --profile test --workspace --all-targets --no-fail-fast --features scribe/cuda
	$(CARGO) build --profile test --lib --bins --features scribe/cuda13

build:
	$(CARGO) build --release --workspace

bench: models/tiny.en/.complete
	$(CARGO) bench --bench whisper
