#!/usr/bin/env bash
# Builds the speaker-verification trial set (benches/verify/make_trialset.py) into OUT (default
# .cache/verify-set) and rewrites benches/verify/trials.txt. Uses the diarization development
# set's venv (.cache/diarize-venv, numpy), made on first use. Needs espeak-ng and sox.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "make_trialset: $tool missing (apt-get install -y espeak-ng sox)" >&2; exit 1; }
done
VENV=.cache/diarize-venv
if ! "$VENV/bin/python" -c 'import numpy' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r benches/diarize/requirements.txt
fi
exec "$VENV/bin/python" benches/verify/make_trialset.py --out "${1:-.cache/verify-set}"
