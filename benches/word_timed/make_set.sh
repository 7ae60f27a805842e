#!/usr/bin/env bash
# Builds the word-timed speech set: every sentence of sentences.txt spoken one word at a time by
# espeak-ng, each word trimmed to its first/last audible sample, joined with seeded pseudo-random
# gaps, so every word's true start and end is known to the sample.
#
#   benches/word_timed/make_set.sh [OUT_DIR]      (default .cache/word-timed, git-ignored)
#
# Writes OUT_DIR/NN.wav (16 kHz mono 16-bit PCM), OUT_DIR/NN.json (text, voice, words with true
# times) and OUT_DIR/manifest.json. Deterministic: the same espeak-ng and sox give byte-identical
# files on every run (sox runs with -R, repeatable, and -D, no dither; gaps come from sha256, not
# from a random-number generator). Needs espeak-ng, sox (`apt-get install -y sox`) and python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/.cache/word-timed}"

for tool in espeak-ng sox python3; do
    command -v "$tool" >/dev/null || { echo "make_set.sh: $tool not found (sox: apt-get install -y sox)" >&2; exit 1; }
done
mkdir -p "$out"

python3 - "$here/sentences.txt" "$out" <<'PY'
import array, hashlib, json, os, re, subprocess, sys, tempfile, wave

SENTENCES, OUT = sys.argv[1], sys.argv[2]

SAMPLE_RATE = 16000
SPEED_WPM = 160                      # espeak-ng -s
# Cycled over the sentences (sentence n gets VOICES[(n - 1) % len(VOICES)]); all are espeak-ng's own
# formant voices (the mbrola ones need mbrola, not installed). The female variant is f1: f2-f5 add
# an `echo` (a 120-140 ms tail at about -34 dB, then -62 dB) and `breath` noise, which would stretch
# every word's trimmed end by up to ~250 ms past the spoken word.
VOICES = ["en-us", "en-gb-x-rp", "en-us+f1", "en-gb-scotland", "en-us-nyc"]
# A word's kept span runs from its first to its last sample with |x| >= this, on the 16 kHz 16-bit
# samples. -60 dBFS = 32.8/32768 -> 33. espeak-ng's silence is digital zero (sox -D adds no dither);
# below this level there is only the resampler's pre-/post-ringing (a few ms, measured: the first
# sample >= 1 comes ~3 ms before the first >= 33, the first >= 330 within ~1 ms after it).
TRIM_THRESHOLD_DBFS = -60.0
TRIM_THRESHOLD = round(32768 * 10 ** (TRIM_THRESHOLD_DBFS / 20))  # 33
GAP_MS = (60, 300)                   # inclusive range of the silence between words
GAP_SEED = "scribe-word-timed-v1"
LEAD_IN_S = 0.5
TAIL_S = 0.5


def gap_ms(clip, i):
    """Gap after word i of clip: deterministic, uniform over GAP_MS, independent of Python's RNG."""
    h = hashlib.sha256(f"{GAP_SEED}/{clip}/{i}".encode()).digest()
    lo, hi = GAP_MS
    return lo + int.from_bytes(h[:8], "big") % (hi - lo + 1)


def silence(n):
    """n samples of digital silence."""
    return array.array("h", [0]) * n


