#!/usr/bin/env python3
"""WhisperX 3.8.6's own `align()` on the shared recordings, for Scribe's alignment tests.

Runs `whisperx.alignment.align` (unmodified, imported from the installed whisperx 3.8.6 wheel)
with the small random models of make_wav2vec2_reference.py, loaded through WhisperX's own
`load_align_model`:
  * base_group       `load_align_model("en", "cpu", model_name=<dir>)` (Wav2Vec2Processor +
                     Wav2Vec2ForCTC.from_pretrained on the local directory; no Hub);
  * large_layer      the same for language "es" (blank = [PAD] = id 37, the LAST vocab entry);
  * torchaudio_base  `load_align_model("en", "cpu", model_dir=<dir>)`: WhisperX takes the
                     torchaudio bundle WAV2VEC2_ASR_BASE_960H, whose `_params` are swapped here
                     for the small dims (the only patch); torch.hub finds the .pth in model_dir.
Run make_wav2vec2_reference.py first.

Cases (audio read with soundfile as float32 = int16/32768, passed to align() as a numpy array,
exactly what WhisperX's load_audio gives for 16 kHz PCM_16 input):
  spk1_snt1 ... spk2_snt6  one segment [0, duration] with the manifest text (base_group)
  two_speakers_multi  4 segments on two_speakers.wav, timings chosen by hand, several sentences,
                      numbers, $ % … — ; ( ) é, avg_logprob on some segments
  past_end            a segment starting after the end of the audio and one ending after it
  no_alignable        "", "   ", "\\u3000" (whitespace only) between two normal segments
  short_segments      < 400 samples (zero-padded to 400), more tokens than frames (backtrack
                      fails), float truncation of int(t * 16000) (1.001 s -> sample 16015)
  whitespace_and_case leading/trailing spaces, a tab, capitals
  dotted_capital_i    "İ".lower() is two characters: WhisperX's char/index bookkeeping shifts
  es_pad_last         large_layer, Spanish text (accents in the vocab, "¿" not), blank id 37
  torchaudio_en       torchaudio_base: "-" is the blank label, a < 400-sample segment goes in
                      with lengths=[n] (output length 0)
Each case is run with interpolate_method "nearest", "linear", "ignore" and
return_char_alignments True / False (6 runs).

Outputs:
  data/align/align_reference.json   inputs (segments, audio file + sha256, language, model and
      the dictionary WhisperX built) and, per run, align()'s return value verbatim. JSON has no
      NaN: any NaN/inf float is written as null and its path listed in "nan_replaced" (in
      align()'s own output none occurred; the only entries are trace margins that are infinite). Floats are Python's repr (shortest
      round-trip) of what align() returned (numpy float64 from pandas included).
      Per segment, "trace" has what WhisperX computed on the way: f1/f2 (sample indices), the
      number of samples fed (after the < 400 padding), lengths, frames T, text_clean, tokens,
      blank_id, has_wildcard, the trellis' chosen end row t_start, the backtracked path
      [token_index, time_index, score], ratio, and two margins that say how close a decision
      was: t_start_margin (best minus second-best of trellis[:, J]) and min_backtrack_margin
      (smallest |changed - stayed| met while backtracking). Its "warnings" are WhisperX's log.
  data/align/emissions.safetensors  for every segment that reached the trellis (<i> = index of
      the segment in the case's input):
      "<case>/<i>/emission"  float32, exactly the matrix get_trellis received: [T, V] = the
                             log_softmax of the model output, or [T, V+1] when align() appended
                             its wildcard column (trace.has_wildcard, trace.wildcard_id = V); its
                             first V columns are always the model's log-probs;
      "<case>/<i>/tokens"    [J] int64, the token ids fed to get_trellis.

Usage, from the repository root (see tests/reference/README.md for the environment):
    .cache/alignvenv/bin/python tests/reference/make_align_reference.py [OUT_DIR]
NLTK_DATA defaults to .cache/nltk_data (punkt_tab from the llama-index-core wheel, see README).
"""
import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import sys
from importlib.metadata import version

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
os.environ.setdefault("NLTK_DATA", os.path.join(ROOT, ".cache", "nltk_data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pandas as pd
import soundfile as sf
import torch
import torchaudio
from safetensors.torch import save_file

import whisperx.alignment as wxa

MODELS = os.path.join(HERE, "data", "wav2vec2")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "data", "align")  # optional: another output dir
SPEECH = os.environ.get("SCRIBE_SPEECH_DIR", os.path.join(HERE, "../../../shared/data/speech"))
TORCH_THREADS = 1
METHODS = ["nearest", "linear", "ignore"]
CHARS = [True, False]


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def manifest_texts():
    with open(os.path.join(SPEECH, "manifest.json"), encoding="utf-8") as f:
        return {m["file"]: m["text"] for m in json.load(f)}


def cases():
    texts = manifest_texts()
    out = []
    for spk in ("spk1", "spk2"):
        for i in range(1, 7):
            f = f"{spk}_snt{i}.wav"
            dur = sf.info(os.path.join(SPEECH, f)).frames / 16000
            out.append({"name": f[:-4], "audio": f, "language": "en", "model": "base_group",
                        "segments": [{"start": 0.0, "end": dur, "text": texts[f]}]})
    out.append({
        "name": "two_speakers_multi", "audio": "two_speakers.wav", "language": "en",
        "model": "base_group",
        "segments": [
            {"start": 0.35, "end": 6.6, "text": " Hello there. In 1999 we paid $20 for it!",
             "avg_logprob": -0.25},
            {"start": 6.69, "end": 10.2, "text": " Mr. Smith said no. It's fine — really? Yes.",
             "avg_logprob": -0.4},
            {"start": 10.57, "end": 18.0,
             "text": " Café prices rose 5% in 2001; we left at 3 p.m. Then we went home."},
            {"start": 18.05, "end": 30.0,
             "text": " The end is near… or is it? (Nobody knows.) Good-bye!"},
        ]})
    dur1 = sf.info(os.path.join(SPEECH, "spk1_snt1.wav")).frames / 16000
    out.append({
        "name": "past_end", "audio": "spk1_snt1.wav", "language": "en", "model": "base_group",
        "segments": [
            {"start": 0.0, "end": 2.0, "text": " The child almost hurt"},
            {"start": 2.0, "end": 3.4, "text": " the small dog."},  # ends after the audio (2.87 s)
            {"start": 3.5, "end": 4.5, "text": " Nothing is here."},  # starts after the end
            {"start": dur1, "end": dur1 + 1.0, "text": " Starts exactly at the end."},
        ]})
    out.append({
        "name": "no_alignable", "audio": "spk1_snt2.wav", "language": "en", "model": "base_group",
        "segments": [
            {"start": 0.0, "end": 0.8, "text": ""},
            {"start": 0.8, "end": 1.6, "text": " Drop the two"},
            {"start": 1.6, "end": 2.0, "text": "   "},
            {"start": 2.0, "end": 2.4, "text": "\u3000"},
            {"start": 2.4, "end": 3.15, "text": " when you add the figures."},
        ]})
    out.append({
        "name": "short_segments", "audio": "spk2_snt1.wav", "language": "en", "model": "base_group",
        "segments": [
            {"start": 0.5, "end": 0.52, "text": " a"},         # 320 samples -> padded to 400, T=1
            {"start": 0.6, "end": 0.62, "text": " ab"},        # T=1 < 2 tokens: backtrack fails
            {"start": 1.001, "end": 1.026, "text": " I"},      # int(1.001*16000) = 16015 -> 401 samples
            {"start": 1.2, "end": 1.25, "text": " we"},        # 800 samples, T=2, J=2
            {"start": 1.3, "end": 1.35, "text": " war"},       # T=2 < J=3: fails
            {"start": 2.0, "end": 2.01, "text": " x"},         # int(2.01*16000) = 32159 -> 159 samples
        ]})
    out.append({
        "name": "whitespace_and_case", "audio": "spk1_snt3.wav", "language": "en",
        "model": "base_group",
        "segments": [{"start": 0.0, "end": 2.72, "text": "  AT THAT High level,\tthe air  is PURE.  "}]})
    out.append({
        "name": "dotted_capital_i", "audio": "spk1_snt4.wav", "language": "en",
        "model": "base_group",
        "segments": [{"start": 0.0, "end": 2.53, "text": "İstanbul has a thin stripe. It runs down the middle."}]})
    out.append({
        "name": "es_pad_last", "audio": "spk2_snt2.wav", "language": "es", "model": "large_layer",
        "segments": [{"start": 0.0, "end": 1.76, "text": " ¿Qué alegría hay en vivir? Sí, señor."}]})
    out.append({
        "name": "torchaudio_en", "audio": "spk1_snt5.wav", "language": "en",
        "model": "torchaudio_base",
        "segments": [
            {"start": 0.0, "end": 2.0, "text": " Sunday is the best-known part"},
            {"start": 2.0, "end": 2.015, "text": " I"},         # 240 samples: lengths=[240]
            {"start": 2.015, "end": 2.6, "text": " the week."},
        ]})
    return out


# ------------------------------------------------------------------ models through WhisperX
def load_models():
    models = {}
    for name, lang in [("base_group", "en"), ("large_layer", "es")]:
        m, meta = wxa.load_align_model(lang, "cpu", model_name=os.path.join(MODELS, name))
        models[name] = (m.eval(), meta, {"load": f'load_align_model("{lang}", "cpu", model_name=<{name} dir>)'})
    real = torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H
    with open(os.path.join(MODELS, "torchaudio_base", "manifest.json"), encoding="utf-8") as f:
        params = json.load(f)["bundle_params"]
    params["extractor_conv_layer_config"] = [tuple(x) for x in params["extractor_conv_layer_config"]]
    torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H = dataclasses.replace(real, _params=params)
    try:
        m, meta = wxa.load_align_model("en", "cpu", model_dir=os.path.join(MODELS, "torchaudio_base"))
    finally:
        torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H = real
    models["torchaudio_base"] = (m.eval(), meta, {
        "load": 'load_align_model("en", "cpu", model_dir=<torchaudio_base dir>) with '
                'torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H._params set to the small dims'})
    return models


# ------------------------------------------------------------------ tracing WhisperX's steps
class Tracer:
    """Wraps whisperx.alignment.get_trellis / backtrack; reads align()'s locals, changes nothing."""

    def __init__(self):
        self.orig_trellis = wxa.get_trellis
        self.orig_backtrack = wxa.backtrack
        self.records = {}
        wxa.get_trellis = self.get_trellis
        wxa.backtrack = self.backtrack

    def get_trellis(self, emission, tokens, blank_id=0):
        loc = sys._getframe(1).f_locals
        sdx = loc["sdx"]
        lengths = loc["lengths"]
        rec = {
            "f1": loc["f1"], "f2": loc["f2"],
            "samples_fed": int(loc["waveform_segment"].shape[-1]),
            "lengths": None if lengths is None else [int(x) for x in lengths],
            "frames": int(emission.shape[0]),
            "text_clean": loc["text_clean"],
            "tokens": [int(t) for t in tokens],
            "blank_id": int(blank_id),
            "has_wildcard": bool(loc["has_wildcard"]),
            "_emission_model": loc["emissions"][0].detach().clone(),
            "_emission_trellis": emission.detach().clone(),
        }
        trellis = self.orig_trellis(emission, tokens, blank_id)
        rec["_trellis"] = trellis
        self.records[sdx] = rec
        return trellis

    def backtrack(self, trellis, emission, tokens, blank_id=0):
        loc = sys._getframe(1).f_locals
        rec = self.records[loc["sdx"]]
        path = self.orig_backtrack(trellis, emission, tokens, blank_id)
        col = trellis[:, -1]
        top = torch.topk(col, min(2, col.numel())).values.tolist()
        rec["t_start"] = int(torch.argmax(col).item())
        rec["t_start_margin"] = (top[0] - top[1]) if len(top) == 2 else None
        rec["path"] = None if path is None else [[p.token_index, p.time_index, p.score] for p in path]
        if path is not None:
            margins = []
            for p in path:
                t, j = p.time_index + 1, p.token_index + 1
                stayed = (trellis[t - 1, j] + emission[t - 1, blank_id]).item()
                changed = (trellis[t - 1, j - 1] + emission[t - 1, tokens[j - 1]]).item()
                margins.append(abs(changed - stayed))
            rec["min_backtrack_margin"] = min(margins)
        return path

    def take(self):
        r, self.records = self.records, {}
        return r


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.levelname}: {record.getMessage()}")


