"""Reference outputs of openai-whisper's full `transcribe()` for Scribe's tests.

Usage (from the repository root, inside .cache/refvenv):
    python tests/reference/make_transcribe_reference.py MODEL_DIR OUT_NAME

Writes tests/reference/data/transcribe_OUT_NAME.json.

The model is the CTranslate2 MODEL_DIR/model.bin converted to an openai-whisper
`Whisper` by ct2_to_openai.py (float32, CPU, 2 torch threads). `transcribe()` is
called unmodified on float32 numpy arrays (no ffmpeg): openai's own log-mel
(padding=N_SAMPLES, torch STFT), DecodingOptions, seek logic and fallback.
See tests/reference/README.md ("openai-whisper transcribe() references").
"""

import hashlib
import json
import os
import platform
import sys
import time
from math import gcd

import numpy as np
import scipy
import scipy.signal
import soundfile
import torch
import whisper
from whisper.audio import N_FRAMES, N_SAMPLES, SAMPLE_RATE, log_mel_spectrogram, pad_or_trim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ct2_to_openai import load_openai_whisper_from_ct2  # noqa: E402

SPEECH_DIR = "/work/shared/data/speech"
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
# 1 thread: on a shared 2-core machine under load, 2 OpenMP threads ran about 3x
# slower than 1 (same tokens; avg_logprob differed by ~2e-7).
TORCH_THREADS = 1

# Long file: native 16 kHz mono recordings only, so Scribe can rebuild it bit-exactly.
LONG_NAME = "long_native16k"
LONG_MIN_SECONDS = 180.0
LONG_GAP_SAMPLES = 24000  # exactly 1.5 s of 0.0 between consecutive pieces

TOP_LANGUAGES = 5

COMMON = dict(fp16=False, language="en", verbose=None)
CONFIGS = {
    # name: transcribe() keyword arguments (besides COMMON)
    "greedy_timestamps": dict(temperature=0.0, beam_size=None, best_of=None),
    "beam5_timestamps": dict(temperature=0.0, beam_size=5, best_of=None),
    "greedy_no_timestamps": dict(temperature=0.0, beam_size=None, best_of=None, without_timestamps=True),
    "greedy_word_timestamps": dict(temperature=0.0, beam_size=None, best_of=None, word_timestamps=True),
    # default temperature tuple: records whether fallback triggers (greedy at t=0,
    # sampling with best_of=5 (openai's CLI default is best_of=5; transcribe()'s
    # DecodingOptions default is best_of=None -> 1 sample) at t>0).
    "greedy_fallback": dict(temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0), beam_size=None, best_of=None),
}
FALLBACK_SEED = 0  # torch.manual_seed before the fallback configuration (sampling at t > 0)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_recording(path):
    """Mono float32 16 kHz audio and an info dict.

    Native 16 kHz mono PCM_16: soundfile float32 read = int16 / 32768 exactly.
    Anything else: float64 read, channel mean, scipy.signal.resample_poly
    (default Kaiser window, beta 5), then float32 (as make_whisper_reference.py).
    """
    sinfo = soundfile.info(path)
    info = {"sample_rate": sinfo.samplerate, "channels": sinfo.channels, "subtype": sinfo.subtype}
    if sinfo.samplerate == SAMPLE_RATE and sinfo.channels == 1:
        audio, _ = soundfile.read(path, dtype="float32")
        info["resampled"] = False
    else:
        audio, sr = soundfile.read(path, dtype="float64", always_2d=True)
        audio = audio.mean(axis=1)
        g = gcd(SAMPLE_RATE, sr)
        up, down = SAMPLE_RATE // g, sr // g
        audio = scipy.signal.resample_poly(audio, up, down).astype(np.float32)
        info["resampled"] = True
        info["resample_method"] = (
            f"float64 read, channel mean, scipy.signal.resample_poly(x, up={up}, down={down}) "
            "(default window ('kaiser', 5.0)), then float32"
        )
    info["num_samples_16k"] = int(audio.shape[0])
    info["duration_s"] = audio.shape[0] / SAMPLE_RATE
    return np.ascontiguousarray(audio, dtype=np.float32), info


