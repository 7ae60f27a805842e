#!/usr/bin/env python3
"""Reference for tests/clustering_reference.rs: pyannote 3.1's AgglomerativeClustering, run by
pyannote.audio's own code on seeded synthetic embedding sets.

What runs: `pyannote.audio.pipelines.clustering.AgglomerativeClustering(metric="cosine")`
instantiated as the speaker-diarization-3.1 pipeline configures it (method "centroid",
min_cluster_size 12, threshold 0.7045654963945799), called as `SpeakerDiarization.apply` calls
it (embeddings (num_chunks, 3, 256) float32, binarized segmentations, num/min/max speakers), and
the pipeline's next step (`hard_clusters[inactive_speakers] = -2`). scipy's `linkage` and
`fcluster` are wrapped to record what pyannote passed them and got back.

The installed pyannote.audio is 4.0.7, whose `filter_embeddings` keeps only local speakers that
are the *sole* speaker on >= 20 % of the frames. 3.1.1 kept every active (any frame) pair with a
finite embedding; this script puts 3.1.1's `filter_embeddings` back (`filter_embeddings_311`,
copied from the 3.1.1 tag without its `max_num_embeddings` sampling, which
AgglomerativeClustering disables with np.inf). Everything else the clustering runs is the same in
3.1.1 and 4.0.7 (`git diff 3.1.1 4.0.7 -- pyannote/audio/pipelines/clustering.py`: type hints,
keyword arguments, the new KMeans/VBx classes).

Embedding sets (`sets` in cases.json, `<set>.embeddings` / `<set>.active` in the safetensors): K
random directions in 256-d, members = direction + spread x Gaussian noise, each scaled by a random
norm, scattered over (chunk, local speaker) pairs; inactive pairs are NaN or finite garbage,
a few active pairs are NaN (a failed embedding). Special sets: exact ties (scaled basis vectors,
duplicates), groups on an equilateral triangle whose centroid merges are non-monotonic, top merges
tuned by bisection to within ~1e-8 of the threshold (float32 members) on either side, 0 and 1 embeddings. Cases
(`cases`) are a set with num/min/max speakers.

Stored per case (`<case>.<name>`): `linkage` (Z, float64) and `fcluster` (labels at the
threshold, int32) of pyannote's first linkage/fcluster calls (absent when it never clusters),
`train_clusters` (what `cluster()` returned), `hard` (int32, -2 for inactive), `soft` (float64),
`centroids` (float32). `search_ties` flags a case whose target search met equal |height -
threshold| keys (numpy's argsort order for ties is not specified).

Versions: tests/reference/requirements-diarize.txt (pyannote.audio 4.0.7, scipy 1.17.1,
numpy 2.4.6). Run from the repository root:

    .cache/alignvenv/bin/python tests/reference/make_clustering_reference.py

Writes tests/reference/data/clustering/{reference.safetensors,cases.json}.
"""
import contextlib
import io
import json
import os
import warnings
from importlib.metadata import version

import numpy as np
from safetensors.numpy import save_file

warnings.filterwarnings("ignore")
import scipy.cluster.hierarchy as hierarchy  # noqa: E402
from pyannote.core import SlidingWindow, SlidingWindowFeature  # noqa: E402
import pyannote.audio.pipelines.clustering as clustering_module  # noqa: E402
from pyannote.audio.pipelines.clustering import AgglomerativeClustering  # noqa: E402

OUT = "tests/reference/data/clustering"
DIM = 256
LOCAL_SPEAKERS = 3
FRAMES = 8
# speaker-diarization-3.1's clustering parameters.
PARAMS = {"method": "centroid", "min_cluster_size": 12, "threshold": 0.7045654963945799}


def filter_embeddings_311(self, embeddings, segmentations=None):
    """pyannote.audio 3.1.1 BaseClustering.filter_embeddings (max_num_embeddings = inf)."""
    # whether speaker is active
    active = np.sum(segmentations.data, axis=1) > 0
    # whether speaker embedding extraction went fine
    valid = ~np.any(np.isnan(embeddings), axis=2)
    # indices of embeddings that are both active and valid
    chunk_idx, speaker_idx = np.where(active * valid)
    return embeddings[chunk_idx, speaker_idx], chunk_idx, speaker_idx


