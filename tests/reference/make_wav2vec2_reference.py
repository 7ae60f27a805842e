#!/usr/bin/env python3
"""Small random wav2vec2 CTC models and their log-probabilities, for Scribe's wav2vec2 tests.

Writes tests/reference/data/wav2vec2/<variant>/ for four variants. Every model is small
(hidden 32, 2 layers, 4 heads, FFN 64, seven 32-channel convs) but keeps the REAL conv layout
(kernels 10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2: T = floor((N-400)/320)+1) and the real
positional conv (kernel 128, 16 groups, weight norm over dim 2). Weights are random (fixed
seeds); LayerNorm/GroupNorm gains and every bias are randomised too (so swapped gamma/beta or
a forgotten bias shows up), the weight-norm gain g is perturbed (so W != v/|v|), and the CTC
head is calibrated (see calibrate_head) so that the log-probs are decisive (mean max-prob ~0.8)
and the blank wins on about 60 % of the frames, as with a trained model.

  base_group            transformers Wav2Vec2ForCTC like facebook/wav2vec2-base-960h:
                        feat_extract_norm "group", no conv bias, post-LN encoder, the real
                        32-entry English char vocab (<pad> <s> </s> <unk> | E T A O ...).
                        model.safetensors (save_pretrained) + pytorch_model.bin
                        (torch.save(state_dict), zip format) + config.json + vocab.json +
                        tokenizer_config.json, processor_config.json (transformers 5) and
                        preprocessor_config.json (loadable by WhisperX's
                        load_align_model(model_name=<dir>) without the Hub).
  base_group_legacy_names  the same weights with the positional-conv weight norm under the
                        OTHER naming (weight_g / weight_v, as on the Hub's 2021 checkpoints):
                        pytorch_model.bin and model.safetensors. Same logits as base_group.
  large_layer           Wav2Vec2ForCTC like jonatasgrosman xlsr-53: feat_extract_norm "layer",
                        conv bias, pre-LN encoder (do_stable_layer_norm), a 38-entry
                        Spanish-like vocab built as in the HF fine-tuning tutorial
                        ("|" = old " " id 0, [UNK] and [PAD] LAST: blank id 37, not 0).
  torchaudio_base       torchaudio.models.wav2vec2_model (base architecture, group norm) with the
                        weights of base_group converted by torchaudio's own
                        import_huggingface_model. Saved as torchaudio's WAV2VEC2_ASR_BASE_960H
                        bundle file is: a plain state_dict .pth under the bundle's file name,
                        with the fairseq 32-row `aux` head (the bundle's loader drops rows 1,2,3
                        -> 29 labels) and the weight norm as weight_g/weight_v. Loaded back
                        through torchaudio's own bundle code (Wav2Vec2ASRBundle.get_model with
                        dl_kwargs={"model_dir": ...}, i.e. WhisperX's call) to make the logits.
                        labels.json = bundle.get_labels().

HuBERT / WavLM: WhisperX 3.8.6's DEFAULT_ALIGN_MODELS_HF holds only wav2vec2 checkpoints and
load_align_model always instantiates Wav2Vec2ForCTC, so no HuBERT variant is made.

Inputs (audio as WhisperX feeds it: int16/32768 float32, no normalisation, batch of 1):
  spk1_snt1_first2s   spk1_snt1.wav samples [0, 32000)            -> 99 frames
  spk2_snt3_full      spk2_snt3.wav, all 30080 samples             -> 93 frames
  spk1_snt1_first400  spk1_snt1.wav samples [0, 400)               -> 1 frame
  spk1_snt1_first300  spk1_snt1.wav samples [0, 300): fewer than 400 -> 0 frames; the models
                      RAISE (conv kernel larger than its input); the error is in the manifest,
                      no tensor is stored.
  spk1_snt1_first300_padded400  the 300 samples zero-padded to 400 (what WhisperX feeds) ->
                      1 frame. torchaudio_base additionally has ..._lengths300: the same input
                      with lengths=[300], as WhisperX calls torchaudio models (output length 0:
                      the projected features are zeroed and all keys masked).
  batch_zero_padded_no_mask  a batch of two: A = spk1_snt1 [0, 32000), B = spk2_snt3 [0, 20000)
                      zero-padded to 32000, one forward WITHOUT attention mask/lengths
                      ([2, 99, V]); plus batch_zero_padded_no_mask_B_alone = B on its own
                      ([62, V]). Row 0 equals spk1_snt1_first2s; row 1 differs from B alone
                      (GroupNorm statistics and attention see the padding).

logits.safetensors (float32): `<input>` = log_softmax over the vocab (what WhisperX uses),
`raw/<input>` = the model's logits before log_softmax. manifest.json describes everything
(config, state_dict keys and shapes, inputs with sha256 of the audio file, tensors, versions).

Usage, from the repository root (see tests/reference/README.md for the environment):
    .cache/alignvenv/bin/python tests/reference/make_wav2vec2_reference.py
"""
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from collections import OrderedDict
from importlib.metadata import version

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import soundfile as sf
import torch
import torchaudio
from safetensors.torch import save_file
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2Processor,
)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "wav2vec2")
SPEECH = os.environ.get("SCRIBE_SPEECH_DIR", os.path.join(HERE, "../../../shared/data/speech"))

