"""Build the benchmark inputs in a cache directory: 16 kHz mono 16-bit WAV clips plus one long file.

Clips: every recording in the shared speech set whose manifest entry has reference text.
Conversion, fixed so both engines see identical samples:
  1. decode with libsndfile (soundfile) to float64;
  2. downmix by averaging the channels (what `ffmpeg -ac 1` does);
  3. resample to 16 kHz with libsoxr (python-soxr, quality "VHQ"), skipped when already 16 kHz;
  4. write 16-bit PCM WAV: round(x * 32767), clipped to [-32768, 32767], no dither.
Long file: the clips in manifest order with LONG_GAP_S of digital silence between consecutive
clips (also between repetitions), repeated whole until it lasts at least LONG_MIN_S; its
reference is the concatenation of the clip references in the same order.
"""

import hashlib
import json
import pathlib

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000
LONG_GAP_S = 1.5
LONG_MIN_S = 180.0
RESAMPLE_QUALITY = "VHQ"
LONG_NAME = "long.wav"
# Bump when the recipe above changes, so cached clips are rebuilt.
RECIPE = f"v1 mean-downmix soxr-{RESAMPLE_QUALITY} pcm16 gap={LONG_GAP_S} min={LONG_MIN_S}"


def _to_16k_mono(path):
    audio, sr = sf.read(str(path), dtype="float64", always_2d=True)
    mono = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        mono = soxr.resample(mono, sr, SAMPLE_RATE, quality=RESAMPLE_QUALITY)
    return mono


def _pcm16(x):
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def _fingerprint(manifest_path, entries):
    h = hashlib.sha256(RECIPE.encode())
    h.update(manifest_path.read_bytes())
    for e in entries:
        h.update((manifest_path.parent / e["file"]).read_bytes())
    return h.hexdigest()


def build(data_dir, out_dir):
    """Write (or reuse) the clips and the long file. Returns {"clips": [...], "long": {...}},
    each item {"name", "path", "text", "seconds"}."""
    data_dir, out_dir = pathlib.Path(data_dir), pathlib.Path(out_dir)
    manifest_path = data_dir / "manifest.json"
    entries = [e for e in json.loads(manifest_path.read_text()) if e.get("text")]
    if not entries:
        raise SystemExit(f"no recordings with reference text in {manifest_path}")
    index_path = out_dir / "index.json"
    fp = _fingerprint(manifest_path, entries)
    if index_path.exists():
        index = json.loads(index_path.read_text())
        paths = [c["path"] for c in index["clips"]] + [index["long"]["path"]]
        if index.get("fingerprint") == fp and all(pathlib.Path(p).exists() for p in paths):
            return index

    out_dir.mkdir(parents=True, exist_ok=True)
    clips, pcm = [], []
    for e in entries:
        x = _pcm16(_to_16k_mono(data_dir / e["file"]))
        path = out_dir / (pathlib.Path(e["file"]).stem + ".wav")
        sf.write(str(path), x, SAMPLE_RATE, subtype="PCM_16")
        clips.append({"name": path.name, "path": str(path.resolve()), "text": e["text"],
                      "seconds": len(x) / SAMPLE_RATE})
        pcm.append(x)

    gap = np.zeros(int(LONG_GAP_S * SAMPLE_RATE), dtype=np.int16)
    pieces, texts, samples = [], [], 0
    while samples < LONG_MIN_S * SAMPLE_RATE:
        for x, c in zip(pcm, clips):
            if pieces:
                pieces.append(gap)
                samples += len(gap)
            pieces.append(x)
            samples += len(x)
            texts.append(c["text"])
    long_pcm = np.concatenate(pieces)
    long_path = out_dir / LONG_NAME
    sf.write(str(long_path), long_pcm, SAMPLE_RATE, subtype="PCM_16")
    index = {
        "fingerprint": fp,
        "recipe": RECIPE,
        "clips": clips,
        "long": {"name": LONG_NAME, "path": str(long_path.resolve()), "text": " ".join(texts),
                 "seconds": len(long_pcm) / SAMPLE_RATE},
    }
    index_path.write_text(json.dumps(index, indent=1))
    return index