AgglomerativeClustering.filter_embeddings = filter_embeddings_311

# Record scipy's calls as pyannote makes them.
calls = []
_linkage, _fcluster = clustering_module.linkage, clustering_module.fcluster


def linkage_recorded(y, *args, **kwargs):
    z = _linkage(y, *args, **kwargs)
    calls.append(("linkage", z.copy()))
    return z


def fcluster_recorded(z, t, *args, **kwargs):
    labels = _fcluster(z, t, *args, **kwargs)
    calls.append(("fcluster", labels.copy(), float(t)))
    return labels


clustering_module.linkage = linkage_recorded
clustering_module.fcluster = fcluster_recorded
_cluster = AgglomerativeClustering.cluster
returned = []


def cluster_recorded(self, embeddings, **kwargs):
    clusters = _cluster(self, embeddings, **kwargs)
    returned.append(np.asarray(clusters).copy())
    return clusters


AgglomerativeClustering.cluster = cluster_recorded

pipeline = AgglomerativeClustering(metric="cosine")
pipeline.instantiate(PARAMS)

rng = np.random.default_rng(20261205)


def unit(v):
    return v / np.linalg.norm(v)


def groups(sizes, spreads, directions=None):
    """Members of len(sizes) speakers (float64, un-normalised, norms 0.5-3)."""
    if directions is None:
        directions = rng.standard_normal((len(sizes), DIM))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    spreads = np.broadcast_to(np.asarray(spreads, dtype=np.float64), (len(sizes),))
    members = []
    for d, size, spread in zip(directions, sizes, spreads):
        noise = rng.standard_normal((size, DIM)) / np.sqrt(DIM)
        members.append(d + spread * noise)
    x = np.concatenate(members)
    x *= rng.uniform(0.5, 3.0, size=(len(x), 1))
    return x[rng.permutation(len(x))]


def scatter(x, num_chunks, inactive_garbage=0.3, failed=0):
    """Put the rows of x on active (chunk, local speaker) pairs; the rest are inactive."""
    pairs = num_chunks * LOCAL_SPEAKERS
    assert pairs >= len(x) + failed
    emb = np.full((pairs, DIM), np.nan, dtype=np.float32)
    active = np.zeros(pairs, dtype=bool)
    slots = rng.permutation(pairs)
    emb[slots[: len(x)]] = x.astype(np.float32)
    active[slots[: len(x) + failed]] = True  # the `failed` ones stay NaN
    for p in slots[len(x) + failed:]:
        if rng.uniform() < inactive_garbage:
            emb[p] = rng.standard_normal(DIM).astype(np.float32)
    return emb.reshape(num_chunks, LOCAL_SPEAKERS, DIM), active.reshape(num_chunks, LOCAL_SPEAKERS)


def top_merge_height(x):
    y = x.astype(np.float32)
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    return hierarchy.linkage(y, method="centroid", metric="euclidean")[-1, 2]


def near_threshold(side):
    """Two tight groups whose last merge lands within ~1e-8 of the threshold, above (side=+1)
    or below (side=-1), by bisection on their separation."""
    a, b = unit(rng.standard_normal(DIM)), unit(rng.standard_normal(DIM))
    b = unit(b - (a @ b) * a)
    base_a = rng.standard_normal((10, DIM)) * 0.02 / np.sqrt(DIM)
    base_b = rng.standard_normal((9, DIM)) * 0.02 / np.sqrt(DIM)
    scales = rng.uniform(0.5, 3.0, size=(19, 1))

    def make(angle):
        d = np.cos(angle) * a + np.sin(angle) * b
        return np.concatenate([a + base_a, d + base_b]) * scales

    lo, hi = 0.0, np.pi / 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if top_merge_height(make(mid)) > PARAMS["threshold"]:
            hi = mid
        else:
            lo = mid
    x = make(hi if side > 0 else lo)
    h = top_merge_height(x)
    # Float32 members move the height in steps of ~1e-8: as close as the data can get.
    assert (h > PARAMS["threshold"]) == (side > 0) and abs(h - PARAMS["threshold"]) < 1e-7, h
    print(f"near threshold: last merge at threshold {h - PARAMS['threshold']:+.2e}")
    return x[rng.permutation(len(x))]