TARGET_LOGIT_STD = 4.0
BLANK_FRACTION = 0.6
CALIBRATION_FILE = "spk1_snt2.wav"
TORCH_THREADS = 1
SMALL = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    conv_dim=(32,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16,
    layer_norm_eps=1e-5,
    hidden_act="gelu",
    feat_extract_activation="gelu",
)

# facebook/wav2vec2-base-960h vocab.json (id order).
EN_VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list("ETAONIHSRDLUMWCFGYPBVK'XJQZ")
assert len(EN_VOCAB) == 32


def es_vocab():
    """Tutorial-style vocab: sorted chars incl. ' ', then '|' takes ' ''s id, [UNK], [PAD] last."""
    chars = sorted(set(" '-" + "abcdefghijklmnopqrstuvwxyz" + "áéíñóúü"))
    vocab = {c: i for i, c in enumerate(chars)}
    vocab["|"] = vocab[" "]
    del vocab[" "]
    vocab["[UNK]"] = len(vocab)
    vocab["[PAD]"] = len(vocab)
    return vocab  # dict insertion order = JSON key order (not id order: "|" is id 0, near the end)


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def read(name):
    path = os.path.join(SPEECH, name)
    audio, sr = sf.read(path, dtype="float32")  # PCM_16 -> exactly int16 / 32768
    assert sr == 16000 and audio.ndim == 1, name
    return audio, sha256(path)


