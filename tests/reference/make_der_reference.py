#!/usr/bin/env python3
"""Reference for tests/der_reference.rs: pyannote.metrics' own `DiarizationErrorRate` (4.2.0 on
pyannote.core 6.1.0) on hand-made and seeded random diarizations, at collar 0 and 0.5 (pyannote's
collar is the total width: NIST's +-0.25 s), with skip_overlap off and on, and with a given UEM on
a few cases. Hand-made cases: perfect with other names, overlaps, adjacent turns, an empty
hypothesis, an empty reference, extra and missing speakers, one hypothesis speaker over
everything, boundaries closer than pyannote's 1 us precision, zero-length turns, a hypothesis
speaker with overlapping turns of its own, and the shared two_speakers.rttm against perturbed
copies of itself. Run from the repository root:

    .cache/alignvenv/bin/python tests/reference/make_der_reference.py

(pyannote.metrics is in tests/reference/requirements-diarize.txt.) Writes
tests/reference/data/der/cases.json.
"""
import json, os, random, warnings
from importlib.metadata import version

warnings.filterwarnings("ignore")
from pyannote.core import Annotation, Segment, Timeline  # noqa: E402
from pyannote.metrics.diarization import DiarizationErrorRate  # noqa: E402

OUT = "tests/reference/data/der/cases.json"
RTTM = "../shared/data/speech/two_speakers.rttm"
rng = random.Random(20261204)
SETTINGS = [(0.0, False), (0.0, True), (0.5, False), (0.5, True)]


def annotation(turns):
    a = Annotation(uri="case")
    for i, (start, end, label) in enumerate(turns):
        a[Segment(start, end), i] = label
    return a


def score(ref, hyp, uem):
    out = []
    for collar, skip in SETTINGS:
        metric = DiarizationErrorRate(collar=collar, skip_overlap=skip)
        r, h = annotation(ref), annotation(hyp)
        u = Timeline([Segment(s, e) for s, e in uem]) if uem is not None else None
        d = metric(r, h, uem=u, detailed=True)
        # The optimal mapping on the same extruded and cropped annotations as compute_components.
        rc, hc, ue = metric.uemify(r, h, uem=u, collar=collar, skip_overlap=skip, returns_uem=True)
        mapping = metric.optimal_mapping(rc, hc)
        cooc = (hc * rc)
        hl, rl = hc.labels(), rc.labels()
        mapped = sum(cooc[hl.index(a), rl.index(b)] for a, b in mapping.items())
        out.append({
            "collar": collar, "skip_overlap": skip,
            "total": d["total"], "correct": d["correct"], "missed": d["missed detection"],
            "false_alarm": d["false alarm"], "confusion": d["confusion"],
            "der": d["diarization error rate"],
            "mapping": {str(k): str(v) for k, v in sorted(mapping.items())},
            "mapped_cooccurrence": float(mapped),
        })
    return out


def random_turns(n_speakers, n_turns, length, names, decimals):
    turns = []
    for _ in range(n_turns):
        start = rng.uniform(0, length)
        end = start + rng.choice([rng.uniform(0.1, 4.0), rng.uniform(0.1, 4.0), 0.0])
        if decimals is not None:
            start, end = round(start, decimals), round(end, decimals)
        turns.append((start, end, f"{names}{rng.randrange(n_speakers)}"))
    return turns


def perturb(turns, jitter, names, swap):
    out = []
    for s, e, l in turns:
        s2 = max(0.0, s + rng.uniform(-jitter, jitter))
        e2 = max(s2, e + rng.uniform(-jitter, jitter))
        label = names[l] if rng.random() > swap else rng.choice(list(names.values()))
        out.append((round(s2, 3), round(e2, 3), label))
    return out


def read_rttm(path):
    turns = []
    for line in open(path):
        f = line.split()
        if f and f[0] == "SPEAKER":
            turns.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    return turns


cases = []


def add(name, ref, hyp, uem=None):
    cases.append({"name": name, "reference": [list(t) for t in ref],
                  "hypothesis": [list(t) for t in hyp], "uem": uem,
                  "results": score(ref, hyp, uem)})


add("perfect, other names", [(0, 2, "A"), (2, 5, "B"), (4, 6, "A")],
    [(0, 2, "x"), (2, 5, "y"), (4, 6, "x")])