def triangle(side, sizes, spread=0.01):
    """Groups at the corners of an equilateral triangle of the given side on the unit sphere:
    two merge at ~side, the third joins their centroid at ~side·√3/2 (a non-monotonic merge)."""
    basis = np.linalg.qr(rng.standard_normal((DIM, 4)))[0].T
    beta = side / np.sqrt(2.0)
    corners = [np.sqrt(1 - beta**2) * basis[3] + beta * basis[i] for i in range(3)]
    return groups(sizes, spread, directions=np.array(corners))


def ties():
    """Scaled basis vectors and exact duplicates: equal distances everywhere."""
    rows = []
    for i in range(8):
        v = np.zeros(DIM)
        v[i] = 2.0
        rows.append(v)
    rows += [rows[0].copy(), rows[0].copy(), rows[3].copy(), rows[5] * 0.5 + 0.0]
    g = groups([6], 0.2)
    return np.concatenate([np.array(rows), g, g[:2]])


sets = {}


def add_set(name, x, num_chunks, **kwargs):
    emb, active = scatter(x, num_chunks, **kwargs)
    sets[name] = {"embeddings": emb, "active": active}


add_set("one_speaker", groups([40], 0.35), 20, failed=2)
add_set("two_balanced", groups([30, 28], 0.3), 25)
add_set("three_varied", groups([40, 20, 9], [0.3, 0.45, 0.2]), 30, failed=3)
add_set("five_large", groups([50, 35, 25, 15, 10], [0.3, 0.4, 0.35, 0.25, 0.5]), 50, failed=2)
add_set("four_with_outliers", np.concatenate([groups([25, 22, 18, 16], 0.35), groups([1, 1, 2], 0.1)]),
        35)
add_set("wide_spread", groups([20, 20, 20], [0.55, 0.6, 0.65]), 25)
add_set("singletons", groups([1] * 30, 0.1), 12)
add_set("six_embeddings", groups([2, 2, 2], 0.2), 3)
add_set("two_embeddings", groups([1, 1], 0.1), 2)
add_set("one_embedding", groups([1], 0.1), 2)
add_set("no_embedding", np.zeros((0, DIM)), 3, failed=2)
add_set("ties", ties(), 10)
add_set("triangle_inversion", triangle(0.75, [15, 14, 13]), 16)
add_set("triangle_straddle", triangle(0.78, [6, 5, 5], spread=0.05), 6)
add_set("near_threshold_above", near_threshold(+1), 8)
add_set("near_threshold_below", near_threshold(-1), 8)

# (set, num_speakers, min_speakers, max_speakers)
CASES = [
    ("one_speaker", None, None, None),
    ("one_speaker", None, 2, None),
    ("two_balanced", None, None, None),
    ("two_balanced", 1, None, None),
    ("two_balanced", 3, None, None),
    ("three_varied", None, None, None),
    ("three_varied", 2, None, None),
    ("three_varied", None, None, 2),
    ("three_varied", None, 4, 6),
    ("five_large", None, None, None),
    ("five_large", 3, None, None),
    ("five_large", None, 6, None),
    ("five_large", None, 2, 3),
    ("four_with_outliers", None, None, None),
    ("four_with_outliers", 5, None, None),
    ("wide_spread", None, None, None),
    ("wide_spread", 3, None, None),
    ("singletons", None, None, None),
    ("singletons", None, 2, None),
    ("singletons", None, None, 4),
    ("six_embeddings", None, None, None),
    ("six_embeddings", 3, None, None),
    ("six_embeddings", 9, None, None),
    ("two_embeddings", None, None, None),
    ("two_embeddings", None, 2, None),
    ("one_embedding", None, None, None),
    ("no_embedding", None, None, None),
    ("ties", None, None, None),
    ("ties", None, None, 3),
    ("triangle_inversion", None, None, None),
    ("triangle_inversion", 2, None, None),
    ("triangle_straddle", None, None, None),
    ("triangle_straddle", None, None, 2),
    ("near_threshold_above", None, None, None),
    ("near_threshold_below", None, None, None),
    ("near_threshold_above", None, 1, 1),
    ("near_threshold_below", None, 2, None),
]