def randomise(model, seed, gain_keys):
    """Deterministically give every norm gain, bias and weight-norm g non-trivial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith(".bias"):
                p.copy_(0.1 * noise if not name.startswith(("lm_head", "aux")) else 0.5 * noise)
            elif any(name.endswith(k) for k in gain_keys):
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith(("weight.original0", "weight_g")):
                p.mul_(1.0 + 0.3 * noise.abs())


NORM_GAINS = ("layer_norm.weight", "final_layer_norm.weight")


def calibrate_head(model, blank_id, seed):
    """Make the random CTC head decisive and blank-dominated, like a trained one.

    A random encoder's output has a large time-constant component (GELU means, norm biases; with
    LayerNorm in every conv it dominates), so a plain "lm_head x 20" gives mean max-prob ~0.45 and
    the layer variant predicts one class on every frame. Instead, on the calibration clip
    (spk1_snt2.wav, not used as a test input), with h = lm_head's input [T, D]:
      W <- W * TARGET_LOGIT_STD / mean_c std_t(W h)           (time variation of each logit)
      b <- -W mean_t(h) + 0.1 N(0,1)                           (centre the logits)
      b[blank] += quantile_{BLANK_FRACTION}(max_{c!=blank} z - z_blank)   (blank wins ~60% of frames)
    """
    audio, _ = read(CALIBRATION_FILE)
    captured = {}
    hook = model.lm_head.register_forward_hook(lambda m, i, o: captured.__setitem__("h", i[0][0]))
    with torch.inference_mode():
        model(torch.from_numpy(audio)[None])
    hook.remove()
    h = captured["h"].clone()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = model.lm_head.weight
        z = h @ w.T
        scale = TARGET_LOGIT_STD / z.std(0).mean().item()
        w.mul_(scale)
        b = -(h.mean(0) @ w.T) + 0.1 * torch.randn(w.shape[0], generator=g)
        z = h @ w.T + b
        others = torch.cat([z[:, :blank_id], z[:, blank_id + 1:]], 1).max(1).values
        b[blank_id] += torch.quantile(others - z[:, blank_id], BLANK_FRACTION).item()
        model.lm_head.bias.copy_(b)
    return {"calibration_file": CALIBRATION_FILE, "lm_head_weight_scale": scale,
            "target_logit_std": TARGET_LOGIT_STD, "blank_fraction_on_calibration": BLANK_FRACTION,
            "blank_bias": model.lm_head.bias[blank_id].item()}


def build_hf(seed, vocab, pad_id, **kw):
    torch.manual_seed(seed)
    cfg = Wav2Vec2Config(vocab_size=len(vocab), pad_token_id=pad_id, **SMALL, **kw)
    model = Wav2Vec2ForCTC(cfg).eval()
    randomise(model, seed + 1, NORM_GAINS)
    head = calibrate_head(model, pad_id, seed + 2)
    return model, head


def save_processor(dirname, vocab, unk, pad):
    with tempfile.TemporaryDirectory() as tmp:
        vf = os.path.join(tmp, "vocab.json")
        with open(vf, "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        tok = Wav2Vec2CTCTokenizer(vf, unk_token=unk, pad_token=pad, word_delimiter_token="|",
                                   bos_token="<s>", eos_token="</s>")
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                  do_normalize=True, return_attention_mask=False)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(dirname)
    fe.save_pretrained(dirname)  # also the classic preprocessor_config.json of Hub checkpoints
    return tok


def legacy_names(sd):
    out = OrderedDict()
    for k, v in sd.items():
        k = k.replace("parametrizations.weight.original0", "weight_g")
        k = k.replace("parametrizations.weight.original1", "weight_v")
        out[k] = v
    meta = getattr(sd, "_metadata", None)
    if meta is not None:  # keep torch's per-module version records, as a saved state_dict has them
        out._metadata = OrderedDict((k, v) for k, v in meta.items() if "parametrizations" not in k)
    return out


def keys_and_shapes(sd):
    return [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sd.items()]


class Inputs:
    def __init__(self):
        self.a, self.a_sha = read("spk1_snt1.wav")
        self.b, self.b_sha = read("spk2_snt3.wav")
        src_a = {"file": "spk1_snt1.wav", "sha256": self.a_sha}
        src_b = {"file": "spk2_snt3.wav", "sha256": self.b_sha}
        pad300 = np.concatenate([self.a[:300], np.zeros(100, np.float32)])
        bb = self.b[:20000]
        self.batch = np.stack([self.a[:32000], np.concatenate([bb, np.zeros(12000, np.float32)])])
        self.single = OrderedDict()  # name -> (waveform [N], description)
        self.single["spk1_snt1_first2s"] = (self.a[:32000], {**src_a, "samples": [0, 32000]})
        self.single["spk2_snt3_full"] = (self.b, {**src_b, "samples": [0, len(self.b)]})
        self.single["spk1_snt1_first400"] = (self.a[:400], {**src_a, "samples": [0, 400]})
        self.single["spk1_snt1_first300"] = (self.a[:300], {**src_a, "samples": [0, 300]})
        self.single["spk1_snt1_first300_padded400"] = (
            pad300, {**src_a, "samples": [0, 300], "zero_padded_to": 400,
                     "note": "WhisperX's own padding of a <400-sample segment"})
        self.single["batch_zero_padded_no_mask_B_alone"] = (bb, {**src_b, "samples": [0, 20000]})
        self.batch_desc = {
            "rows": [{**src_a, "samples": [0, 32000]},
                     {**src_b, "samples": [0, 20000], "zero_padded_to": 32000}],
            "attention_mask": None,
            "note": "one forward of the [2, 32000] batch without attention mask / lengths; "
                    "row 0 equals spk1_snt1_first2s, row 1 differs from "
                    "batch_zero_padded_no_mask_B_alone because of the padding",
        }


def run_variant(name, forward, inp, blank_id, extra_single=None):
    """forward(x [B, N]) -> raw logits [B, T, V]. Returns (tensors, manifest entries)."""
    tensors, described = OrderedDict(), OrderedDict()
    for key, (wave, desc) in inp.single.items():
        x = torch.from_numpy(np.ascontiguousarray(wave))[None]
        try:
            with torch.inference_mode():
                raw = forward(x)[0].float()
        except Exception as e:  # noqa: BLE001 - recorded on purpose
            described[key] = {**desc, "num_samples": int(x.shape[1]), "error": f"{type(e).__name__}: {e}"}
            continue
        lp = torch.log_softmax(raw, dim=-1)
        tensors[key] = lp.contiguous()
        tensors[f"raw/{key}"] = raw.contiguous()
        described[key] = {**desc, "num_samples": int(x.shape[1]), "frames": int(lp.shape[0]),
                          "mean_max_prob": round(lp.max(-1).values.exp().mean().item(), 4),
                          "argmax_blank_fraction": round((lp.argmax(-1) == blank_id).float().mean().item(), 4)}
    with torch.inference_mode():
        raw = forward(torch.from_numpy(inp.batch)).float()
    tensors["batch_zero_padded_no_mask"] = torch.log_softmax(raw, dim=-1).contiguous()
    tensors["raw/batch_zero_padded_no_mask"] = raw.contiguous()
    described["batch_zero_padded_no_mask"] = {**inp.batch_desc, "frames": int(raw.shape[1])}
    if extra_single:
        for key, (t, desc) in extra_single.items():
            tensors[key] = t
            described[key] = desc
    # self-checks
    d0 = (tensors["batch_zero_padded_no_mask"][0] - tensors["spk1_snt1_first2s"]).abs().max().item()
    d1 = (tensors["batch_zero_padded_no_mask"][1, :62] - tensors["batch_zero_padded_no_mask_B_alone"]).abs().max().item()
    described["batch_zero_padded_no_mask"]["max_abs_row0_vs_spk1_snt1_first2s"] = d0
    described["batch_zero_padded_no_mask"]["max_abs_row1_first62_vs_B_alone"] = d1
    assert d0 < 1e-4, (name, d0)
    return tensors, described


def tensor_list(tensors):
    return [[k, list(v.shape), "float32"] for k, v in tensors.items()]


def write_manifest(dirname, obj):
    with open(os.path.join(dirname, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def fresh(dirname):
    if os.path.isdir(dirname):
        shutil.rmtree(dirname)
    os.makedirs(dirname)


def hf_forward(model):
    return lambda x: model(x).logits


def hf_config_summary(cfg):
    keys = ["model_type", "architectures", "vocab_size", "pad_token_id", "hidden_size",
            "num_hidden_layers", "num_attention_heads", "intermediate_size", "conv_dim",
            "conv_kernel", "conv_stride", "conv_bias", "feat_extract_norm", "do_stable_layer_norm",
            "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "layer_norm_eps",
            "hidden_act", "feat_extract_activation"]
    d = cfg.to_dict()
    return {k: d.get(k) for k in keys}


def main():
    torch.set_num_threads(TORCH_THREADS)
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "transformers": version("transformers"),
        "safetensors": version("safetensors"),
        "numpy": np.__version__,
        "soundfile": version("soundfile"),
    }
    inp = Inputs()
    common = {
        "generator": "tests/reference/make_wav2vec2_reference.py",
        "command": ".cache/alignvenv/bin/python tests/reference/make_wav2vec2_reference.py",
        "versions": versions,
        "torch_threads": TORCH_THREADS,
        "audio": "soundfile float32 of PCM_16 = int16/32768, no normalisation (as WhisperX)",
        "logits_file": "logits.safetensors: <input> = log_softmax(raw, -1), raw/<input> = logits; float32",
    }
    summary = {}

    # ---------------------------------------------------------------- base_group
    d = os.path.join(OUT, "base_group")
    fresh(d)
    vocab = {c: i for i, c in enumerate(EN_VOCAB)}
    model, head = build_hf(1000, vocab, 0, feat_extract_norm="group", conv_bias=False,
                     do_stable_layer_norm=False)
    model.save_pretrained(d)
    save_processor(d, vocab, "<unk>", "<pad>")
    sd = model.state_dict()
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    pos_keys = [k for k in sd if "pos_conv_embed" in k]
    naming = ("parametrizations.weight.original0/original1"
              if any("parametrizations" in k for k in pos_keys) else "weight_g/weight_v")
    tensors, described = run_variant("base_group", hf_forward(model), inp, 0)
    # reload checks: both files through transformers' own loader give the same logits
    reload_checks = {}
    for fname in ["model.safetensors", "pytorch_model.bin"]:
        with tempfile.TemporaryDirectory() as tmp:
            for f in os.listdir(d):
                if f in ("config.json", fname):
                    shutil.copy(os.path.join(d, f), tmp)
            m2 = Wav2Vec2ForCTC.from_pretrained(tmp).eval()
            with torch.inference_mode():
                lp = torch.log_softmax(m2(torch.from_numpy(inp.a[:32000])[None]).logits[0], -1)
            reload_checks[fname] = (lp - tensors["spk1_snt1_first2s"]).abs().max().item()
    save_file(dict(tensors), os.path.join(d, "logits.safetensors"))
    from safetensors import safe_open
    with safe_open(os.path.join(d, "model.safetensors"), "pt") as f:
        st_keys = [[k, list(f.get_slice(k).get_shape())] for k in f.keys()]
    write_manifest(d, {
        **common,
        "variant": "base_group",
        "class": "transformers Wav2Vec2ForCTC",
        "seed": 1000,
        "lm_head_calibration": head,
        "like": "facebook/wav2vec2-base-960h (feature extractor group norm, post-LN encoder)",
        "config": hf_config_summary(model.config),
        "vocab": vocab,
        "blank_id": 0,
        "files": {
            "model.safetensors": "model.save_pretrained(dir) (transformers " + versions["transformers"] + ")",
            "pytorch_model.bin": "torch.save(model.state_dict(), path): default zip format, an OrderedDict",
            "config.json": "save_pretrained",
            "vocab.json / tokenizer_config.json / preprocessor_config.json (+ special_tokens_map.json)":
                "Wav2Vec2Processor(Wav2Vec2FeatureExtractor, Wav2Vec2CTCTokenizer).save_pretrained(dir)",
        },
        "weight_norm_naming": {
            "this_dir": naming,
            "note": "transformers " + versions["transformers"] + " / torch " + versions["torch"]
                    + " register nn.utils.parametrizations.weight_norm, so the state_dict and "
                      "save_pretrained use parametrizations.weight.original0 (g, [1,1,128]) and "
                      "original1 (v, [D, D/16, 128]). ../base_group_legacy_names has weight_g/weight_v.",
        },
        "state_dict_keys": keys_and_shapes(sd),
        "safetensors_keys": st_keys,
        "reload_max_abs_vs_stored": reload_checks,
        "inputs": described,
        "tensors": tensor_list(tensors),
    })
    summary["base_group"] = (naming, tensors)
    base_model, base_tensors = model, tensors

    # ---------------------------------------------------------------- base_group_legacy_names
    d2 = os.path.join(OUT, "base_group_legacy_names")
    fresh(d2)
    legacy = legacy_names(sd)
    legacy_naming = ("weight_g/weight_v" if naming.startswith("parametrizations")
                     else "parametrizations.weight.original0/original1")
    if not naming.startswith("parametrizations"):
        legacy = OrderedDict((k.replace("weight_g", "parametrizations.weight.original0")
                              .replace("weight_v", "parametrizations.weight.original1"), v)
                             for k, v in sd.items())
    torch.save(legacy, os.path.join(d2, "pytorch_model.bin"))
    save_file({k: v.contiguous() for k, v in legacy.items()}, os.path.join(d2, "model.safetensors"),
              metadata={"format": "pt"})
    for f in os.listdir(d):
        if f.endswith(".json") and f != "manifest.json":
            shutil.copy(os.path.join(d, f), d2)
    legacy_checks = {}
    for fname in ["pytorch_model.bin", "model.safetensors"]:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(os.path.join(d2, "config.json"), tmp)
            shutil.copy(os.path.join(d2, fname), tmp)
            m2 = Wav2Vec2ForCTC.from_pretrained(tmp).eval()
            with torch.inference_mode():
                lp = torch.log_softmax(m2(torch.from_numpy(inp.a[:32000])[None]).logits[0], -1)
            legacy_checks[fname] = (lp - base_tensors["spk1_snt1_first2s"]).abs().max().item()
            assert legacy_checks[fname] < 1e-5, legacy_checks
    write_manifest(d2, {
        **common,
        "variant": "base_group_legacy_names",
        "class": "transformers Wav2Vec2ForCTC",
        "same_weights_as": "base_group",
        "weight_norm_naming": {
            "this_dir": legacy_naming,
            "renamed": {"wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original0":
                        "wav2vec2.encoder.pos_conv_embed.conv.weight_g",
                        "wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original1":
                        "wav2vec2.encoder.pos_conv_embed.conv.weight_v"},
            "note": "the naming of the Hub's 2021 checkpoints (facebook/wav2vec2-base-960h, "
                    "jonatasgrosman/*); transformers maps it back on load.",
        },
        "files": {"pytorch_model.bin": "torch.save(OrderedDict) zip format",
                  "model.safetensors": "safetensors.torch.save_file, metadata {format: pt}",
                  "*.json": "copies of base_group's config / tokenizer / preprocessor files"},
        "logits": "identical to ../base_group/logits.safetensors (not stored again)",
        "from_pretrained_max_abs_vs_base_group": legacy_checks,
        "state_dict_keys": keys_and_shapes(legacy),
    })
    summary["base_group_legacy_names"] = (legacy_naming, {})

    # ---------------------------------------------------------------- large_layer
    d3 = os.path.join(OUT, "large_layer")
    fresh(d3)
    evocab = es_vocab()
    pad_id = evocab["[PAD]"]
    model, head3 = build_hf(2000, evocab, pad_id, feat_extract_norm="layer", conv_bias=True,
                     do_stable_layer_norm=True)
    model.save_pretrained(d3)
    save_processor(d3, evocab, "[UNK]", "[PAD]")
    tensors, described = run_variant("large_layer", hf_forward(model), inp, pad_id)
    save_file(dict(tensors), os.path.join(d3, "logits.safetensors"))
    sd3 = model.state_dict()
    write_manifest(d3, {
        **common,
        "variant": "large_layer",
        "class": "transformers Wav2Vec2ForCTC",
        "seed": 2000,
        "lm_head_calibration": head3,
        "like": "jonatasgrosman/wav2vec2-large-xlsr-53-* (layer norm in every conv, conv bias, pre-LN encoder)",
        "config": hf_config_summary(model.config),
        "vocab": evocab,
        "vocab_note": "HF tutorial layout: sorted chars, '|' reuses the id of ' ' (0) and is "
                      "written near the end of vocab.json; [UNK] and [PAD] last. Blank = [PAD].",
        "blank_id": pad_id,
        "files": {"model.safetensors": "save_pretrained", "config.json": "save_pretrained",
                  "vocab.json / tokenizer_config.json / preprocessor_config.json": "Wav2Vec2Processor.save_pretrained"},
        "weight_norm_naming": {"this_dir": naming},
        "state_dict_keys": keys_and_shapes(sd3),
        "inputs": described,
        "tensors": tensor_list(tensors),
    })
    summary["large_layer"] = (naming, tensors)

    # ---------------------------------------------------------------- torchaudio_base
    d4 = os.path.join(OUT, "torchaudio_base")
    fresh(d4)
    from torchaudio.models.wav2vec2.utils import import_huggingface_model
    from torchaudio.pipelines._wav2vec2 import utils as ta_utils
    from torchaudio.pipelines._wav2vec2.impl import Wav2Vec2ASRBundle

    real = torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H
    ta32 = import_huggingface_model(base_model).eval()  # aux = lm_head, 32 rows (fairseq dict size)
    file_sd = legacy_names(ta32.state_dict())  # OrderedDict, weight norm as weight_g / weight_v
    pth_name = real._path  # "wav2vec2_fairseq_base_ls960_asr_ls960.pth"
    torch.save(file_sd, os.path.join(d4, pth_name))
    params = dict(real._params)
    params.update({
        "extractor_conv_layer_config": [(32, k, s) for (_, k, s) in real._params["extractor_conv_layer_config"]],
        "encoder_embed_dim": 32,
        "encoder_num_layers": 2,
        "encoder_num_heads": 4,
        "encoder_ff_interm_features": 64,
    })
    small_bundle = dataclasses.replace(real, _params=params)
    # WhisperX: bundle.get_model(dl_kwargs={"model_dir": model_dir}); torch.hub finds the file
    # already in model_dir under the URL's basename and loads it without downloading.
    ta_model = small_bundle.get_model(dl_kwargs={"model_dir": d4}).eval()
    labels = list(small_bundle.get_labels())
    with open(os.path.join(d4, "labels.json"), "w", encoding="utf-8") as f:
        json.dump(labels, f, ensure_ascii=False)
        f.write("\n")
    extra = OrderedDict()
    wav = torch.from_numpy(inp.single["spk1_snt1_first300_padded400"][0])[None]
    with torch.inference_mode():
        raw, out_len = ta_model(wav, lengths=torch.as_tensor([300]))
    extra["spk1_snt1_first300_padded400_lengths300"] = (
        torch.log_softmax(raw[0], -1).contiguous(),
        {**inp.single["spk1_snt1_first300_padded400"][1], "lengths": [300],
         "output_lengths": out_len.tolist(), "frames": int(raw.shape[1]),
         "note": "WhisperX's torchaudio call for a <400-sample segment: model(wave, lengths=[300]); "
                 "output length 0, the projected features are zeroed and every key is masked "
                 "(-10000), yet one frame comes back and WhisperX aligns on it"})
    extra["raw/spk1_snt1_first300_padded400_lengths300"] = (raw[0].contiguous(), {"raw": True})
    tensors, described = run_variant("torchaudio_base", lambda x: ta_model(x)[0], inp, 0, extra)
    for k in [k for k in described if k.startswith("raw/")]:
        del described[k]
    save_file(dict(tensors), os.path.join(d4, "logits.safetensors"))
    # cross-check against base_group: raw aux logits == lm_head logits at rows [0, 4..31]
    keep = [0] + list(range(4, 32))
    cross = {}
    for key in ["spk1_snt1_first2s", "spk2_snt3_full", "spk1_snt1_first400"]:
        cross[key] = (tensors[f"raw/{key}"] - base_tensors[f"raw/{key}"][:, keep]).abs().max().item()
        assert cross[key] < 1e-4, cross
    loaded_sd = ta_model.state_dict()
    obj = torch.load(os.path.join(d4, pth_name), map_location="cpu", weights_only=True)
    write_manifest(d4, {
        **common,
        "variant": "torchaudio_base",
        "class": "torchaudio.models.Wav2Vec2Model (torchaudio.models.wav2vec2_model)",
        "like": "torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H",
        "bundle_params": {k: (list(map(list, v)) if k == "extractor_conv_layer_config" else v)
                          for k, v in params.items()},
        "bundle": {"_path": pth_name, "_remove_aux_axis": list(real._remove_aux_axis),
                   "_normalize_waveform": real._normalize_waveform, "_model_type": real._model_type,
                   "_sample_rate": real._sample_rate},
        "labels": labels,
        "blank_id": 0,
        "weights": "base_group's, converted by torchaudio.models.wav2vec2.utils.import_huggingface_model; "
                   "aux (32 rows) = base_group lm_head; after the bundle drops rows 1,2,3 the model's "
                   "29 outputs are lm_head rows [0, 4..31] (labels '-' = <pad>, '|', E ... Z)",
        "pth_file": {
            "name": pth_name,
            "format": "torch.save zip (archive folder = file stem); pickle of a "
                      "collections.OrderedDict of float32 tensors with torch's _metadata "
                      "attribute (per-module {'version': 1} records), nothing else "
                      "(what torch.hub.load_state_dict_from_url + load_state_dict expect)",
            "has_metadata": hasattr(obj, "_metadata"),
            "top_level_type": type(obj).__name__,
            "num_entries": len(obj),
            "weight_norm_naming": "weight_g/weight_v (the 2021 bundle files predate "
                                  "nn.utils.parametrizations; torch's _weight_norm_compat_hook maps "
                                  "them to parametrizations.weight.original0/1 on load). Inferred, "
                                  "the real file was not downloaded.",
            "keys": keys_and_shapes(obj),
        },
        "model_state_dict_after_load": keys_and_shapes(loaded_sd),
        "raw_max_abs_vs_base_group_rows_0_4to31": cross,
        "inputs": described,
        "tensors": tensor_list(tensors),
    })
    summary["torchaudio_base"] = ("weight_g/weight_v in the .pth", tensors)

    for name, (nm, t) in summary.items():
        size = sum(os.path.getsize(os.path.join(OUT, name, f)) for f in os.listdir(os.path.join(OUT, name)))
        print(f"{name}: {size} bytes, weight norm {nm}, {len(t)} tensors")
        for f in sorted(os.listdir(os.path.join(OUT, name))):
            print(f"    {f} {os.path.getsize(os.path.join(OUT, name, f))}")


if __name__ == "__main__":
    sys.exit(main())
