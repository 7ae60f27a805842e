# Two commands set up a fresh machine: `make run` and `make test` (see README.md).
MODEL ?= tiny.en
CARGO ?= cargo

.PHONY: run test fetch build bench check-kernels gpu-pack

## Fetch the default model, the VAD model and the sentence models if missing, build, transcribe
## the bundled sample (word alignment runs when its model can be had: see README).
run: models/$(MODEL)/.complete models/punkt/.complete
	$(CARGO) build --release --bin scribe
	test -f models/vad/.complete || SCRIBE_BIN=target/release/scribe models/fetch vad
	./target/release/scribe transcribe --model $(MODEL) --output_dir target/sample-output samples/hello.wav

models/%/.complete:
	models/fetch $*

## Everything CI runs: fetch the test models, then every test of the workspace, optimised.
test: models/tiny.en/.complete models/base/.complete models/vad/.complete models/punkt/.complete \
	models/segmentation-3.0/.complete models/campplus/.complete
	CARGO="$(CARGO)" scripts/install-test-deps
	$(CARGO) test --profile test --workspace --all-targets --no-fail-fast
	# The CUDA builds (cudarc loads the libraries at run time, so no toolkit or GPU is needed):
	# every kernel through NVRTC and ptxas, the whole suite again with the CUDA 12 target and
	# NVRTC from its wheel on LD_LIBRARY_PATH (kernels compile; the tests that need a GPU are
	# ignored here and run by gpu-pack/run.sh), and a compile check of the CUDA 13 target.
	CARGO="$(CARGO)" scripts/check-kernels
	tools="$$(scripts/install-cuda-tools)" && eval "$$tools" && \
		LD_LIBRARY_PATH="$$NVRTC_LIB_DIR$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}" \
		$(CARGO) test --profile test --workspace --all-targets --no-fail-fast --features scribe/cuda
	$(CARGO) build --profile test --lib --bins --features scribe/cuda13
	# The Dockerfile: its COPY sources, its own cargo build line, and hadolint.
	CARGO="$(CARGO)" scripts/check-dockerfile

## Every CUDA kernel compiled (NVRTC) and assembled (ptxas) for SCRIBE_CUDA_ARCHS, no GPU needed:
## a table of registers, spills and shared memory per kernel and architecture.
check-kernels:
	CARGO="$(CARGO)" scripts/check-kernels

## gpu-pack/: CUDA 13 release test binaries, scribe, the tiny.en and VAD models and audio, with a run.sh that
## validates them on a GPU machine that has no cargo (docs/gpu-validation.md).
gpu-pack: models/tiny.en/.complete models/vad/.complete models/segmentation-3.0/.complete models/campplus/.complete \
	models/punkt/.complete
	CARGO="$(CARGO)" scripts/gpu-pack/build

build:
	$(CARGO) build --release --workspace

bench: models/tiny.en/.complete
	$(CARGO) bench --bench whisper
