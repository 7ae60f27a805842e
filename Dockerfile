# syntax=docker/dockerfile:1
# Scribe's RunPod worker on a CUDA 12 runtime image: one Rust binary, no Python, no torch, no
# cuDNN. The build stage compiles the kernels for explicit GPU architectures (cubins through
# nvcc, PTX for newer GPUs) and no host-specific CPU flags: the CPU code picks its SIMD level at
# run time. `make test` runs this file's cargo build line, checks every COPY source exists and
# lints it (scripts/check-dockerfile).
#
#   docker build -t scribe-worker .
#   docker build --build-arg PRELOAD_MODELS=1 --build-arg MODEL=large-v3 -t scribe-worker .

ARG CUDA_VERSION=12.8.1
ARG UBUNTU=ubuntu22.04

FROM nvidia/cuda:${CUDA_VERSION}-devel-${UBUNTU} AS build
ARG RUST_VERSION=1.89.0
# Ampere, Ada, Hopper cubins; PTX of the newest for anything later.
ARG SCRIBE_CUDA_ARCHS=80,86,89,90
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Build tools only (this stage is discarded); the CUDA base image pins the toolchain.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl build-essential pkg-config python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --default-toolchain "${RUST_VERSION}"
ENV PATH=/root/.cargo/bin:${PATH} \
    SCRIBE_CUDA_ARCHS=${SCRIBE_CUDA_ARCHS}
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY engine engine
COPY kernels kernels
COPY worker worker
COPY benches benches
COPY tests tests
COPY models/fetch models/fetch
# build-line (scripts/check-dockerfile runs this line as it is)
RUN cargo build --release --locked -p scribe-worker --bin scribe-worker --features scribe/cuda
# Optionally bake the models into the image: the Whisper model named by MODEL, the VAD and the
# punkt sentence models alignment uses. Alignment models (wav2vec2) are read from TORCH_HOME and
# the hub cache at run time (mount or bake them there).
ARG PRELOAD_MODELS=0
ARG MODEL=tiny.en
RUN mkdir -p /app/models \
    && if [ "${PRELOAD_MODELS}" = "1" ]; then \
        cargo build --release --locked --bin scribe \
        && SCRIBE_BIN=target/release/scribe models/fetch "${MODEL}" \
        && SCRIBE_BIN=target/release/scribe models/fetch vad \
        && models/fetch punkt \
        && cp -r "models/${MODEL}" "/app/models/${MODEL}" && cp -r models/vad /app/models/vad \
        && cp -r models/punkt /app/models/punkt; \
    fi

FROM nvidia/cuda:${CUDA_VERSION}-runtime-${UBUNTU}
ARG MODEL=tiny.en
RUN groupadd --system --gid 10001 scribe && useradd --system --uid 10001 --gid scribe --home-dir /app scribe \
    && mkdir -p /app/jobs && chown 10001:10001 /app/jobs
COPY --from=build /src/target/release/scribe-worker /usr/local/bin/scribe-worker
COPY --from=build --chown=10001:10001 /app/models /app/models
ENV SCRIBE_MODELS_DIR=/app/models \
    WHISPERX_MODEL_DIR=/app/models/${MODEL} \
    TORCH_HOME=/app/models/torch \
    JOBS_DIR=/app/jobs \
    WHISPERX_DEVICE=auto
USER 10001
WORKDIR /app
CMD ["scribe-worker"]
