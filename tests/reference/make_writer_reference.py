"""Expected writer outputs for tests/output.rs, made by whisperX's own writers.

Runs the writer classes of whisperX `whisperx/utils.py` (m-bain/whisperX 2cfd7b7, the file is
standard-library only) on hand-written transcripts and stores, per case, under
tests/data/writers/<case>/:
  input.json    the transcript (whisperX's result dict; Scribe's `Transcript` reads it)
  options.json  max_line_width / max_line_count / highlight_words
  expected.<ext> what whisperX writes, byte for byte

With --openai PATH (openai/whisper `whisper/utils.py`, c0d2f62), it also prints which outputs
openai-whisper's writers would write differently (information only; nothing is stored).

Usage, from the repository root:
  git -C <whisperX clone> show 2cfd7b7:whisperx/utils.py > .cache/ref/whisperx_utils.py
  git -C <whisper clone> show c0d2f62:whisper/utils.py > .cache/ref/whisper_utils.py
  python3 tests/reference/make_writer_reference.py .cache/ref/whisperx_utils.py \
      --openai .cache/ref/whisper_utils.py
"""

import argparse
import copy
import importlib.util
import io
import json
import os
import shutil

OUT = os.path.join(os.path.dirname(__file__), "..", "data", "writers")

ALL = ["txt", "srt", "vtt", "tsv", "json", "aud"]
SUBS = ["srt", "vtt"]


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def w(word, start=None, end=None, score=None, speaker=None):
    d = {"word": word}
    if start is not None:
        d["start"] = start
    if end is not None:
        d["end"] = end
    if score is not None:
        d["score"] = score
    if speaker is not None:
        d["speaker"] = speaker
    return d


def aligned(segments, language="en"):
    """A whisperX align() result: word_segments is every segment's words; language set last."""
    return {
        "segments": segments,
        "word_segments": [copy.deepcopy(x) for s in segments for x in s["words"]],
        "language": language,
    }


def seg(start, end, text, words, avg_logprob=None, speaker=None):
    d = {"start": start, "end": end, "text": text, "words": words}
    if avg_logprob is not None:
        d["avg_logprob"] = avg_logprob
    if speaker is not None:
        d["speaker"] = speaker
    return d


ALIGNED = aligned(
    [
        seg(0.031, 2.5, " Hello world, this is a test.", [
            w("Hello", 0.031, 0.412, 0.951), w("world,", 0.452, 0.853, 0.874),
            w("this", 1.034, 1.195, 0.998), w("is", 1.235, 1.336, 0.731),
            w("a", 1.376, 1.416, 0.5), w("test.", 1.456, 2.5, 0.912),
        ], avg_logprob=-0.2345),
        seg(6.2, 8.95, " Café --> ünïcode, okay?", [
            w("Café", 6.2, 6.7, 0.8), w("-->", 6.75, 6.8, 0.1),
            w("ünïcode,", 6.9, 7.6, 0.65), w("okay?", 7.8, 8.95, 0.77),
        ], avg_logprob=-0.5),
        seg(9.0, 12.25, " A much longer sentence that needs wrapping at a narrow width.", [
            w(x, 9.0 + 0.3 * i, 9.25 + 0.3 * i, 0.9) for i, x in enumerate(
                "A much longer sentence that needs wrapping at a narrow width.".split())
        ]),
    ]
)

SPEAKERS = aligned(
    [
        seg(0.5, 2.0, " Good morning everyone.", [
            w("Good", 0.5, 0.8, 0.9, "SPEAKER_00"), w("morning", 0.85, 1.3, 0.88, "SPEAKER_00"),
            w("everyone.", 1.35, 2.0, 0.93, "SPEAKER_00"),
        ], speaker="SPEAKER_00"),
        seg(2.4, 4.1, " Morning!\tHow are you?", [
            w("Morning!", 2.4, 2.9, 0.91, "SPEAKER_01"), w("How", 3.1, 3.3, 0.95, "SPEAKER_01"),
            w("are", 3.35, 3.5, 0.97, "SPEAKER_01"), w("you?", 3.55, 4.1, 0.99, "SPEAKER_01"),
        ], speaker="SPEAKER_01"),
        # A segment without a speaker (diarization found none overlapping it).
        seg(4.5, 5.0, " Hm.", [w("Hm.", 4.5, 5.0, 0.4)]),
    ]
)

HOURS = aligned(
    [
        seg(3599.9996, 3601.5, " Crossing the hour.", [
            w("Crossing", 3599.9996, 3600.4, 0.9), w("the", 3600.45, 3600.6, 0.9),
            w("hour.", 3600.7, 3601.5, 0.9),
        ]),
        seg(7322.0125, 7325.9995, " Two hours in.", [
            w("Two", 7322.0125, 7322.5, 0.9), w("hours", 7322.6, 7323.0, 0.9),
            w("in.", 7323.1, 7325.9995, 0.9),
        ]),
    ]
)

