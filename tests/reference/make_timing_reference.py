"""Fixtures for tests/timing.rs: openai/whisper timing.py behaviour without torch.

Usage (from the repository root):

    python -m venv .cache/venv && .cache/venv/bin/pip install numpy tiktoken
    .cache/venv/bin/python tests/reference/make_timing_reference.py WHISPER_DIR

WHISPER_DIR holds openai/whisper's `tokenizer.py` and `assets/{gpt2,multilingual}.tiktoken`
(a checkout's `whisper/` folder). The tokenizer is openai's own; the timing functions are
numpy transcriptions of timing.py (release 20250625) that mirror torch's semantics:
`F.pad(mode="reflect")` + `unfold().sort()[..., w//2]` for the median filter, the float32 cost
array of `dtw_cpu`, `std_mean(unbiased=False)`. Writes tests/data/timing/*.json.
"""

import importlib.util
import json
import os
import string
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "data", "timing")
TOKENS_PER_SECOND = 50


def load_tokenizer_module(whisper_dir):
    spec = importlib.util.spec_from_file_location("whisper_tokenizer", os.path.join(whisper_dir, "tokenizer.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- timing.py, numpy edition -------------------------------------------------------------


def median_filter(x, w):
    pad = w // 2
    if x.shape[-1] <= pad:
        return x
    assert w > 0 and w % 2 == 1
    left = x[..., 1 : pad + 1][..., ::-1]
    right = x[..., -pad - 1 : -1][..., ::-1]
    xp = np.concatenate([left, x, right], axis=-1)
    win = np.lib.stride_tricks.sliding_window_view(xp, w, axis=-1)
    return np.sort(win, axis=-1, kind="stable")[..., pad]


def backtrace(trace):
    i = trace.shape[0] - 1
    j = trace.shape[1] - 1
    trace[0, :] = 2
    trace[:, 0] = 1
    result = []
    while i > 0 or j > 0:
        result.append((i - 1, j - 1))
        if trace[i, j] == 0:
            i -= 1
            j -= 1
        elif trace[i, j] == 1:
            i -= 1
        elif trace[i, j] == 2:
            j -= 1
        else:
            raise ValueError("Unexpected trace[i, j]")
    result = np.array(result)
    return result[::-1, :].T


def dtw_cpu(x):
    N, M = x.shape
    cost = np.ones((N + 1, M + 1), dtype=np.float32) * np.inf
    trace = -np.ones((N + 1, M + 1), dtype=np.float32)
    cost[0, 0] = 0
    for j in range(1, M + 1):
        for i in range(1, N + 1):
            c0 = cost[i - 1, j - 1]
            c1 = cost[i - 1, j]
            c2 = cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = np.float64(x[i - 1, j - 1]) + np.float64(c)
            trace[i, j] = t
    return backtrace(trace)


def find_alignment_host(qk, num_frames, sot_len, text_tokens, eot, token_probs, split, medfilt_width=7, qk_scale=1.0):
    """find_alignment after the model pass; qk float32 [heads, tokens, frames]."""
    if len(text_tokens) == 0:
        return []
    weights = qk[:, :, : num_frames // 2].astype(np.float32)
    weights = weights * np.float32(qk_scale)
    weights = np.exp(weights - weights.max(axis=-1, keepdims=True))
    weights = (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)
    mean = weights.mean(axis=-2, keepdims=True)
    std = weights.std(axis=-2, keepdims=True)
    weights = ((weights - mean) / std).astype(np.float32)
    weights = median_filter(weights, medfilt_width)
    matrix = weights.mean(axis=0).astype(np.float32)
    matrix = matrix[sot_len:-1]
    text_indices, time_indices = dtw_cpu((-matrix).astype(np.float64))

    words, word_tokens = split(text_tokens + [eot])
    if len(word_tokens) <= 1:
        return []
    word_boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / TOKENS_PER_SECOND
    start_times = jump_times[word_boundaries[:-1]]
    end_times = jump_times[word_boundaries[1:]]
    word_probabilities = [np.mean(token_probs[i:j]) for i, j in zip(word_boundaries[:-1], word_boundaries[1:])]
    return [
        dict(word=w, tokens=t, start=float(s), end=float(e), probability=float(p))
        for w, t, s, e, p in zip(words, word_tokens, start_times, end_times, word_probabilities)
    ]


class WT:
    def __init__(self, d):
        self.word, self.tokens, self.start, self.end, self.probability = (
            d["word"], list(d["tokens"]), d["start"], d["end"], d["probability"])

    def dict(self):
        return dict(word=self.word, tokens=self.tokens, start=self.start, end=self.end, probability=self.probability)


def merge_punctuations(alignment, prepended, appended):
    i = len(alignment) - 2
    j = len(alignment) - 1
    while i >= 0:
        previous = alignment[i]
        following = alignment[j]
        if previous.word.startswith(" ") and previous.word.strip() in prepended:
            following.word = previous.word + following.word
            following.tokens = previous.tokens + following.tokens
            previous.word = ""
            previous.tokens = []
        else:
            j = i
        i -= 1
    i = 0
    j = 1
    while j < len(alignment):
        previous = alignment[i]
        following = alignment[j]
        if not previous.word.endswith(" ") and following.word in appended:
            previous.word = previous.word + following.word
            previous.tokens = previous.tokens + following.tokens
            following.word = ""
            following.tokens = []
        else:
            i = j
        j += 1


PREPEND = "\"'“¿([{-"
APPEND = "\"'.。,，!！?？:：”)]}、"


def add_word_timestamps_host(segments, alignment, eot, time_offset, last_speech_timestamp):
    """add_word_timestamps after find_alignment; `alignment` is a list of WT."""
    if len(segments) == 0:
        return
    text_tokens_per_segment = [[t for t in s["tokens"] if t < eot] for s in segments]
    word_durations = np.array([t.end - t.start for t in alignment])
    word_durations = word_durations[word_durations.nonzero()]
    median_duration = np.median(word_durations) if len(word_durations) > 0 else 0.0
    median_duration = min(0.7, float(median_duration))
    max_duration = median_duration * 2
    if len(word_durations) > 0:
        sentence_end_marks = ".。!！?？"
        for i in range(1, len(alignment)):
            if alignment[i].end - alignment[i].start > max_duration:
                if alignment[i].word in sentence_end_marks:
                    alignment[i].end = alignment[i].start + max_duration
                elif alignment[i - 1].word in sentence_end_marks:
                    alignment[i].start = alignment[i].end - max_duration
    merge_punctuations(alignment, PREPEND, APPEND)
    word_index = 0
    for segment, text_tokens in zip(segments, text_tokens_per_segment):
        saved_tokens = 0
        words = []
        while word_index < len(alignment) and saved_tokens < len(text_tokens):
            timing = alignment[word_index]
            if timing.word:
                words.append(dict(word=timing.word, start=round(time_offset + timing.start, 2),
                                  end=round(time_offset + timing.end, 2), probability=timing.probability))
            saved_tokens += len(timing.tokens)
            word_index += 1
        if len(words) > 0:
            if words[0]["end"] - last_speech_timestamp > median_duration * 4 and (
                words[0]["end"] - words[0]["start"] > max_duration
                or (len(words) > 1 and words[1]["end"] - words[0]["start"] > max_duration * 2)
            ):
                if len(words) > 1 and words[1]["end"] - words[1]["start"] > max_duration:
                    boundary = max(words[1]["end"] / 2, words[1]["end"] - max_duration)
                    words[0]["end"] = words[1]["start"] = boundary
                words[0]["start"] = max(0, words[0]["end"] - max_duration)
            if segment["start"] < words[0]["end"] and segment["start"] - 0.5 > words[0]["start"]:
                words[0]["start"] = max(0, min(words[0]["end"] - median_duration, segment["start"]))
            else:
                segment["start"] = words[0]["start"]
            if segment["end"] > words[-1]["start"] and segment["end"] + 0.5 < words[-1]["end"]:
                words[-1]["end"] = max(words[-1]["start"] + median_duration, segment["end"])
            else:
                segment["end"] = words[-1]["end"]
            last_speech_timestamp = segment["end"]
        segment["words"] = words


# ---- fixtures --------------------------------------------------------------------------------


def f32list(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def make_median(rng):
    cases = []
    for rows, cols, w in [(2, 1, 7), (2, 3, 7), (3, 4, 7), (2, 7, 7), (4, 30, 7), (3, 12, 5), (2, 9, 3), (1, 5, 1), (2, 20, 9)]:
        x = rng.integers(-3, 4, size=(rows, cols)).astype(np.float32) if rows % 2 == 0 else rng.standard_normal((rows, cols)).astype(np.float32)
        cases.append(dict(rows=rows, cols=cols, width=w, x=f32list(x), y=f32list(median_filter(x, w))))
    return cases


def make_dtw(rng):
    cases = []
    for n, m in [(1, 1), (1, 5), (5, 1), (3, 3), (4, 9), (6, 20), (10, 40)]:
        for kind in ("int", "normal"):
            x = rng.integers(0, 3, size=(n, m)) if kind == "int" else rng.standard_normal((n, m))
            x = x.astype(np.float32)
            t, s = dtw_cpu(x.astype(np.float64))
            cases.append(dict(n=n, m=m, cost=f32list(x), text=[int(v) for v in t], time=[int(v) for v in s]))
    return cases


SPLIT_TEXTS = {
    "en": [
        " Hello, world! It's 3.14 o'clock -- isn't it?",
        " The price is $1,234.56 (approx.) and \"quoted\" text... OK?",
        " Mr. Smith's e-mail: smith@example.com; 100% sure!",
        " café naïve résumé",
    ],
    "ja": [" 日本語のテキストです。", "こんにちは、世界！"],
    "zh": ["我们今天去北京，好吗？", " 你好世界"],
    "de": [" Größe über Äpfel, straße."],
}


def make_split(mod):
    out = {}
    for name, multilingual in (("tiny.en", False), ("base", True)):
        cases = []
        for lang, texts in SPLIT_TEXTS.items():
            if not multilingual and lang != "en":
                continue
            tok = mod.get_tokenizer(multilingual, language=lang if multilingual else None, task="transcribe" if multilingual else None)
            for text in texts:
                tokens = tok.encode(text) + [tok.eot]
                words, word_tokens = (tok.split_tokens_on_unicode(tokens) if lang in {"zh", "ja", "th", "lo", "my", "yue"}
                                      else tok.split_tokens_on_spaces(tokens))
                cases.append(dict(language=lang, text=text, tokens=tokens, words=words, word_tokens=word_tokens))
        out[name] = cases
    return out


def make_alignment(mod, rng):
    tok = mod.get_tokenizer(False)
    cases = []
    for text, num_frames, noise in [(" Hello, world! It's 3.14 o'clock.", 240, 0.5),
                                     (" The quick brown fox jumps over the lazy dog.", 300, 1.0),
                                     (" (Yes) \"no\" maybe...", 160, 0.3)]:
        text_tokens = tok.encode(text)
        sot = list(tok.sot_sequence)
        seq = sot + [tok.no_timestamps] + text_tokens + [tok.eot]
        n_heads, n_tok, n_frames_total = 2, len(seq), num_frames // 2 + 6
        qk = np.round(rng.standard_normal((n_heads, n_tok, n_frames_total)) * noise, 2).astype(np.float32)
        cols = num_frames // 2
        # row r (r = sot_len .. n_tok-2) predicts text token r - sot_len; put it at a known frame
        anchors = np.linspace(5, cols - 10, n_tok - len(sot) - 1).astype(int)
        for k, r in enumerate(range(len(sot), n_tok - 1)):
            lo = anchors[k]
            hi = anchors[k + 1] if k + 1 < len(anchors) else cols
            qk[:, r, lo:hi] += 6.0
        probs = rng.uniform(0.05, 1.0, size=len(text_tokens)).astype(np.float32)
        res = find_alignment_host(qk, num_frames, len(sot), text_tokens, tok.eot, [float(p) for p in probs],
                                  tok.split_to_word_tokens)
        cases.append(dict(text=text, sot=sot, no_timestamps=tok.no_timestamps, eot=tok.eot, text_tokens=text_tokens,
                          n_heads=n_heads, n_tokens=n_tok, n_frames_total=n_frames_total, num_frames=num_frames,
                          qk=f32list(qk), token_probs=f32list(probs),
                          anchors=[int(a) for a in anchors], words=res))
    return cases


def make_word_timestamps(rng):
    eot = 50256
    cases = []
    # hand-made alignments: words, tokens (fake ids < eot), starts/ends on the 20 ms grid
    scenarios = [
        # a long first word after a pause, a long sentence-final "." and a segment that
        # starts well before its first word
        dict(time_offset=12.34, last=3.0, segs=[(12.0, 15.5, [" Hello", ",", " world", "."]), (15.5, 20.0, [" Next", " one", "!"])],
             times=[(0.2, 2.6), (2.6, 2.7), (2.7, 3.0), (3.0, 4.9), (5.0, 5.3), (5.3, 5.5), (5.5, 7.9)]),
        dict(time_offset=0.0, last=0.0, segs=[(0.0, 2.0, [" (", "a", ")", " \"", "b", "\""]), (2.0, 2.0, [])],
             times=[(0.0, 0.1), (0.1, 0.5), (0.5, 0.5), (0.5, 0.62), (0.62, 1.04), (1.04, 1.9)]),
        dict(time_offset=30.0, last=29.0, segs=[(30.0, 31.0, [" One"]), (31.0, 40.0, [" two", " three", "?"])],
             times=[(0.0, 3.0), (3.0, 3.1), (3.1, 9.0), (9.0, 9.2)]),
        dict(time_offset=1.0, last=0.5, segs=[(1.0, 2.5, [" ¿", "Qué", "?", " Sí", "."])],
             times=[(0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 0.0)]),
    ]
    tid = 100
    for sc in scenarios:
        segments, alignment = [], []
        k = 0
        for start, end, ws in sc["segs"]:
            toks = []
            for w in ws:
                toks.append(tid)
                s, e = sc["times"][k]
                alignment.append(dict(word=w, tokens=[tid], start=s, end=e, probability=float(rng.uniform(0.1, 1.0))))
                tid += 1
                k += 1
            segments.append(dict(start=start, end=end, tokens=toks + [eot]))
        before = json.loads(json.dumps(segments))
        add_word_timestamps_host(segments, [WT(a) for a in alignment], eot, sc["time_offset"], sc["last"])
        cases.append(dict(time_offset=sc["time_offset"], last_speech_timestamp=sc["last"], eot=eot,
                          segments=before, alignment=alignment, result=segments))
    return cases


def main():
    whisper_dir = sys.argv[1]
    mod = load_tokenizer_module(whisper_dir)
    rng = np.random.default_rng(20250625)
    os.makedirs(OUT, exist_ok=True)
    fixtures = dict(
        median_filter=make_median(rng),
        dtw=make_dtw(rng),
        split=make_split(mod),
        find_alignment=make_alignment(mod, rng),
        add_word_timestamps=make_word_timestamps(rng),
    )
    for name, data in fixtures.items():
        with open(os.path.join(OUT, f"{name}.json"), "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
        print(name, os.path.getsize(os.path.join(OUT, f"{name}.json")), "bytes")


if __name__ == "__main__":
    main()
