#!/usr/bin/env python3
"""Reference for tests/reconstruction_reference.rs: pyannote's reconstruction of a diarization from
clustered local speakers, run by pyannote.audio 4.0.7's own code (`SpeakerDiarization.apply`'s
last steps: inactive local speakers to the −2 cluster, `reconstruct` → `to_diarization`,
`to_annotation`, the count capped by `max_speakers` and, for the exclusive diarization, by 1).

Inputs: the local speakers and speaker counts of tests/reference/data/segmentation (real
segmentation-3.0 output, make_segmentation_reference.py), and seeded random cluster assignments
of the local speakers (the clustering is tested on its own). Run from the repository root:

    .cache/alignvenv/bin/python tests/reference/make_reconstruction_reference.py

Writes tests/reference/data/reconstruction/{reference.safetensors,cases.json}.
"""
import json, os, types, warnings
from importlib.metadata import version

import numpy as np
from safetensors.numpy import load_file, save_file

warnings.filterwarnings("ignore")
from pyannote.core import SlidingWindow, SlidingWindowFeature  # noqa: E402
from pyannote.audio.pipelines.speaker_diarization import SpeakerDiarization  # noqa: E402

SEG = "tests/reference/data/segmentation"
OUT = "tests/reference/data/reconstruction"
seg = load_file(os.path.join(SEG, "reference.safetensors"))
manifest = json.load(open(os.path.join(SEG, "manifest.json")))
pipeline = types.SimpleNamespace(to_diarization=SpeakerDiarization.to_diarization)

rng = np.random.default_rng(20261204)
tensors, cases = {}, []
for name in ["two_speakers", "joined", "spk1_snt1"]:
    m = manifest["recordings"][name]
    ch, cf = m["chunks"], m["count_frames"]
    binarized = SlidingWindowFeature(seg[f"{name}.binarized"].astype(np.float32),
                                     SlidingWindow(start=ch["start"], duration=ch["duration"], step=ch["step"]))
    frames = SlidingWindow(start=cf["start"], duration=cf["duration"], step=cf["step"])
    num_chunks, _, local = binarized.data.shape
    for clusters in [1, 2, 3, 4]:
        for max_speakers, min_duration_off in [(None, 0.0), (2, 0.0), (None, 0.3)]:
            hard = rng.integers(0, clusters, size=(num_chunks, local)).astype(np.int8)
            hard[np.sum(binarized.data, axis=1) == 0] = -2
            key = f"{name}.k{clusters}.max{max_speakers}.off{min_duration_off}"
            out = {"recording": name, "key": key, "clusters": clusters, "max_speakers": max_speakers,
                   "min_duration_off": min_duration_off}
            tensors[f"{key}.hard_clusters"] = hard
            for variant, cap in [("regular", max_speakers if max_speakers else np.inf), ("exclusive", 1)]:
                count = SlidingWindowFeature(seg[f"{name}.count"][:, None].astype(np.float64), frames)
                count.data = np.minimum(count.data, cap).astype(np.int8)
                discrete = SpeakerDiarization.reconstruct(pipeline, binarized, hard.copy(), count)
                annotation = SpeakerDiarization.to_annotation(discrete, min_duration_on=0.0,
                                                              min_duration_off=min_duration_off)
                labels = {label: f"SPEAKER_{i:02d}" for i, label in enumerate(annotation.labels())}
                tensors[f"{key}.{variant}.discrete"] = discrete.data.astype(np.uint8)
                out[variant] = {
                    "discrete_start": discrete.sliding_window.start,
                    "turns": [[s.start, s.end, labels[label], int(label)]
                              for s, _, label in annotation.itertracks(yield_label=True)],
                }
            cases.append(out)

os.makedirs(OUT, exist_ok=True)
save_file(tensors, os.path.join(OUT, "reference.safetensors"))
with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump({"versions": {p: version(p) for p in ["pyannote.audio", "pyannote.core", "numpy"]},
               "cases": cases}, f)
    f.write("\n")
print(len(cases), "cases")