def synth_word(text, voice, tmp):
    """The word as 16 kHz mono int16 samples, trimmed; (samples, leading samples cut)."""
    w22 = os.path.join(tmp, "w.wav")
    raw = os.path.join(tmp, "w.raw")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(SPEED_WPM), "-w", w22, "--", text], check=True)
    # -R repeatable, -D no dither: the output is a pure function of the input.
    subprocess.run(["sox", "-R", "-D", w22, "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1",
                    raw, "rate", "-h", str(SAMPLE_RATE)], check=True)
    a = array.array("h")
    with open(raw, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    loud = [i for i, x in enumerate(a) if abs(x) >= TRIM_THRESHOLD]
    if not loud:
        raise SystemExit(f"make_set: espeak-ng produced no audible samples for {text!r} ({voice})")
    first, last = loud[0], loud[-1]
    return a[first:last + 1], first


def check_clip(wav_path, words):
    """Re-reads the written file: lead-in, gaps and tail are digital silence of the intended
    lengths, and every word's first and last kept sample reach the trim threshold."""
    with wave.open(wav_path, "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SAMPLE_RATE, 1, 2)
        x = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder != "little":
        x.byteswap()
    lo, hi = (g * SAMPLE_RATE // 1000 for g in GAP_MS)
    assert words[0]["start_sample"] == round(LEAD_IN_S * SAMPLE_RATE), wav_path
    assert len(x) - words[-1]["end_sample"] == round(TAIL_S * SAMPLE_RATE), wav_path
    silent = [(0, words[0]["start_sample"]), (words[-1]["end_sample"], len(x))]
    for a, b in zip(words, words[1:]):
        assert lo <= b["start_sample"] - a["end_sample"] <= hi, (wav_path, a["word"], b["word"])
        silent.append((a["end_sample"], b["start_sample"]))
    for s0, s1 in silent:
        assert not any(x[s0:s1]), (wav_path, s0, s1)
    for w in words:
        assert abs(x[w["start_sample"]]) >= TRIM_THRESHOLD and abs(x[w["end_sample"] - 1]) >= TRIM_THRESHOLD


def tool_version(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return (r.stdout or r.stderr).strip().splitlines()[0]


with open(SENTENCES, encoding="utf-8") as f:
    sentences = [line.strip() for line in f if line.strip() and not line.startswith("#")]

clips = []
with tempfile.TemporaryDirectory() as tmp:
    for n, sentence in enumerate(sentences, 1):
        cid = f"{n:02d}"
        voice = VOICES[(n - 1) % len(VOICES)]
        tokens = sentence.split()
        audio = silence(round(LEAD_IN_S * SAMPLE_RATE))
        words = []
        for i, tok in enumerate(tokens):
            # Spoken without the punctuation around it (a trailing "." or "?" would change
            # espeak's intonation of a lone word); the truth keeps the token as written.
            spoken = re.sub(r"^[^\w']+|[^\w']+$", "", tok)
            samples, cut = synth_word(spoken, voice, tmp)
            start = len(audio)
            audio.extend(samples)
            end = len(audio)  # one past the last kept sample
            words.append({
                "word": tok,
                "start": round(start / SAMPLE_RATE, 6),
                "end": round(end / SAMPLE_RATE, 6),
                "start_sample": start,
                "end_sample": end,
                "lead_trimmed_ms": round(1000 * cut / SAMPLE_RATE, 2),
            })
            if i + 1 < len(tokens):
                audio.extend(silence(gap_ms(cid, i) * SAMPLE_RATE // 1000))
        audio.extend(silence(round(TAIL_S * SAMPLE_RATE)))
        if sys.byteorder != "little":
            audio.byteswap()
        wav_path = os.path.join(OUT, f"{cid}.wav")
        with wave.open(wav_path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(audio.tobytes())
        check_clip(wav_path, words)
        duration = round(len(audio) / SAMPLE_RATE, 6)
        clip = {"id": cid, "text": sentence, "voice": voice, "speed_wpm": SPEED_WPM,
                "sample_rate": SAMPLE_RATE, "duration": duration, "words": words}
        with open(os.path.join(OUT, f"{cid}.json"), "w", encoding="utf-8") as f:
            json.dump(clip, f, indent=1, ensure_ascii=False)
            f.write("\n")
        with open(wav_path, "rb") as f:
            wav_sha = hashlib.sha256(f.read()).hexdigest()
        clips.append({"id": cid, "wav": f"{cid}.wav", "json": f"{cid}.json", "text": sentence,
                      "voice": voice, "duration": duration, "words": len(words), "wav_sha256": wav_sha})
        print(f"{cid} {voice:15s} {duration:6.2f} s {len(words):2d} words  {sentence}", file=sys.stderr)

manifest = {
    "description": "Scribe word-timed set: sentences spoken word by word by espeak-ng, joined with "
                   "known gaps; word times are sample-exact (end = one past the last kept sample).",
    "sample_rate": SAMPLE_RATE,
    "speed_wpm": SPEED_WPM,
    "voices": VOICES,
    "trim_threshold_dbfs": TRIM_THRESHOLD_DBFS,
    "trim_threshold_int16": TRIM_THRESHOLD,
    "gap_ms": list(GAP_MS),
    "gap_seed": GAP_SEED,
    "lead_in_s": LEAD_IN_S,
    "tail_s": TAIL_S,
    "espeak_ng": tool_version(["espeak-ng", "--version"]),
    "sox": tool_version(["sox", "--version"]),
    "clips": clips,
}
with open(os.path.join(OUT, "manifest.json"), "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(f"{len(clips)} clips, {sum(c['words'] for c in clips)} words, "
      f"{sum(c['duration'] for c in clips):.1f} s -> {OUT}", file=sys.stderr)
PY
