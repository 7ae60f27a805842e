#!/usr/bin/env python3
"""Reference for tests/assign_reference.rs: WhisperX 3.8.6's own `assign_word_speakers`
(whisperx/diarize.py) on seeded random transcripts and speaker turns: overlapping turns,
words without times, zero-length words, words and segments outside every turn, ties between
speakers, with `fill_nearest` off and on. Run from the repository root:

    .cache/alignvenv/bin/python tests/reference/make_assign_reference.py

Writes tests/reference/data/assign_speakers.json.
"""
import copy, json, random, warnings
from importlib.metadata import version

warnings.filterwarnings("ignore")
import pandas as pd  # noqa: E402
from whisperx.diarize import assign_word_speakers  # noqa: E402

OUT = "tests/reference/data/assign_speakers.json"
rng = random.Random(20261204)


def turns(n, length):
    out = []
    for _ in range(n):
        start = round(rng.uniform(0, length), 3)
        end = round(start + rng.choice([0.0, rng.uniform(0.05, 4.0)]), 3)
        out.append({"start": start, "end": end, "speaker": f"SPEAKER_{rng.randrange(4):02d}"})
    # exact ties: two turns of different speakers over the same span
    t = dict(out[0]); t["speaker"] = "SPEAKER_09"; out.append(t)
    return out


def transcript(length):
    segments, t = [], 0.0
    while t < length:
        words, w = [], t
        for _ in range(rng.randrange(0, 7)):
            word = {"word": rng.choice(["so", "ask", "not", "what", "12", "country."]), "score": 0.5}
            if rng.random() < 0.85:
                dur = rng.choice([0.0, round(rng.uniform(0.05, 0.6), 3)])
                word["start"], word["end"] = round(w, 3), round(w + dur, 3)
                if rng.random() < 0.05:
                    del word["end"]  # a start without an end: WhisperX uses the start
                w += dur + rng.uniform(0.0, 0.4)
            words.append(word)
        end = round(max(w, t + 0.2), 3)
        segments.append({"start": round(t, 3), "end": end, "text": " " + " ".join(x["word"] for x in words),
                         "words": words})
        t = end + rng.uniform(0.0, 2.0)
    return {"segments": segments}


cases = []
for i in range(40):
    length = rng.uniform(5, 40)
    diar = turns(rng.randrange(1, 12), length)
    if i % 10 == 9:
        diar = []
    tr = transcript(length)
    case = {"turns": diar, "input": copy.deepcopy(tr)}
    for fill in [False, True]:
        df = pd.DataFrame(diar, columns=["start", "end", "speaker"])
        case["fill_nearest" if fill else "plain"] = assign_word_speakers(df, copy.deepcopy(tr), fill_nearest=fill)
    cases.append(case)

with open(OUT, "w") as f:
    json.dump({"versions": {p: version(p) for p in ["whisperx", "pandas", "numpy"]}, "cases": cases}, f)
    f.write("\n")
print(len(cases), "cases")
