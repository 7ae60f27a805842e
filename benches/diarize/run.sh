#!/usr/bin/env bash
# Diarization accuracy of `scribe transcribe --diarize` on the dev set and the shared recordings
# with a reference RTTM (see benches/README.md).
#
#   benches/diarize/run.sh [options] [-- extra scribe transcribe flags]
#
# Options (or the environment variable in brackets):
#   --scribe-bin PATH   scribe binary [SCRIBE_BIN], default target/release/scribe
#   --der-bin PATH      scorer [SCRIBE_DER_BIN], default target/release/scribe-der, else
#                       target/debug/scribe-der
#   --model M           Whisper model [SCRIBE_MODEL], default models/tiny.en when that directory
#                       exists, else tiny.en
#   --set DIR           the dev set [DIARIZE_SET], default .cache/diarize-devset (made by
#                       make_devset.sh when its manifest.json is missing)
#   --speech DIR        shared recordings [SCRIBE_SPEECH_DATA], default ../shared/data/speech
#   --out DIR           outputs [DIARIZE_OUT], default .cache/diarize-out/scribe; wiped first.
#                       Hypotheses DIR/<stem>.rttm, scores DIR/score.{md,json}, log DIR/scribe.log
#   --threads N         scribe --threads, default 2
#   --score-only        do not run scribe; score the RTTMs already in --out
#
# Builds nothing: cargo build --release --bin scribe --bin scribe-der first (the script warns
# when the scribe binary is older than the newest tracked file under engine/). Runs offline
# (HF_HUB_OFFLINE=1) and without word alignment (--no_align): the RTTM is the diarization's turns,
# and nothing is downloaded.
set -euo pipefail
export HF_HUB_OFFLINE=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

scribe="${SCRIBE_BIN:-target/release/scribe}"
der="${SCRIBE_DER_BIN:-}"
model="${SCRIBE_MODEL:-}"
set_dir="${DIARIZE_SET:-.cache/diarize-devset}"
speech="${SCRIBE_SPEECH_DATA:-../shared/data/speech}"
out="${DIARIZE_OUT:-.cache/diarize-out/scribe}"
threads=2
score_only=0
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --scribe-bin) scribe="$2"; shift 2 ;;
        --der-bin) der="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --set) set_dir="$2"; shift 2 ;;
        --speech) speech="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --score-only) score_only=1; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$model" ]; then
    if [ -d models/tiny.en ]; then model=models/tiny.en; else model=tiny.en; fi
fi
if [ -z "$der" ]; then
    der=target/release/scribe-der
    [ -x "$der" ] || der=target/debug/scribe-der
fi
if [ ! -x "$der" ]; then
    echo "run.sh: scribe-der not found; build it: cargo build --release --bin scribe-der" >&2
    exit 1
fi
if [ ! -f "$set_dir/manifest.json" ]; then
    "$here/make_devset.sh" "$set_dir"
fi

if [ "$score_only" = 0 ]; then
    if [ ! -x "$scribe" ]; then
        echo "run.sh: $scribe not found; build it: cargo build --release --bin scribe" >&2
        exit 1
    fi
    newest="$(git ls-files -z engine Cargo.toml Cargo.lock build.rs 2>/dev/null | xargs -0 ls -t 2>/dev/null | head -n 1 || true)"
    if [ -n "$newest" ] && [ "$newest" -nt "$scribe" ]; then
        echo "run.sh: warning: $scribe is older than $newest (rebuild: cargo build --release --bin scribe)" >&2
    fi
    rm -rf "$out"
    mkdir -p "$out"
    files=()
    while IFS= read -r wav; do files+=("$set_dir/$wav"); done < <(
        python3 -c 'import json,sys; [print(f["file"]) for f in json.load(open(sys.argv[1]))["files"]]' "$set_dir/manifest.json")
    if [ -f "$speech/manifest.json" ]; then
        while IFS= read -r wav; do files+=("$speech/$wav"); done < <(
            python3 -c 'import json,sys; [print(f["file"]) for f in json.load(open(sys.argv[1])) if f.get("rttm")]' "$speech/manifest.json")
    fi
    cmd=("$scribe" transcribe --model "$model" --diarize --no_align --output_format rttm --output_dir "$out"
         --threads "$threads" "${extra[@]}" "${files[@]}")
    echo "+ ${cmd[*]}" >&2
    start=$(date +%s.%N)
    "${cmd[@]}" > "$out/scribe.log" 2>&1 || { tail -n 20 "$out/scribe.log" >&2; exit 1; }
    end=$(date +%s.%N)
    python3 -c 'import sys; print(f"scribe: {sys.argv[3]} files in {float(sys.argv[2]) - float(sys.argv[1]):.1f} s (one process, model load included)")' \
        "$start" "$end" "${#files[@]}" >&2
fi

"$der" --hyp "$out" --set "$set_dir" --speech "$speech" --json "$out/score.json" --md "$out/score.md"
