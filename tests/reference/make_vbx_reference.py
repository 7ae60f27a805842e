#!/usr/bin/env python3
"""Reference for tests/vbx_reference.rs: community-1's VBxClustering, run by pyannote.audio's own
code on seeded synthetic embeddings with a seeded synthetic PLDA, and scipy's
linear_sum_assignment on random matrices.

The real PLDA of pyannote/speaker-diarization-community-1 (`plda/xvec_transform.npz`,
`plda/plda.npz`) sits behind the gated Hugging Face hub; this script writes valid stand-ins of
the same shapes with a fixed seed: `mean1` (256,), `mean2` (128,), `lda` (256, 128; float32,
which rounds its values only: numpy's products with it still run in float64) in
xvec_transform.npz (np.savez: stored members); `mu` (128,), `tr` (128, 128, well conditioned,
2.5 x (I + noise) so that within-speaker spread is ~1 per feature as after a PLDA's
whitening), `psi` (128,, positive, distinct, unsorted) in plda.npz (np.savez_compressed:
deflated members, so both zip methods are exercised), float64.

What runs: `pyannote.audio.core.plda.PLDA` on those files and
`pyannote.audio.pipelines.clustering.VBxClustering(plda)` instantiated with community-1's
parameters (threshold 0.6, Fa 0.07, Fb 0.8), called as `SpeakerDiarization.apply` calls it
(embeddings (chunks, 3, 256) float32, binarized segmentations, num/min/max speakers through
`set_num_speakers`), then the pipeline's `hard_clusters[inactive_speakers] = -2`.
`cluster_vbx` and sklearn's `KMeans` are wrapped to record their inputs and outputs.

Embedding sets (`<set>.embeddings`, `<set>.segmentation` (chunks, FRAMES, 3) uint8): K random
speaker directions in 256-d, members = direction + spread x Gaussian noise, scaled by a random
norm; each chunk holds up to 3 distinct speakers; a local speaker is the sole speaker on a
random share of the frames (some under the 20 % filter), overlapped on others, or inactive;
inactive pairs are NaN or finite garbage; a few active pairs are NaN (failed embeddings).

Stored: `plda.xvec_input`/`plda.xvec` (xvec_tf of one set's finite rows, float32) and
`plda.phi`; per set (VBx does not depend on the bounds) `<set>.ahc` (int32 AHC labels), `.fea`
(PLDA features, float32), `.gamma`, `.pi` (float64 VBx outputs); per case `<case>.train_index`
(int32 pair indices kept by the filter), `.hard` (int32, -2 for inactive/unassigned), `.soft`
(float64), `.centroids` (float32); cases.json says whether KMeans ran. `hungarian.json`: cost
matrices (some with ties), maximize, scipy's row/col indices.

Versions: tests/reference/requirements-diarize.txt (pyannote.audio 4.0.7, scipy 1.17.1,
numpy 2.4.6, scikit-learn 1.9.1). Run from the repository root:

    .cache/alignvenv/bin/python tests/reference/make_vbx_reference.py

Writes tests/reference/data/vbx/{xvec_transform.npz,plda.npz,reference.safetensors,cases.json,
hungarian.json}.
"""
import json
import os
import warnings
from importlib.metadata import version

import numpy as np
from safetensors.numpy import save_file

warnings.filterwarnings("ignore")
from pyannote.core import SlidingWindow, SlidingWindowFeature  # noqa: E402
import pyannote.audio.pipelines.clustering as clustering_module  # noqa: E402
from pyannote.audio.core.plda import PLDA  # noqa: E402
from pyannote.audio.pipelines.clustering import VBxClustering  # noqa: E402
from pyannote.audio.pipelines.utils.diarization import set_num_speakers  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

OUT = "tests/reference/data/vbx"
DIM = 256
LDA_DIM = 128
LOCAL_SPEAKERS = 3
FRAMES = 20
PARAMS = {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}

rng = np.random.default_rng(20261204)
os.makedirs(OUT, exist_ok=True)

