#!/usr/bin/env python3
"""Reference for tests/vad_reference.rs: WhisperX's VAD run by WhisperX's own code.

whisperx 3.8.6 (`vads/pyannote.py`: `load_vad_model`, `Pyannote.merge_chunks`) with the
pyannote.audio 4.0.7 and torch 2.8 it pins, on WhisperX's checkpoint, CPU, float32:

* `forward`: the model's raw output (3 sigmoid tracks × 293 frames) for three 5 s windows of
  two_speakers.wav in one batch;
* `recordings`: for each native 16 kHz recording (and one made of the spk*_snt* files laid end
  to end with gaps of silence), the per-frame speech scores WhisperX's pipeline returns
  (sliding windows, max over tracks, Hamming overlap-add) and the chunks `merge_chunks`
  makes of them for chunk_size 30 and 10 (the smaller size exercises the min-cut).

Needs its own environment (whisperx's pins differ from requirements.txt's torch):

    python3 -m venv .cache/vadvenv
    .cache/vadvenv/bin/pip install "torch~=2.8.0" "torchaudio~=2.8.0" "torchcodec>=0.6,<0.8" \
        pyannote.audio==4.0.7 soundfile pandas
    .cache/vadvenv/bin/pip install --no-deps whisperx==3.8.6
    .cache/vadvenv/bin/python tests/reference/make_vad_reference.py models/vad/whisperx-vad-segmentation.bin
"""
import hashlib, json, os, sys
from importlib.metadata import version

import numpy as np
import soundfile as sf
import torch

from whisperx.vads.pyannote import Pyannote, load_vad_model

SPEECH = os.environ.get("SCRIBE_SPEECH_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/data/speech"))
ckpt = os.path.abspath(sys.argv[1])
out = sys.argv[2] if len(sys.argv) > 2 else "tests/reference/data/vad_reference.json"
GAP_SECONDS = 1.5
CHUNK_SIZES = [30, 10]

torch.set_num_threads(2)
pipeline = load_vad_model("cpu", model_fp=ckpt)
model = pipeline._segmentation.model
model.eval()


def read(name):
    path = os.path.join(SPEECH, name)
    audio, sr = sf.read(path, dtype="float32")
    assert sr == 16000 and audio.ndim == 1, name
    return audio, hashlib.sha256(open(path, "rb").read()).hexdigest()


def rounded(a):
    return [round(float(v), 7) for v in np.asarray(a).reshape(-1)]


def vad(audio):
    scores = pipeline({"waveform": torch.from_numpy(audio).unsqueeze(0), "sample_rate": 16000})
    chunks = {}
    for size in CHUNK_SIZES:
        merged = Pyannote.merge_chunks(scores, size, onset=0.5, offset=0.363)
        chunks[str(size)] = [[round(c["start"], 6), round(c["end"], 6)] for c in merged]
    frames = scores.sliding_window
    return scores.data[:, 0], (frames.start, frames.duration, frames.step), chunks


two, two_sha = read("two_speakers.wav")
with torch.inference_mode():
    windows = torch.from_numpy(np.stack([two[s : s + 80000] for s in (0, 8000, 200000)]))[:, None, :]
    forward = model(windows).numpy()

manifest = json.load(open(os.path.join(SPEECH, "manifest.json")))
parts = sorted(e["file"] for e in manifest if e["file"].startswith("spk"))
recordings = []
for name in ["two_speakers.wav", "spk1_snt1.wav", "spk2_snt3.wav", "concat"]:
    if name == "concat":
        gap = np.zeros(int(GAP_SECONDS * 16000), dtype=np.float32)
        pieces = [read(p)[0] for p in parts]
        audio = np.concatenate([x for p in pieces for x in (p, gap)][:-1])
        entry = {"name": name, "parts": parts, "gap_seconds": GAP_SECONDS}
    else:
        audio, sha = read(name)
        entry = {"name": name, "sha256": sha}
    scores, frames, chunks = vad(audio)
    entry.update(samples=len(audio), frames=frames, scores=rounded(scores), chunks=chunks)
    recordings.append(entry)
    print(name, len(audio) / 16000, "s,", len(scores), "frames,", chunks)

json.dump(
    {
        "versions": {p: version(p) for p in ["whisperx", "pyannote.audio", "pyannote.core", "torch", "asteroid-filterbanks", "numpy"]},
        "checkpoint_sha256": hashlib.sha256(open(ckpt, "rb").read()).hexdigest(),
        "forward": {"recording": "two_speakers.wav", "window_starts": [0, 8000, 200000], "shape": list(forward.shape), "scores": rounded(forward)},
        "recordings": recordings,
    },
    open(out, "w"),
)
print("wrote", out)
