#!/usr/bin/env bash
# Builds the diarization development set (benches/diarize/make_devset.py) into OUT
# (default .cache/diarize-devset). Creates .cache/diarize-venv (numpy) on first use.
# Needs espeak-ng and sox (Debian: apt-get install -y espeak-ng sox).
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "make_devset: $tool missing (apt-get install -y espeak-ng sox)" >&2; exit 1; }
done
VENV=.cache/diarize-venv
if ! "$VENV/bin/python" -c 'import numpy' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r benches/diarize/requirements.txt
fi
exec "$VENV/bin/python" benches/diarize/make_devset.py --out "${1:-.cache/diarize-devset}"