def build_long(native):
    """native: list of (file, float32 audio) in manifest order -> (audio, recipe)."""
    one_pass = sum(len(a) for _, a in native) + LONG_GAP_SAMPLES * (len(native) - 1)
    repeats = 1
    while (repeats * one_pass + (repeats - 1) * LONG_GAP_SAMPLES) / SAMPLE_RATE < LONG_MIN_SECONDS:
        repeats += 1
    pieces = [f for _ in range(repeats) for f, _ in native]
    gap = np.zeros(LONG_GAP_SAMPLES, dtype=np.float32)
    by_name = dict(native)
    parts = []
    offsets = []
    pos = 0
    for i, f in enumerate(pieces):
        if i:
            parts.append(gap)
            pos += LONG_GAP_SAMPLES
        offsets.append(pos)
        parts.append(by_name[f])
        pos += len(by_name[f])
    audio = np.concatenate(parts)
    assert audio.dtype == np.float32 and len(audio) == pos
    recipe = {
        "description": (
            "Concatenate `pieces` in order, inserting exactly gap_samples zero samples between "
            "consecutive pieces (none before the first or after the last). Each piece is the "
            "native 16 kHz mono PCM_16 recording decoded as float32(int16 / 32768). The piece "
            "list is the manifest order of the native 16 kHz mono recordings, repeated "
            "`repeats` times (smallest count giving >= min_seconds)."
        ),
        "sample_rate": SAMPLE_RATE,
        "source_files": [f for f, _ in native],
        "repeats": repeats,
        "gap_samples": LONG_GAP_SAMPLES,
        "gap_value": 0.0,
        "sample_conversion": "int16 / 32768 as float32",
        "min_seconds": LONG_MIN_SECONDS,
        "pieces": pieces,
        "piece_offsets_samples": offsets,
        "num_samples": int(len(audio)),
        "duration_s": len(audio) / SAMPLE_RATE,
        "float32_sha256": hashlib.sha256(audio.tobytes()).hexdigest(),
        "int16_sum": int(np.round(audio.astype(np.float64) * 32768).astype(np.int64).sum()),
    }
    return audio, recipe


def segment_record(seg, words):
    rec = {
        "id": seg["id"],
        "seek": seg["seek"],
        "start": seg["start"],
        "end": seg["end"],
        "text": seg["text"],
        "tokens": [int(t) for t in seg["tokens"]],
        "temperature": seg["temperature"],
        "avg_logprob": seg["avg_logprob"],
        "compression_ratio": seg["compression_ratio"],
        "no_speech_prob": seg["no_speech_prob"],
    }
    if words:
        rec["words"] = [
            {"word": w["word"], "start": w["start"], "end": w["end"], "probability": w["probability"]}
            for w in seg.get("words", [])
        ]
    return rec


def run_transcribe(model, audio, cfg_name):
    kwargs = dict(COMMON)
    kwargs.update(CONFIGS[cfg_name])
    if cfg_name == "greedy_fallback":
        torch.manual_seed(FALLBACK_SEED)
    t0 = time.time()
    result = whisper.transcribe(model, audio, **kwargs)
    elapsed = time.time() - t0
    segs = [segment_record(s, kwargs.get("word_timestamps", False)) for s in result["segments"]]
    temps = sorted({s["temperature"] for s in segs})
    return {
        "text": result["text"],
        "language": result["language"],
        "num_segments": len(segs),
        "num_tokens": sum(len(s["tokens"]) for s in segs),
        "num_text_tokens": sum(1 for s in segs for t in s["tokens"] if t < model_eot(model)),
        "seeks": [s["seek"] for s in segs],
        "temperatures_used": temps,
        "fallback": any(t > 0 for t in temps),
        "elapsed_s": round(elapsed, 2),
        "segments": segs,
    }


