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
Noisy long file (issue 5's VAD benchmark): the same clips, repeated as above, in a shuffled order
(fixed seed), separated by random gaps of NOISY_GAP_S of silence, with a stretch of white noise
of NOISY_NOISE_S at about NOISY_NOISE_DBFS (RMS) in about half of the gaps; index.json lists the
noise stretches, where a transcript must hold no word.
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
NOISY_NAME = "noisy_long.wav"
NOISY_SEED = 20261124
NOISY_GAP_S = (0.3, 6.0)
NOISY_NOISE_S = (5.0, 20.0)
NOISY_NOISE_DBFS = -30.0
# Bump when the recipe above changes, so cached clips are rebuilt.
RECIPE = (
    f"v2 mean-downmix soxr-{RESAMPLE_QUALITY} pcm16 gap={LONG_GAP_S} min={LONG_MIN_S} "
    f"noisy seed={NOISY_SEED} gap={NOISY_GAP_S} noise={NOISY_NOISE_S}@{NOISY_NOISE_DBFS}dBFS"
)


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
        paths += [index["noisy_long"]["path"]] if "noisy_long" in index else []
        if index.get("fingerprint") == fp and "noisy_long" in index and all(pathlib.Path(p).exists() for p in paths):
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
        "noisy_long": _noisy_long(pcm, clips, out_dir),
    }
    index_path.write_text(json.dumps(index, indent=1))
    return index


def _noisy_long(pcm, clips, out_dir):
    """The noisy long file (see the module docstring) and where its noise stretches are."""
    rng = np.random.default_rng(NOISY_SEED)
    noise_rms = 32767.0 * 10 ** (NOISY_NOISE_DBFS / 20)
    pieces, texts, noise, samples = [], [], [], 0
    while samples < LONG_MIN_S * SAMPLE_RATE:
        for i in rng.permutation(len(pcm)):
            if pieces:
                gap = np.zeros(int(rng.uniform(*NOISY_GAP_S) * SAMPLE_RATE), dtype=np.int16)
                if rng.random() < 0.5:
                    n = int(rng.uniform(*NOISY_NOISE_S) * SAMPLE_RATE)
                    start = samples + len(gap) // 2
                    stretch = np.clip(np.round(rng.normal(0.0, noise_rms, n)), -32768, 32767).astype(np.int16)
                    gap = np.concatenate([gap[: len(gap) // 2], stretch, gap[len(gap) // 2:]])
                    noise.append([start / SAMPLE_RATE, (start + n) / SAMPLE_RATE])
                pieces.append(gap)
                samples += len(gap)
            pieces.append(pcm[i])
            samples += len(pcm[i])
            texts.append(clips[i]["text"])
    audio = np.concatenate(pieces)
    path = out_dir / NOISY_NAME
    sf.write(str(path), audio, SAMPLE_RATE, subtype="PCM_16")
    return {"name": NOISY_NAME, "path": str(path.resolve()), "text": " ".join(texts),
            "seconds": len(audio) / SAMPLE_RATE, "noise_spans": noise}
