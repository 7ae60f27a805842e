#!/usr/bin/env python3
"""Word-time accuracy of Scribe/WhisperX JSON outputs against the word-timed set (make_set.sh).

    python3 benches/word_timed/score.py SET_DIR HYP_DIR [--json OUT.json]

SET_DIR holds NN.json (truth: {"text", "words": [{"word", "start", "end"}]}) and manifest.json;
HYP_DIR holds one NN.json per clip in WhisperX's result format
({"segments": [{"start", "end", "text", "words": [{"word", "start", "end", "score"}]}],
"word_segments": [...]}). Words are taken from the segments' "words" lists (from "word_segments"
when no segment has any).

Matching: both word lists are normalised (lowercase; every character that is not a letter or
digit removed, so "Don't," -> "dont", "meters." -> "meters", "twenty-five" -> "twentyfive") and
aligned by edit distance (match 0, substitution / insertion / deletion 1; among equally short
alignments the one with most matches), so an inserted or dropped word does not shift the pairs
after it. Only aligned pairs with equal normalised text are
matched; substituted, inserted and deleted words are unmatched. Numbers are not normalised: a
truth "1999" against "nineteen ninety nine" (or "200" against "two hundred") stays unmatched.

Errors are hypothesis minus truth, in seconds, over the matched words that have both a start and
an end (WhisperX leaves words it cannot align without times; they are counted as "no times").
Percentiles interpolate linearly between order statistics (numpy's default). "within X ms" is the
share of timed matched words whose start (resp. end) error is at most X ms in absolute value; "both"
needs the start and the end within X ms. The overall row pools every clip's words (not a mean of
the per-clip numbers).
"""

import argparse
import json
import math
import os
import sys
import unicodedata

THRESHOLDS_MS = (50, 100, 200)


def normalise(word):
    """Lowercase, letters and digits only."""
    word = unicodedata.normalize("NFKC", word).lower()
    return "".join(ch for ch in word if ch.isalnum())