def search_ties(z, num_embeddings, min_cluster_size):
    """Whether the target search's sort met equal keys among the merges it may consider."""
    keys = np.abs(z[:, 2] - PARAMS["threshold"])[z[:, 3] >= min_cluster_size]
    return len(np.unique(keys)) != len(keys)


tensors, cases = {}, []
for name, s in sets.items():
    tensors[f"{name}.embeddings"] = s["embeddings"]
    tensors[f"{name}.active"] = s["active"].astype(np.uint8)

for set_name, num, lo, hi in CASES:
    s = sets[set_name]
    embeddings = s["embeddings"].copy()
    active = s["active"]
    num_chunks = embeddings.shape[0]
    # Binarized segmentations consistent with `active` (only their per-pair sums matter).
    seg = np.zeros((num_chunks, FRAMES, LOCAL_SPEAKERS), dtype=np.float32)
    for c, sp in zip(*np.nonzero(active)):
        seg[c, rng.choice(FRAMES, size=rng.integers(1, FRAMES + 1), replace=False), sp] = 1.0
    segmentations = SlidingWindowFeature(seg, SlidingWindow(start=0.0, duration=10.0, step=1.0))
    calls.clear()
    returned.clear()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        hard, soft, centroids = pipeline(embeddings=embeddings, segmentations=segmentations,
                                         num_clusters=num, min_clusters=lo, max_clusters=hi)
    assert np.array_equal(embeddings, s["embeddings"], equal_nan=True)
    # SpeakerDiarization.apply: inactive local speakers go to no cluster.
    hard = hard.astype(np.int32)
    hard[np.sum(seg, axis=1) == 0] = -2
    key = f"{set_name}.num{num}.min{lo}.max{hi}"
    num_train = int(np.sum(active & ~np.any(np.isnan(embeddings), axis=2)))
    case = {"key": key, "set": set_name, "num_speakers": num, "min_speakers": lo, "max_speakers": hi,
            "num_embeddings": num_train, "fcluster_calls": sum(c[0] == "fcluster" for c in calls),
            "found_only": "Found only" in printed.getvalue(), "search_ties": False,
            "num_clusters": int(centroids.shape[0])}
    linkages = [c for c in calls if c[0] == "linkage"]
    if linkages:
        z = linkages[0][1]
        first_cut = next(c for c in calls if c[0] == "fcluster")
        assert first_cut[2] == PARAMS["threshold"]
        tensors[f"{key}.linkage"] = z
        tensors[f"{key}.fcluster"] = first_cut[1].astype(np.int32)
        mcs = min(PARAMS["min_cluster_size"], max(1, round(0.1 * num_train)))
        case["search_ties"] = bool(case["fcluster_calls"] > 1 and search_ties(z, num_train, mcs))
        case["non_monotonic"] = bool(np.any(np.diff(z[:, 2]) < 0))
    if returned:
        tensors[f"{key}.train_clusters"] = returned[0].astype(np.int32)
    tensors[f"{key}.hard"] = hard
    tensors[f"{key}.soft"] = np.asarray(soft, dtype=np.float64)
    tensors[f"{key}.centroids"] = np.asarray(centroids, dtype=np.float32)
    cases.append(case)
    print(f"{key:45s} N={num_train:3d} K={case['num_clusters']} calls={case['fcluster_calls']}"
          f"{' found-only' if case['found_only'] else ''}{' TIES' if case['search_ties'] else ''}"
          f"{' non-monotonic' if case.get('non_monotonic') else ''}")

os.makedirs(OUT, exist_ok=True)
save_file(tensors, os.path.join(OUT, "reference.safetensors"))
os.chmod(os.path.join(OUT, "reference.safetensors"), 0o644)  # save_file creates it 0600
with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump({"versions": {p: version(p) for p in ["pyannote.audio", "scipy", "numpy"]},
               "parameters": PARAMS, "local_speakers": LOCAL_SPEAKERS, "dimension": DIM,
               "sets": list(sets), "cases": cases}, f, indent=1)
    f.write("\n")
print(len(cases), "cases,", len(sets), "sets")