def model_eot(model):
    return 50257 if model.is_multilingual else 50256


def language_probs(model, mel_segment, tokenizer):
    with torch.no_grad():
        _, probs = model.detect_language(mel_segment, tokenizer)
    top = sorted(probs.items(), key=lambda kv: -kv[1])[:TOP_LANGUAGES]
    return [{"language": k, "probability": float(v)} for k, v in top]


def detect_language_records(model, audio):
    """Two 30 s mels: as transcribe() makes it (log-mel of audio + 30 s zeros, first
    3000 frames), and log_mel_spectrogram(pad_or_trim(audio)) (the README example)."""
    tokenizer = whisper.tokenizer.get_tokenizer(True, num_languages=model.num_languages)
    a = torch.from_numpy(audio)
    mel_t = pad_or_trim(log_mel_spectrogram(a, model.dims.n_mels, padding=N_SAMPLES), N_FRAMES)
    mel_p = log_mel_spectrogram(pad_or_trim(a), model.dims.n_mels)
    return {
        "transcribe_mel": language_probs(model, mel_t, tokenizer),
        "pad_or_trim_audio_mel": language_probs(model, mel_p, tokenizer),
    }


def main():
    if sys.argv[1] == "--merge":
        merge(sys.argv[2])
        return
    model_dir, out_name = sys.argv[1], sys.argv[2]
    torch.set_num_threads(TORCH_THREADS)
    model, _ckpt, conv_info = load_openai_whisper_from_ct2(model_dir)

    with open(os.path.join(SPEECH_DIR, "manifest.json")) as f:
        manifest = json.load(f)

    inputs = []  # (name, audio, record)
    native = []
    for entry in manifest:
        path = os.path.join(SPEECH_DIR, entry["file"])
        audio, info = load_recording(path)
        rec = {"file": entry["file"], "sha256": sha256(path), "manifest_text": entry.get("text")}
        rec.update(info)
        inputs.append((entry["file"], audio, rec))
        if not info["resampled"]:
            if info["subtype"] != "PCM_16":
                raise RuntimeError(f"{entry['file']}: long-file recipe assumes PCM_16")
            native.append((entry["file"], audio))
    long_audio, recipe = build_long(native)
    long_rec = {"file": LONG_NAME, "resampled": False, "long_file": True, "duration_s": recipe["duration_s"]}
    # Processing (and JSON) order: native 16 kHz recordings, the long file, then the
    # resampled ones (their tokens may legitimately differ in Scribe).
    inputs = ([x for x in inputs if not x[2]["resampled"]] + [(LONG_NAME, long_audio, long_rec)]
              + [x for x in inputs if x[2]["resampled"]])

    # Optional split into parallel runs (merged afterwards with --merge):
    # SCRIBE_REF_ONLY=native|long|resampled processes only that group.
    only = os.environ.get("SCRIBE_REF_ONLY")
    suffix = ""
    if only:
        group = {"native": lambda r: not r["resampled"] and not r.get("long_file"),
                 "long": lambda r: bool(r.get("long_file")),
                 "resampled": lambda r: r["resampled"]}[only]
        inputs = [x for x in inputs if group(x[2])]
        if os.environ.get("SCRIBE_REF_REVERSE"):  # a second runner works from the other end
            inputs = inputs[::-1]
            only += "_rev"
        suffix = f".{only}"

    recordings = []
    out = header(model_dir, out_name, conv_info, model, recipe, recordings)
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, f"transcribe_{out_name}{suffix}.json")
    for name, audio, rec in inputs:
        rec["results"] = {}
        recordings.append(rec)
        # Beam search last: it is the slowest configuration.
        for cfg in sorted(CONFIGS, key=lambda c: c.startswith("beam")):
            r = run_transcribe(model, audio, cfg)
            rec["results"][cfg] = r
            print(f"{name:18s} {cfg:24s} segs={r['num_segments']:3d} tokens={r['num_tokens']:4d} "
                  f"temps={r['temperatures_used']} {r['elapsed_s']:.1f}s | {r['text'][:70]}", flush=True)
            write_json(path, out)  # partial results survive an interrupted run
        texts = {cfg: rec["results"][cfg]["text"] for cfg in CONFIGS}
        rec["text_equal_across_configs"] = len(set(texts.values())) == 1
        if model.is_multilingual:
            rec["detect_language"] = detect_language_records(model, audio)
            print(f"{name:18s} detect_language {rec['detect_language']['transcribe_mel'][:2]}", flush=True)
        write_json(path, out)
    out["complete"] = True
    write_json(path, out)
    print("wrote", path, os.path.getsize(path), "bytes")


