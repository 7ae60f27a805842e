#!/usr/bin/env python3
"""Cross-checks scribe-der on the dev set against pyannote.metrics itself. Writes perturbed copies
of every reference RTTM (boundaries jittered, labels renamed, some turns given to the wrong
speaker, two speakers merged, turns dropped, a spurious speaker added) as hypotheses, scores them
with pyannote.metrics' DiarizationErrorRate (collar 0 and 0.5), runs scribe-der on the same
directory and compares every component. Needs pyannote.metrics (.cache/alignvenv has it):

    .cache/alignvenv/bin/python benches/diarize/check_scorer.py [--der-bin target/debug/scribe-der]
"""
import argparse, json, os, random, subprocess, sys, warnings

warnings.filterwarnings("ignore")
from pyannote.core import Annotation, Segment  # noqa: E402
from pyannote.metrics.diarization import DiarizationErrorRate  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_rttm(path):
    out = []
    for line in open(path):
        f = line.split()
        if f and f[0] == "SPEAKER":
            out.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    return out


def annotation(turns):
    a = Annotation()
    for i, (s, e, l) in enumerate(turns):
        a[Segment(s, e), i] = l
    return a


def perturb(turns, rng):
    labels = sorted({l for _, _, l in turns})
    rename = {l: f"SPEAKER_{i:02d}" for i, l in enumerate(rng.sample(labels, len(labels)))}
    if len(labels) > 2 and rng.random() < 0.5:  # two speakers merged
        rename[labels[1]] = rename[labels[0]]
    out = []
    for s, e, l in turns:
        if rng.random() < 0.05:
            continue
        label = rename[l] if rng.random() > 0.08 else rng.choice(list(rename.values()))
        s2 = max(0.0, s + rng.uniform(-0.3, 0.3))
        out.append((s2, max(s2, e + rng.uniform(-0.3, 0.3)), label))
    for _ in range(rng.randint(0, 3)):
        s = rng.uniform(0, turns[-1][1])
        out.append((s, s + rng.uniform(0.2, 2.0), "SPEAKER_99"))
    return sorted(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default=os.path.join(ROOT, ".cache/diarize-devset"))
    ap.add_argument("--speech", default=os.path.join(ROOT, "../shared/data/speech"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".cache/diarize-out/perturbed"))
    ap.add_argument("--der-bin", default=os.path.join(ROOT, "target/debug/scribe-der"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(20261204)
    refs = [os.path.join(args.set, f["rttm"]) for f in json.load(open(os.path.join(args.set, "manifest.json")))["files"]]
    refs += [os.path.join(args.speech, f["rttm"]) for f in json.load(open(os.path.join(args.speech, "manifest.json"))) if f.get("rttm")]
    metrics = {c: DiarizationErrorRate(collar=c) for c in (0.0, 0.5)}
    expected = {}
    for ref in refs:
        stem = os.path.splitext(os.path.basename(ref))[0]
        turns = read_rttm(ref)
        hyp = perturb(turns, rng)
        with open(os.path.join(args.out, stem + ".rttm"), "w") as f:
            for s, e, l in hyp:
                f.write(f"SPEAKER {stem} 1 {s:.3f} {e - s:.3f} <NA> <NA> {l} <NA> <NA>\n")
        hyp = read_rttm(os.path.join(args.out, stem + ".rttm"))  # what scribe-der reads
        for c, m in metrics.items():
            expected[(stem, c)] = m(annotation(turns), annotation(hyp), detailed=True)
    ours = os.path.join(args.out, "score.json")
    subprocess.run([args.der_bin, "--hyp", args.out, "--set", args.set, "--speech", args.speech, "--json", ours], check=True)
    got = json.load(open(ours))
    worst, n = 0.0, 0
    keys = [("total_s", "total"), ("missed_s", "missed detection"), ("false_alarm_s", "false alarm"),
            ("confusion_s", "confusion"), ("der", "diarization error rate")]
    for row in got["files"]:
        for s in row["scores"]:
            d = expected[(row["file"], s["collar"])]
            for a, b in keys:
                worst = max(worst, abs(s[a] - d[b]))
                n += 1
    for t in got["total"]:
        m = metrics[t["collar"]]
        for a, b in keys:
            theirs = abs(m) if b == "diarization error rate" else m[b]
            worst = max(worst, abs(t[a] - theirs))
            n += 1
    print(f"{n} values compared with pyannote.metrics; largest difference {worst:.3e}")
    sys.exit(0 if worst <= 1e-9 else 1)


if __name__ == "__main__":
    main()