# --- synthetic PLDA -------------------------------------------------------------------------
mean1 = rng.standard_normal(DIM) * 0.05
mean2 = rng.standard_normal(LDA_DIM) * 0.05
lda = (rng.standard_normal((DIM, LDA_DIM)) / np.sqrt(DIM)).astype(np.float32)
mu = rng.standard_normal(LDA_DIM) * 0.05
# Features ~2.5x the length-normalised x-vectors: within-speaker spread ~1 per dimension, as a
# PLDA's whitening makes it, so that VBx keeps several speakers at Fa 0.07, Fb 0.8.
tr = 2.5 * np.eye(LDA_DIM) + 0.25 * rng.standard_normal((LDA_DIM, LDA_DIM)) / np.sqrt(LDA_DIM)
psi = np.exp(rng.uniform(-2.0, 3.0, LDA_DIM))
transform_npz = os.path.join(OUT, "xvec_transform.npz")
plda_npz = os.path.join(OUT, "plda.npz")
np.savez(transform_npz, mean1=mean1, mean2=mean2, lda=lda)
np.savez_compressed(plda_npz, mu=mu, tr=tr, psi=psi)
plda = PLDA(transform_npz, plda_npz, lda_dimension=LDA_DIM)

# --- record cluster_vbx and KMeans ----------------------------------------------------------
record = {}
_cluster_vbx = clustering_module.cluster_vbx


def cluster_vbx_recorded(ahc_init, fea, Phi, Fa, Fb, maxIters=20, init_smoothing=7.0):
    q, sp = _cluster_vbx(ahc_init, fea, Phi, Fa, Fb, maxIters=maxIters, init_smoothing=init_smoothing)
    record.update(ahc=np.asarray(ahc_init).copy(), fea=np.asarray(fea).copy(), gamma=q.copy(), pi=sp.copy())
    return q, sp


clustering_module.cluster_vbx = cluster_vbx_recorded
_KMeans = clustering_module.KMeans


class KMeansRecorded(_KMeans):
    def fit_predict(self, X, *args, **kwargs):
        record["kmeans"] = int(self.n_clusters)
        return super().fit_predict(X, *args, **kwargs)


clustering_module.KMeans = KMeansRecorded
pipeline = VBxClustering(plda, metric="cosine")
pipeline.instantiate(PARAMS)


# --- embedding sets -------------------------------------------------------------------------
def make_set(num_speakers, num_chunks, spread, failed=2, garbage=0.4, directions=None):
    if directions is None:
        directions = rng.standard_normal((num_speakers, DIM))
    directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    emb = np.full((num_chunks, LOCAL_SPEAKERS, DIM), np.nan, dtype=np.float32)
    seg = np.zeros((num_chunks, FRAMES, LOCAL_SPEAKERS), dtype=np.uint8)
    for c in range(num_chunks):
        present = rng.integers(0, LOCAL_SPEAKERS + 1)
        who = rng.permutation(num_speakers)[: min(present, num_speakers)]
        slots = rng.permutation(LOCAL_SPEAKERS)
        for s, k in zip(slots, who):
            x = directions[k] + spread * rng.standard_normal(DIM) / np.sqrt(DIM)
            emb[c, s] = (x * rng.uniform(0.5, 3.0)).astype(np.float32)
            # Sole speaker on a random run of frames, overlapped on a few others.
            start, length = rng.integers(0, FRAMES), rng.integers(1, FRAMES + 1)
            seg[c, start: start + length, s] = 1
        for s in slots[len(who):]:
            if rng.uniform() < garbage:
                emb[c, s] = rng.standard_normal(DIM).astype(np.float32)
    # Failed embeddings: active pairs with NaN rows.
    active = np.argwhere(seg.sum(1) > 0)
    for c, s in active[rng.permutation(len(active))[:failed]]:
        emb[c, s] = np.nan
    return emb, seg


sets = {}
sets["three"] = make_set(3, 40, 0.6)
sets["five"] = make_set(5, 40, 0.55)
sets["two_close"] = make_set(2, 30, 0.6, directions=np.stack([np.eye(DIM)[0], np.eye(DIM)[0] + 0.9 * np.eye(DIM)[1]]))
sets["one"] = make_set(1, 20, 0.5)
sets["no_nan"] = make_set(4, 30, 0.45, failed=0, garbage=1.0)
# One sole-active pair: no clustering.
e, s = make_set(2, 6, 0.5, failed=0)
s[:] = 0
s[0, :10, 1] = 1
s[1, :, 0] = 1
s[1, :, 2] = 1  # overlapped everywhere: active but filtered out
sets["single"] = (e, s)

cases = []
for name, (emb, seg) in sets.items():
    for num, lo, hi in [(None, None, None), (2, None, None), (None, 4, None), (None, None, 2), (None, 2, 3), (1, None, None)]:
        cases.append((name, num, lo, hi))