def merge(out_name):
    """Merges transcribe_OUT_NAME{,.native,.long,.resampled}.json into transcribe_OUT_NAME.json:
    native recordings, then the long file, then the resampled ones."""
    base = os.path.join(OUT_DIR, f"transcribe_{out_name}")
    parts = [p for p in (base + ".json", base + ".native.json", base + ".long.json", base + ".native_rev.json",
                                  base + ".resampled.json")
             if os.path.exists(p)]
    docs = [json.load(open(p)) for p in parts]
    out = docs[0]
    by_file = {}
    for d in docs:
        for r in d["recordings"]:
            # keep the most complete copy of each recording
            if r.get("results") and len(r["results"]) > len(by_file.get(r["file"], {}).get("results", {})):
                by_file[r["file"]] = r
    native = [r for r in by_file.values() if not r["resampled"] and not r.get("long_file")]
    longf = [r for r in by_file.values() if r.get("long_file")]
    resampled = [r for r in by_file.values() if r["resampled"]]
    order = {e["file"]: i for i, e in enumerate(json.load(open(os.path.join(SPEECH_DIR, "manifest.json"))))}
    out["recordings"] = (sorted(native, key=lambda r: order[r["file"]]) + longf
                         + sorted(resampled, key=lambda r: order[r["file"]]))
    out["complete"] = len(out["recordings"]) == len(order) + 1 and all(
        len(r["results"]) == len(CONFIGS) for r in out["recordings"])
    for r in out["recordings"]:
        missing = [c for c in CONFIGS if c not in r["results"]]
        if missing:
            r["missing_configs"] = missing
    out["merged_from"] = [os.path.basename(p) for p in parts]
    for p in parts:
        os.remove(p)
    write_json(base + ".json", out)
    print("wrote", base + ".json", os.path.getsize(base + ".json"), "bytes; complete:", out["complete"])


def write_json(path, out):
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(path + ".tmp", path)


def header(model_dir, out_name, conv_info, model, recipe, recordings):
    return {
        "complete": False,
        "model_dir": model_dir,
        "model_bin_sha256": sha256(os.path.join(model_dir, "model.bin")),
        "command": f"python tests/reference/make_transcribe_reference.py {model_dir} {out_name}",
        "versions": {
            "python": platform.python_version(),
            "openai-whisper": whisper.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "soundfile": soundfile.__version__,
        },
        "torch_threads": TORCH_THREADS,
        "device": "cpu",
        "conversion": conv_info,
        "is_multilingual": bool(model.is_multilingual),
        "common_options": {k: v for k, v in COMMON.items() if k != "verbose"},
        "transcribe_defaults": {
            "compression_ratio_threshold": 2.4,
            "logprob_threshold": -1.0,
            "no_speech_threshold": 0.6,
            "condition_on_previous_text": True,
            "patience": None,
            "length_penalty": None,
            "suppress_tokens": "-1",
            "suppress_blank": True,
        },
        "configs": {k: {kk: (list(vv) if isinstance(vv, tuple) else vv) for kk, vv in v.items()}
                    for k, v in CONFIGS.items()},
        "fallback_seed": FALLBACK_SEED,
        "long_file_recipe": recipe,
        "recordings": recordings,
    }


if __name__ == "__main__":
    main()
