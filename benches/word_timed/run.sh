#!/usr/bin/env bash
# Word-time accuracy of `scribe transcribe` on the word-timed set (see benches/README.md).
#
#   benches/word_timed/run.sh [MODE] [options] [-- extra scribe transcribe flags]
#
# MODE    dtw       Whisper's cross-attention DTW word times (--word_timestamps True --no_align).
#                   Default.
#         wav2vec2  wav2vec2 CTC alignment (--align_model PATH; pass `-- --align_mode
#                   whisperx-compat` for WhisperX's own trellis).
# Options (or the environment variable in brackets):
#   --scribe-bin PATH   scribe binary [SCRIBE_BIN], default target/release/scribe
#   --model DIR         Whisper model [SCRIBE_MODEL], default models/tiny.en
#   --align-model PATH  wav2vec2 mode: the alignment model [ALIGN_MODEL] (a directory, or a
#                       torchaudio bundle name or hub repo already in their caches); required
#   --set DIR           the set [WORD_TIMED_SET], default .cache/word-timed (made by make_set.sh
#                       when its manifest.json is missing)
#   --out DIR           outputs [WORD_TIMED_OUT], default .cache/word-timed-out/MODE; wiped first.
#                       The scores go to DIR/score.json and DIR/score.md
#   --threads N         scribe --threads, default 2
#
# Builds nothing: run `cargo build --release --bin scribe` first (the script warns when the binary
# is older than the newest tracked file under engine/). Runs offline (HF_HUB_OFFLINE=1): nothing
# is downloaded.
set -euo pipefail
export HF_HUB_OFFLINE=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

mode=dtw
case "${1:-}" in
    dtw|wav2vec2) mode="$1"; shift ;;
esac
scribe="${SCRIBE_BIN:-target/release/scribe}"
model="${SCRIBE_MODEL:-models/tiny.en}"
align_model="${ALIGN_MODEL:-}"
set_dir="${WORD_TIMED_SET:-.cache/word-timed}"
out="${WORD_TIMED_OUT:-}"
threads=2
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --scribe-bin) scribe="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --align-model) align_model="$2"; shift 2 ;;
        --set) set_dir="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
out="${out:-.cache/word-timed-out/$mode}"

if [ ! -x "$scribe" ]; then
    echo "run.sh: $scribe not found; build it: cargo build --release --bin scribe" >&2
    exit 1
fi
newest="$(git ls-files -z engine Cargo.toml Cargo.lock build.rs 2>/dev/null | xargs -0 ls -t 2>/dev/null | head -n 1 || true)"
if [ -n "$newest" ] && [ "$newest" -nt "$scribe" ]; then
    echo "run.sh: warning: $scribe is older than $newest (rebuild: cargo build --release --bin scribe)" >&2
fi
if [ ! -f "$set_dir/manifest.json" ]; then
    "$here/make_set.sh" "$set_dir"
fi

case "$mode" in
    dtw)
        align_flags=(--word_timestamps True --no_align)
        ;;
    wav2vec2)
        if [ -z "$align_model" ]; then
            echo "run.sh: wav2vec2 mode needs --align-model PATH (or ALIGN_MODEL)" >&2
            exit 1
        fi
        # No --word_timestamps: every word time is the aligner's.
        align_flags=(--align_model "$align_model")
        ;;
esac

rm -rf "$out"
mkdir -p "$out"
clips=()
while IFS= read -r wav; do clips+=("$set_dir/$wav"); done < <(
    python3 -c 'import json,sys; [print(c["wav"]) for c in json.load(open(sys.argv[1]))["clips"]]' "$set_dir/manifest.json")

cmd=("$scribe" transcribe --model "$model" "${align_flags[@]}" --output_format json --output_dir "$out"
     --threads "$threads" --verbose False "${extra[@]}" "${clips[@]}")
echo "+ ${cmd[*]:0:$((${#cmd[@]} - ${#clips[@]}))} $set_dir/{01..$(printf %02d ${#clips[@]})}.wav" >&2
start=$(date +%s.%N)
"${cmd[@]}" 2> "$out/scribe.log" || { tail -n 20 "$out/scribe.log" >&2; exit 1; }
end=$(date +%s.%N)
python3 - "$start" "$end" "${#clips[@]}" <<'PY' >&2
import sys
s, e, n = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
print(f"scribe: {n} clips in {e - s:.1f} s (one process, model load included)")
PY

python3 "$here/score.py" "$set_dir" "$out" --json "$out/score.json" | tee "$out/score.md"
