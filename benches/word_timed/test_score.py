#!/usr/bin/env python3
"""Tests of score.py's matching and statistics: python3 benches/word_timed/test_score.py"""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score  # noqa: E402


def words(text, start=0.0, step=1.0):
    return [{"word": w, "start": start + k * step, "end": start + k * step + 0.5} for k, w in enumerate(text.split())]


class Normalise(unittest.TestCase):
    def test_case_and_punctuation(self):
        self.assertEqual(score.normalise(" Hello,"), "hello")
        self.assertEqual(score.normalise("meters."), "meters")
        self.assertEqual(score.normalise("Don't"), "dont")
        self.assertEqual(score.normalise("don’t?"), "dont")
        self.assertEqual(score.normalise("twenty-five"), "twentyfive")
        self.assertEqual(score.normalise("1999"), "1999")
        self.assertEqual(score.normalise("..."), "")


class Align(unittest.TestCase):
    def test_identical(self):
        r = ["a", "b", "c"]
        self.assertEqual(score.align(r, r), [(0, 0), (1, 1), (2, 2)])

    def test_insertion_does_not_shift(self):
        self.assertEqual(score.align(["the", "cat", "sat"], ["the", "big", "cat", "sat"]), [(0, 0), (1, 2), (2, 3)])

    def test_deletion_does_not_shift(self):
        self.assertEqual(score.align(["the", "big", "cat", "sat"], ["the", "cat", "sat"]), [(0, 0), (2, 1), (3, 2)])

    def test_substitution_unmatched(self):
        self.assertEqual(score.align(["a", "b", "c"], ["a", "x", "c"]), [(0, 0), (2, 2)])

    def test_number_words_unmatched(self):
        ref = ["in", "1999", "and"]
        hyp = ["in", "nineteen", "ninety", "nine", "and"]
        self.assertEqual(score.align(ref, hyp), [(0, 0), (2, 4)])
        self.assertEqual(score.align(hyp, ref), [(0, 0), (4, 2)])

    def test_prefers_more_matches_among_cheapest(self):
        # Two substitutions and delete+match+insert both cost 2; the latter keeps a match.
        self.assertEqual(len(score.align(["a", "b"], ["b", "a"])), 1)

    def test_repeated_words(self):
        # "the" twice: the dropped one must not steal the second one's match.
        pairs = score.align(["the", "cat", "and", "the", "dog"], ["the", "cat", "the", "dog"])
        self.assertEqual(pairs, [(0, 0), (1, 1), (3, 2), (4, 3)])

    def test_empty(self):
        self.assertEqual(score.align([], ["a"]), [])
        self.assertEqual(score.align(["a"], []), [])

    def test_empty_tokens_never_match(self):
        self.assertEqual(score.align(["", "a"], ["", "a"]), [(1, 1)])


class HypWords(unittest.TestCase):
    def test_segments_then_word_segments(self):
        r = {"segments": [{"words": [{"word": " Hi", "start": 1, "end": 2, "score": 0.9}]},
                          {"words": [{"word": " there.", "start": 2, "end": 3}]}],
             "word_segments": [{"word": "ignored", "start": 0, "end": 1}]}
        self.assertEqual([w["word"] for w in score.hyp_words(r)], [" Hi", " there."])
        r2 = {"segments": [{"text": "x"}], "word_segments": [{"word": "x"}]}
        self.assertEqual(score.hyp_words(r2), [{"word": "x", "start": None, "end": None}])


class Stats(unittest.TestCase):
    def test_errors_and_no_times(self):
        truth = words("she moved in 1999 and stayed")
        hyp = [dict(w) for w in truth]
        hyp[0]["start"] += 0.04   # +40 ms
        hyp[0]["end"] -= 0.12     # -120 ms
        hyp[1]["start"] -= 0.3    # -300 ms
        hyp[2]["start"] = hyp[2]["end"] = None  # aligned word without times
        hyp = hyp[:3] + [{"word": "nineteen", "start": 3, "end": 3.5},
                         {"word": "ninety-nine", "start": 3.5, "end": 4}] + hyp[4:]
        pairs = score.match_clip(truth, hyp)
        self.assertEqual([t["word"] for t, _ in pairs], ["she", "moved", "in", "and", "stayed"])
        s = score.stats(len(truth), len(hyp), pairs)
        self.assertEqual((s["matched"], s["no_times"], s["timed"]), (5, 1, 4))
        self.assertAlmostEqual(s["start"]["mean_abs"], (0.04 + 0.3) / 4)
        self.assertAlmostEqual(s["end"]["mean_abs"], 0.12 / 4)
        self.assertAlmostEqual(s["start"]["mean_signed"], (0.04 - 0.3) / 4)
        self.assertAlmostEqual(s["start"]["median_abs"], 0.02)  # |errors| 0, 0, 0.04, 0.3
        self.assertAlmostEqual(s["start"]["p90_abs"], 0.04 + 0.7 * (0.3 - 0.04))
        self.assertEqual(s["within"]["50"], {"start": 0.75, "end": 0.75, "both": 0.5})
        self.assertEqual(s["within"]["200"], {"start": 0.75, "end": 1.0, "both": 0.75})

    def test_percentile(self):
        self.assertEqual(score.percentile([3, 1, 2], 50), 2)
        self.assertAlmostEqual(score.percentile([0, 10], 90), 9)
        self.assertIsNone(score.percentile([], 50))


class EndToEnd(unittest.TestCase):
    def test_score_dir(self):
        with tempfile.TemporaryDirectory() as tmp:
            set_dir, hyp_dir = os.path.join(tmp, "set"), os.path.join(tmp, "hyp")
            os.makedirs(set_dir)
            os.makedirs(hyp_dir)
            clips = []
            for cid, text in (("01", "Hello there, friend."), ("02", "Turn left at 200 meters.")):
                with open(os.path.join(set_dir, f"{cid}.json"), "w") as f:
                    json.dump({"id": cid, "text": text, "words": words(text, 0.5)}, f)
                clips.append({"id": cid, "json": f"{cid}.json"})
            with open(os.path.join(set_dir, "manifest.json"), "w") as f:
                json.dump({"clips": clips}, f)
            hyp = [dict(w, word=" " + w["word"].lower(), start=w["start"] + 0.1) for w in words("Hello there, friend.", 0.5)]
            with open(os.path.join(hyp_dir, "01.json"), "w") as f:
                json.dump({"segments": [{"start": 0.6, "end": 3.0, "text": "x", "words": hyp}], "word_segments": hyp}, f)
            # 02 has no output: its words count as unmatched.
            r = score.score(set_dir, hyp_dir)
            self.assertEqual(r["overall"]["truth_words"], 8)
            self.assertEqual(r["overall"]["matched"], 3)
            self.assertAlmostEqual(r["overall"]["start"]["mean_abs"], 0.1)
            self.assertAlmostEqual(r["overall"]["end"]["mean_abs"], 0.0)
            self.assertTrue(r["clips"][1]["missing_output"])
            self.assertIn("| **all** |", score.table(r))


if __name__ == "__main__":
    unittest.main()