add("miss, false alarm, confusion", [(0, 10, "A"), (10, 20, "B")],
    [(0, 8, "s1"), (8, 20, "s2"), (20, 22, "s3")])
add("overlap, one hypothesis speaker", [(0, 4, "A"), (2, 6, "B")], [(0, 6, "x")])
add("three-way overlap", [(0, 5, "A"), (1, 6, "B"), (2, 4, "C")],
    [(0, 3, "p"), (1, 6, "q"), (2.5, 4.5, "r")])
add("adjacent turns", [(0, 1.5, "A"), (1.5, 3.0, "B"), (3.0, 4.5, "A"), (4.5, 6.0, "C")],
    [(0, 1.4, "1"), (1.4, 3.1, "2"), (3.1, 4.5, "1"), (4.5, 6.0, "2")])
add("empty hypothesis", [(0.5, 2.0, "A"), (3.0, 4.0, "B")], [])
add("empty reference", [], [(0.5, 2.0, "x")])
add("both empty", [], [])
add("extra hypothesis speakers", [(0, 5, "A"), (5, 10, "B")],
    [(0, 2, "a"), (2, 5, "b"), (5, 7, "c"), (7, 10, "d"), (10, 11, "e")])
add("missing speakers", [(0, 3, "A"), (3, 6, "B"), (6, 9, "C"), (9, 12, "D")],
    [(0, 6, "x"), (6, 12, "y")])
add("sub-microsecond boundaries", [(0.0, 1.0, "A"), (1.0000004, 2.0, "B"), (2.0, 2.0000005, "A")],
    [(0.0, 1.0000002, "x"), (1.0000002, 2.0000003, "y")])
add("zero-length turns", [(1.0, 1.0, "A"), (1.0, 3.0, "B"), (3.0, 3.0, "C")],
    [(1.0, 1.0, "x"), (0.5, 3.5, "y")])
add("hypothesis speaker overlapping itself", [(0, 4, "A"), (2, 6, "B")],
    [(0, 4, "x"), (1, 5, "x"), (4, 6, "y")])
add("reference speaker overlapping itself", [(0, 4, "A"), (3, 6, "A"), (5, 8, "B")],
    [(0, 6, "x"), (5, 8, "y")])
add("given uem", [(0, 4, "A"), (5, 9, "B")], [(1, 6, "x"), (6, 10, "y")], uem=[[0.5, 3.0], [4.0, 8.0]])
add("given uem, overlapping pieces", [(0, 4, "A"), (2, 9, "B")], [(0, 9, "x")],
    uem=[[1.0, 3.0], [2.5, 6.0], [8.0, 12.0]])
add("collar wider than turns", [(0, 0.2, "A"), (0.3, 0.5, "B"), (0.55, 3, "A")],
    [(0, 0.5, "x"), (0.5, 3, "y")])

two = read_rttm(RTTM)
names = {"speaker90": "S0", "speaker91": "S1"}
add("two_speakers.rttm against itself", two, [(s, e, names[l]) for s, e, l in two])
for jitter, swap in [(0.2, 0.0), (0.5, 0.2)]:
    add(f"two_speakers.rttm jitter {jitter} swap {swap}", two, perturb(two, jitter, names, swap))

for i in range(16):
    decimals = [3, None][i % 2]
    n_ref, n_hyp = rng.randint(1, 5), rng.randint(1, 7)
    length = rng.uniform(10, 90)
    ref = random_turns(n_ref, rng.randint(1, 25), length, "spk", decimals)
    if i % 4 == 0:  # a hypothesis near the reference, with some label noise
        hyp = perturb(ref, 0.3, {f"spk{k}": f"h{k}" for k in range(n_ref)}, 0.15)
    else:
        hyp = random_turns(n_hyp, rng.randint(0, 25), length, "", decimals)
    uem = None
    if i % 5 == 4:
        a = round(rng.uniform(0, length / 3), 3)
        uem = [[a, round(a + length / 2, 3)]]
    add(f"random {i}", ref, hyp, uem)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({"generator": "tests/reference/make_der_reference.py",
               "versions": {p: version(p) for p in ["pyannote.metrics", "pyannote.core", "scipy", "numpy"]},
               "cases": cases}, f, indent=1)
print(f"{len(cases)} cases x {len(SETTINGS)} settings -> {OUT}")