def align(ref, hyp):
    """Edit-distance alignment of two lists of normalised words.

    Returns the (i, j) index pairs of aligned words with equal text (the matches). Among the
    alignments with the fewest edits, one with the most matches is taken (cost = (edits, -matches),
    compared lexicographically); remaining ties in the backtrace prefer the diagonal, then a
    deletion (truth word left out), then an insertion. Empty tokens (a hypothesis word that was
    only punctuation) never match.
    """
    n, m = len(ref), len(hyp)
    # d[i][j] = (edits, -matches) of the best alignment of ref[:i] with hyp[:j]
    d = [[(0, 0)] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        d[i][0] = (i, 0)
    for j in range(1, m + 1):
        d[0][j] = (j, 0)

    def diag(i, j):
        e, negm = d[i - 1][j - 1]
        if ref[i - 1] == hyp[j - 1] and ref[i - 1]:
            return (e, negm - 1)
        return (e + 1, negm)

    for i in range(1, n + 1):
        for j in range(1, m + 1):
            up, left = d[i - 1][j], d[i][j - 1]
            d[i][j] = min(diag(i, j), (up[0] + 1, up[1]), (left[0] + 1, left[1]))
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        up, left = d[i - 1][j], d[i][j - 1]
        if d[i][j] == diag(i, j):
            if ref[i - 1] == hyp[j - 1] and ref[i - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i][j] == (up[0] + 1, up[1]):
            i -= 1
        else:
            j -= 1
    pairs.reverse()
    return pairs


def hyp_words(result):
    """The hypothesis's words, in order: [{"word", "start", "end"}] (start/end may be None)."""
    words = [w for seg in result.get("segments", []) for w in (seg.get("words") or [])]
    if not words:
        words = list(result.get("word_segments") or [])
    return [{"word": w.get("word", ""), "start": w.get("start"), "end": w.get("end")} for w in words]


def match_clip(truth_words, hyp):
    """Matched pairs of one clip: [(truth word, hyp word)]."""
    ref = [normalise(w["word"]) for w in truth_words]
    hy = [normalise(w["word"]) for w in hyp]
    return [(truth_words[i], hyp[j]) for i, j in align(ref, hy)]


def percentile(values, q):
    """Linear interpolation between order statistics (numpy.percentile's default)."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def mean(values):
    return sum(values) / len(values) if values else None


def stats(truth_count, hyp_count, pairs, missing=False):
    timed = [(t, h) for t, h in pairs if h["start"] is not None and h["end"] is not None]
    ds = [h["start"] - t["start"] for t, h in timed]
    de = [h["end"] - t["end"] for t, h in timed]
    abs_s = [abs(x) for x in ds]
    abs_e = [abs(x) for x in de]
    out = {
        "truth_words": truth_count,
        "hyp_words": hyp_count,
        "matched": len(pairs),
        "no_times": len(pairs) - len(timed),
        "timed": len(timed),
        "missing_output": missing,
        "start": {"mean_abs": mean(abs_s), "median_abs": percentile(abs_s, 50), "p90_abs": percentile(abs_s, 90),
                  "mean_signed": mean(ds)},
        "end": {"mean_abs": mean(abs_e), "median_abs": percentile(abs_e, 50), "p90_abs": percentile(abs_e, 90),
                "mean_signed": mean(de)},
        "within": {},
    }
    for ms in THRESHOLDS_MS:
        x = ms / 1000 + 1e-9
        out["within"][str(ms)] = {
            "start": sum(a <= x for a in abs_s) / len(timed) if timed else None,
            "end": sum(a <= x for a in abs_e) / len(timed) if timed else None,
            "both": sum(a <= x and b <= x for a, b in zip(abs_s, abs_e)) / len(timed) if timed else None,
        }
    return out


def score(set_dir, hyp_dir):
    with open(os.path.join(set_dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    clips, all_pairs, truth_total, hyp_total = [], [], 0, 0
    for c in manifest["clips"]:
        with open(os.path.join(set_dir, c["json"]), encoding="utf-8") as f:
            truth = json.load(f)
        path = os.path.join(hyp_dir, f"{c['id']}.json")
        missing = not os.path.exists(path)
        hyp = []
        if not missing:
            with open(path, encoding="utf-8") as f:
                hyp = hyp_words(json.load(f))
        pairs = match_clip(truth["words"], hyp)
        s = stats(len(truth["words"]), len(hyp), pairs, missing)
        s["id"] = c["id"]
        s["text"] = truth["text"]
        s["hyp_text"] = " ".join(w["word"].strip() for w in hyp)
        s["unmatched_truth"] = [w["word"] for w in truth["words"] if not any(t is w for t, _ in pairs)]
        clips.append(s)
        all_pairs += pairs
        truth_total += len(truth["words"])
        hyp_total += len(hyp)
    overall = stats(truth_total, hyp_total, all_pairs)
    overall["id"] = "all"
    return {"set_dir": set_dir, "hyp_dir": hyp_dir, "thresholds_ms": list(THRESHOLDS_MS),
            "clips": clips, "overall": overall}


def ms(x):
    return "–" if x is None else f"{1000 * x:.0f}"


def pct(x):
    return "–" if x is None else f"{100 * x:.0f}"


def table(result):
    head = ["clip", "words", "hyp", "matched", "no times", "mean \\|Δstart\\| ms", "mean \\|Δend\\| ms",
            "median s/e ms", "p90 s/e ms", "bias s/e ms"]
    head += [f"≤{t} ms s/e/both %" for t in THRESHOLDS_MS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["clips"] + [result["overall"]]:
        name = f"**{r['id']}**" if r["id"] == "all" else r["id"] + (" (no output)" if r["missing_output"] else "")
        row = [name, str(r["truth_words"]), str(r["hyp_words"]), str(r["matched"]), str(r["no_times"]),
               ms(r["start"]["mean_abs"]), ms(r["end"]["mean_abs"]),
               f"{ms(r['start']['median_abs'])} / {ms(r['end']['median_abs'])}",
               f"{ms(r['start']['p90_abs'])} / {ms(r['end']['p90_abs'])}",
               f"{ms(r['start']['mean_signed'])} / {ms(r['end']['mean_signed'])}"]
        for t in THRESHOLDS_MS:
            w = r["within"][str(t)]
            row.append(f"{pct(w['start'])} / {pct(w['end'])} / {pct(w['both'])}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set_dir", help="the word-timed set (make_set.sh's output)")
    ap.add_argument("hyp_dir", help="directory of <NN>.json WhisperX-format outputs")
    ap.add_argument("--json", metavar="PATH", help="also write the full result (per clip, overall) as JSON")
    ap.add_argument("--quiet-unmatched", action="store_true", help="do not list unmatched truth words")
    args = ap.parse_args(argv)
    result = score(args.set_dir, args.hyp_dir)
    print(table(result))
    o = result["overall"]
    print(f"\nmatched {o['matched']}/{o['truth_words']} truth words ({o['hyp_words']} hypothesis words), "
          f"{o['no_times']} matched without times; errors = hypothesis - truth; bias = mean signed error.")
    if not args.quiet_unmatched:
        for c in result["clips"]:
            if c["unmatched_truth"]:
                print(f"  {c['id']} unmatched: {' '.join(c['unmatched_truth'])}   (hyp: {c['hyp_text']})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
