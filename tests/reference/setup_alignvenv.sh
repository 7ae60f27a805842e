#!/usr/bin/env bash
# Create .cache/alignvenv (git-ignored) for make_wav2vec2_reference.py and
# make_align_reference.py, and .cache/nltk_data/tokenizers/punkt_tab. CI never runs this.
#
# Usage: tests/reference/setup_alignvenv.sh   (from the repository root)
# Needs ~7 GB of disk (the PyPI torch wheel is the CUDA build) and PyPI access only.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.cache/alignvenv"
REQS="$ROOT/tests/reference/requirements-align.txt"
WHEELS="$ROOT/.cache/wheels"
NLTK_DATA_DIR="$ROOT/.cache/nltk_data"
LLAMA_WHL="llama_index_core-0.14.25-py3-none-any.whl"

python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
"$VENV/bin/pip" install -r "$REQS"
"$VENV/bin/pip" install --no-deps whisperx==3.8.6
"$VENV/bin/pip" cache purge || true

# punkt_tab (WhisperX's sentence splitter data) from the llama-index-core wheel.
if [[ ! -f "$NLTK_DATA_DIR/tokenizers/punkt_tab/english/sent_starters.txt" ]]; then
    mkdir -p "$WHEELS" "$NLTK_DATA_DIR/tokenizers"
    if [[ ! -f "$WHEELS/$LLAMA_WHL" ]]; then
        "$VENV/bin/pip" download --no-deps llama-index-core==0.14.25 -d "$WHEELS"
    fi
    TMP="$(mktemp -d)"
    "$VENV/bin/python" - "$WHEELS/$LLAMA_WHL" "$TMP" <<'PY'
import sys, zipfile
prefix = "llama_index/core/_static/nltk_cache/tokenizers/punkt_tab/"
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith(prefix)])
PY
    rm -rf "$NLTK_DATA_DIR/tokenizers/punkt_tab"
    mv "$TMP/llama_index/core/_static/nltk_cache/tokenizers/punkt_tab" "$NLTK_DATA_DIR/tokenizers/"
    rm -rf "$TMP"
fi

NLTK_DATA="$NLTK_DATA_DIR" "$VENV/bin/python" -c "
import torch, torchaudio, transformers, whisperx.alignment, nltk.data
nltk.data.load('tokenizers/punkt_tab/english.pickle')
print('torch', torch.__version__, 'torchaudio', torchaudio.__version__, 'transformers', transformers.__version__, 'punkt_tab ok')"
