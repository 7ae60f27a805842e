#!/usr/bin/env bash
# The whole WhisperX job against the transcription alone, side by side in one run (issue 17's
# third target: a whole job, transcribe + align + diarize, within 1.5x the transcription; WhisperX
# takes about 3x). A long dialogue (../shared/data/speech/two_speakers.wav repeated to --seconds)
# is transcribed by fresh processes, in turn:
#   alone      --no_align
#   diarize    --no_align --diarize
#   whole T    --diarize --align_model A --align_compute_type T, for each T of --align-types
# where A is a base-size wav2vec2 with seeded random weights (benches/support/random_wav2vec2.rs,
# written by `cargo bench --bench align -- --write-aligner`): no trained one can be had here, and
# random weights cost what trained ones cost. Prints each run's wall time and stage times and a
# table of medians with each row's ratio to the transcription alone.
#
#   benches/whole_job.sh [--seconds 600] [--runs 1] [--model models/tiny.en] [--threads 2]
#                        [--align-types "float32 bfloat16"] [--data ../shared/data/speech]
#
# Relative paths (--model, --data, SCRIBE_BIN) count from the repository's root. SCRIBE_BIN runs
# another binary (default: target/release/scribe, built first); SCRIBE_SPEECH_DATA is --data's
# default. Quiet the machine first: every process uses every thread it is given. Runs offline
# (HF_HUB_OFFLINE=1): every model is a local directory, nothing is downloaded.
set -euo pipefail
export HF_HUB_OFFLINE=1
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

seconds=600 runs=1 model=models/tiny.en threads=2 align_types="float32 bfloat16"
data="${SCRIBE_SPEECH_DATA:-../shared/data/speech}"
while [ $# -gt 0 ]; do
    if [ $# -lt 2 ]; then
        echo "whole_job.sh: $1 needs a value (see the head of this file)" >&2
        exit 2
    fi
    case "$1" in
    --seconds) seconds="$2" ;;
    --runs) runs="$2" ;;
    --model) model="$2" ;;
    --threads) threads="$2" ;;
    --align-types) align_types="$2" ;;
    --data) data="$2" ;;
    *)
        echo "whole_job.sh: unknown argument $1 (see the head of this file)" >&2
        exit 2
        ;;
    esac
    shift 2
done
if ! [ "$runs" -ge 1 ] 2>/dev/null; then
    echo "whole_job.sh: --runs needs a whole number of at least 1" >&2
    exit 2
fi

work="$ROOT/.cache/whole-job"
aligner="$ROOT/.cache/align-bench/wav2vec2-base-random"
mkdir -p "$work"
if [ -z "${SCRIBE_BIN:-}" ]; then
    cargo build --release --quiet --bin scribe
    SCRIBE_BIN="$ROOT/target/release/scribe"
fi
cargo bench --quiet --bench align -- --write-aligner "$aligner"

long="$work/two_speakers-${seconds}s.wav"
python3 scripts/repeat_wav.py "$long" "$data/two_speakers.wav" "$seconds"

jobs=(alone diarize)
for t in $align_types; do jobs+=("whole $t"); done
now_ms() { echo $(($(date +%s%N) / 1000000)); }
declare -A walls
for run in $(seq 1 "$runs"); do
    for job in "${jobs[@]}"; do
        case "$job" in
        alone) flags=(--no_align) ;;
        diarize) flags=(--no_align --diarize) ;;
        *) flags=(--diarize --align_model "$aligner" --align_compute_type "${job#whole }") ;;
        esac
        log="$work/${job// /-}.log"
        start=$(now_ms)
        if ! LOG_LEVEL=debug "$SCRIBE_BIN" transcribe --model "$model" --beam_size 5 --threads "$threads" \
            "${flags[@]}" --output_format json --output_dir "$work/out-${job// /-}" --verbose False \
            "$long" >"$log" 2>&1; then
            tail -20 "$log" >&2
            echo "whole_job.sh: $job failed (log: $log)" >&2
            exit 1
        fi
        wall="$(echo "$(now_ms) $start" | awk '{ printf "%.2f", ($1 - $2) / 1000 }')"
        # A job whose alignment failed still exits 0 (the stage's warning in the result).
        if [[ "$job" == whole* ]] && ! grep -qE "aligned [0-9]+ segments with" "$log"; then
            grep -E "WARN" "$log" >&2 || true
            echo "whole_job.sh: $job ran without alignment (log: $log)" >&2
            exit 1
        fi
        walls[$job]="${walls[$job]:-} $wall"
        echo "run $run, $job (${flags[*]}): wall $wall s; $(grep -oE 'audio [0-9].*' "$log" | tail -1)"
    done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
alone="$(echo "${walls[alone]}" | median)"
echo
echo "| job ($seconds s, $(basename "$model"), $threads threads, $runs run(s)) | wall median s | ÷ transcription alone |"
echo "|---|---:|---:|"
for job in "${jobs[@]}"; do
    m="$(echo "${walls[$job]}" | median)"
    echo "| $job | $m | $(echo "$m $alone" | awk '{ printf "%.2f", $1 / $2 }') |"
done
