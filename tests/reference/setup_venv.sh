#!/usr/bin/env bash
# Create the developer-only Python environment used to (re)generate the
# reference tensors in tests/reference/data/. CI never runs this.
#
# Usage: tests/reference/setup_venv.sh   (from the repository root)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.cache/refvenv"
REQS="$ROOT/tests/reference/requirements.txt"

python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
if [[ -f "$REQS" ]]; then
    "$VENV/bin/pip" install -r "$REQS"
else
    "$VENV/bin/pip" install torch transformers ctranslate2 safetensors numpy scipy soundfile tokenizers openai-whisper
fi
"$VENV/bin/python" -c "import torch, transformers, ctranslate2, whisper; print('torch', torch.__version__, 'transformers', transformers.__version__, 'ctranslate2', ctranslate2.__version__, 'openai-whisper', whisper.__version__)"