tensors = {}
manifest_cases = []
for name, (emb, seg) in sets.items():
    tensors[f"{name}.embeddings"] = emb
    tensors[f"{name}.segmentation"] = seg
for key, (name, num, lo, hi) in enumerate(cases):
    emb, seg = sets[name]
    record.clear()
    segmentations = SlidingWindowFeature(seg.astype(np.float32), SlidingWindow(start=0.0, duration=10.0, step=1.0))
    num_speakers, min_speakers, max_speakers = set_num_speakers(num, lo, hi)
    _, train_chunk, train_speaker = pipeline.filter_embeddings(emb, segmentations=segmentations)
    hard, soft, centroids = pipeline(
        embeddings=emb,
        segmentations=segmentations,
        num_clusters=num_speakers,
        min_clusters=min_speakers,
        max_clusters=max_speakers,
    )
    hard = np.asarray(hard).astype(np.int32)
    hard[np.sum(seg, axis=1) == 0] = -2
    k = f"case{key}"
    tensors[f"{k}.train_index"] = (train_chunk * LOCAL_SPEAKERS + train_speaker).astype(np.int32)
    tensors[f"{k}.hard"] = hard
    tensors[f"{k}.soft"] = np.asarray(soft, dtype=np.float64)
    tensors[f"{k}.centroids"] = np.asarray(centroids, dtype=np.float32)
    # VBx does not depend on the speaker bounds: its inputs and outputs are stored once per set.
    for part in ("ahc", "fea", "gamma", "pi"):
        if part in record and f"{name}.{part}" not in tensors:
            a = record[part]
            dtype = {"ahc": np.int32, "fea": np.float32}.get(part, np.float64)
            tensors[f"{name}.{part}"] = a.astype(dtype)
    kept = int(np.sum(record["pi"] > 1e-7)) if "pi" in record else None
    manifest_cases.append({"key": k, "set": name, "num": num, "min": lo, "max": hi, "kmeans": record.get("kmeans"),
                           "vbx_speakers": kept, "iterations_init": int(record["ahc"].max() + 1) if "ahc" in record else None})
    print(k, name, (num, lo, hi), "ahc", manifest_cases[-1]["iterations_init"], "vbx kept", kept,
          "kmeans", record.get("kmeans"), "hard", np.unique(hard).tolist())

finite = ~np.any(np.isnan(sets["three"][0].reshape(-1, DIM)), axis=1)
tensors["plda.xvec_input"] = sets["three"][0].reshape(-1, DIM)[finite]
tensors["plda.xvec"] = plda._xvec_tf(sets["three"][0].reshape(-1, DIM)[finite]).astype(np.float32)
tensors["plda.phi"] = np.asarray(plda.phi, dtype=np.float64)
# safetensors writes a strided view's raw buffer (Φ is `acvar[::-1]`): store contiguous copies.
tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
save_file(tensors, os.path.join(OUT, "reference.safetensors"))
os.chmod(os.path.join(OUT, "reference.safetensors"), 0o644)

# --- linear_sum_assignment ------------------------------------------------------------------
hungarian = []
for shape in [(1, 1), (1, 4), (4, 1), (2, 3), (3, 2), (3, 3), (3, 5), (5, 3), (4, 4), (6, 6), (3, 7), (7, 3)]:
    for kind in ("float", "ties"):
        for maximize in (False, True):
            cost = rng.standard_normal(shape) if kind == "float" else rng.integers(-2, 3, size=shape).astype(np.float64)
            rows, cols = linear_sum_assignment(cost, maximize=maximize)
            hungarian.append({"cost": cost.tolist(), "maximize": maximize, "rows": rows.tolist(), "cols": cols.tolist()})
for shape in [(3, 4), (3, 2)]:
    cost = np.zeros(shape)
    for maximize in (False, True):
        rows, cols = linear_sum_assignment(cost, maximize=maximize)
        hungarian.append({"cost": cost.tolist(), "maximize": maximize, "rows": rows.tolist(), "cols": cols.tolist()})
with open(os.path.join(OUT, "hungarian.json"), "w") as f:
    json.dump(hungarian, f)

with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump({"versions": {p: version(p) for p in ["pyannote.audio", "scipy", "numpy", "scikit-learn"]},
               "dimension": DIM, "lda_dimension": LDA_DIM, "local_speakers": LOCAL_SPEAKERS, "frames": FRAMES,
               "parameters": PARAMS, "cases": manifest_cases}, f, indent=1)
print(len(manifest_cases), "cases")
