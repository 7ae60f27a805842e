#!/usr/bin/env python3
"""Reference for tests/segmentation_reference.rs: pyannote's segmentation-3.0 run by pyannote.audio's
own code on the real checkpoint (models/segmentation-3.0/pytorch_model.bin, `models/fetch
segmentation-3.0`), CPU, float32.

* `forward`: the model's raw output (log-softmax over the 7 powerset classes, 589 frames) for
  three 10 s windows of two_speakers.wav in one batch, and pyannote's hard powerset → multilabel
  conversion of it (`Powerset.to_multilabel`);
* for each recording (two_speakers.wav, 30 s; five spk*_snt* files joined end to end, 13.5 s;
  spk1_snt1.wav, shorter than one window): what `SpeakerDiarization` computes from the model before embeddings, with the
  released 3.1/community-1 settings: `Inference(duration=10, step=1 s, skip_aggregation=True)`
  (sliding windows, the last one zero-padded; powerset converted to binary speakers) and
  `speaker_count(binarized, model.receptive_field, warm_up=(0, 0))`, and per window frame the
  margin between the two best powerset log-probabilities (near ties may flip under float error).

Versions: tests/reference/requirements-diarize.txt (pyannote.audio 4.0.7, torch 2.8). Run from the
repository root:

    .cache/alignvenv/bin/python tests/reference/make_segmentation_reference.py

Writes tests/reference/data/segmentation/{reference.safetensors,manifest.json}.
"""
import json, os, sys, warnings
from importlib.metadata import version

import numpy as np
import soundfile as sf
import torch
from safetensors.numpy import save_file

warnings.filterwarnings("ignore")
from pyannote.audio import Inference, Model  # noqa: E402
from pyannote.audio.pipelines.speaker_diarization import SpeakerDiarization  # noqa: E402
from pyannote.audio.utils.powerset import Powerset  # noqa: E402

SPEECH = os.environ.get("SCRIBE_SPEECH_DIR", "../shared/data/speech")
CKPT = "models/segmentation-3.0/pytorch_model.bin"
OUT = "tests/reference/data/segmentation"
DURATION, STEP = 10.0, 1.0
# Recordings: one file, or several joined end to end (a length that is no whole number of steps).
RECORDINGS = {
    "two_speakers": ["two_speakers.wav"],
    "joined": ["spk1_snt1.wav", "spk2_snt1.wav", "spk1_snt2.wav", "spk2_snt2.wav", "spk1_snt3.wav"],
    "spk1_snt1": ["spk1_snt1.wav"],
}

torch.set_num_threads(2)
model = Model.from_pretrained(CKPT)
model.eval()


def load(name):
    audio, sr = sf.read(os.path.join(SPEECH, name), dtype="float32", always_2d=True)
    assert sr == 16000, (name, sr)
    return torch.from_numpy(audio.mean(axis=1)[None, :].copy())


tensors, manifest = {}, {"versions": {p: version(p) for p in ["pyannote.audio", "torch", "numpy"]},
                         "checkpoint": CKPT, "duration": DURATION, "step": STEP, "recordings": {}}

wave = load("two_speakers.wav")
window = int(DURATION * 16000)
starts = [0, 10 * 16000, 20 * 16000]
batch = torch.stack([wave[:, s:s + window] for s in starts])
with torch.inference_mode():
    log_probs = model(batch)
tensors["forward.log_probs"] = log_probs.numpy().astype(np.float32)
spec = model.specifications
powerset = Powerset(len(spec.classes), spec.powerset_max_classes)
tensors["forward.multilabel"] = powerset.to_multilabel(log_probs).numpy().astype(np.float32)
manifest["forward"] = {"recording": "two_speakers.wav", "start_samples": starts, "samples": window}

inference = Inference(model, duration=DURATION, step=STEP, skip_aggregation=True, batch_size=32)
for key, files in RECORDINGS.items():
    wave = torch.cat([load(f) for f in files], dim=1)
    seg = inference({"waveform": wave, "sample_rate": 16000})
    # The same windows' log-probabilities (no conversion): the margin between each frame's two
    # best powerset classes tells a test which frames are near ties float error may flip.
    raw = Inference(model, duration=DURATION, step=STEP, skip_aggregation=True, batch_size=32,
                    skip_conversion=True)({"waveform": wave, "sample_rate": 16000}).data
    top2 = np.sort(raw, axis=-1)[..., -2:]
    count = SpeakerDiarization.speaker_count(seg, model.receptive_field, warm_up=(0.0, 0.0))
    tensors[f"{key}.binarized"] = seg.data.astype(np.uint8)
    tensors[f"{key}.count"] = count.data.astype(np.uint8)[:, 0]
    tensors[f"{key}.margin"] = (top2[..., 1] - top2[..., 0]).astype(np.float32)
    rf = model.receptive_field
    manifest["recordings"][key] = {
        "files": files, "samples": int(wave.shape[1]),
        "chunks": {"start": seg.sliding_window.start, "duration": seg.sliding_window.duration,
                   "step": seg.sliding_window.step, "count": int(seg.data.shape[0])},
        "count_frames": {"start": count.sliding_window.start, "duration": count.sliding_window.duration,
                         "step": count.sliding_window.step, "count": int(count.data.shape[0])},
        "receptive_field": {"start": rf.start, "duration": rf.duration, "step": rf.step},
    }

os.makedirs(OUT, exist_ok=True)
save_file(tensors, os.path.join(OUT, "reference.safetensors"))
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
    f.write("\n")
print({k: v.shape for k, v in tensors.items()}, file=sys.stderr)