UNTIMED = aligned(
    [
        seg(1.0, 4.0, " The year 1999 was 42% better.", [
            w("The", 1.0, 1.2, 0.9), w("year", 1.3, 1.6, 0.9), w("1999"),
            w("was", 2.4, 2.6, 0.9), w("42%"), w("better.", 3.2, 4.0, 0.9),
        ]),
        # Nothing in this segment could be aligned: cue times come from the segment.
        seg(5.0, 6.5, " 2024 $5", [w("2024"), w("$5")]),
        seg(7.0, 8.0, " Fine.", [w("Fine.", 7.0, 8.0, 0.9)]),
    ]
)

ZH = aligned(
    [
        seg(0.0, 1.5, "你好世界", [
            w("你", 0.0, 0.3, 0.9), w("好", 0.3, 0.6, 0.9), w("世", 0.7, 1.0, 0.9), w("界", 1.0, 1.5, 0.9),
        ]),
        seg(2.0, 3.0, "谢谢", [w("谢", 2.0, 2.4, 0.9), w("谢", 2.5, 3.0, 0.9)]),
    ],
    language="zh",
)

# whisperX with --no_align: segments {text, start, end, avg_logprob}, no words, no word_segments.
UNALIGNED = {
    "segments": [
        {"text": " First segment, unaligned.", "start": 0.0125, "end": 1.0005, "avg_logprob": -0.3},
        {"text": " Arrows --> and\ttabs.  ", "start": 59.9995, "end": 61.0135, "avg_logprob": -0.31},
        {"text": " Diarized without words.", "start": 62.5, "end": 3700.25, "speaker": "SPEAKER_02"},
    ],
    "language": "en",
}

NO_OPTS = {"max_line_width": None, "max_line_count": None, "highlight_words": False}


def opts(**kw):
    d = dict(NO_OPTS)
    d.update(kw)
    return d


# case name -> (result, options, formats)
CASES = {
    "unaligned": (UNALIGNED, NO_OPTS, ["txt", "srt", "vtt", "tsv", "aud"]),
    "aligned": (ALIGNED, NO_OPTS, ALL),
    "aligned_width": (ALIGNED, opts(max_line_width=12), SUBS),
    "aligned_wrap": (ALIGNED, opts(max_line_width=16, max_line_count=2), SUBS),
    "aligned_count_only": (ALIGNED, opts(max_line_count=1), SUBS),
    "aligned_highlight": (ALIGNED, opts(highlight_words=True), SUBS),
    "aligned_wrap_highlight": (ALIGNED, opts(max_line_width=20, max_line_count=1, highlight_words=True), SUBS),
    "speakers": (SPEAKERS, NO_OPTS, ALL),
    "speakers_wrap": (SPEAKERS, opts(max_line_width=14, max_line_count=1), SUBS),
    "hours": (HOURS, NO_OPTS, ALL),
    "untimed": (UNTIMED, NO_OPTS, ALL),
    "untimed_highlight": (UNTIMED, opts(highlight_words=True), SUBS),
    "untimed_wrap": (UNTIMED, opts(max_line_width=10, max_line_count=2), SUBS),
    "zh": (ZH, NO_OPTS, ALL),
    "zh_wrap": (ZH, opts(max_line_width=3, max_line_count=1), SUBS),
}


def render(mod, fmt, result, options):
    writer = mod.get_writer(fmt, ".")
    buf = io.StringIO()
    writer.write_result(copy.deepcopy(result), file=buf, options=dict(options))
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("whisperx_utils")
    ap.add_argument("--openai")
    args = ap.parse_args()
    wx = load(args.whisperx_utils, "whisperx_utils")
    oa = load(args.openai, "whisper_utils") if args.openai else None

    shutil.rmtree(OUT, ignore_errors=True)
    for name, (result, options, formats) in CASES.items():
        d = os.path.join(OUT, name)
        os.makedirs(d)
        with open(os.path.join(d, "input.json"), "w", encoding="utf-8") as f:
            json.dump(result, f, ensure_ascii=False, indent=1)
        with open(os.path.join(d, "options.json"), "w", encoding="utf-8") as f:
            json.dump(options, f)
        for fmt in formats:
            text = render(wx, fmt, result, options)
            with open(os.path.join(d, "expected." + fmt), "w", encoding="utf-8", newline="") as f:
                f.write(text)
            if oa is not None and fmt != "aud":
                try:
                    other = render(oa, fmt, result, options)
                except Exception as e:  # openai needs times on every word
                    other = f"<{type(e).__name__}: {e}>"
                if other != text:
                    print(f"openai differs: {name}.{fmt}")
        print(f"{name}: {', '.join(formats)}")


if __name__ == "__main__":
    main()