# ------------------------------------------------------------------ JSON
def sanitize(obj, path, replaced):
    if isinstance(obj, dict):
        return {str(k): sanitize(v, f"{path}/{k}", replaced) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v, f"{path}/{i}", replaced) for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isnan(v) or math.isinf(v):
            replaced.append(path)
            return None
        return v
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    raise TypeError(f"{path}: {type(obj)}")


def py_types(obj, acc):
    """Collect the Python types align() returned for floats (for the record)."""
    if isinstance(obj, dict):
        for v in obj.values():
            py_types(v, acc)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            py_types(v, acc)
    elif obj is not None:
        acc.add(type(obj).__module__ + "." + type(obj).__name__)


def main():
    torch.set_num_threads(TORCH_THREADS)
    torch.manual_seed(0)
    models = load_models()
    tracer = Tracer()
    logger = logging.getLogger("whisperx.alignment")
    cap = LogCapture()
    logger.addHandler(cap)

    emissions = {}
    replaced = []
    all_types = set()
    out_cases = {}
    for case in cases():
        path = os.path.join(SPEECH, case["audio"])
        audio, sr = sf.read(path, dtype="float32")
        assert sr == 16000 and audio.ndim == 1
        model, meta, load_info = models[case["model"]]
        runs, traces, warnings = {}, None, None
        for method in METHODS:
            for chars in CHARS:
                cap.messages = []
                result = wxa.align(copy.deepcopy(case["segments"]), model, meta, audio.copy(), "cpu",
                                   interpolate_method=method, return_char_alignments=chars)
                rec = tracer.take()
                py_types(result, all_types)
                key = f"{method}/{'chars' if chars else 'no_chars'}"
                runs[key] = result
                if traces is None:
                    traces, warnings = rec, list(cap.messages)
                    for sdx, r in rec.items():
                        base = f"{case['name']}/{sdx}"
                        # exactly the matrix get_trellis received: [T, V], or [T, V+1] when the
                        # wildcard column was appended; its first V columns are the model output
                        assert torch.equal(r["_emission_trellis"][:, :r["_emission_model"].shape[1]],
                                           r["_emission_model"])
                        emissions[f"{base}/emission"] = r["_emission_trellis"].float().contiguous()
                        emissions[f"{base}/tokens"] = torch.tensor(r["tokens"], dtype=torch.int64)
                else:
                    assert sorted(rec) == sorted(traces), case["name"]
                    for sdx, r in rec.items():
                        assert torch.equal(r["_emission_model"], traces[sdx]["_emission_model"])
                        assert r["path"] == traces[sdx]["path"]
                    assert cap.messages == warnings
        seg_info = []
        for sdx, seg in enumerate(case["segments"]):
            r = traces.get(sdx)
            if r is None:
                seg_info.append({"aligned": False, "reached_trellis": False})
                continue
            t = {k: v for k, v in r.items() if not k.startswith("_")}
            t["reached_trellis"] = True
            t["aligned"] = r["path"] is not None
            t["emission_key"] = f"{case['name']}/{sdx}/emission"
            t["emission_shape"] = list(r["_emission_trellis"].shape)
            t["model_vocab_size"] = int(r["_emission_model"].shape[1])
            if r["has_wildcard"]:
                t["wildcard_id"] = int(r["_emission_trellis"].shape[1] - 1)
            t["ratio"] = (seg["end"] - seg["start"]) * 1 / (r["_trellis"].shape[0] - 1)
            seg_info.append(t)
        first = json.dumps(runs[f"{METHODS[0]}/chars"], sort_keys=True)
        same_methods = all(json.dumps(runs[f"{m}/chars"], sort_keys=True) == first for m in METHODS)
        out_cases[case["name"]] = {
            "audio": {"file": case["audio"], "sha256": sha256(path), "num_samples": int(len(audio)),
                      "duration": len(audio) / 16000},
            "language": case["language"],
            "model": case["model"],
            "segments": case["segments"],
            "trace": seg_info,
            "warnings": warnings,
            "interpolate_methods_give_identical_output": same_methods,
            "runs": runs,
        }
        print(case["name"], "aligned", sum(1 for s in seg_info if s.get("aligned")), "/",
              len(seg_info), "identical across methods:", same_methods)

    model_info = {}
    for name, (m, meta, load_info) in models.items():
        model_info[name] = {
            "dir": f"tests/reference/data/wav2vec2/{name}",
            **load_info,
            "align_model_metadata": meta,
            "class": type(m).__module__ + "." + type(m).__name__,
        }
    doc = {
        "generator": "tests/reference/make_align_reference.py",
        "command": ".cache/alignvenv/bin/python tests/reference/make_align_reference.py",
        "whisperx": version("whisperx"),
        "whisperx_alignment_py_sha256": sha256(wxa.__file__),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchaudio": torchaudio.__version__,
            "transformers": version("transformers"),
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "nltk": version("nltk"),
            "soundfile": version("soundfile"),
        },
        "nltk_data": "punkt_tab from llama-index-core 0.14.25's wheel "
                     "(llama_index/core/_static/nltk_cache/tokenizers/punkt_tab)",
        "torch_threads": TORCH_THREADS,
        "device": "cpu",
        "audio": "soundfile.read(dtype='float32') of 16 kHz PCM_16 = int16/32768, passed as numpy",
        "runs": {f"{m}/{'chars' if c else 'no_chars'}": {"interpolate_method": m,
                                                       "return_char_alignments": c}
                 for m in METHODS for c in CHARS},
        "json_notes": "align()'s return value verbatim; NaN/inf would be null and listed in "
                      "nan_replaced. Python types align() returned: " + ", ".join(sorted(all_types)),
        "nan_replaced": replaced,
        "margins_note": "trace.t_start_margin / min_backtrack_margin: how far the trellis end-row "
                        "choice and the stay/change decisions were from a tie, in log-prob units. "
                        "Tests that run Scribe's own model (not the stored emissions) can only "
                        "expect the same path where these margins exceed the model's numeric "
                        "error. A margin of exactly 0.0 is a structural tie (e.g. '-' is the blank "
                        "label of the torchaudio English model): align() then stays. "
                        "Infinite margins (trellis +inf rows when J == T, or no finite end) are null.",
        "emissions_file": "emissions.safetensors",
        "whisperx_default_align_models": {"DEFAULT_ALIGN_MODELS_TORCH": wxa.DEFAULT_ALIGN_MODELS_TORCH,
                                          "DEFAULT_ALIGN_MODELS_HF": wxa.DEFAULT_ALIGN_MODELS_HF,
                                          "LANGUAGES_WITHOUT_SPACES": wxa.LANGUAGES_WITHOUT_SPACES},
        "models": model_info,
        "cases": out_cases,
    }
    doc = sanitize(doc, "", replaced)
    doc["nan_replaced"] = list(replaced)
    os.makedirs(OUT, exist_ok=True)
    save_file(emissions, os.path.join(OUT, "emissions.safetensors"))
    with open(os.path.join(OUT, "align_reference.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
        f.write("\n")
    print("NaN replaced:", len(replaced), "types:", sorted(all_types))
    for fn in sorted(os.listdir(OUT)):
        print(fn, os.path.getsize(os.path.join(OUT, fn)))


if __name__ == "__main__":
    sys.exit(main())
